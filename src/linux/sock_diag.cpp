#include "linux/sock_diag.hpp"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include "linux/netns_socket.hpp"
#include "util/error.hpp"

namespace vitro::os {

namespace {

const char* tcp_state_name(uint8_t s) {
    static const char* names[] = {"UNKNOWN",   "ESTABLISHED", "SYN_SENT",   "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
                                  "TIME_WAIT", "CLOSE",       "CLOSE_WAIT", "LAST_ACK", "LISTEN",    "CLOSING"};
    return s < sizeof names / sizeof names[0] ? names[s] : "UNKNOWN";
}

std::string addr_text(int family, const uint32_t* a) {
    char buf[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(family, a, buf, sizeof buf);
    return buf;
}

void dump_one(int fd, uint8_t family, uint8_t protocol, std::vector<InetSocket>& out) {
    struct {
        nlmsghdr nlh;
        inet_diag_req_v2 req;
    } msg{};
    msg.nlh.nlmsg_len = sizeof msg;
    msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    msg.req.sdiag_family = family;
    msg.req.sdiag_protocol = protocol;
    msg.req.idiag_states = ~0U;  // every state
    sockaddr_nl nladdr{};
    nladdr.nl_family = AF_NETLINK;
    if (::sendto(fd, &msg, sizeof msg, 0, reinterpret_cast<sockaddr*>(&nladdr), sizeof nladdr) < 0)
        throw_errno("sock_diag request");
    const bool v6 = family == AF_INET6;
    const std::string proto = std::string(protocol == IPPROTO_TCP ? "tcp" : "udp") + (v6 ? "6" : "");
    alignas(nlmsghdr) char buf[32768];
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno("sock_diag receive");
        }
        if (n == 0) return;
        unsigned len = static_cast<unsigned>(n);
        for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
            if (h->nlmsg_type == NLMSG_DONE) return;
            if (h->nlmsg_type == NLMSG_ERROR) {
                auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(h));
                // A protocol the kernel has no diag module for (udp_diag not loaded): nothing to list.
                if (e->error == -ENOENT || e->error == -EOPNOTSUPP) return;
                throw_errno(-e->error, "sock_diag dump", proto);
            }
            if (h->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) continue;
            auto* d = static_cast<inet_diag_msg*>(NLMSG_DATA(h));
            InetSocket s;
            s.protocol = proto;
            s.state = protocol == IPPROTO_UDP && d->idiag_state == 7 ? "UNCONN" : tcp_state_name(d->idiag_state);
            s.local_addr = addr_text(family, d->id.idiag_src);
            s.peer_addr = addr_text(family, d->id.idiag_dst);
            s.local_port = ntohs(d->id.idiag_sport);
            s.peer_port = ntohs(d->id.idiag_dport);
            s.uid = d->idiag_uid;
            s.inode = d->idiag_inode;
            out.push_back(std::move(s));
        }
    }
}

}  // namespace

UniqueFd open_sock_diag(int netns_fd) {
    try {
        return socket_in_netns(netns_fd, AF_NETLINK, SOCK_DGRAM, NETLINK_SOCK_DIAG);
    } catch (const Error& e) {
        throw e.wrap("sock_diag");
    }
}

std::vector<InetSocket> dump_inet_sockets(int fd) {
    std::vector<InetSocket> out;
    for (uint8_t family : {AF_INET, AF_INET6})
        for (uint8_t proto : {IPPROTO_TCP, IPPROTO_UDP}) dump_one(fd, family, proto, out);
    return out;
}

}  // namespace vitro::os
