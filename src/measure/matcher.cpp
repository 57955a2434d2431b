#include "measure/matcher.hpp"

#include <algorithm>

namespace vitro::measure {

Sample match_probe(const ProbeResult& probe, uint16_t icmp_id, std::span<const TraceEvent> events,
                   NamespacePair ns, int64_t window_ns) {
    Sample s;
    s.seq = probe.seq;
    s.replied = probe.replied;
    if (probe.replied) s.raw_us = probe.rtt_us();
    // The sequence number wraps at 65536: the time window keeps an old
    // probe's events apart. Events come a little before the user-space send
    // stamp never; allow 1 ms for clock reading order.
    const int64_t lo = probe.tx_mono_ns - 1'000'000;
    const int64_t hi = probe.tx_mono_ns + window_ns;
    for (const auto& e : events) {
        auto ts = static_cast<int64_t>(e.ts_ns);
        if (e.icmp_id == icmp_id && e.icmp_seq == probe.seq && ts >= lo && ts <= hi) s.events.push_back(e);
    }
    std::stable_sort(s.events.begin(), s.events.end(), [](const auto& a, const auto& b) { return a.ts_ns < b.ts_ns; });
    if (!probe.replied) {
        s.unmatched = "no reply";
        return s;
    }

    const TraceEvent* ctr_out = nullptr;
    const TraceEvent* host_out = nullptr;
    const TraceEvent* host_in = nullptr;
    const TraceEvent* ctr_in = nullptr;
    const TraceEvent* queued = nullptr;    // the request queued at the host side of the container's link
    const TraceEvent* processed = nullptr; // ... and taken up there by the softirq
    for (const auto& e : s.events) {
        bool request = e.icmp_type == 8;
        if (request && e.hook == Hook::Xmit) {
            if (e.netns == ns.container && !ctr_out) ctr_out = &e;
            if (e.netns == ns.host) host_out = &e;  // the last one
        } else if (request && e.netns == ns.host && ctr_out) {
            if (e.hook == Hook::Recv && e.queued && !queued) queued = &e;
            if (e.hook == Hook::Process && queued && !processed && e.ifindex == queued->ifindex) processed = &e;
        } else if (!request && e.hook == Hook::Recv) {
            if (e.netns == ns.host && !host_in) host_in = &e;
            if (e.netns == ns.container && !ctr_in && host_in) ctr_in = &e;
        }
    }
    const bool shared_wait = host_out && host_out->local_peer;  // bare metal waits at the egress's peer
    if (s.events.empty()) s.unmatched = "the tracer saw none of this probe's packets";
    else if (!ctr_out) s.unmatched = "request not seen leaving the container's namespace";
    else if (!host_out) s.unmatched = "request not seen leaving through a device of the host namespace (target on the host itself?)";
    else if (!host_in) s.unmatched = "reply not seen entering the host namespace";
    else if (!ctr_in) s.unmatched = "reply not seen entering the container's namespace";
    else if (shared_wait && (!queued || !processed))
        s.unmatched = "request's backlog wait in the host namespace not seen (needed: the host's egress " + host_out->ifname +
                      " is a veth, where bare metal waits as long)";
    else if (host_out->ts_ns < ctr_out->ts_ns || ctr_in->ts_ns < host_in->ts_ns ||
             (shared_wait && (processed->ts_ns > host_out->ts_ns)))
        s.unmatched = "events out of order (clock or path not as expected)";
    if (!s.unmatched.empty()) return s;

    if (shared_wait) s.backlog_us = static_cast<double>(processed->ts_ns - queued->ts_ns) / 1000.0;
    s.matched = true;
    s.egress_us = static_cast<double>(host_out->ts_ns - ctr_out->ts_ns) / 1000.0 - s.backlog_us;
    s.ingress_us = static_cast<double>(ctr_in->ts_ns - host_in->ts_ns) / 1000.0;
    s.overhead_us = s.egress_us + s.ingress_us;
    s.corrected_us = s.raw_us - s.overhead_us;
    return s;
}

}  // namespace vitro::measure
