// netlat ping|calibrate: container network RTTs with the virtual-device
// overhead removed (measure/: prober, BPF tracer, matcher, calibration).
#include <arpa/inet.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cmd/vitro/cli.hpp"
#include "cmd/vitro/common.hpp"
#include "measure/calibrate.hpp"
#include "measure/netlat.hpp"
#include "measure/stop_signals.hpp"
#include "measure/target.hpp"
#include "measure/trace_tracefs.hpp"
#include "util/error.hpp"
#include "util/file.hpp"

namespace vitro::cli {

namespace {

struct PingFlags {
    std::vector<std::string> args;  // [CONTAINER] TARGET
    std::string netns, host_netns, format = "text", plot, tracer = "auto";
    pid_t pid = 0;
    int count = -1;
    double interval_s = 1.0, timeout_s = 1.0;
    size_t size = 56;
    bool all_hops = false;
};

uint16_t random_icmp_id() {
    std::random_device rd;
    return static_cast<uint16_t>((rd() ^ static_cast<unsigned>(::getpid())) | 1);
}

void write_text_file(const std::string& path, const std::string& data) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f) throw_errno("open", path);
    bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
    ok = std::fclose(f) == 0 && ok;
    if (!ok) throw_errno("write", path);
}

void run_ping(Globals& g, const PingFlags& f) {
    if (f.format != "text" && f.format != "json" && f.format != "csv")
        throw Error(EINVAL, "--format " + f.format + ": expected text, json or csv");
    if (f.tracer != "auto" && f.tracer != "bpf" && f.tracer != "tracefs" && f.tracer != "none")
        throw Error(EINVAL, "--tracer " + f.tracer + ": expected auto, bpf, tracefs or none");
    int sources = (f.netns.empty() ? 0 : 1) + (f.pid ? 1 : 0);
    if (sources > 1) throw Error(EINVAL, "give one of CONTAINER, --netns and --pid");
    size_t want = sources ? 1 : 2;
    if (f.args.size() != want)
        throw Error(EINVAL, sources ? "expected one TARGET after --netns/--pid, got " + std::to_string(f.args.size()) + " arguments"
                                    : "expected CONTAINER TARGET (or --netns PATH / --pid PID and TARGET)");
    if (f.interval_s <= 0 || f.timeout_s <= 0) throw Error(EINVAL, "--interval and --timeout must be positive");
    if (f.count == 0 || f.count < -1) throw Error(EINVAL, "--count must be at least 1");

    measure::NetnsHandle src;
    if (!f.netns.empty()) src = measure::open_netns_path(f.netns);
    else if (f.pid) src = measure::open_netns_of_pid(f.pid);
    else {
        engine::Engine eng(engine_options(g));
        src = measure::open_netns_of_container(eng, f.args[0]);
    }
    measure::NetnsHandle host = f.host_netns.empty() ? measure::own_netns() : measure::open_netns_path(f.host_netns);
    if (f.tracer != "none") measure::require_separate_netns(src, host);

    const std::string& target = f.args.back();
    in_addr addr = measure::resolve_ipv4(target);
    char abuf[INET_ADDRSTRLEN];
    measure::PingReport rep;
    rep.source = src.description;
    rep.target = target;
    rep.target_addr = ::inet_ntop(AF_INET, &addr, abuf, sizeof(abuf));
    rep.payload = f.size;
    rep.icmp_id = random_icmp_id();

    measure::IcmpProber prober(src.fd.get(), addr, rep.icmp_id, f.size);
    // Signals first, then the tracer: a signal from here on ends the loop
    // and the tracer's owner detaches it on the way out.
    measure::StopOnSignals stop;
    std::unique_ptr<measure::Tracer> tracer;
    if (f.tracer == "bpf" || f.tracer == "auto") {
        try {
            auto bpf = std::make_unique<measure::BpfTracer>(
                measure::BpfTracer::Config{rep.icmp_id, 0, src.inode, host.inode, f.all_hops});
            bpf->attach();
            tracer = std::move(bpf);
        } catch (const Error& e) {
            if (f.tracer == "bpf") throw;
            std::fprintf(stderr, "netlat: BPF tracer unavailable (%s); falling back to tracefs\n", e.what());
        }
    }
    if (!tracer && f.tracer != "none") {
        // Trace events name devices, not namespaces: find the two devices on
        // the path by route lookups.
        measure::TracefsTracer::Config tc;
        tc.container_dev = measure::route_device(src.fd.get(), rep.target_addr);
        tc.host_dev = measure::route_device(host.fd.get(), rep.target_addr);
        tc.ns_container = src.inode;
        tc.ns_host = host.inode;
        tc.ip_len = 20 + 8 + f.size;
        tracer = std::make_unique<measure::TracefsTracer>(tc);
    }
    rep.tracer = tracer ? tracer->kind() : "none";

    measure::ProbeSchedule sched;
    if (f.count > 0) sched.count = f.count;
    sched.interval = std::chrono::microseconds(static_cast<int64_t>(std::llround(f.interval_s * 1e6)));
    sched.timeout = std::chrono::milliseconds(static_cast<int64_t>(std::llround(f.timeout_s * 1e3)));

    bool text = f.format == "text";
    if (text) std::fputs(measure::text_header(rep).c_str(), stdout), std::fflush(stdout);
    rep.samples = measure::run_probes(prober, sched, tracer.get(), {src.inode, host.inode}, stop.flag(),
                                      [&](const measure::Sample& s) {
                                          if (!text) return;
                                          std::fputs(measure::sample_line(rep, s).c_str(), stdout);
                                          std::fflush(stdout);
                                      });
    if (tracer) {
        rep.dropped_events = tracer->dropped();
        tracer.reset();  // detached before anything else can fail
    }
    rep.stopped_by = signal_name(stop.signal());

    if (text) std::fputs(("\n" + measure::text_summary(rep)).c_str(), stdout);
    else if (f.format == "json") std::printf("%s\n", measure::to_json(rep).dump(2).c_str());
    else std::fputs(measure::to_csv(rep).c_str(), stdout);
    std::fflush(stdout);
    if (!f.plot.empty()) write_text_file(f.plot, measure::ping_plot_svg(rep));

    auto sum = measure::summarize(rep);
    if (sum.sent > 0 && sum.received == 0)
        throw Error(EHOSTUNREACH, "no reply from " + target + " (" + rep.target_addr + "): " + std::to_string(sum.sent) +
                                      " echo requests sent from " + rep.source + ", none answered (target unreachable?)");
}

}  // namespace

