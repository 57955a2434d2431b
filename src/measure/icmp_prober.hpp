// vitro's own ICMP echo prober: a raw socket made inside the namespace under
// test, a user-space send time taken just before sendto, and the kernel's
// nanosecond receive timestamp (SO_TIMESTAMPNS) of the reply. The same code
// serves bare-metal and container measurements, so they compare fairly.
#pragma once

#include <netinet/in.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "util/fd.hpp"

namespace vitro::measure {

struct ProbeResult {
    uint16_t seq = 0;
    bool replied = false;
    int64_t tx_mono_ns = 0;  // CLOCK_MONOTONIC at send (the tracer's clock)
    int64_t tx_real_ns = 0;  // CLOCK_REALTIME at send
    int64_t rx_real_ns = 0;  // kernel receive timestamp of the reply
    int ttl = 0;
    size_t bytes = 0;        // ICMP bytes of the reply
    double rtt_us() const { return static_cast<double>(rx_real_ns - tx_real_ns) / 1000.0; }
};

class IcmpProber {
public:
    // netns_fd: the namespace to probe from (-1: this one). payload: bytes
    // after the 8-byte ICMP header (ping's -s).
    IcmpProber(int netns_fd, in_addr target, uint16_t id, size_t payload);

    uint16_t id() const { return id_; }
    // Sends echo request `seq` and waits up to `timeout` for its reply.
    // Returns early (not replied) when *stop becomes true.
    ProbeResult probe(uint16_t seq, std::chrono::milliseconds timeout, const std::atomic<bool>* stop = nullptr);

private:
    UniqueFd sock_;
    in_addr target_;
    uint16_t id_;
    size_t payload_;
};

// Parses a dotted IPv4 address or resolves a host name (first IPv4 address).
in_addr resolve_ipv4(const std::string& target);
// The Internet checksum (RFC 1071).
uint16_t inet_checksum(const void* data, size_t len);

}  // namespace vitro::measure
