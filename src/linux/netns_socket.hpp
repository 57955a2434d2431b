// Sockets made in another network namespace. A socket belongs to the
// namespace it was created in, for its whole life, whichever thread uses it
// later: so a short-lived thread setns()es there, makes the socket and ends,
// and the rest of this process stays where it is.
#pragma once

#include <functional>

#include "util/fd.hpp"

namespace vitro::os {

// Runs `fn` on a short-lived thread joined to the network namespace
// `netns_fd` refers to, and returns what it returns (by convention a result
// >= 0 or -errno); -errno of setns when the thread could not join.
int in_netns(int netns_fd, const std::function<int()>& fn);

// socket(domain, type, protocol) made in the network namespace `netns_fd`
// refers to (e.g. an open /proc/<pid>/ns/net or a pinned netns file).
// netns_fd < 0: this thread's namespace. SOCK_CLOEXEC is added.
UniqueFd socket_in_netns(int netns_fd, int domain, int type, int protocol);

}  // namespace vitro::os
