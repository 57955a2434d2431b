#include "measure/icmp_prober.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include <cstring>
#include <vector>

#include "measure/netns.hpp"
#include "util/error.hpp"

namespace vitro::measure {
namespace {

// <linux/icmp.h>'s ICMP_FILTER; that header clashes with <netinet/ip_icmp.h>.
constexpr int kIcmpFilter = 1;

int64_t now_ns(clockid_t clock) {
    timespec ts{};
    ::clock_gettime(clock, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::string addr_str(in_addr a) {
    char buf[INET_ADDRSTRLEN];
    return ::inet_ntop(AF_INET, &a, buf, sizeof(buf));
}

}  // namespace

uint16_t inet_checksum(const void* data, size_t len) {
    auto* p = static_cast<const uint8_t*>(data);
    uint32_t sum = 0;
    for (; len > 1; p += 2, len -= 2) sum += static_cast<uint32_t>(p[0] << 8 | p[1]);
    if (len) sum += static_cast<uint32_t>(p[0] << 8);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return htons(static_cast<uint16_t>(~sum));
}

in_addr resolve_ipv4(const std::string& target) {
    in_addr a{};
    if (::inet_pton(AF_INET, target.c_str(), &a) == 1) return a;
    addrinfo hints{};
    hints.ai_family = AF_INET;
    addrinfo* res = nullptr;
    int rc = ::getaddrinfo(target.c_str(), nullptr, &hints, &res);
    if (rc != 0 || !res) throw Error(EINVAL, "target " + target + ": not an IPv4 address or a resolvable host name (" + ::gai_strerror(rc) + ")");
    a = reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr;
    ::freeaddrinfo(res);
    return a;
}

IcmpProber::IcmpProber(int netns_fd, in_addr target, uint16_t id, size_t payload)
    : target_(target), id_(id), payload_(payload) {
    if (payload > 65507 - 8) throw Error(EINVAL, "packet size " + std::to_string(payload) + ": at most 65499 bytes");
    run_in_netns(netns_fd, [&] {
        sock_ = UniqueFd(::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP));
        if (!sock_) {
            if (errno == EPERM || errno == EACCES) throw Error(errno, "raw ICMP socket: permission denied (needs CAP_NET_RAW; run as root)");
            throw_errno("socket", "raw ICMP");
        }
    });
    int on = 1;
    check(::setsockopt(sock_.get(), SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on)), "setsockopt SO_TIMESTAMPNS");
    uint32_t filter = ~(1U << ICMP_ECHOREPLY);  // pass echo replies only
    check(::setsockopt(sock_.get(), SOL_RAW, kIcmpFilter, &filter, sizeof(filter)), "setsockopt ICMP_FILTER");
}

ProbeResult IcmpProber::probe(uint16_t seq, std::chrono::milliseconds timeout, const std::atomic<bool>* stop) {
    std::vector<uint8_t> pkt(8 + payload_);
    for (size_t i = 8; i < pkt.size(); ++i) pkt[i] = static_cast<uint8_t>(i);
    auto* icmp = reinterpret_cast<icmphdr*>(pkt.data());
    icmp->type = ICMP_ECHO;
    icmp->code = 0;
    icmp->un.echo.id = htons(id_);
    icmp->un.echo.sequence = htons(seq);
    icmp->checksum = 0;
    icmp->checksum = inet_checksum(pkt.data(), pkt.size());

    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr = target_;
    ProbeResult r;
    r.seq = seq;
    r.tx_mono_ns = now_ns(CLOCK_MONOTONIC);
    r.tx_real_ns = now_ns(CLOCK_REALTIME);
    if (::sendto(sock_.get(), pkt.data(), pkt.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) < 0) {
        int e = errno;
        throw Error(e, "send echo request to " + addr_str(target_) + ": " + std::strerror(e) +
                           (e == ENETUNREACH ? " (no route: does the namespace have a network?)" : ""));
    }

    const int64_t deadline = r.tx_mono_ns + std::chrono::nanoseconds(timeout).count();
    std::vector<uint8_t> buf(65536 + 60);
    alignas(cmsghdr) char ctrl[256];
    for (;;) {
        if (stop && stop->load()) return r;
        int64_t left_ns = deadline - now_ns(CLOCK_MONOTONIC);
        if (left_ns <= 0) return r;
        pollfd pfd{sock_.get(), POLLIN, 0};
        // Short slices so a stop request is seen soon.
        int rc = ::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left_ns / 1'000'000 + 1, 100)));
        if (rc < 0 && errno != EINTR) throw_errno("poll", "ICMP socket");
        if (rc <= 0) continue;
        iovec iov{buf.data(), buf.size()};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = ctrl;
        msg.msg_controllen = sizeof(ctrl);
        ssize_t n = ::recvmsg(sock_.get(), &msg, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;
            throw_errno("recvmsg", "ICMP socket");
        }
        if (n < static_cast<ssize_t>(sizeof(iphdr))) continue;
        auto* ip = reinterpret_cast<const iphdr*>(buf.data());
        size_t ihl = static_cast<size_t>(ip->ihl) * 4;
        if (static_cast<size_t>(n) < ihl + 8 || ip->saddr != target_.s_addr) continue;
        auto* rep = reinterpret_cast<const icmphdr*>(buf.data() + ihl);
        if (rep->type != ICMP_ECHOREPLY || ntohs(rep->un.echo.id) != id_ || ntohs(rep->un.echo.sequence) != seq) continue;
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                timespec ts{};
                std::memcpy(&ts, CMSG_DATA(c), sizeof(ts));
                r.rx_real_ns = static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
            }
        }
        if (r.rx_real_ns == 0) r.rx_real_ns = now_ns(CLOCK_REALTIME);  // no kernel stamp: ours
        r.replied = true;
        r.ttl = ip->ttl;
        r.bytes = static_cast<size_t>(n) - ihl;
        return r;
    }
}

}  // namespace vitro::measure
