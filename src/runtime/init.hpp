// The container side of create: two forked stages. Stage 1 enters or creates
// the user namespace (asking the runtime to write its id maps), joins and
// unshares the other namespaces, and forks stage 2 as the runtime's sibling
// child — the container's init, pid 1 of a new pid namespace. Stage 2 builds
// the rootfs, runs the createContainer hooks, pivots, waits on exec.fifo for
// `start`, runs the startContainer hooks and execs the process.
#pragma once

#include <string>

#include "linux/sync_pipe.hpp"
#include "oci/spec.hpp"
#include "runtime/seccomp.hpp"

namespace vitro::runtime {

// Sync protocol codes between the runtime (parent) and the stages.
enum SyncCode : uint32_t {
    kGo = 1,           // parent -> stage 1: placed in the cgroup, go on
    kMapIds = 2,       // stage 1 -> parent: write my uid/gid maps
    kIdsMapped = 3,    // parent -> stage 1
    kInitPid = 4,      // stage 1 -> parent: text = init's pid
    kMountsReady = 5,  // init -> parent: run prestart/createRuntime hooks
    kHooksDone = 6,    // parent -> init: text = state JSON for container hooks
    kCreated = 7,      // init -> parent: waiting for start
    kConsole = 8,      // init -> parent (foreground tty): master fd follows
    kCgroupJoined = 9, // parent -> init: the init is in its cgroup (sent while it already builds mounts)
};

struct InitArgs {
    const oci::Spec* spec = nullptr;
    std::string rootfs;
    std::string exec_fifo;      // host path
    int console_fd = -1;        // connected console socket, or -1
    int preserve_fds = 0;
    bool no_pivot = false;
    std::string session_keyring;  // name of a new session keyring; "" keeps the caller's
    bool foreground_tty = false;  // send the pty master over the sync socket
    const CompiledSeccomp* seccomp = nullptr;  // compiled by the runtime before the clone
};

[[noreturn]] void run_stage1(const InitArgs& args, const os::SyncSocket& sync);

// The fast path: when the container neither has a user namespace nor joins
// existing namespaces (nor needs time offsets), the runtime clones the init
// directly into all its new namespaces and stage 1 is skipped. Returns the
// clone flags for that, or -1 when the two-stage path is needed.
int direct_clone_flags(const oci::Spec& spec);
// The init's entry on the fast path: waits for kGo, then sets up as usual.
[[noreturn]] void run_direct_init(const InitArgs& args, const os::SyncSocket& sync);

}  // namespace vitro::runtime
