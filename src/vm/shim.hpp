// The host side of one microVM container: it boots the VM (vm/vmm.hpp),
// waits for the agent's hello, sends it the process to run, then relays: its
// own stdin to the process, the process's output to its own stdout/stderr,
// the signals it gets to the process. It exits with the process's exit code,
// so the engine's monitor waits on it as on a container's init.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "vm/assets.hpp"
#include "vm/vmm.hpp"

namespace vitro::vm {

struct ShimRequest {
    std::string name;     // the container's, for messages
    std::string run_dir;  // sockets and logs (short: a unix socket path is in it)
    std::string rootfs;   // host path, shared with the guest over virtiofs
    GuestAssets assets;
    VmShape shape;
    // The process: {"args", "env", "cwd", "uid", "gid", "gids", "hostname"}.
    nlohmann::json process;
    int boot_timeout_ms = 60000;
};

// The Run frame's process from an OCI config.json (process + hostname).
nlohmann::json process_of_spec(const nlohmann::json& spec);

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
