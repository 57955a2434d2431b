// The tracefs fallback, for where BPF cannot load: the net_dev_queue and
// netif_rx trace events in a tracefs instance of our own, filtered to the two
// devices on the path (the container's and the host's egress, found by route
// lookups) and to our packets' length. Trace events carry no namespace and no
// ICMP id/sequence, so a probe's events are found by time window, device and
// skb address (one sk_buff travels from the container's veth to the host's
// egress device, and back); when more than one packet qualifies the probe is
// reported unmatched as ambiguous, never guessed. Timestamps: the trace
// clock "mono" (CLOCK_MONOTONIC), printed to the microsecond.
#pragma once

#include <deque>
#include <string>

#include "measure/trace_event.hpp"
#include "util/fd.hpp"

namespace vitro::measure {

class TracefsTracer : public Tracer {
public:
    struct Config {
        std::string container_dev, host_dev;  // names, as the trace events give them
        uint32_t ns_container = 0, ns_host = 0;
        size_t ip_len = 84;                   // IP packet length of our echoes
    };
    explicit TracefsTracer(const Config& cfg);
    ~TracefsTracer() override;
    TracefsTracer(const TracefsTracer&) = delete;
    TracefsTracer& operator=(const TracefsTracer&) = delete;

    void collect(const ProbeResult& probe, uint16_t icmp_id, std::vector<TraceEvent>& out) override;
    uint64_t dropped() const override { return 0; }
    const char* kind() const override { return "tracefs"; }
    std::string why_unmatched() const override { return last_why_; }

    // One parsed trace_pipe line.
    struct Record {
        uint64_t ts_ns = 0;
        bool xmit = false;  // net_dev_queue; else netif_rx
        std::string dev, skb;
        size_t len = 0;
    };
    static bool parse_line(const std::string& line, Record& r);
    // The events of one probe among `records` (see the header comment);
    // `why` says what was missing or ambiguous when it returns empty.
    static std::vector<TraceEvent> attribute(const std::deque<Record>& records, const Config& cfg, int64_t from_ns,
                                             int64_t to_ns, uint16_t icmp_id, uint16_t seq, std::string& why);

private:
    void write(const std::string& file, const std::string& value) const;
    Config cfg_;
    std::string mount_point_, instance_;
    bool mounted_here_ = false;
    UniqueFd pipe_;
    std::string partial_;
    std::deque<Record> records_;
    std::string last_why_;
};

// The device a namespace routes `target` through ("ip route get").
std::string route_device(int netns_fd, const std::string& target);

}  // namespace vitro::measure
