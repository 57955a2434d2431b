// Pairs the tracer's events with one probe and splits its RTT into the part
// spent in the virtual devices and the rest. The four points, each in the
// namespace the tracer reports for the device:
//   request leaves the container   first Xmit of the request in the container netns
//   request leaves the host        last Xmit of the request in the host netns
//   reply enters the host          first Recv of the reply in the host netns
//   reply enters the container     first Recv of the reply in the container netns
// Bare metal sends from the host's stack straight to the host's egress device
// and takes its receive timestamp where the reply enters the host, so
// overhead = (host out - container out) + (container in - host in), and
// corrected = raw - overhead. A point that is missing makes the packet
// unmatched, with the reason; nothing is guessed.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "measure/icmp_prober.hpp"
#include "measure/trace_event.hpp"

namespace vitro::measure {

struct Sample {
    uint16_t seq = 0;
    bool replied = false;
    double raw_us = 0;
    bool matched = false;
    double egress_us = 0;    // container out -> host out
    double ingress_us = 0;   // host in -> container in
    double overhead_us = 0;  // egress + ingress
    double corrected_us = 0;
    std::string unmatched;   // why not matched ("" when matched or not traced)
    std::vector<TraceEvent> events;  // this probe's events, in time order
};

struct NamespacePair {
    uint32_t container = 0;
    uint32_t host = 0;
};

// `events` may hold other probes' events; those of (id, seq) within the
// probe's time window are used.
Sample match_probe(const ProbeResult& probe, uint16_t icmp_id, std::span<const TraceEvent> events,
                   NamespacePair ns, int64_t window_ns);

}  // namespace vitro::measure
