// Mount options, and resolving paths inside a container rootfs safely:
// every lookup is confined to the rootfs (openat2 RESOLVE_IN_ROOT), so a
// hostile symlink or ".." in the image can never reach the host.
#pragma once

#include <string>
#include <vector>

#include "util/fd.hpp"

namespace vitro::os {

struct MountOptions {
    unsigned long flags = 0;        // MS_* for the mount itself
    unsigned long propagation = 0;  // MS_SHARED/SLAVE/PRIVATE/UNBINDABLE (| MS_REC)
    unsigned long clear = 0;        // flags explicitly cleared (e.g. "rw", "suid"), for remounts
    bool bind = false, recursive = false;
    bool idmap = false;
    bool tmpcopyup = false;         // copy what the tmpfs covers into it (podman's --read-only)
    std::string data;               // filesystem-specific options, comma-joined
};
MountOptions parse_mount_options(const std::vector<std::string>& options);
// "rprivate" -> MS_PRIVATE|MS_REC; 0 for ""/unknown.
unsigned long propagation_flag(const std::string& name);

// Opens `path` (absolute, as seen in the container) under the rootfs dir fd,
// resolving symlinks as if rootfs were "/". Returns an O_PATH fd.
UniqueFd open_in_root(int root_fd, const std::string& path, int flags = 0);
// The same without throwing: an empty fd, errno set. For paths that may well
// be missing (masked paths): in a static binary the first exception thrown
// costs a sort of every unwind table entry, about a millisecond.
UniqueFd try_open_in_root(int root_fd, const std::string& path, int flags = 0);
// Creates missing directories of `path` inside the root (mode 0755) and opens it.
// With `as_file`, the last component is created as an empty regular file.
UniqueFd mkdir_all_in_root(int root_fd, const std::string& path, bool as_file = false);
// "/proc/self/fd/N": the name that lets mount(2) act on an opened fd.
std::string fd_path(int fd);

// Copies a directory's entries (files, dirs, symlinks; modes and owners)
// into another, both given as O_RDONLY|O_DIRECTORY fds. Never follows symlinks.
void copy_dir_contents(int from_dir, int to_dir);

void mount_or_throw(const std::string& source, const std::string& target, const std::string& fstype,
                    unsigned long flags, const std::string& data, const std::string& what_target = {});

}  // namespace vitro::os
