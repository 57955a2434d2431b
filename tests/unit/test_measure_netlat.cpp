// measure/: the matcher (trace events -> per-probe overhead), statistics,
// the ICMP checksum and the report formats. Pure logic, no root.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include "measure/icmp_prober.hpp"
#include "measure/matcher.hpp"
#include "measure/netlat.hpp"
#include "measure/stats.hpp"
#include "measure/svg_plot.hpp"

namespace vitro::measure {
namespace {

constexpr uint32_t kCtr = 111, kHost = 222, kRemote = 333;
constexpr uint16_t kId = 0x4242;

TraceEvent ev(uint64_t ts_us, uint32_t ns, Hook hook, uint8_t type, const char* dev, uint16_t seq = 7, uint16_t id = kId) {
    TraceEvent e;
    e.ts_ns = 1'000'000'000 + ts_us * 1000;
    e.netns = ns;
    e.hook = hook;
    e.icmp_type = type;
    e.icmp_seq = seq;
    e.icmp_id = id;
    e.ifname = dev;
    return e;
}

ProbeResult probe(uint16_t seq = 7, double rtt_us = 100) {
    ProbeResult p;
    p.seq = seq;
    p.replied = true;
    p.tx_mono_ns = 1'000'000'000 - 5'000;  // 5 us before the first event
    p.tx_real_ns = 5'000'000'000;
    p.rx_real_ns = p.tx_real_ns + static_cast<int64_t>(rtt_us * 1000);
    return p;
}

// The bridged path the tracer reports for one echo (times in us after tx).
std::vector<TraceEvent> bridged_path(uint16_t seq = 7) {
    return {ev(0, kCtr, Hook::Xmit, 8, "eth0", seq),     ev(6, kHost, Hook::Recv, 8, "vh0", seq),
            ev(20, kHost, Hook::Recv, 8, "br0", seq),    ev(30, kHost, Hook::Xmit, 8, "up-h", seq),
            ev(32, kRemote, Hook::Recv, 8, "up-r", seq), ev(44, kRemote, Hook::Xmit, 0, "up-r", seq),
            ev(46, kHost, Hook::Recv, 0, "up-h", seq),   ev(50, kHost, Hook::Xmit, 0, "br0", seq),
            ev(53, kHost, Hook::Xmit, 0, "vh0", seq),    ev(54, kCtr, Hook::Recv, 0, "eth0", seq)};
}

TEST(MeasureMatcher, SplitsTheBridgedPathIntoOverheadAndRest) {
    auto events = bridged_path();
    Sample s = match_probe(probe(), kId, events, {kCtr, kHost}, 1'000'000'000);
    ASSERT_TRUE(s.matched) << s.unmatched;
    EXPECT_DOUBLE_EQ(s.egress_us, 30);   // eth0 xmit -> up-h xmit
    EXPECT_DOUBLE_EQ(s.ingress_us, 8);   // up-h recv -> eth0 recv
    EXPECT_DOUBLE_EQ(s.overhead_us, 38);
    EXPECT_DOUBLE_EQ(s.corrected_us, 62);
    EXPECT_EQ(s.events.size(), 10u);
}

TEST(MeasureMatcher, IgnoresOtherIdentifiersSequencesAndOldEvents) {
    auto events = bridged_path();
    // Another prober's packets, another sequence number, and the same
    // sequence number 65536 probes ago (outside the time window).
    events.push_back(ev(1, kCtr, Hook::Xmit, 8, "eth0", 7, 0x1111));
    events.push_back(ev(2, kCtr, Hook::Xmit, 8, "eth0", 8));
    TraceEvent old = ev(0, kHost, Hook::Xmit, 8, "up-h");
    old.ts_ns -= 500'000'000;
    events.insert(events.begin(), old);
    Sample s = match_probe(probe(), kId, events, {kCtr, kHost}, 1'000'000'000);
    ASSERT_TRUE(s.matched) << s.unmatched;
    EXPECT_DOUBLE_EQ(s.overhead_us, 38);
    EXPECT_EQ(s.events.size(), 10u);
}

TEST(MeasureMatcher, SaysWhyInsteadOfGuessing) {
    auto events = bridged_path();
    // The request never left through a host device (e.g. NAT rewrote the id).
    std::erase_if(events, [](const TraceEvent& e) { return e.icmp_type == 8 && e.netns == kHost && e.hook == Hook::Xmit; });
    Sample s = match_probe(probe(), kId, events, {kCtr, kHost}, 1'000'000'000);
    EXPECT_FALSE(s.matched);
    EXPECT_NE(s.unmatched.find("leaving through a device of the host"), std::string::npos) << s.unmatched;

    Sample none = match_probe(probe(), kId, {}, {kCtr, kHost}, 1'000'000'000);
    EXPECT_FALSE(none.matched);
    EXPECT_NE(none.unmatched.find("saw none"), std::string::npos);

    ProbeResult lost = probe();
    lost.replied = false;
    Sample l = match_probe(lost, kId, bridged_path(), {kCtr, kHost}, 1'000'000'000);
    EXPECT_FALSE(l.matched);
    EXPECT_EQ(l.unmatched, "no reply");
}

TEST(MeasureMatcher, ReplyMustEnterTheContainerAfterTheHost) {
    auto events = bridged_path();
    std::erase_if(events, [](const TraceEvent& e) { return e.icmp_type == 0 && e.netns == kCtr; });
    Sample s = match_probe(probe(), kId, events, {kCtr, kHost}, 1'000'000'000);
    EXPECT_FALSE(s.matched);
    EXPECT_NE(s.unmatched.find("entering the container"), std::string::npos) << s.unmatched;
}

// The bridged path as the BPF tracer reports it by default, with the
// request's backlog wait at vh0 (queued at 6, taken up at 14) and up-h a
// veth (veth_egress) or a NIC.
std::vector<TraceEvent> edges_with_backlog(bool veth_egress) {
    auto q = ev(6, kHost, Hook::Recv, 8, "vh0");
    q.queued = q.local_peer = true;
    q.ifindex = 5;
    auto p = ev(14, kHost, Hook::Process, 8, "vh0");
    p.local_peer = true;
    p.ifindex = 5;
    auto out = ev(30, kHost, Hook::Xmit, 8, "up-h");
    out.local_peer = veth_egress;
    return {ev(0, kCtr, Hook::Xmit, 8, "eth0"), q, p, out, ev(46, kHost, Hook::Recv, 0, "up-h"), ev(54, kCtr, Hook::Recv, 0, "eth0")};
}

TEST(MeasureMatcher, VethEgressLeavesTheBacklogWaitInTheCorrectedRtt) {
    // Bare metal waits for the softirq at up-h's peer as long as the
    // container's request waits at vh0: not overhead.
    Sample s = match_probe(probe(), kId, edges_with_backlog(true), {kCtr, kHost}, 1'000'000'000);
    ASSERT_TRUE(s.matched) << s.unmatched;
    EXPECT_DOUBLE_EQ(s.backlog_us, 8);
    EXPECT_DOUBLE_EQ(s.egress_us, 22);  // 30 - 8
    EXPECT_DOUBLE_EQ(s.ingress_us, 8);
    EXPECT_DOUBLE_EQ(s.overhead_us, 30);
    EXPECT_DOUBLE_EQ(s.corrected_us, 70);
}

TEST(MeasureMatcher, NicEgressCountsTheBacklogWaitAsOverhead) {
    // Bare metal hands the request to the NIC and never waits: the wait is
    // the container's own.
    Sample s = match_probe(probe(), kId, edges_with_backlog(false), {kCtr, kHost}, 1'000'000'000);
    ASSERT_TRUE(s.matched) << s.unmatched;
    EXPECT_DOUBLE_EQ(s.backlog_us, 0);
    EXPECT_DOUBLE_EQ(s.egress_us, 30);
    EXPECT_DOUBLE_EQ(s.overhead_us, 38);
}

TEST(MeasureMatcher, VethEgressWithoutTheBacklogEventsIsUnmatched) {
    auto events = edges_with_backlog(true);
    std::erase_if(events, [](const TraceEvent& e) { return e.hook == Hook::Process; });
    Sample s = match_probe(probe(), kId, events, {kCtr, kHost}, 1'000'000'000);
    EXPECT_FALSE(s.matched);
    EXPECT_NE(s.unmatched.find("backlog wait"), std::string::npos) << s.unmatched;
    EXPECT_NE(s.unmatched.find("up-h is a veth"), std::string::npos) << s.unmatched;
    // Taken up on another device than the one that queued it: not its wait.
    events = edges_with_backlog(true);
    events[2].ifindex = 6;
    EXPECT_FALSE(match_probe(probe(), kId, events, {kCtr, kHost}, 1'000'000'000).matched);
}

TEST(MeasureStats, PercentilesMeanAndStdev) {
    std::vector<double> v;
    for (int i = 1; i <= 100; ++i) v.push_back(i);
    Summary s = summarize(v);
    EXPECT_EQ(s.n, 100u);
    EXPECT_DOUBLE_EQ(s.mean, 50.5);
    EXPECT_DOUBLE_EQ(s.median, 50.5);
    EXPECT_NEAR(s.p90, 90.1, 1e-9);  // numpy: 90.1
    EXPECT_NEAR(s.p99, 99.01, 1e-9);
    EXPECT_NEAR(s.stdev, 29.011491975882016, 1e-9);
    EXPECT_EQ(s.min, 1);
    EXPECT_EQ(s.max, 100);
    EXPECT_EQ(summarize(std::vector<double>{}).n, 0u);
    Summary one = summarize(std::vector<double>{3});
    EXPECT_EQ(one.median, 3);
    EXPECT_EQ(one.stdev, 0);
}

TEST(MeasureIcmp, ChecksumOfAKnownEchoRequest) {
    // type 8, code 0, id 0x1234, seq 1, no payload: ~(0x0800 + 0x1234 + 0x0001)
    uint8_t pkt[8] = {8, 0, 0, 0, 0x12, 0x34, 0x00, 0x01};
    uint16_t sum = inet_checksum(pkt, sizeof(pkt));
    EXPECT_EQ(ntohs(sum), 0xe5ca);
    std::memcpy(pkt + 2, &sum, 2);
    EXPECT_EQ(inet_checksum(pkt, sizeof(pkt)), 0);  // a valid packet sums to zero
    in_addr a = resolve_ipv4("10.1.2.3");
    EXPECT_EQ(ntohl(a.s_addr), 0x0a010203u);
    EXPECT_THROW(resolve_ipv4("no-such-host.invalid"), std::exception);
}

TEST(MeasureReport, JsonCsvAndTextCarryTheSamples) {
    PingReport r;
    r.source = "netns /run/netns/x";
    r.target = r.target_addr = "10.77.0.2";
    r.tracer = "bpf";
    auto events = bridged_path();
    r.samples.push_back(match_probe(probe(), kId, events, {kCtr, kHost}, 1'000'000'000));
    ProbeResult lost = probe(8);
    lost.replied = false;
    r.samples.push_back(match_probe(lost, kId, events, {kCtr, kHost}, 1'000'000'000));

    auto j = to_json(r);
    EXPECT_EQ(j["sent"], 2);
    EXPECT_EQ(j["received"], 1);
    EXPECT_EQ(j["matched"], 1);
    EXPECT_DOUBLE_EQ(j["packets"][0]["corrected_us"].get<double>(), 62);
    EXPECT_EQ(j["packets"][0]["events"].size(), 10u);
    EXPECT_DOUBLE_EQ(j["corrected"]["mean_us"].get<double>(), 62);
    EXPECT_FALSE(j["packets"][1]["replied"].get<bool>());

    std::string csv = to_csv(r);
    EXPECT_EQ(csv.substr(0, csv.find('\n')), "seq,replied,raw_us,matched,overhead_us,egress_us,ingress_us,corrected_us,unmatched_reason,backlog_us");
    EXPECT_NE(csv.find("7,1,100.000,1,38.000,30.000,8.000,62.000,,0.000\n"), std::string::npos) << csv;
    EXPECT_NE(csv.find("8,0,,0,,,,,\"no reply\",\n"), std::string::npos) << csv;

    std::string text = text_summary(r);
    EXPECT_NE(text.find("2 packets transmitted, 1 received, 50% packet loss, 1 matched"), std::string::npos) << text;
    EXPECT_NE(sample_line(r, r.samples[0]).find("corrected=62.0 us"), std::string::npos);

    std::string svg = ping_plot_svg(r);
    EXPECT_EQ(svg.rfind("<svg", 0), 0u);
    EXPECT_NE(svg.find("corrected RTT"), std::string::npos);
}

}  // namespace
}  // namespace vitro::measure

#include "measure/trace_tracefs.hpp"

namespace vitro::measure {
namespace {

TEST(MeasureTracefs, ParsesTracePipeLines) {
    TracefsTracer::Record r;
    ASSERT_TRUE(TracefsTracer::parse_line(
        "            ping-1234    [001] b..1.  4711.000123: net_dev_queue: dev=eth0 skbaddr=00000000deadbeef len=98", r));
    EXPECT_TRUE(r.xmit);
    EXPECT_EQ(r.ts_ns, 4711'000'123'000u);
    EXPECT_EQ(r.dev, "eth0");
    EXPECT_EQ(r.skb, "00000000deadbeef");
    EXPECT_EQ(r.len, 98u);
    ASSERT_TRUE(TracefsTracer::parse_line("  <idle>-0 [000] ..s2. 12.5: netif_rx: dev=up-h skbaddr=ff len=84", r));
    EXPECT_FALSE(r.xmit);
    EXPECT_EQ(r.ts_ns, 12'500'000'000u);
    EXPECT_FALSE(TracefsTracer::parse_line("# tracer: nop", r));
    EXPECT_FALSE(TracefsTracer::parse_line("  x-1 [000] ..... 1.000001: net_dev_xmit: dev=eth0 skbaddr=1 len=98 rc=0", r));
}

TracefsTracer::Record rec(uint64_t us, bool xmit, const char* dev, const char* skb, size_t len) {
    TracefsTracer::Record r;
    r.ts_ns = us * 1000;
    r.xmit = xmit;
    r.dev = dev;
    r.skb = skb;
    r.len = len;
    return r;
}

TEST(MeasureTracefs, FollowsOneSkbAndRefusesAmbiguity) {
    TracefsTracer::Config cfg{"eth0", "up-h", kCtr, kHost, 84};
    std::deque<TracefsTracer::Record> recs = {rec(100, true, "eth0", "a", 98), rec(130, true, "up-h", "a", 98),
                                              rec(146, false, "up-h", "b", 84), rec(154, false, "eth0", "b", 84)};
    std::string why;
    auto evs = TracefsTracer::attribute(recs, cfg, 90'000, 200'000, kId, 7, why);
    ASSERT_EQ(evs.size(), 4u) << why;
    ProbeResult p = probe(7, 100);
    p.tx_mono_ns = 95'000;
    Sample s = match_probe(p, kId, evs, {kCtr, kHost}, 1'000'000'000);
    ASSERT_TRUE(s.matched) << s.unmatched;
    EXPECT_DOUBLE_EQ(s.overhead_us, 38);

    // Another packet of the same length on the same devices: no guess.
    recs.push_back(rec(140, true, "eth0", "c", 98));
    recs.push_back(rec(150, true, "up-h", "c", 98));
    evs = TracefsTracer::attribute(recs, cfg, 90'000, 200'000, kId, 7, why);
    EXPECT_TRUE(evs.empty());
    EXPECT_NE(why.find("not guessing"), std::string::npos) << why;
}

}  // namespace
}  // namespace vitro::measure
