// Running a Capture in the foreground (evidence watch, baseline learn,
// detect): on its own thread until the watched containers are gone, Ctrl-C /
// SIGTERM, or a deadline.
#pragma once

#include <signal.h>

#include <functional>

#include "engine/state_store.hpp"
#include "introspect/evidence/capture.hpp"

namespace vitro::cli {

// Blocks SIGINT/SIGTERM for its lifetime. Make it before starting any thread
// (threads inherit the mask), so a signal reaches wait_ms() and nothing else.
class StopSignals {
public:
    StopSignals();
    ~StopSignals();
    StopSignals(const StopSignals&) = delete;
    StopSignals& operator=(const StopSignals&) = delete;
    // Waits up to `ms`; true when SIGINT or SIGTERM came.
    bool wait_ms(int ms);

private:
    sigset_t sigs_;
};

// Runs `cap` until every watched container is gone, a stop signal, or
// `duration_s` (<= 0: none); `tick` is called every `tick_ms` meanwhile.
// Rethrows the capture's error. True when a signal ended it.
bool run_capture(introspect::Capture& cap, StopSignals& signals, double duration_s, int tick_ms = 200,
                 const std::function<void()>& tick = {});

// What Capture watches for a vitro container.
introspect::WatchTarget watch_target(const engine::ContainerRecord& c);

}  // namespace vitro::cli
