#include "introspect/evidence/proc_events.hpp"

#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <time.h>

#include <cstring>

#include <fcntl.h>
#include <unistd.h>

#include "linux/namespaces.hpp"
#include "linux/sock_diag.hpp"

#include "util/error.hpp"

namespace vitro::introspect {

namespace {

int64_t clock_ns(clockid_t c) {
    timespec ts{};
    ::clock_gettime(c, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void send_op(int fd, proc_cn_mcast_op op) {
    alignas(nlmsghdr) char buf[NLMSG_SPACE(sizeof(cn_msg) + sizeof(proc_cn_mcast_op))] = {};
    auto* h = reinterpret_cast<nlmsghdr*>(buf);
    h->nlmsg_len = NLMSG_LENGTH(sizeof(cn_msg) + sizeof op);
    h->nlmsg_type = NLMSG_DONE;
    h->nlmsg_pid = 0;
    auto* m = static_cast<cn_msg*>(NLMSG_DATA(h));
    m->id.idx = CN_IDX_PROC;
    m->id.val = CN_VAL_PROC;
    m->len = sizeof op;
    std::memcpy(m->data, &op, sizeof op);
    if (::send(fd, buf, h->nlmsg_len, 0) < 0) {
        if (errno == ECONNREFUSED)
            throw Error(ECONNREFUSED, "proc connector: not available in this network namespace (it exists only in the "
                                      "initial one: run from there, e.g. nsenter --net=/proc/1/ns/net)");
        throw_errno("proc connector subscribe");
    }
}

}  // namespace

ProcEvents::ProcEvents() {
    // The connector exists only in the initial network namespace: when this
    // process is in another one (a test's, a netns-confined service), the
    // socket is made there (pid 1's namespace, as seen from our pid namespace).
    if (os::namespace_inode(1, "net") != 0 && os::namespace_inode(1, "net") != os::namespace_inode(::getpid(), "net")) {
        UniqueFd ns(::open("/proc/1/ns/net", O_RDONLY | O_CLOEXEC));
        if (!ns) throw_errno("open", "/proc/1/ns/net (for the proc connector)");
        sock_ = os::socket_in_netns(ns.get(), AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK, NETLINK_CONNECTOR);
    } else {
        sock_.reset(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_CONNECTOR));
    }
    if (!sock_) throw_errno("socket", "NETLINK_CONNECTOR");
    // 8 MiB: room for tens of thousands of events while the reader is busy.
    int size = 8 << 20;
    if (::setsockopt(sock_.get(), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
        ::setsockopt(sock_.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    sa.nl_groups = CN_IDX_PROC;
    sa.nl_pid = 0;  // the kernel picks a unique port id
    if (::bind(sock_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0)
        throw_errno("bind", "the proc connector (needs root)");
    send_op(sock_.get(), PROC_CN_MCAST_LISTEN);
    mono_to_real_ns_ = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC);
}

ProcEvents::~ProcEvents() {
    if (sock_) {
        try {
            send_op(sock_.get(), PROC_CN_MCAST_IGNORE);
        } catch (const Error&) {
            // A destructor must not throw: closing the socket (sock_) ends the subscription anyway
        }
    }
}

bool ProcEvents::read(const std::function<void(const ProcEvent&)>& on) {
    alignas(nlmsghdr) char buf[65536];
    ssize_t n = ::recv(sock_.get(), buf, sizeof buf, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return false;
        if (errno == ENOBUFS) {  // the kernel dropped events: count, and carry on
            ++overruns_;
            return true;
        }
        throw_errno("recv", "proc connector");
    }
    unsigned len = static_cast<unsigned>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
        if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_NOOP) continue;
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(cn_msg) + sizeof(proc_event))) continue;
        auto* m = static_cast<cn_msg*>(NLMSG_DATA(h));
        if (m->id.idx != CN_IDX_PROC || m->id.val != CN_VAL_PROC) continue;
        proc_event ev;
        std::memcpy(&ev, m->data, sizeof ev);
        ProcEvent e{};
        e.time_ns = static_cast<int64_t>(ev.timestamp_ns) + mono_to_real_ns_;
        switch (ev.what) {
            case proc_event::PROC_EVENT_FORK:
                e.type = ProcEvent::Type::Fork;
                e.pid = ev.event_data.fork.child_pid;
                e.tgid = ev.event_data.fork.child_tgid;
                e.parent_pid = ev.event_data.fork.parent_pid;
                e.parent_tgid = ev.event_data.fork.parent_tgid;
                break;
            case proc_event::PROC_EVENT_EXEC:
                e.type = ProcEvent::Type::Exec;
                e.pid = ev.event_data.exec.process_pid;
                e.tgid = ev.event_data.exec.process_tgid;
                break;
            case proc_event::PROC_EVENT_EXIT: {
                e.type = ProcEvent::Type::Exit;
                e.pid = ev.event_data.exit.process_pid;
                e.tgid = ev.event_data.exit.process_tgid;
                e.parent_pid = ev.event_data.exit.parent_pid;
                e.parent_tgid = ev.event_data.exit.parent_tgid;
                unsigned status = ev.event_data.exit.exit_code;  // wait(2) status
                if (status & 0x7f) {
                    e.exit_signal = static_cast<int>(status & 0x7f);
                } else {
                    e.exit_code = static_cast<int>((status >> 8) & 0xff);
                }
                break;
            }
            default: continue;
        }
        on(e);
    }
    return true;
}

}  // namespace vitro::introspect
