// Process events from the kernel's proc connector (NETLINK_CONNECTOR,
// CN_IDX_PROC): every fork, exec and exit on the machine, as it happens, with
// no polling. Root (CAP_NET_ADMIN) only. The kernel drops events when the
// socket's buffer is full: read() then reports how many batches were lost
// (ENOBUFS) rather than pretending nothing happened.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>

#include "util/fd.hpp"

namespace vitro::introspect {

struct ProcEvent {
    enum class Type { Fork, Exec, Exit };
    Type type;
    int64_t time_ns = 0;         // CLOCK_REALTIME (converted from the kernel's monotonic stamp)
    pid_t pid = 0, tgid = 0;     // the process (the child, for a fork)
    pid_t parent_pid = 0, parent_tgid = 0;  // fork: the parent; exit: the parent too
    int exit_code = -1;          // exit: the code, -1 when killed by a signal
    int exit_signal = 0;         // exit: the signal that killed it, 0 when none
    bool is_thread() const { return pid != tgid; }
};

class ProcEvents {
public:
    // Opens, binds and subscribes (PROC_CN_MCAST_LISTEN); a large receive
    // buffer so that bursts of forks are not lost.
    ProcEvents();
    ~ProcEvents();
    ProcEvents(const ProcEvents&) = delete;
    ProcEvents& operator=(const ProcEvents&) = delete;

    // Non-blocking: poll it for POLLIN.
    int fd() const { return sock_.get(); }
    // Reads what is queued (never blocks) and calls `on` for each fork, exec
    // and exit. Returns false once nothing is left.
    bool read(const std::function<void(const ProcEvent&)>& on);
    // Times the kernel said events were dropped (buffer overrun) so far.
    uint64_t overruns() const { return overruns_; }

private:
    UniqueFd sock_;
    uint64_t overruns_ = 0;
    int64_t mono_to_real_ns_ = 0;
};

}  // namespace vitro::introspect
