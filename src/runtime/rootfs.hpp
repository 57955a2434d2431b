// The container's filesystem view, built inside its new mount namespace in
// the order the spec implies: propagation, rootfs bind, config mounts and
// devices (before the createRuntime/createContainer hooks), pivot_root, then
// sysctls, read-only and masked paths, a read-only root and the hostname.
#pragma once

#include <functional>
#include <string>

#include "oci/spec.hpp"

namespace vitro::runtime {

struct RootfsConfig {
    const oci::Spec* spec = nullptr;
    std::string rootfs;  // absolute host path
    bool new_mount_ns = true;
    bool user_ns = false;
    bool new_cgroup_ns = false;
    bool no_pivot = false;
    // Called once, before the first thing that needs the process in its
    // cgroup (a cgroup mount), and at the latest when mount_rootfs returns:
    // the runtime moves the init into its cgroup while it builds the mounts.
    std::function<void()> in_cgroup;
};

void mount_rootfs(const RootfsConfig& cfg);
void enter_rootfs(const RootfsConfig& cfg);
void finish_rootfs(const RootfsConfig& cfg);
// Bind-mounts the terminal's slave at /dev/console (after enter_rootfs).
void mount_console(const std::string& slave_path);

}  // namespace vitro::runtime
