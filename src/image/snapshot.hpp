// Per-container overlay snapshots and `vitro diff`.
//
// A snapshot lives in <root>/containers/<id>/{upper,work,merged}: the image's
// unpacked layers (<root>/layers/<hex>/rootfs, shared read-only between
// containers) are the overlayfs lower dirs, upper/work are private to the
// container, merged is the container's rootfs.
//
// Layer order everywhere in this API is the manifest's: the base layer first,
// the top layer last (the lowerdir= option is built top first from it).
#pragma once

#include <string>
#include <vector>

#include "linux/overlay_diff.hpp"

namespace vitro::image {

class Snapshot {
public:
    // Makes <root>/containers/<id>/{upper,work,merged} (EEXIST when the
    // container dir already exists). The new snapshot is owned: destroyed
    // before release(), it is unmounted and its directory removed.
    static Snapshot create(const std::string& root, const std::string& id, std::vector<std::string> layers);
    // An existing snapshot (e.g. for `vitro rm`, `vitro diff`): not owned,
    // destruction leaves it as it is. Throws ENOENT when the dir is missing.
    static Snapshot open(const std::string& root, const std::string& id, std::vector<std::string> layers);

    Snapshot(Snapshot&& o) noexcept;
    Snapshot& operator=(Snapshot&&) = delete;
    Snapshot(const Snapshot&) = delete;
    Snapshot& operator=(const Snapshot&) = delete;
    ~Snapshot();

    const std::string& id() const { return id_; }
    const std::string& dir() const { return dir_; }
    std::string upper_dir() const { return dir_ + "/upper"; }
    std::string work_dir() const { return dir_ + "/work"; }
    std::string merged_dir() const { return dir_ + "/merged"; }
    const std::vector<std::string>& layers() const { return layers_; }

    // Mounts overlayfs on merged. With no layers at all (a FROM scratch
    // image) an empty dir stands in as the lower dir. When the option string
    // would exceed a page, the lower dirs are given relative to their common
    // parent from a child process chdir'ed there (as containerd does); when
    // even that is too long, throws E2BIG naming the layer count.
    void mount();
    // Detaches the overlay from merged (MNT_DETACH). Not mounted is fine.
    void unmount();
    // Unmounts if needed and removes the container dir. Missing is fine.
    void remove();
    // Gives up ownership: destruction leaves mount and dirs in place.
    void release() { owned_ = false; }
    // True when merged is an overlay mount point now (from /proc/self/mountinfo).
    bool mounted() const;

    // The changes in the upper dir against the layers (linux/overlay_diff).
    using Change = os::OverlayChange;
    std::vector<Change> diff() const;

private:
    Snapshot(std::string id, std::string dir, std::vector<std::string> layers, bool owned);
    void os_mount(const std::string& data);
    std::string id_, dir_;
    std::vector<std::string> layers_;
    bool owned_ = false;
};

using Change = Snapshot::Change;
// The overlay walk itself is linux/overlay_diff (the evidence store uses it too).
inline std::vector<Change> diff(const std::string& upper_dir, const std::vector<std::string>& layers) {
    return os::overlay_diff(upper_dir, layers);
}
using os::format_changes;

}  // namespace vitro::image
