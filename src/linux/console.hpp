// Terminals: a pty pair made inside the container, its master sent to the
// caller's console socket (runc's protocol), and copying a master to stdio.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "util/fd.hpp"

namespace vitro::os {

struct Pty {
    UniqueFd master, slave;
    std::string slave_name;
};
// Opens /dev/ptmx (of the current mount namespace) and its slave.
Pty open_pty();
void set_window_size(int fd, unsigned rows, unsigned cols);
// Makes `slave` the controlling terminal and stdin/stdout/stderr of the caller.
void become_tty_session(int slave);
// Connects to the unix socket at `path` (the --console-socket argument).
UniqueFd connect_unix(const std::string& path);
// Copies stdin -> master and master -> stdout until the master closes or
// `child_exited_fd` (a pidfd) becomes readable and the master has drained.
void proxy_terminal(int master, int pidfd);

}  // namespace vitro::os
