#include "measure/echo_responder.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>

#include <cstring>
#include <vector>

#include "measure/icmp_prober.hpp"
#include "measure/netns.hpp"
#include "util/error.hpp"
#include "util/file.hpp"

namespace vitro::measure {
namespace {

constexpr int kIcmpFilter = 1;  // <linux/icmp.h>

int64_t real_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Waits until `when` (CLOCK_REALTIME ns, the receive stamps' clock): a timer
// sleep to 100 us before, then a spin, since the timer alone wakes up tens of
// microseconds late here. The wait for the request itself may be late: the
// delay counts from the kernel's receive stamp.
void wait_until(int64_t when) {
    int64_t early = when - 100'000;
    if (real_ns() < early) {
        timespec ts{static_cast<time_t>(early / 1'000'000'000), static_cast<long>(early % 1'000'000'000)};
        while (::clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
        }
    }
    while (real_ns() < when) {
    }
}

}  // namespace

void set_icmp_echo_ignore_all(int netns_fd, bool ignore) {
    // /proc/sys/net answers for the namespace of the thread that opens it.
    run_in_netns(netns_fd, [&] { write_file("/proc/sys/net/ipv4/icmp_echo_ignore_all", ignore ? "1\n" : "0\n"); });
}

EchoResponder::EchoResponder(int netns_fd, std::chrono::microseconds delay) : netns_fd_(netns_fd), delay_(delay) {
    run_in_netns(netns_fd, [&] {
        sock_ = UniqueFd(::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP));
        if (!sock_) throw_errno("socket", "raw ICMP (echo responder)");
    });
    int on = 1;
    check(::setsockopt(sock_.get(), SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on)), "setsockopt SO_TIMESTAMPNS");
    uint32_t filter = ~(1U << ICMP_ECHO);
    check(::setsockopt(sock_.get(), SOL_RAW, kIcmpFilter, &filter, sizeof(filter)), "setsockopt ICMP_FILTER");
    set_icmp_echo_ignore_all(netns_fd_, true);
    thread_ = std::thread([this] { loop(); });
}

EchoResponder::~EchoResponder() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    try {
        set_icmp_echo_ignore_all(netns_fd_, false);
    } catch (...) {
        // The namespace is usually about to go with the topology.
    }
}

int64_t EchoResponder::lateness_ns(uint16_t id, uint16_t seq) const {
    std::lock_guard lock(mu_);
    auto it = lateness_.find(static_cast<uint32_t>(id) << 16 | seq);
    return it == lateness_.end() ? 0 : it->second;
}

void EchoResponder::clear_late() {
    std::lock_guard lock(mu_);
    lateness_.clear();
}

void EchoResponder::loop() {
    // The default 50 us timer slack would be added to the delay at random;
    // and on a machine whose cores are busy with other work, a normal
    // thread's wake-up waits for their time slices (milliseconds): the
    // responder runs SCHED_FIFO when it may (it sleeps nearly all the time).
    ::prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    sched_param sp{};
    sp.sched_priority = 10;
    ::pthread_setschedparam(::pthread_self(), SCHED_FIFO, &sp);
    std::vector<uint8_t> buf(65536 + 60);
    alignas(cmsghdr) char ctrl[256];
    while (!stop_) {
        pollfd pfd{sock_.get(), POLLIN, 0};
        if (::poll(&pfd, 1, 50) <= 0) continue;
        sockaddr_in from{};
        iovec iov{buf.data(), buf.size()};
        msghdr msg{};
        msg.msg_name = &from;
        msg.msg_namelen = sizeof(from);
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = ctrl;
        msg.msg_controllen = sizeof(ctrl);
        ssize_t n = ::recvmsg(sock_.get(), &msg, MSG_DONTWAIT);
        if (n < static_cast<ssize_t>(sizeof(iphdr))) continue;
        int64_t rx = 0;
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                timespec ts{};
                std::memcpy(&ts, CMSG_DATA(c), sizeof(ts));
                rx = static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
            }
        if (!rx) rx = real_ns();
        auto* ip = reinterpret_cast<const iphdr*>(buf.data());
        size_t ihl = static_cast<size_t>(ip->ihl) * 4;
        if (static_cast<size_t>(n) < ihl + 8) continue;
        uint8_t* icmp = buf.data() + ihl;
        size_t len = static_cast<size_t>(n) - ihl;
        if (icmp[0] != ICMP_ECHO) continue;
        icmp[0] = ICMP_ECHOREPLY;
        icmp[2] = icmp[3] = 0;
        uint16_t sum = inet_checksum(icmp, len);
        std::memcpy(icmp + 2, &sum, 2);
        int64_t due = rx + std::chrono::nanoseconds(delay_).count();
        wait_until(due);
        int64_t late = real_ns() - due;
        if (late > 20'000) ++late_;
        if (late > worst_late_) worst_late_ = late;
        {
            uint16_t id = 0, seq = 0;
            std::memcpy(&id, icmp + 4, 2);
            std::memcpy(&seq, icmp + 6, 2);
            std::lock_guard lock(mu_);
            lateness_[static_cast<uint32_t>(ntohs(id)) << 16 | ntohs(seq)] = late;
        }
        if (::sendto(sock_.get(), icmp, len, 0, reinterpret_cast<sockaddr*>(&from), sizeof(from)) >= 0) ++answered_;
    }
}

}  // namespace vitro::measure
