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
// corrected = raw - overhead.
//
// The backlog wait. Sending on a veth queues the packet on this CPU's
// receive backlog (netif_rx); the NET_RX softirq takes it up a little later,
// and once running it carries the packet on through every further veth
// without a second wait. The container's request waits at the host side of
// its veth, inside the window above. Where the host's egress device is a veth
// too (the target in another namespace of this kernel), bare metal waits as
// long at that device's peer, and the container's request, already in the
// softirq, does not wait there again: the wait is then common to both paths,
// not overhead, and is taken off the request's window (backlog_us = first
// Process - first queued Recv of the request in the host netns, on the same
// device). Where the egress is a NIC, bare metal never waits, and the wait
// stays in the overhead.
//
// A point that is missing makes the packet unmatched, with the reason;
// nothing is guessed.
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
    double egress_us = 0;    // container out -> host out, less backlog_us
    double backlog_us = 0;   // the request's backlog wait, common to bare metal (0: egress not a veth)
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
