// `vitro netlat calibrate`: builds the evaluation topology in namespaces of
// its own (a remote host, a host routing for a bridge, a container on the
// bridge), then, per condition (added delay, idle or under iperf3 load) and
// trial, probes the remote from the host (bare metal) and from the container
// with and without the tracer, in rotating blocks (A B C, B C A, ...), and
// reports how far the corrected RTTs are from bare metal and how much the
// tracer perturbs the RTTs it measures.
// With reference "iputils" the bare-metal reference is independent of vitro:
// iputils `ping` in the host namespace against the remote kernel's own echo
// replies, in rotating blocks with vitro's prober from the host and the
// traced prober from the container; it reports, per block, the median
// corrected RTT minus the median of ping's.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "measure/stats.hpp"

namespace vitro::measure {

struct CalibrateOptions {
    int trials = 4;
    int count = 1000;                 // echoes per kind per trial
    std::vector<double> delays_ms{0, 1};
    bool idle = true;                 // conditions without load
    bool load = true;                 // conditions under iperf3 load
    std::string load_rate = "200M";   // iperf3 -b
    double interval_ms = 2;
    int block = 50;                   // echoes per block before switching kind
    size_t payload = 56;
    bool nat = false;                 // masquerade the container's traffic at the host
    std::string reference = "vitro";  // "vitro" (its prober and responder) or "iputils" (ping, kernel echo)
};

// One round of blocks in reference mode: the medians of each kind's block.
struct ReferenceBlock {
    double reference_us = 0, bare_us = 0, corrected_us = 0;
    double difference_us() const { return corrected_us - reference_us; }
};

struct TrialResult {
    double delay_ms = 0;
    bool load = false;
    int trial = 0;
    Summary bare, untraced, traced, overhead, corrected;
    size_t traced_sent = 0, traced_matched = 0;
    uint64_t dropped_events = 0;
    uint64_t responder_answered = 0, responder_late = 0;  // delaying responder (delay > 0)
    double responder_worst_late_us = 0;
    // With a delay, every RTT above has the responder's lateness for that
    // echo taken off (the emulated path delay is exactly `delay` for all
    // three kinds); these two are the same figures before that.
    double error_uncompensated_us = 0, perturbation_uncompensated_us = 0;
    double responder_mean_late_us = 0;  // over this trial's echoes
    double error_us() const { return corrected.mean - bare.mean; }        // corrected - bare metal
    double perturbation_us() const { return traced.mean - untraced.mean; }  // traced - untraced
    std::vector<double> bare_us, untraced_us, traced_us, corrected_us;      // for the plot
    // Reference mode (iputils): ping's RTTs from the host namespace (no
    // untraced kind), the backlog wait the correction left in, per-block medians.
    size_t reference_sent = 0;
    Summary reference, backlog;
    std::vector<double> reference_us;
    std::vector<ReferenceBlock> blocks;
    double difference_us() const;  // median over blocks of (corrected - reference)
};

struct CalibrateReport {
    CalibrateOptions opts;
    std::vector<TrialResult> trials;
    std::string stopped_by;
};

// progress: one line per finished trial (may be empty).
CalibrateReport run_calibration(const CalibrateOptions& opts, const std::atomic<bool>* stop,
                                const std::function<void(const TrialResult&)>& progress);

std::string trial_line(const TrialResult& t);
std::string calibrate_text(const CalibrateReport& r);
nlohmann::json calibrate_json(const CalibrateReport& r);
std::string calibrate_svg(const CalibrateReport& r);

}  // namespace vitro::measure
