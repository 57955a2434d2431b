// Continuous capture: the event sources behind `vitro evidence watch` and
// the monitor service, for a set of watched containers.
//
//   process.fork / process.exec / process.exit   the proc connector (proc_events.hpp)
//   net.listen / net.connect                      sock_diag in each container's netns, polled
//   file.create / file.write / file.delete / file.rename   inotify on each overlay upper dir
//   resource.sample                               the cgroup's CPU, memory, pids
//   capture.start / container.exit                watching began / the watched init is gone
//   capture.lost                                  the kernel dropped events (container_id "")
//
// Attribution: a process belongs to a container when its parent did at fork
// time, or when /proc/<pid>/cgroup puts it in the container's cgroup at
// exec time. So a process started inside the container is never missed,
// however short its life: the fork event alone attributes it and the exec
// and exit events follow (the exec with comm/exe/cmdline/exe_sha256 when the
// process is still there as the event is read, else "gone": true; the exit
// with its code or signal). One that enters the container from outside (an
// `exec`) is attributed when its exec event is read; if it has already
// exited and been reaped by then, it cannot be (it is counted in
// Stats::unattributed_execs). Kernel drops (a full socket buffer) are
// counted in Stats::proc_overruns and recorded as a "capture.lost" event.
//
// Threading: run() does all the work on the calling thread (poll loop) until
// its stop token is requested; start() runs it on a new std::jthread.
// Subscribers are called on that thread, in order, after the event was
// appended to the store (Event::seq set; within CaptureOptions::flush_ms of
// the event); they must not block for long.
// watch()/unwatch() may be called from any thread.
//
// Use (a detector, the monitor service):
//   Capture cap({.store_path = default_evidence_path(root)});
//   cap.subscribe([&](const Event& e) { if (e.kind == "process.exec") check(e); });
//   cap.watch({id, name, init_pid, "", bundle + "/upper"});
//   std::jthread t = cap.start();        // ... t.request_stop() to end
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace vitro::introspect {

struct WatchTarget {
    std::string id;           // container ID (the records' container_id)
    std::string name;         // for messages
    pid_t init_pid = 0;       // the container's init, host pid
    std::string cgroup_path;  // "" = from /proc/<init_pid>/cgroup
    std::string upper_dir;    // overlay upper dir ("" = no file events)
};

struct Event {
    std::string kind;          // see the list above
    std::string container_id;
    int64_t time_ns = 0;       // CLOCK_REALTIME
    nlohmann::json data;       // the record's payload
    uint64_t seq = 0;          // the evidence record's seq (0 when not stored)
};

struct CaptureOptions {
    std::string store_path;          // evidence store to append to ("" = none: events only)
    bool process_events = true;
    bool socket_events = true;
    bool file_events = true;
    bool forks = true;               // also record forks (not only exec/exit)
    int socket_poll_ms = 500;
    int sample_interval_ms = 10000;  // 0 = no resource samples
    // Events are appended (and handed to subscribers) in batches, at most
    // this long after the first of a batch: one transaction per batch.
    int flush_ms = 50;
};

class Capture {
public:
    using Callback = std::function<void(const Event&)>;
    explicit Capture(CaptureOptions opts);
    ~Capture();
    Capture(const Capture&) = delete;
    Capture& operator=(const Capture&) = delete;

    // Adds a container (replacing one with the same id) / stops watching one.
    void watch(WatchTarget t);
    void unwatch(const std::string& id);
    void subscribe(Callback cb);

    // Runs until `stop` is requested (or every container is gone and
    // `until_all_gone`). Throws vitro::Error when a source cannot be opened.
    void run(std::stop_token stop, bool until_all_gone = false);
    // run() on a new thread; an error there ends the thread and is kept for
    // failure() (a source that cannot be opened, a store that cannot be written).
    std::jthread start() {
        return std::jthread([this](std::stop_token st) {
            try {
                run(st);
            } catch (...) {
                std::lock_guard lk(failure_mu_);
                failure_ = std::current_exception();
            }
        });
    }
    std::exception_ptr failure() const {
        std::lock_guard lk(failure_mu_);
        return failure_;
    }

    struct Stats {
        uint64_t events = 0, proc_events_seen = 0, proc_overruns = 0, unattributed_execs = 0;
    };
    Stats stats() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    mutable std::mutex failure_mu_;
    std::exception_ptr failure_;
};

}  // namespace vitro::introspect
