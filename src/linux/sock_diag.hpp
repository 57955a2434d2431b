// Internet sockets of a network namespace from the kernel's sock_diag
// netlink interface (NETLINK_SOCK_DIAG, inet_diag: TCP and UDP, IPv4 and
// IPv6): what `ss` shows, without running or parsing `ss`.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "linux/netns_socket.hpp"
#include "util/fd.hpp"

namespace vitro::os {

struct InetSocket {
    std::string protocol;  // "tcp", "udp", "tcp6", "udp6"
    std::string state;     // "LISTEN", "ESTABLISHED", ... ("UNCONN" for an unconnected UDP socket)
    std::string local_addr, peer_addr;  // numeric
    uint16_t local_port = 0, peer_port = 0;
    uint32_t uid = 0;
    uint64_t inode = 0;    // matches /proc/<pid>/fd links "socket:[inode]"
};

// A sock_diag socket in the network namespace `netns_fd` refers to (e.g. an
// open /proc/<pid>/ns/net): opened by a short-lived thread that setns()es
// there, since a socket belongs to the namespace it was made in; the rest of
// this process stays where it is. netns_fd < 0: this thread's namespace.
UniqueFd open_sock_diag(int netns_fd = -1);

// Every TCP and UDP socket (v4 and v6) in the socket's namespace, each state.
std::vector<InetSocket> dump_inet_sockets(int sock_diag_fd);

}  // namespace vitro::os
