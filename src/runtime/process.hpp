// The last steps before a container process runs, shared by the init and by
// exec: limits, scheduling, identity, capabilities, seccomp, fds, execve.
#pragma once

#include <optional>
#include <string>

#include "linux/sync_pipe.hpp"
#include "oci/spec.hpp"
#include "runtime/seccomp.hpp"

namespace vitro::runtime {

// Finds args[0] in the current root using the process's PATH (or a default),
// as execvp would; throws "exec: "x": executable file not found in $PATH".
std::string find_executable(const oci::Process& p);

struct ExecPlan {
    const oci::Process* process = nullptr;
    const oci::Seccomp* seccomp = nullptr;  // may be null
    const CompiledSeccomp* compiled = nullptr;  // seccomp, compiled by the runtime (null: load from the profile)
    const oci::Personality* personality = nullptr;
    std::string executable;                 // from find_executable
    int preserve_fds = 0;
    bool user_ns = false;                   // setgroups may be denied there
};

// The plan for a spec's process (init) or an exec'd one: seccomp and
// personality from the spec, the executable looked up in the current root.
ExecPlan make_exec_plan(const oci::Spec& spec, const oci::Process& p, int preserve_fds,
                        const CompiledSeccomp* compiled);

// process.terminal: opens a pty in the container's devpts, sizes it, hands
// the master to the caller (over the sync socket in the foreground, else over
// the --console-socket) and makes the slave our controlling terminal and stdio.
// Returns the slave's path. Closes console_fd either way.
std::string attach_terminal(const oci::Process& p, const os::SyncSocket& sync, int console_fd, bool foreground);

// Applies everything and execs. Returns only by throwing.
[[noreturn]] void exec_container_process(const ExecPlan& plan);

// Parts applied before identity changes, usable by init before waiting for start.
void apply_oom_score_adj(const oci::Process& p);

}  // namespace vitro::runtime
