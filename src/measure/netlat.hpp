// `vitro netlat ping`: probes a target from a network namespace while the
// tracer follows each probe through the virtual devices, and reports per
// packet the raw RTT, the virtual-device overhead and the corrected RTT.
#pragma once

#include <netinet/in.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "measure/icmp_prober.hpp"
#include "measure/matcher.hpp"
#include "measure/stats.hpp"
#include "measure/trace_bpf.hpp"

namespace vitro::measure {

struct ProbeSchedule {
    std::optional<int> count;                     // none: until stopped
    std::chrono::microseconds interval{1'000'000};  // between sends
    std::chrono::milliseconds timeout{1000};      // per reply
    uint16_t first_seq = 0;                       // sequence number of the first echo
};

// Runs the schedule; with a tracer (attached by the caller) each reply is
// matched to its events. on_sample sees each sample as it completes.
std::vector<Sample> run_probes(IcmpProber& prober, const ProbeSchedule& sched, Tracer* tracer, NamespacePair ns,
                               const std::atomic<bool>* stop, const std::function<void(const Sample&)>& on_sample = {});

struct PingReport {
    std::string source;       // "container web", "netns /run/netns/x", "pid 42"
    std::string target;       // as given
    std::string target_addr;  // dotted
    size_t payload = 0;
    std::string tracer;       // "bpf", "tracefs" or "none"
    uint16_t icmp_id = 0;
    std::vector<Sample> samples;
    uint64_t dropped_events = 0;
    std::string stopped_by;   // "SIGINT", ... or ""
};

struct Summaries {
    size_t sent = 0, received = 0, matched = 0;
    Summary raw, overhead, corrected;
    Summary backlog;  // matched samples whose backlog wait was left in (egress a veth); n = 0 otherwise
};
Summaries summarize(const PingReport& r);

// ping-like lines, and the summary block.
std::string sample_line(const PingReport& r, const Sample& s);
std::string text_header(const PingReport& r);
std::string text_summary(const PingReport& r);
nlohmann::json to_json(const PingReport& r);
std::string to_csv(const PingReport& r);
// raw and corrected RTT per packet (and overhead), as an SVG document.
std::string ping_plot_svg(const PingReport& r);

}  // namespace vitro::measure
