// One sighting of a probe packet at a device, as the tracers report it.
#pragma once

#include <cstdint>
#include <string>

namespace vitro::measure {

enum class Hook : uint8_t {
    Xmit = 1,  // a device is handed the packet to send (net_dev_queue)
    Recv = 2,  // a device hands a received packet to the stack (netif_rx, ...)
};

struct TraceEvent {
    uint64_t ts_ns = 0;  // CLOCK_MONOTONIC
    uint32_t netns = 0;  // inode of the device's network namespace
    uint32_t ifindex = 0;
    uint16_t icmp_id = 0;
    uint16_t icmp_seq = 0;
    uint8_t icmp_type = 0;  // 8 request, 0 reply
    Hook hook = Hook::Xmit;
    std::string ifname;
};

}  // namespace vitro::measure
