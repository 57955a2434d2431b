// Network namespaces as netlat uses them: open one by path or by a process,
// learn its inode (what the tracer reports), run code inside it from a
// short-lived thread (a socket keeps the namespace it was made in).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>

#include "util/fd.hpp"

namespace vitro::measure {

struct NetnsHandle {
    UniqueFd fd;
    uint32_t inode = 0;
    std::string description;  // "netns /run/netns/x", "pid 123", "container web"
};

NetnsHandle open_netns_path(const std::string& path);
NetnsHandle open_netns_of_pid(pid_t pid);
// The namespace this process runs in.
NetnsHandle own_netns();

// Runs fn on a thread that has joined `netns_fd` (-1: stays here); rethrows.
void run_in_netns(int netns_fd, const std::function<void()>& fn);

}  // namespace vitro::measure
