#include "measure/netlat.hpp"

#include <time.h>

#include <algorithm>
#include <cstdio>

#include "measure/svg_plot.hpp"

namespace vitro::measure {
namespace {

int64_t mono_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Sleeps until `when` (CLOCK_MONOTONIC ns) or a stop request.
void sleep_until(int64_t when, const std::atomic<bool>* stop) {
    while (!(stop && stop->load())) {
        int64_t now = mono_ns();
        if (now >= when) return;
        // Slices of at most 100 ms so that a signal is seen soon even if it
        // arrives on another thread.
        int64_t until = std::min(when, now + 100'000'000);
        timespec ts{static_cast<time_t>(until / 1'000'000'000), static_cast<long>(until % 1'000'000'000)};
        ::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
    }
}

std::string fmt(const char* f, double v) {
    char b[64];
    std::snprintf(b, sizeof(b), f, v);
    return b;
}

nlohmann::json summary_json(const Summary& s) {
    return {{"n", s.n},         {"min_us", s.min}, {"max_us", s.max}, {"mean_us", s.mean},
            {"median_us", s.median}, {"p90_us", s.p90}, {"p99_us", s.p99}, {"stdev_us", s.stdev}};
}

std::string summary_line(const char* what, const Summary& s) {
    if (s.n == 0) return std::string(what) + ": no data\n";
    char b[256];
    std::snprintf(b, sizeof(b), "%-10s mean %.1f  median %.1f  p90 %.1f  p99 %.1f  stdev %.1f  min %.1f  max %.1f us (n=%zu)\n",
                  what, s.mean, s.median, s.p90, s.p99, s.stdev, s.min, s.max, s.n);
    return b;
}

}  // namespace

std::vector<Sample> run_probes(IcmpProber& prober, const ProbeSchedule& sched, Tracer* tracer, NamespacePair ns,
                               const std::atomic<bool>* stop, const std::function<void(const Sample&)>& on_sample) {
    std::vector<Sample> samples;
    std::vector<TraceEvent> events;
    const int64_t window = std::chrono::nanoseconds(sched.timeout).count() + 1'000'000;
    int64_t next = mono_ns();
    for (int i = 0; !sched.count || i < *sched.count; ++i) {
        if (stop && stop->load()) break;
        if (i > 0) {
            next += std::chrono::nanoseconds(sched.interval).count();
            sleep_until(next, stop);
            if (stop && stop->load()) break;
        }
        ProbeResult p = prober.probe(static_cast<uint16_t>(sched.first_seq + i), sched.timeout, stop);
        if (stop && stop->load() && !p.replied) break;  // interrupted while waiting: not a loss
        Sample s;
        if (tracer) {
            // One batch per probe: every event of this probe is in the ring
            // before its reply reaches the socket.
            tracer->collect(p, prober.id(), events);
            s = match_probe(p, prober.id(), events, ns, window);
            if (!s.matched && s.replied && !tracer->why_unmatched().empty()) s.unmatched = tracer->why_unmatched();
            // Keep only what a later probe could still need.
            int64_t keep_from = p.tx_mono_ns - 1'000'000;
            std::erase_if(events, [&](const TraceEvent& e) { return static_cast<int64_t>(e.ts_ns) < keep_from; });
        } else {
            s.seq = p.seq;
            s.replied = p.replied;
            if (p.replied) s.raw_us = p.rtt_us();
            else s.unmatched = "no reply";
        }
        if (on_sample) on_sample(s);
        samples.push_back(std::move(s));
    }
    return samples;
}

Summaries summarize(const PingReport& r) {
    Summaries s;
    std::vector<double> raw, ovh, cor, blg;
    for (const auto& x : r.samples) {
        ++s.sent;
        if (!x.replied) continue;
        ++s.received;
        raw.push_back(x.raw_us);
        if (!x.matched) continue;
        ++s.matched;
        ovh.push_back(x.overhead_us);
        cor.push_back(x.corrected_us);
        if (x.backlog_us > 0) blg.push_back(x.backlog_us);
    }
    s.raw = summarize(raw);
    s.overhead = summarize(ovh);
    s.corrected = summarize(cor);
    s.backlog = summarize(blg);
    return s;
}

std::string text_header(const PingReport& r) {
    return "NETLAT " + r.target + " (" + r.target_addr + ") from " + r.source + ": " + std::to_string(r.payload) +
           " data bytes, tracer " + r.tracer + "\n";
}

std::string sample_line(const PingReport& r, const Sample& s) {
    std::string l = "seq=" + std::to_string(s.seq);
    if (!s.replied) return l + " no reply\n";
    l += " raw=" + fmt("%.1f", s.raw_us) + " us";
    if (r.tracer == "none") return l + "\n";
    if (s.matched)
        l += " overhead=" + fmt("%.1f", s.overhead_us) + " us (out " + fmt("%.1f", s.egress_us) + " + in " +
             fmt("%.1f", s.ingress_us) + (s.backlog_us > 0 ? ", backlog wait " + fmt("%.1f", s.backlog_us) + " not counted" : "") +
             ") corrected=" + fmt("%.1f", s.corrected_us) + " us";
    else
        l += " unmatched: " + s.unmatched;
    return l + "\n";
}

std::string text_summary(const PingReport& r) {
    Summaries s = summarize(r);
    std::string o = "--- " + r.target + " netlat statistics ---\n";
    char b[256];
    double loss = s.sent ? 100.0 * static_cast<double>(s.sent - s.received) / static_cast<double>(s.sent) : 0;
    std::snprintf(b, sizeof(b), "%zu packets transmitted, %zu received, %.0f%% packet loss", s.sent, s.received, loss);
    o += b;
    if (r.tracer != "none") o += ", " + std::to_string(s.matched) + " matched to trace events";
    o += "\n";
    if (r.tracer != "none" && s.matched < s.received)
        o += std::to_string(s.received - s.matched) + " replied packets could not be matched (see their lines): left out of overhead and corrected\n";
    if (r.dropped_events) o += "the tracer dropped " + std::to_string(r.dropped_events) + " events (ring buffer full)\n";
    o += summary_line("raw", s.raw);
    if (r.tracer != "none") {
        o += summary_line("overhead", s.overhead);
        o += summary_line("corrected", s.corrected);
        if (s.backlog.n)
            o += summary_line("backlog", s.backlog) +
                 "(backlog: the request's wait for the softirq at the host side of the container's veth; the host's egress is a "
                 "veth too, where bare metal waits as long, so it is not counted as overhead)\n";
    }
    return o;
}

nlohmann::json to_json(const PingReport& r) {
    Summaries s = summarize(r);
    nlohmann::json pk = nlohmann::json::array();
    for (const auto& x : r.samples) {
        nlohmann::json j = {{"seq", x.seq}, {"replied", x.replied}};
        if (x.replied) j["raw_us"] = x.raw_us;
        if (r.tracer != "none") {
            j["matched"] = x.matched;
            if (x.matched) {
                j["overhead_us"] = x.overhead_us;
                j["egress_us"] = x.egress_us;
                j["ingress_us"] = x.ingress_us;
                j["backlog_us"] = x.backlog_us;
                j["corrected_us"] = x.corrected_us;
            } else {
                j["unmatched_reason"] = x.unmatched;
            }
            nlohmann::json hops = nlohmann::json::array();
            for (const auto& e : x.events)
                hops.push_back({{"ts_ns", e.ts_ns},
                                {"dir", e.icmp_type == 8 ? "request" : "reply"},
                                {"hook", e.hook == Hook::Xmit ? "xmit" : e.hook == Hook::Recv ? "recv" : "process"},
                                {"queued", e.queued},
                                {"local_peer", e.local_peer},
                                {"ifname", e.ifname},
                                {"ifindex", e.ifindex},
                                {"netns", e.netns}});
            j["events"] = std::move(hops);
        }
        pk.push_back(std::move(j));
    }
    nlohmann::json out = {{"source", r.source},
                          {"target", r.target},
                          {"target_addr", r.target_addr},
                          {"payload_bytes", r.payload},
                          {"tracer", r.tracer},
                          {"icmp_id", r.icmp_id},
                          {"sent", s.sent},
                          {"received", s.received},
                          {"matched", s.matched},
                          {"unmatched", s.received - s.matched},
                          {"dropped_events", r.dropped_events},
                          {"raw", summary_json(s.raw)},
                          {"packets", std::move(pk)}};
    if (r.tracer != "none") {
        out["overhead"] = summary_json(s.overhead);
        out["corrected"] = summary_json(s.corrected);
        if (s.backlog.n) out["backlog"] = summary_json(s.backlog);
    }
    if (!r.stopped_by.empty()) out["stopped_by"] = r.stopped_by;
    return out;
}

std::string to_csv(const PingReport& r) {
    std::string o = "seq,replied,raw_us,matched,overhead_us,egress_us,ingress_us,corrected_us,unmatched_reason,backlog_us\n";
    for (const auto& x : r.samples) {
        o += std::to_string(x.seq) + "," + (x.replied ? "1" : "0") + "," + (x.replied ? fmt("%.3f", x.raw_us) : "") + "," +
             (x.matched ? "1" : "0") + ",";
        if (x.matched)
            o += fmt("%.3f", x.overhead_us) + "," + fmt("%.3f", x.egress_us) + "," + fmt("%.3f", x.ingress_us) + "," +
                 fmt("%.3f", x.corrected_us) + ",";
        else
            o += ",,,,";
        // Reasons contain no quotes; quote for the commas.
        o += x.unmatched.empty() ? "" : "\"" + x.unmatched + "\"";
        o += "," + (x.matched ? fmt("%.3f", x.backlog_us) : "");
        o += "\n";
    }
    return o;
}

std::string ping_plot_svg(const PingReport& r) {
    Series raw{"raw RTT", "#d62728", {}, false}, cor{"corrected RTT", "#1f77b4", {}, false},
        ovh{"overhead", "#2ca02c", {}, false};
    std::vector<double> rv, cv;
    for (const auto& s : r.samples) {
        if (!s.replied) continue;
        raw.points.emplace_back(s.seq, s.raw_us);
        rv.push_back(s.raw_us);
        if (s.matched) {
            cor.points.emplace_back(s.seq, s.corrected_us);
            ovh.points.emplace_back(s.seq, s.overhead_us);
            cv.push_back(s.corrected_us);
        }
    }
    std::vector<Chart> charts;
    charts.push_back({"netlat " + r.target + " from " + r.source, "ICMP sequence", "microseconds", {raw, cor, ovh}});
    charts.push_back({"CDF", "RTT (microseconds)", "fraction",
                      {{"raw RTT", "#d62728", cdf_points(rv), true}, {"corrected RTT", "#1f77b4", cdf_points(cv), true}}});
    return render_svg(charts);
}

}  // namespace vitro::measure