void add_netlat_commands(CLI::App& app, Globals& g) {
    auto* netlat = app.add_subcommand("netlat", "container network RTTs with the virtual-device overhead removed");
    netlat->require_subcommand(1);

    auto pf = std::make_shared<PingFlags>();
    auto* ping = netlat->add_subcommand("ping", "ICMP echo from a container's network namespace, traced through the virtual devices");
    ping->add_option("args", pf->args, "[CONTAINER] TARGET: a container (name or ID) and an IPv4 address or host name")->required();
    ping->add_option("--netns", pf->netns, "probe from this network namespace file (e.g. /run/netns/NAME) instead of a container");
    ping->add_option("--pid", pf->pid, "probe from the network namespace of this process (e.g. a podman or containerd container's)");
    ping->add_option("--host-netns", pf->host_netns, "the host's network namespace, where traffic leaves for the target (default: vitro's own)");
    ping->add_option("-c,--count", pf->count, "stop after this many echo requests (default: until interrupted)");
    ping->add_option("-i,--interval", pf->interval_s, "seconds between echo requests (default 1)");
    ping->add_option("-s,--size", pf->size, "data bytes per echo request (default 56)");
    ping->add_option("-W,--timeout", pf->timeout_s, "seconds to wait for each reply (default 1)");
    ping->add_option("--format", pf->format, "text (per packet, then a summary), json or csv");
    ping->add_option("--plot", pf->plot, "also write an SVG plot of raw and corrected RTTs to this file");
    ping->add_option("--tracer", pf->tracer,
                     "auto (default: bpf, else the tracefs fallback), bpf, tracefs (microsecond stamps, matched by device, "
                     "length and skb address), or none for raw RTTs only");
    ping->add_flag("--hops", pf->all_hops,
                   "record every device on the path (json: events), not only the four the overhead needs (more perturbation)");
    ping->callback([&g, pf] { run_ping(g, *pf); });

    auto co = std::make_shared<measure::CalibrateOptions>();
    auto cf = std::make_shared<PingFlags>();  // format and plot only
    auto* cal = netlat->add_subcommand("calibrate",
                                       "build a remote/host/container topology in namespaces of its own and measure netlat's "
                                       "error against bare metal and its perturbation");
    cal->add_option("--trials", co->trials, "trials per condition (default 4)");
    auto* count = cal->add_option("-c,--count", co->count, "echoes per kind (bare, untraced, traced) per trial (default 1000; 300 with --reference iputils)");
    auto* delays = cal->add_option("--delays", co->delays_ms, "added path delays in ms, by vitro's delaying echo responder (default 0 1)")
                       ->delimiter(',');
    auto* interval = cal->add_option("-i,--interval", co->interval_ms, "milliseconds between echo requests (default 2; 20 with --reference iputils)");
    cal->add_option("--block", co->block, "echoes per kind before switching to the next kind (default 50)");
    cal->add_option("-s,--size", co->payload, "data bytes per echo request (default 56)");
    cal->add_option("--load-rate", co->load_rate, "iperf3 -b rate of the background load (default 200M)");
    auto no_load = std::make_shared<bool>(false), no_idle = std::make_shared<bool>(false);
    cal->add_flag("--no-load", *no_load, "skip the conditions under iperf3 load");
    cal->add_flag("--no-idle", *no_idle, "skip the conditions without load");
    cal->add_flag("--nat", co->nat, "masquerade the container's traffic at the host instead of routing it");
    cal->add_option("--reference", co->reference,
                    "what the corrected RTTs are compared with: vitro (default: vitro's prober from the host, vitro's "
                    "delaying responder) or iputils (iputils ping from the host against the remote kernel's own echo "
                    "replies, in rotating blocks; no added delay)");
    cal->add_option("--format", cf->format, "text or json");
    cal->add_option("--plot", cf->plot, "write an SVG plot (CDFs per condition, error and perturbation per trial) to this file");
    cal->callback([co, cf, no_load, no_idle, delays, count, interval] {
        if (cf->format != "text" && cf->format != "json") throw Error(EINVAL, "--format " + cf->format + ": expected text or json");
        measure::CalibrateOptions o = *co;
        if (o.reference == "iputils") {
            if (delays->count() == 0) o.delays_ms = {0};  // the kernel answers at once
            // Below 10 ms iputils ping spins (sched_yield, non-blocking
            // recvmsg) between echoes instead of sleeping as vitro's prober
            // does, and its RTTs come out lower for that alone.
            if (interval->count() == 0) o.interval_ms = 20;
            if (count->count() == 0) o.count = 300;
        }
        o.load = !*no_load;
        o.idle = !*no_idle;
        measure::StopOnSignals stop;
        bool text = cf->format == "text";
        auto rep = measure::run_calibration(o, stop.flag(), [&](const measure::TrialResult& t) {
            if (!text) return;
            std::fputs(measure::trial_line(t).c_str(), stdout);
            std::fflush(stdout);
        });
        rep.stopped_by = signal_name(stop.signal());
        if (text) std::fputs(("\n" + measure::calibrate_text(rep)).c_str(), stdout);
        else std::printf("%s\n", measure::calibrate_json(rep).dump(2).c_str());
        if (!cf->plot.empty()) write_text_file(cf->plot, measure::calibrate_svg(rep));
    });
}

}  // namespace vitro::cli
