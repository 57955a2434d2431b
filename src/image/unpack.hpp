// Layer unpack: a tar layer (plain, gzip, zstd, …; libarchive detects which)
// into a directory of its own, every entry path treated as hostile:
//   - ".." anywhere in a path or hardlink target rejects the layer;
//   - absolute paths are taken relative to the layer root;
//   - parents are resolved confined to the layer root (openat2 RESOLVE_IN_ROOT)
//     and entries created with *at() calls relative to the parent's fd, so a
//     symlink in the layer can never lead a write outside it;
//   - hardlink targets resolve inside the layer and are never followed.
// OCI whiteouts become overlayfs ones: ".wh.NAME" a 0/0 char device NAME,
// ".wh..wh..opq" the xattr trusted.overlay.opaque=y on its directory.
// Other trusted.* xattrs from the layer are dropped (they steer overlayfs).
#pragma once

#include <cstdint>
#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace vitro::image {

class Store;

struct UnpackResult {
    std::string diff_id;  // sha256 of the uncompressed tar stream
    uint64_t entries = 0;
};

// Unpacks the layer read from blob_fd into dest_dir, which must not exist yet
// (its parent must). On any error dest_dir is removed and vitro::Error thrown.
UnpackResult unpack_layer(int blob_fd, const std::string& dest_dir);
UnpackResult unpack_layer_bytes(std::string_view data, const std::string& dest_dir);
// The layer's bytes from `next_chunk`: each call returns the next piece (valid
// until the following call), an empty one at the end, or throws vitro::Error,
// which fails the unpack with its message.
using ChunkSource = std::function<std::string_view()>;
UnpackResult unpack_layer_chunks(const ChunkSource& next_chunk, const std::string& dest_dir);

// Extracting a tar stream (any compression) into an existing directory of a
// tree, for `vitro cp`: the same hostile-path rules as a layer, but entries
// land below `dest` (a path inside root_fd, resolved confined to it, so a
// symlink in the tree leads nowhere outside root_fd), ".wh." names are plain
// files and an entry for the destination itself is skipped. Returns the
// number of entries. On an error what was extracted before stays.
struct ExtractOptions {
    // Owner of every entry (podman's `cp` into a container: the container's
    // user); unset: the archive's owners (when running as root).
    std::optional<std::pair<uid_t, gid_t>> owner;
};
uint64_t extract_archive(int in_fd, int root_fd, const std::string& dest, const ExtractOptions& opts = {});

// Unpacked layers shared between containers: <root>/layers/<diff-hex>/rootfs,
// with <root>/layers/<diff-hex>/complete written before the directory is
// renamed into place, so a reader never sees a partial layer.
std::string layer_rootfs(const Store& store, std::string_view diff_id);
bool layer_ready(const Store& store, std::string_view diff_id);
// A layer being unpacked: <root>/layers/.tmp-<hex>-XXXXXX, removed again
// unless publish() moves it into place.
class PendingLayer {
public:
    PendingLayer(const Store& store, std::string_view diff_id);
    PendingLayer(const PendingLayer&) = delete;
    PendingLayer& operator=(const PendingLayer&) = delete;
    ~PendingLayer();

    // Where to unpack (it does not exist yet).
    std::string rootfs() const { return tmp_ + "/rootfs"; }
    // Marks the layer complete (naming its blob) and renames it into place;
    // when another process finished the same layer first, keeps theirs.
    // Returns the final rootfs.
    std::string publish(std::string_view blob_digest);

private:
    const Store& store_;
    std::string diff_id_, tmp_;
    bool published_ = false;
};

// Throws vitro::Error unless what was unpacked from blob `blob_digest`
// hashes to the `diff_id` the image config gives.
void check_diff_id(const UnpackResult& unpacked, std::string_view blob_digest, std::string_view diff_id);

// Unpacks blob `blob_digest` unless already there, verifies that its
// uncompressed digest is `diff_id`, and returns the rootfs path.
std::string ensure_layer(const Store& store, std::string_view blob_digest, std::string_view diff_id);

}  // namespace vitro::image
