// Sockets made in another network namespace. A socket belongs to the
// namespace it was created in, for its whole life, whichever thread uses it
// later: so a short-lived thread setns()es there, makes the socket and ends,
// and the rest of this process stays where it is.
#pragma once

#include "util/fd.hpp"

namespace vitro::os {

// socket(domain, type, protocol) made in the network namespace `netns_fd`
// refers to (e.g. an open /proc/<pid>/ns/net or a pinned netns file).
// netns_fd < 0: this thread's namespace. SOCK_CLOEXEC is added.
UniqueFd socket_in_netns(int netns_fd, int domain, int type, int protocol);

}  // namespace vitro::os
