// One sighting of a probe packet at a device, as the tracers report it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vitro::measure {

enum class Hook : uint8_t {
    Xmit = 1,  // a device is handed the packet to send (net_dev_queue)
    Recv = 2,  // a device hands a received packet to the stack (netif_rx, ...)
    Process = 3,  // the stack starts processing it (netif_receive_skb; for a queued one, in the NET_RX softirq)
};

struct TraceEvent {
    uint64_t ts_ns = 0;  // CLOCK_MONOTONIC
    uint32_t netns = 0;  // inode of the device's network namespace
    uint32_t ifindex = 0;
    uint16_t icmp_id = 0;
    uint16_t icmp_seq = 0;
    uint8_t icmp_type = 0;  // 8 request, 0 reply
    Hook hook = Hook::Xmit;
    bool local_peer = false;  // a veth/netkit: sending on it queues the packet on this kernel's backlog
    bool queued = false;      // Recv by netif_rx: queued on the backlog, processed later
    std::string ifname;
};

struct ProbeResult;

// A tracer as the probe loop sees it: after each probe, the events that may
// belong to it (BPF: everything in the ring buffer; tracefs: the events it
// could attribute to this probe).
class Tracer {
public:
    virtual ~Tracer() = default;
    virtual void collect(const ProbeResult& probe, uint16_t icmp_id, std::vector<TraceEvent>& out) = 0;
    virtual uint64_t dropped() const = 0;
    virtual const char* kind() const = 0;
    // Why the last probe's events could not be found ("" if they were, or no reason known).
    virtual std::string why_unmatched() const { return ""; }
};

}  // namespace vitro::measure
