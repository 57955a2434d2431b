// Small file-system helpers for image/: removal that never follows symlinks.
#pragma once

#include <cstdint>
#include <string>

namespace vitro::image {

// rm -rf of `name` under dirfd (AT_FDCWD for a path), never following a
// symlink. Missing is fine. Throws vitro::Error on other failures.
void remove_tree_at(int dirfd, const std::string& name);
inline void remove_tree(const std::string& path) { remove_tree_at(-100 /* AT_FDCWD */, path); }

// Bytes of regular files under `path` (symlinks not followed); 0 when missing.
uint64_t disk_usage(const std::string& path);

}  // namespace vitro::image
