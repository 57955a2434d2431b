// SIGINT/SIGTERM/SIGHUP while netlat measures: a flag the loops poll, so that
// they stop, report what they have and let every owner (BPF links, probes,
// namespaces, helper processes) release its object on the normal path. The
// previous handlers come back when this goes.
#pragma once

#include <signal.h>

#include <atomic>

namespace vitro::measure {

class StopOnSignals {
public:
    StopOnSignals();
    ~StopOnSignals();
    StopOnSignals(const StopOnSignals&) = delete;
    StopOnSignals& operator=(const StopOnSignals&) = delete;

    const std::atomic<bool>* flag() const;
    int signal() const;  // the signal that asked to stop, 0 if none

private:
    struct sigaction old_[3];
};

}  // namespace vitro::measure
