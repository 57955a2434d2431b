#include "measure/stop_signals.hpp"

namespace vitro::measure {
namespace {

// A signal handler can only reach static storage.
std::atomic<bool> g_stop{false};
std::atomic<int> g_signal{0};
constexpr int kSignals[3] = {SIGINT, SIGTERM, SIGHUP};

void on_signal(int sig) {
    g_signal.store(sig);
    g_stop.store(true);
}

}  // namespace

StopOnSignals::StopOnSignals() {
    g_stop = false;
    g_signal = 0;
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a blocking wait returns EINTR and sees the flag
    for (int i = 0; i < 3; ++i) ::sigaction(kSignals[i], &sa, &old_[i]);
}

StopOnSignals::~StopOnSignals() {
    for (int i = 0; i < 3; ++i) ::sigaction(kSignals[i], &old_[i], nullptr);
}

const std::atomic<bool>* StopOnSignals::flag() const { return &g_stop; }
int StopOnSignals::signal() const { return g_signal.load(); }

}  // namespace vitro::measure
