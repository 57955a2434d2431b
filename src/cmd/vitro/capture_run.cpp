#include "cmd/vitro/capture_run.hpp"

#include <pthread.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <thread>

#include "engine/engine.hpp"

namespace vitro::cli {

StopSignals::StopSignals() {
    sigemptyset(&sigs_);
    sigaddset(&sigs_, SIGINT);
    sigaddset(&sigs_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs_, nullptr);
}

StopSignals::~StopSignals() { pthread_sigmask(SIG_UNBLOCK, &sigs_, nullptr); }

bool StopSignals::wait_ms(int ms) {
    timespec ts{ms / 1000, (ms % 1000) * 1000000L};
    int sig = ::sigtimedwait(&sigs_, nullptr, &ts);
    return sig == SIGINT || sig == SIGTERM;
}

bool run_capture(introspect::Capture& cap, StopSignals& signals, double duration_s, int tick_ms,
                 const std::function<void()>& tick) {
    std::exception_ptr failure;
    std::atomic<bool> done{false};
    std::jthread th([&](std::stop_token st) {
        try {
            cap.run(st, true);
        } catch (...) {
            failure = std::current_exception();
        }
        done = true;
    });
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(duration_s * 1000));
    bool interrupted = false;
    while (!done) {
        if (tick) tick();
        if (signals.wait_ms(tick_ms)) {
            interrupted = true;
            break;
        }
        if (duration_s > 0 && std::chrono::steady_clock::now() >= deadline) break;
    }
    th.request_stop();
    th.join();
    if (failure) std::rethrow_exception(failure);
    return interrupted;
}

introspect::WatchTarget watch_target(const engine::ContainerRecord& c) {
    return {c.id, c.name, engine::init_pid(c), "", c.bundle + "/upper"};
}

}  // namespace vitro::cli
