// The host side of one microVM container: it boots the VM (vm/vmm.hpp),
// waits for the agent's hello, sends it the process to run, then relays: its
// own stdin to the process, the process's output to its own stdout/stderr,
// the signals it gets to the process. It exits with the process's exit code,
// so the engine's monitor waits on it as on a container's init.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vm/assets.hpp"
#include "vm/vmm.hpp"

namespace vitro::vm {

struct ShimRequest {
    std::string name;     // the container's, for messages
    std::string run_dir;  // sockets and logs (short: a unix socket path is in it)
    std::string rootfs;   // host path, shared with the guest over virtiofs
    std::vector<VmShare> volumes;  // more shares, mounted as the process's "mounts" say
    GuestAssets assets;
    VmShape shape;
    // The process: {"args", "env", "cwd", "uid", "gid", "gids", "hostname"}.
    nlohmann::json process;
    int boot_timeout_ms = 60000;
};

// The Run frame's process from an OCI config.json (process + hostname).
nlohmann::json process_of_spec(const nlohmann::json& spec);
// The spec's volumes as the guest mounts them, added to `process` as its
// "mounts": directory binds become virtiofs shares (tags vol0, vol1 ...),
// tmpfs mounts are the guest's own. The mounts every container gets (/proc,
// /dev, /sys ...) are the agent's; the engine's file binds under `bundle`
// (/etc/hosts, resolv.conf, hostname: for a network the VM has not) are
// left out. A file volume is refused (virtiofs shares directories).
std::vector<VmShare> volumes_of_spec(const nlohmann::json& spec, const std::string& bundle,
                                     nlohmann::json& process);

// `vitro exec` in a running VM container: starts `process` (as Run's) in it
// through the shim's exec socket in `run_dir`, relays this process's stdin,
// stdout and stderr, and returns its exit code. `detach`: returns 0 once the
// request is sent, the process's stdin closed and its output dropped.
int exec_in_vm(const std::string& run_dir, const nlohmann::json& process, bool detach);

// Runs in a forked child; never returns. `notify_fd` gets "R\n" once the
// guest runs the process, or "E <message>\n" if it could not (then the exit
// code is 125). Exits with the process's code, or 137 when the VM ends
// without one (its VMM killed, the guest crashed).
[[noreturn]] void run_shim(const ShimRequest& req, int notify_fd);

}  // namespace vitro::vm
