#include "measure/calibrate.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>

#include "measure/echo_responder.hpp"
#include "measure/icmp_prober.hpp"
#include "measure/netlat.hpp"
#include "measure/netns.hpp"
#include "measure/svg_plot.hpp"
#include "measure/trace_bpf.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/subprocess.hpp"

namespace vitro::measure {
namespace {

constexpr const char* kRemoteAddr = "10.77.0.2";
constexpr const char* kReferenceName = "iputils ping from the host namespace, the remote kernel's own echo replies";

// The three namespaces and their links, made with iproute2 under /run/netns
// and deleted (with every device in them) on every path.
//   remote  up-r 10.77.0.2/24
//   host    up-h 10.77.0.1/24, br0 10.77.1.1/24 with port vh0; forwards (or masquerades)
//   ctr     eth0 10.77.1.2/24, default via 10.77.1.1
class Topology {
public:
    explicit Topology(bool nat) {
        std::string p = "vitro-nl" + std::to_string(::getpid()) + "-";
        names_ = {p + "remote", p + "host", p + "ctr"};
        try {
            for (const auto& n : names_) {
                run_checked({"ip", "netns", "add", n});
                made_.push_back(n);
                run_checked({"ip", "-n", n, "link", "set", "lo", "up"});
            }
            const auto &r = names_[0], &h = names_[1], &c = names_[2];
            run_checked({"ip", "-n", r, "link", "add", "up-r", "type", "veth", "peer", "name", "up-h", "netns", h});
            run_checked({"ip", "-n", r, "addr", "add", "10.77.0.2/24", "dev", "up-r"});
            run_checked({"ip", "-n", r, "link", "set", "up-r", "up"});
            run_checked({"ip", "-n", h, "addr", "add", "10.77.0.1/24", "dev", "up-h"});
            run_checked({"ip", "-n", h, "link", "set", "up-h", "up"});
            run_checked({"ip", "-n", h, "link", "add", "br0", "type", "bridge"});
            run_checked({"ip", "-n", h, "addr", "add", "10.77.1.1/24", "dev", "br0"});
            run_checked({"ip", "-n", h, "link", "set", "br0", "up"});
            run_checked({"ip", "-n", c, "link", "add", "eth0", "type", "veth", "peer", "name", "vh0", "netns", h});
            run_checked({"ip", "-n", h, "link", "set", "vh0", "master", "br0"});
            run_checked({"ip", "-n", h, "link", "set", "vh0", "up"});
            run_checked({"ip", "-n", c, "addr", "add", "10.77.1.2/24", "dev", "eth0"});
            run_checked({"ip", "-n", c, "link", "set", "eth0", "up"});
            run_checked({"ip", "-n", c, "route", "add", "default", "via", "10.77.1.1"});
            {
                NetnsHandle hn = open_netns_path(path(1));
                run_in_netns(hn.fd.get(), [] { write_file("/proc/sys/net/ipv4/ip_forward", "1\n"); });
            }
            if (nat)
                run_checked({"ip", "netns", "exec", h, require_program("iptables"), "-t", "nat", "-A", "POSTROUTING", "-s", "10.77.1.0/24", "-o",
                             "up-h", "-j", "MASQUERADE"});
            else
                run_checked({"ip", "-n", r, "route", "add", "10.77.1.0/24", "via", "10.77.0.1"});
        } catch (...) {
            remove();
            throw;
        }
    }
    ~Topology() { remove(); }
    Topology(const Topology&) = delete;
    Topology& operator=(const Topology&) = delete;

