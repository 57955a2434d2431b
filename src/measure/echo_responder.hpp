// A delaying ICMP echo responder: this kernel has no netem, so path delay
// comes from answering each echo request `delay` after the kernel received it
// (its SO_TIMESTAMPNS stamp), from a raw socket in the remote's namespace
// whose own kernel echo replies are switched off meanwhile.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "util/fd.hpp"

namespace vitro::measure {

class EchoResponder {
public:
    EchoResponder(int netns_fd, std::chrono::microseconds delay);
    ~EchoResponder();  // stops the thread, switches kernel echo replies back on
    EchoResponder(const EchoResponder&) = delete;
    EchoResponder& operator=(const EchoResponder&) = delete;

    uint64_t answered() const { return answered_.load(); }
    // Replies sent more than 20 us after their due time (a late wake-up or
    // a late request), and the worst lateness: delay noise, not netlat's.
    uint64_t late() const { return late_.load(); }
    int64_t worst_late_ns() const { return worst_late_.load(); }
    // How long after its due time the reply to echo (id, seq) went out (0 if
    // none was sent): calibrate takes it off that echo's RTT, so the emulated
    // path delay is the same for every echo; forget them all.
    int64_t lateness_ns(uint16_t id, uint16_t seq) const;
    void clear_late();

private:
    void loop();
    int netns_fd_;
    std::chrono::microseconds delay_;
    UniqueFd sock_;
    std::atomic<bool> stop_{false};
    std::atomic<uint64_t> answered_{0}, late_{0};
    std::atomic<int64_t> worst_late_{0};
    mutable std::mutex mu_;
    std::unordered_map<uint32_t, int64_t> lateness_;  // id << 16 | seq -> ns
    std::thread thread_;
};

// Writes net.ipv4.icmp_echo_ignore_all in the namespace `netns_fd`.
void set_icmp_echo_ignore_all(int netns_fd, bool ignore);

}  // namespace vitro::measure
