// Pieces shared inside runtime/ (not part of the library's interface).
#pragma once

#include <sys/types.h>

#include "runtime/runtime.hpp"
#include "util/fd.hpp"

namespace vitro::runtime {

struct CreateResult {
    pid_t pid = -1;
    UniqueFd console_master;  // foreground tty only
};
CreateResult create_container(const Context& ctx, const std::string& id, const CreateOptions& opts);

// Waits for a child of ours, forwarding signals and proxying its terminal;
// returns its exit code (128+signal when killed).
int wait_foreground(pid_t pid, int console_master);

}  // namespace vitro::runtime