    std::string path(int i) const { return "/run/netns/" + names_[static_cast<size_t>(i)]; }
    const std::string& name(int i) const { return names_[static_cast<size_t>(i)]; }

private:
    void remove() noexcept {
        for (const auto& n : made_) {
            try {
                run_program(require_program("ip"), {"ip", "netns", "del", n}, {}, "", 30);
            } catch (...) {
                // Best effort at cleanup (noexcept): the other namespaces are still removed
            }
        }
        made_.clear();
    }
    std::vector<std::string> names_, made_;
};

// A background process (iperf3) in a namespace: SIGTERM, then SIGKILL, and
// reaped, on every path.
class Background {
public:
    explicit Background(const std::vector<std::string>& argv) {
        std::string exe = require_program(argv[0]);
        std::vector<char*> a;
        for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
        a.push_back(nullptr);
        pid_ = check(::fork(), "fork", argv[0]);
        if (pid_ == 0) {
            int null = ::open("/dev/null", O_RDWR);
            ::dup2(null, 0), ::dup2(null, 1), ::dup2(null, 2);
            ::signal(SIGINT, SIG_IGN);  // the terminal's ^C is ours to handle
            ::execv(exe.c_str(), a.data());
            ::_exit(127);
        }
    }
    ~Background() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        for (int i = 0; i < 100; ++i) {
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
            ::usleep(20'000);
        }
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    Background(const Background&) = delete;
    Background& operator=(const Background&) = delete;
    bool running() const { return ::waitpid(pid_, nullptr, WNOHANG) == 0; }

private:
    pid_t pid_ = -1;
};

// Runs the calling thread SCHED_FIFO while it lives (best effort): the
// prober's send path and the kernel's echo reply run in its context, and
// other work on a busy machine would otherwise add its time slices to them.
class RealtimeScope {
public:
    RealtimeScope() {
        ::pthread_getschedparam(::pthread_self(), &policy_, &old_);
        sched_param sp{};
        sp.sched_priority = 10;
        ::pthread_setschedparam(::pthread_self(), SCHED_FIFO, &sp);
    }
    ~RealtimeScope() { ::pthread_setschedparam(::pthread_self(), policy_, &old_); }
    RealtimeScope(const RealtimeScope&) = delete;
    RealtimeScope& operator=(const RealtimeScope&) = delete;

private:
    int policy_ = SCHED_OTHER;
    sched_param old_{};
};

std::vector<double> rtts(const std::vector<Sample>& s, bool corrected) {
    std::vector<double> v;
    for (const auto& x : s)
        if (corrected ? x.matched : x.replied) v.push_back(corrected ? x.corrected_us : x.raw_us);
    return v;
}

double median_of(const std::vector<double>& v) { return summarize(v).median; }

// iputils ping's RTTs (its "time=" to the microsecond: kernel receive stamp
// minus a user-space send stamp, as vitro's prober) from namespace `ns_name`.
std::vector<double> iputils_ping(const std::string& ns_name, int count, double interval_ms, size_t payload) {
    char iv[32];
    std::snprintf(iv, sizeof(iv), "%.6f", interval_ms / 1000.0);
    std::vector<std::string> argv{"ip",  "netns", "exec", ns_name, require_program("ping"), "-n", "-c", std::to_string(count),
                                  "-i", iv,       "-s",   std::to_string(payload), "-W", "1", kRemoteAddr};
    int limit = static_cast<int>(count * interval_ms / 1000.0) + 30;
    RunResult r = run_program_capture(require_program("ip"), argv, {}, "", limit);
    // 1: some echoes unanswered (counted by the caller); anything else failed.
    if (!WIFEXITED(r.status) || (WEXITSTATUS(r.status) != 0 && WEXITSTATUS(r.status) != 1))
        throw Error("calibrate: ping in " + ns_name + ": " + describe_status(r, limit) + (r.stderr_tail.empty() ? "" : ": " + r.stderr_tail));
    std::vector<double> v;
    for (size_t p = 0; (p = r.stdout_data.find(" time=", p)) != std::string::npos; p += 6)
        v.push_back(std::strtod(r.stdout_data.c_str() + p + 6, nullptr) * 1000.0);
    return v;
}

// One trial against iputils ping: rounds of three blocks (ping from the
// host, vitro's prober from the host, the traced prober from the container),
// the first kind rotating, as `run_calibration`'s.
TrialResult reference_trial(const CalibrateOptions& o, const std::string& host_ns, IcmpProber& bare, IcmpProber& traced,
                            BpfTracer& tracer, NamespacePair ns, const ProbeSchedule& sched, const std::atomic<bool>* stop) {
    TrialResult tr;
    std::vector<Sample> sb, st;
    iputils_ping(host_ns, 5, o.interval_ms, o.payload);  // warm-up, not counted
    int rounds = (o.count + o.block - 1) / o.block;
    for (int round = 0; round < rounds && !(stop && stop->load()); ++round) {
        ProbeSchedule blk = sched;
        blk.count = std::min(o.block, o.count - round * o.block);
        blk.first_seq = static_cast<uint16_t>(round * o.block);
        ReferenceBlock b;
        for (int k = 0; k < 3; ++k) {
            int kind = (round + k) % 3;
            if (kind == 0) {
                auto v = iputils_ping(host_ns, *blk.count, o.interval_ms, o.payload);
                tr.reference_sent += static_cast<size_t>(*blk.count);
                b.reference_us = median_of(v);
                tr.reference_us.insert(tr.reference_us.end(), v.begin(), v.end());
            } else if (kind == 1) {
                auto v = run_probes(bare, blk, nullptr, ns, stop);
                b.bare_us = median_of(rtts(v, false));
                sb.insert(sb.end(), v.begin(), v.end());
            } else {
                tracer.attach();
                auto v = run_probes(traced, blk, &tracer, ns, stop);
                tracer.detach();
                b.corrected_us = median_of(rtts(v, true));
                st.insert(st.end(), v.begin(), v.end());
            }
        }
        tr.blocks.push_back(b);
    }
    tr.bare_us = rtts(sb, false);
    tr.traced_us = rtts(st, false);
    tr.corrected_us = rtts(st, true);
    std::vector<double> ovh, blg;
    for (const auto& x : st)
        if (x.matched) ovh.push_back(x.overhead_us), blg.push_back(x.backlog_us);
    tr.reference = summarize(tr.reference_us);
    tr.bare = summarize(tr.bare_us);
    tr.traced = summarize(tr.traced_us);
    tr.corrected = summarize(tr.corrected_us);
    tr.overhead = summarize(ovh);
    tr.backlog = summarize(blg);
    tr.traced_sent = st.size();
    tr.traced_matched = tr.corrected_us.size();
    tr.dropped_events = tracer.dropped();
    return tr;
}

}  // namespace

CalibrateReport run_calibration(const CalibrateOptions& o, const std::atomic<bool>* stop,
                                const std::function<void(const TrialResult&)>& progress) {
    if (o.trials < 1 || o.count < 1 || o.block < 1 || o.interval_ms <= 0)
        throw Error(EINVAL, "calibrate: --trials, --count, --block and --interval must be positive");
    if (!o.idle && !o.load) throw Error(EINVAL, "calibrate: nothing to do (neither idle nor load conditions)");
    const bool iputils = o.reference == "iputils";
    if (!iputils && o.reference != "vitro") throw Error(EINVAL, "--reference " + o.reference + ": expected vitro or iputils");
    if (iputils) {
        if (std::any_of(o.delays_ms.begin(), o.delays_ms.end(), [](double d) { return d != 0; }))
            throw Error(EINVAL, "--reference iputils: the remote kernel answers the echoes, so there is no added delay: --delays must be 0");
        require_program("ping");
    }
    CalibrateReport rep;
    rep.opts = o;

    Topology topo(o.nat);
    NetnsHandle remote = open_netns_path(topo.path(0)), host = open_netns_path(topo.path(1)), ctr = open_netns_path(topo.path(2));
    in_addr target = resolve_ipv4(kRemoteAddr);
    std::random_device rd;
    uint16_t bare_id = static_cast<uint16_t>(rd()), untraced_id = static_cast<uint16_t>(bare_id + 1),
             traced_id = static_cast<uint16_t>(bare_id + 2);
    IcmpProber bare(host.fd.get(), target, bare_id, o.payload);
    IcmpProber untraced(ctr.fd.get(), target, untraced_id, o.payload);
    IcmpProber traced(ctr.fd.get(), target, traced_id, o.payload);
    const NamespacePair ns{ctr.inode, host.inode};
    // As `netlat ping` runs by default: the four edge events, our two namespaces.
    BpfTracer tracer({traced_id, 0, ctr.inode, host.inode, false});
    // vitro's reference runs its prober SCHED_FIFO; iputils ping runs as
    // users run it, and vitro's probers then do too.
    std::optional<RealtimeScope> realtime;
    if (!iputils) realtime.emplace();

    ProbeSchedule sched;
    sched.interval = std::chrono::microseconds(static_cast<int64_t>(std::llround(o.interval_ms * 1000)));
    sched.timeout = std::chrono::milliseconds(1000);

    std::vector<bool> loads;
    if (o.idle) loads.push_back(false);
    if (o.load) loads.push_back(true);
    for (bool load : loads) {
        std::optional<Background> server, client;
        if (load) {
            server.emplace(std::vector<std::string>{"ip", "netns", "exec", topo.name(0), require_program("iperf3"), "-s", "-p", "5299"});
            ::usleep(300'000);  // the server's listen
            client.emplace(std::vector<std::string>{"ip", "netns", "exec", topo.name(2), require_program("iperf3"), "-c", kRemoteAddr, "-p", "5299",
                                                    "-t", "86400", "-b", o.load_rate});
            ::usleep(500'000);
            if (!client->running()) throw Error("calibrate: the iperf3 load did not start (is iperf3 installed?)");
        }
        for (double delay : o.delays_ms) {
            std::optional<EchoResponder> responder;
            if (delay > 0) responder.emplace(remote.fd.get(), std::chrono::microseconds(std::llround(delay * 1000)));
            for (int t = 0; t < o.trials; ++t) {
                if (stop && stop->load()) break;
                uint64_t answered0 = responder ? responder->answered() : 0, late0 = responder ? responder->late() : 0;
                if (responder) responder->clear_late();
                // Warm-up: neighbour entries, caches; not counted.
                ProbeSchedule warm = sched;
                warm.count = 20;
                warm.first_seq = 60000;  // apart from the measured sequence numbers
                run_probes(bare, warm, nullptr, ns, stop);
                run_probes(untraced, warm, nullptr, ns, stop);

                if (iputils) {
                    TrialResult tr = reference_trial(o, topo.name(1), bare, traced, tracer, ns, sched, stop);
                    if (stop && stop->load()) break;
                    tr.load = load;
                    tr.trial = t + 1;
                    if (progress) progress(tr);
                    rep.trials.push_back(std::move(tr));
                    continue;
                }
                std::vector<Sample> sb, su, st;
                int rounds = (o.count + o.block - 1) / o.block;
                for (int round = 0; round < rounds && !(stop && stop->load()); ++round) {
                    ProbeSchedule blk = sched;
                    blk.count = std::min(o.block, o.count - round * o.block);
                    blk.first_seq = static_cast<uint16_t>(round * o.block);  // unique within a trial
                    for (int k = 0; k < 3; ++k) {
                        int kind = (round + k) % 3;  // rotate which kind goes first
                        if (kind == 0) {
                            auto v = run_probes(bare, blk, nullptr, ns, stop);
                            sb.insert(sb.end(), v.begin(), v.end());
                        } else if (kind == 1) {
                            auto v = run_probes(untraced, blk, nullptr, ns, stop);
                            su.insert(su.end(), v.begin(), v.end());
                        } else {
                            tracer.attach();
                            auto v = run_probes(traced, blk, &tracer, ns, stop);
                            tracer.detach();
                            st.insert(st.end(), v.begin(), v.end());
                        }
                    }
                }
                if (stop && stop->load()) break;
                TrialResult tr;
                tr.delay_ms = delay;
                tr.load = load;
                tr.trial = t + 1;
                auto mean = [](const std::vector<double>& v) { return summarize(v).mean; };
                tr.error_uncompensated_us = mean(rtts(st, true)) - mean(rtts(sb, false));
                tr.perturbation_uncompensated_us = mean(rtts(st, false)) - mean(rtts(su, false));
                if (responder) {
                    // The delaying responder's wake-ups are late by up to ms on a
                    // busy VM, for any kind of echo: taken off each echo's RTT.
                    double late_sum = 0;
                    size_t late_n = 0;
                    auto compensate = [&](std::vector<Sample>& v, const IcmpProber& pr) {
                        for (auto& x : v) {
                            double late = static_cast<double>(responder->lateness_ns(pr.id(), x.seq)) / 1000.0;
                            if (!x.replied) continue;
                            x.raw_us -= late;
                            if (x.matched) x.corrected_us -= late;
                            late_sum += late;
                            ++late_n;
                        }
                    };
                    compensate(sb, bare);
                    compensate(su, untraced);
                    compensate(st, traced);
                    tr.responder_mean_late_us = late_n ? late_sum / static_cast<double>(late_n) : 0;
                }
                tr.bare_us = rtts(sb, false);
                tr.untraced_us = rtts(su, false);
                tr.traced_us = rtts(st, false);
                tr.corrected_us = rtts(st, true);
                std::vector<double> ovh;
                for (const auto& x : st)
                    if (x.matched) ovh.push_back(x.overhead_us);
                tr.bare = summarize(tr.bare_us);
                tr.untraced = summarize(tr.untraced_us);
                tr.traced = summarize(tr.traced_us);
                tr.corrected = summarize(tr.corrected_us);
                tr.overhead = summarize(ovh);
                tr.traced_sent = st.size();
                tr.traced_matched = tr.corrected_us.size();
                tr.dropped_events = tracer.dropped();
                if (responder) {
                    tr.responder_answered = responder->answered() - answered0;
                    tr.responder_late = responder->late() - late0;
                    tr.responder_worst_late_us = static_cast<double>(responder->worst_late_ns()) / 1000.0;
                }
                if (progress) progress(tr);
                rep.trials.push_back(std::move(tr));
            }
        }
    }
    return rep;
}

double TrialResult::difference_us() const {
    std::vector<double> d;
    for (const auto& b : blocks) d.push_back(b.difference_us());
    return median_of(d);
}

static std::string reference_line(const TrialResult& t) {
    std::vector<double> d;
    for (const auto& b : t.blocks) d.push_back(b.difference_us());
    auto [lo, hi] = d.empty() ? std::pair{0.0, 0.0} : std::pair{*std::min_element(d.begin(), d.end()), *std::max_element(d.begin(), d.end())};
    char b[512];
    std::snprintf(b, sizeof(b),
                  "%-4s trial %d: ping %6.1f  vitro bare %6.1f  container raw %6.1f  overhead %5.1f  backlog wait %4.1f  corrected %6.1f  "
                  "| corrected - ping %+5.1f us (per round %+.1f to %+.1f; ping %zu/%zu, matched %zu/%zu)\n",
                  t.load ? "load" : "idle", t.trial, t.reference.median, t.bare.median, t.traced.median, t.overhead.median,
                  t.backlog.median, t.corrected.median, t.difference_us(), lo, hi, t.reference.n, t.reference_sent, t.traced_matched,
                  t.traced_sent);
    return b;
}

std::string trial_line(const TrialResult& t) {
    if (!t.blocks.empty()) return reference_line(t);
    char b[512];
    std::snprintf(b, sizeof(b),
                  "delay %4.1f ms %-5s trial %d: bare %7.1f  untraced %7.1f  traced %7.1f  overhead %6.1f  corrected %7.1f  "
                  "| error %+6.1f  perturbation %+6.1f us  (matched %zu/%zu)",
                  t.delay_ms, t.load ? "load" : "idle", t.trial, t.bare.mean, t.untraced.mean, t.traced.mean, t.overhead.mean,
                  t.corrected.mean, t.error_us(), t.perturbation_us(), t.traced_matched, t.traced_sent);
    std::string line = b;
    if (t.responder_answered) {
        std::snprintf(b, sizeof(b), "  | responder late by %.1f us on average (%llu over 20 us); uncompensated: error %+6.1f  perturbation %+6.1f us",
                      t.responder_mean_late_us, static_cast<unsigned long long>(t.responder_late), t.error_uncompensated_us,
                      t.perturbation_uncompensated_us);
        line += b;
    }
    return line + "\n";
}

std::string calibrate_text(const CalibrateReport& r) {
    if (r.opts.reference == "iputils") {
        std::string o = std::string("reference: ") + kReferenceName +
                        "; medians in microseconds; corrected - ping: the median over rounds of (median corrected - median ping) "
                        "of a round's blocks\n";
        if (r.opts.interval_ms < 10)
            o += "note: at intervals below 10 ms iputils ping spins between echoes (sched_yield, non-blocking recvmsg) where "
                 "vitro's prober sleeps, and reads lower for that alone\n";
        double worst = 0;
        for (const auto& t : r.trials) {
            o += trial_line(t);
            worst = std::max(worst, std::fabs(t.difference_us()));
        }
        char b[200];
        std::snprintf(b, sizeof(b), "worst |corrected - ping| %.1f us over %zu trials\n", worst, r.trials.size());
        o += b;
        if (!r.stopped_by.empty()) o += "stopped by " + r.stopped_by + ": the trials above are all that finished\n";
        return o;
    }
    std::string o = "means in microseconds; error = mean corrected - mean bare metal; perturbation = mean traced - mean untraced (container)\n";
    for (const auto& t : r.trials) o += trial_line(t);
    double worst_err = 0, worst_pert = r.trials.empty() ? 0 : -1e300;
    for (const auto& t : r.trials) {
        worst_err = std::max(worst_err, std::fabs(t.error_us()));
        worst_pert = std::max(worst_pert, t.perturbation_us());
    }
    char b[200];
    std::snprintf(b, sizeof(b), "worst |error| %.1f us, worst perturbation %.1f us over %zu trials\n", worst_err, worst_pert,
                  r.trials.size());
    o += b;
    if (!r.stopped_by.empty()) o += "stopped by " + r.stopped_by + ": the trials above are all that finished\n";
    return o;
}

nlohmann::json calibrate_json(const CalibrateReport& r) {
    auto sj = [](const Summary& s) {
        return nlohmann::json{{"n", s.n},          {"mean_us", s.mean}, {"median_us", s.median}, {"p90_us", s.p90},
                              {"p99_us", s.p99},   {"stdev_us", s.stdev}};
    };
    nlohmann::json trials = nlohmann::json::array();
    for (const auto& t : r.trials)
        trials.push_back({{"delay_ms", t.delay_ms},
                          {"load", t.load},
                          {"trial", t.trial},
                          {"bare", sj(t.bare)},
                          {"untraced", sj(t.untraced)},
                          {"traced", sj(t.traced)},
                          {"overhead", sj(t.overhead)},
                          {"corrected", sj(t.corrected)},
                          {"error_us", t.error_us()},
                          {"perturbation_us", t.perturbation_us()},
                          {"traced_sent", t.traced_sent},
                          {"traced_matched", t.traced_matched},
                          {"dropped_events", t.dropped_events},
                          {"responder_answered", t.responder_answered},
                          {"responder_late_over_20us", t.responder_late},
                          {"responder_worst_late_us_so_far", t.responder_worst_late_us},
                          {"responder_mean_late_us", t.responder_mean_late_us},
                          {"error_uncompensated_us", t.error_uncompensated_us},
                          {"perturbation_uncompensated_us", t.perturbation_uncompensated_us}});
    if (r.opts.reference == "iputils")
        for (size_t i = 0; i < r.trials.size(); ++i) {
            const auto& t = r.trials[i];
            auto& j = trials[i];
            for (const char* k : {"untraced", "perturbation_us", "responder_answered", "responder_late_over_20us",
                                  "responder_worst_late_us_so_far", "responder_mean_late_us", "error_uncompensated_us",
                                  "perturbation_uncompensated_us"})
                j.erase(k);
            j["reference"] = sj(t.reference);
            j["reference_sent"] = t.reference_sent;
            j["backlog"] = sj(t.backlog);
            j["difference_us"] = t.difference_us();
            nlohmann::json blocks = nlohmann::json::array();
            for (const auto& b : t.blocks)
                blocks.push_back({{"reference_median_us", b.reference_us},
                                  {"bare_median_us", b.bare_us},
                                  {"corrected_median_us", b.corrected_us},
                                  {"difference_us", b.difference_us()}});
            j["blocks"] = std::move(blocks);
        }
    nlohmann::json out = {{"trials", trials},
                          {"count", r.opts.count},
                          {"interval_ms", r.opts.interval_ms},
                          {"block", r.opts.block},
                          {"payload_bytes", r.opts.payload},
                          {"nat", r.opts.nat},
                          {"reference", r.opts.reference},
                          {"reference_description",
                           r.opts.reference == "iputils" ? kReferenceName : "vitro's prober from the host namespace, vitro's delaying responder or the remote kernel"},
                          {"load_rate", r.opts.load_rate}};
    if (!r.stopped_by.empty()) out["stopped_by"] = r.stopped_by;
    return out;
}

std::string calibrate_svg(const CalibrateReport& r) {
    // One CDF panel per condition (all its trials pooled), then the per-trial
    // error and perturbation.
    std::vector<Chart> charts;
    std::vector<std::pair<double, bool>> conds;
    for (const auto& t : r.trials)
        if (std::find(conds.begin(), conds.end(), std::make_pair(t.delay_ms, t.load)) == conds.end())
            conds.emplace_back(t.delay_ms, t.load);
    for (auto [delay, load] : conds) {
        std::vector<double> ref, b, u, tr, c;
        for (const auto& t : r.trials)
            if (t.delay_ms == delay && t.load == load) {
                ref.insert(ref.end(), t.reference_us.begin(), t.reference_us.end());
                b.insert(b.end(), t.bare_us.begin(), t.bare_us.end());
                u.insert(u.end(), t.untraced_us.begin(), t.untraced_us.end());
                tr.insert(tr.end(), t.traced_us.begin(), t.traced_us.end());
                c.insert(c.end(), t.corrected_us.begin(), t.corrected_us.end());
            }
        // Clip the x axis at the 99th percentile of the traced RTTs: the tail
        // would squash the rest.
        std::vector<double> all = tr;
        std::sort(all.begin(), all.end());
        double clip = all.empty() ? 0 : quantile_sorted(all, 0.99);
        auto clipped = [&](std::vector<double> v) {
            auto pts = cdf_points(std::move(v));
            std::erase_if(pts, [&](auto& p) { return p.first > clip; });
            return pts;
        };
        char title[128];
        std::snprintf(title, sizeof(title), "RTT CDF, %.1f ms added delay, %s", delay, load ? "iperf3 load" : "idle");
        std::vector<Series> series;
        if (!ref.empty()) series.push_back({"iputils ping (host)", "#2ca02c", clipped(ref), true});
        series.push_back({"bare metal (host)", "#000000", clipped(b), true});
        if (!u.empty()) series.push_back({"container, untraced", "#ff7f0e", clipped(u), true});
        series.push_back({"container, traced (raw)", "#d62728", clipped(tr), true});
        series.push_back({"container, corrected", "#1f77b4", clipped(c), true});
        charts.push_back({title, "RTT (microseconds), up to the traced p99", "fraction", std::move(series)});
    }
    if (r.opts.reference == "iputils") {
        Series d{"median corrected - median ping, per round", "#1f77b4", {}, false};
        int i = 0;
        for (const auto& t : r.trials)
            for (const auto& b : t.blocks) d.points.emplace_back(++i, b.difference_us());
        charts.push_back({"against iputils ping, per round of blocks", "round", "microseconds", {d}});
        return render_svg(charts);
    }
    Series err{"error (corrected - bare)", "#1f77b4", {}, false}, pert{"perturbation (traced - untraced)", "#d62728", {}, false};
    for (size_t i = 0; i < r.trials.size(); ++i) {
        err.points.emplace_back(static_cast<double>(i + 1), r.trials[i].error_us());
        pert.points.emplace_back(static_cast<double>(i + 1), r.trials[i].perturbation_us());
    }
    charts.push_back({"per trial, in the order above", "trial", "microseconds", {err, pert}});
    return render_svg(charts);
}

}  // namespace vitro::measure
