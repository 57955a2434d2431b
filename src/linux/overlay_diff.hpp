// The changes in an overlay upper dir against its lower layers, as `docker
// diff` prints them: what image/ snapshots show for `vitro diff` and what the
// evidence store records of a container's file system.
#pragma once

#include <string>
#include <vector>

namespace vitro::os {

// One change: kind 'A' (added), 'C' (changed) or 'D' (deleted); path absolute
// as seen in the container.
struct OverlayChange {
    char kind;
    std::string path;
    bool operator==(const OverlayChange&) const = default;
};

// Walks `upper_dir` (never following a symlink) against the lower layers
// (base first): an overlay whiteout (char device 0/0) is D; any other entry is
// C when its path is visible in the lower layers, else A. An opaque directory
// (trusted.overlay.opaque=y) hides everything below it in the lower layers:
// each lower entry of it not present in the upper dir is reported D.
// Sorted by path.
std::vector<OverlayChange> overlay_diff(const std::string& upper_dir, const std::vector<std::string>& layers);
// "C /etc\nA /etc/new\n…", as `docker diff` prints.
std::string format_changes(const std::vector<OverlayChange>& changes);

}  // namespace vitro::os
