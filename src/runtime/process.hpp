// The last steps before a container process runs, shared by the init and by
// exec: limits, scheduling, identity, capabilities, seccomp, fds, execve.
#pragma once

#include <optional>
#include <string>

#include "oci/spec.hpp"

namespace vitro::runtime {

// Finds args[0] in the current root using the process's PATH (or a default),
// as execvp would; throws "exec: "x": executable file not found in $PATH".
std::string find_executable(const oci::Process& p);

struct ExecPlan {
    const oci::Process* process = nullptr;
    const oci::Seccomp* seccomp = nullptr;  // may be null
    const oci::Personality* personality = nullptr;
    std::string executable;                 // from find_executable
    int preserve_fds = 0;
    bool user_ns = false;                   // setgroups may be denied there
};

// Applies everything and execs. Returns only by throwing.
[[noreturn]] void exec_container_process(const ExecPlan& plan);

// Parts applied before identity changes, usable by init before waiting for start.
void apply_oom_score_adj(const oci::Process& p);

}  // namespace vitro::runtime
