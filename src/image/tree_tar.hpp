// Writing a file or directory tree as a tar stream (`vitro cp … -`, `vitro
// export`): the tree is walked through directory fds, never following a
// symlink (symlinks are stored as such), so a tree that changes meanwhile (a
// running container) can make the archive inconsistent but never lead the
// walk outside the tree.
#pragma once

#include <cstdint>
#include <string>

namespace vitro::image {

struct TarTreeOptions {
    // The name of `src` in the archive ("" for none: its entries then are at
    // the archive's top, as `cp DIR/. …` copies a directory's contents).
    std::string name;
};

// Writes a tar (pax) of `src_fd` (any open fd, O_PATH too, of a regular
// file, directory, symlink or device) to `out_fd`. Hard links within the tree
// stay links. Returns the number of entries. Throws vitro::Error.
uint64_t write_tree_tar(int src_fd, int out_fd, const TarTreeOptions& opts);

}  // namespace vitro::image
