// vitro baseline learn|show, vitro alerts, vitro detect: pristine versus
// infected (src/introspect/detector.hpp) on top of the continuous capture.
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <memory>
#include <thread>

#include "cmd/vitro/capture_run.hpp"
#include "cmd/vitro/common.hpp"
#include "engine/engine.hpp"
#include "introspect/common/cgroup_counters.hpp"
#include "introspect/common/process_snapshot.hpp"
#include "introspect/detect/detector.hpp"
#include "introspect/evidence/capture.hpp"
#include "introspect/evidence/evidence_store.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/time.hpp"

namespace vitro::cli {

namespace {

using engine::ContainerRecord;
using nlohmann::json;
using namespace vitro::introspect;

std::string evidence_store(const Globals& g, const std::string& flag) {
    return flag.empty() ? default_evidence_path(engine_options(g).root) : flag;
}

// "30s", "5m", "1h", "90" (seconds), "1.5s".
double parse_duration_s(const std::string& v, const char* flag) {
    auto bad = [&] { return Error(EINVAL, std::string(flag) + " \"" + v + "\": expected a duration like 30s, 5m or 1h"); };
    if (v.empty()) throw bad();
    double mult = 1;
    std::string num = v;
    if (v.size() > 2 && v.substr(v.size() - 2) == "ms") {
        mult = 0.001;
        num = v.substr(0, v.size() - 2);
    } else if (char u = v.back(); u == 's' || u == 'm' || u == 'h') {
        mult = u == 's' ? 1 : u == 'm' ? 60 : 3600;
        num = v.substr(0, v.size() - 1);
    }
    if (num.empty() || num.find_first_not_of("0123456789.") != std::string::npos) throw bad();
    double d = std::stod(num) * mult;
    if (d <= 0) throw bad();
    return d;
}

// Unix seconds, RFC 3339 (UTC "Z") or a duration before now ("10m").
int64_t parse_since_ns(const std::string& v) {
    if (!v.empty() && v.find_first_not_of("0123456789") == std::string::npos) return std::stoll(v) * 1000000000LL;
    std::tm tm{};
    if (const char* rest = ::strptime(v.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) {
        int64_t ns = static_cast<int64_t>(::timegm(&tm)) * 1000000000LL;
        if (*rest == '.') {
            int64_t scale = 100000000;
            for (++rest; *rest >= '0' && *rest <= '9'; ++rest, scale /= 10) ns += (*rest - '0') * scale;
        }
        if ((*rest == 'Z' && rest[1] == 0) || *rest == 0) return ns;
    }
    try {
        return now_ns() - static_cast<int64_t>(parse_duration_s(v, "--since") * 1e9);
    } catch (const Error&) {
        throw Error(EINVAL, "--since \"" + v + "\": expected unix seconds, an RFC 3339 time (UTC) or a duration like 10m");
    }
}


ContainerRecord running(engine::Engine& eng, const std::string& ref) {
    auto c = eng.get(ref);
    if (!engine::is_running(c) || engine::init_pid(c) <= 0) throw Error(ESRCH, "container " + ref + " is not running");
    return c;
}

std::string alert_line(int64_t time_ns, const json& a, uint64_t seq) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%-8s", a.value("severity", "").c_str());
    return rfc3339_ns(time_ns) + " " + a.value("container", "") + " " + buf + " " + a.value("rule", "") + ": " +
           a.value("details", "") + " (trigger seq " + std::to_string(a.value("trigger_seq", uint64_t{0})) +
           (seq ? ", alert seq " + std::to_string(seq) : "") + ")";
}

}  // namespace

void add_detect_commands(CLI::App& app, Globals& g) {
    // ---------------- baseline
    auto* bl = app.add_subcommand("baseline", "what a pristine container does: learn it, show it (for vitro detect)");
    bl->require_subcommand(1);

    struct LearnFlags {
        std::string container, duration, out, store;
        bool no_store = false;
    };
    auto lf = std::make_shared<LearnFlags>();
    auto* learn = bl->add_subcommand(
        "learn", "watch a running, known-good container for a while and record its baseline (Ctrl-C ends early)");
    learn->add_option("container", lf->container, "container name or ID")->required();
    learn->add_option("--for", lf->duration, "how long to watch: 30s, 5m, 1h")->required();
    learn->add_option("-o,--output", lf->out, "baseline file (default <root>/baselines/<container-id>.json)");
    learn->add_option("--store", lf->store, "evidence store the watched events go to (default <root>/evidence/evidence.db)");
    learn->add_flag("--no-store", lf->no_store, "record no events in the evidence store");
    learn->callback([&g, lf] {
        double secs = parse_duration_s(lf->duration, "--for");
        engine::Engine eng(engine_options(g));
        ContainerRecord c = running(eng, lf->container);
        std::string out = lf->out.empty() ? default_baseline_path(engine_options(g).root, c.id) : lf->out;
        Baseline seed;
        seed.container_id = c.id;
        seed.container_name = c.name;
        seed.image = c.image;
        seed.image_digest = c.image_digest;
        seed.learned_at_ns = now_ns();
        BaselineLearner learner(seed);
        // What runs there already (the service itself) is part of the baseline.
        for (pid_t pid : eng.pids(c.id)) {
            auto info = process_info(pid, true);
            if (!info) continue;
            std::string pc = "?";
            if (auto p = process_info(info->value("ppid", 0), false)) pc = p->value("comm", "?");
            learner.add_process(*info, pc);
        }
        CaptureOptions opts;
        if (!lf->no_store) {
            opts.store_path = evidence_store(g, lf->store);
            EvidenceStore make(opts.store_path);
        }
        opts.sample_interval_ms = 1000;
        Capture cap(opts);
        cap.watch(watch_target(c));
        cap.subscribe([&](const Event& e) { learner.on_event(e); });
        StopSignals sw;
        std::fprintf(stderr, "baseline learn: watching %s for %.0f s\n", c.name.c_str(), secs);
        auto t0 = std::chrono::steady_clock::now();
        pid_t init = engine::init_pid(c);
        bool interrupted = run_capture(cap, sw, secs, 250, [&] {
            auto s = sample_usage(init);
            if (s.cpu_ns) learner.on_sample(now_ns(), *s.cpu_ns, s.memory_bytes.value_or(0), s.pids.value_or(0));
        });
        Baseline b = learner.result();
        b.duration_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        b.save(out);
        std::printf("%s: baseline of %s (%s) over %.1f s%s: %zu executables, %zu lineage edges, %zu listening ports, "
                    "%zu outbound endpoints, %zu written paths, CPU max %.2f cores, memory max %llu, pids max %llu\n",
                    out.c_str(), c.name.c_str(), c.image.c_str(), b.duration_s, interrupted ? " (interrupted)" : "",
                    b.executables.size(), b.lineage.size(), b.listen.size(), b.outbound.size(), b.written.size(),
                    b.cpu_max_cores, static_cast<unsigned long long>(b.memory_max_bytes),
                    static_cast<unsigned long long>(b.pids_max));
    });

    struct ShowFlags {
        std::string container, file, format = "text";
    };
    auto sf = std::make_shared<ShowFlags>();
    auto* show = bl->add_subcommand("show", "print a container's baseline");
    show->add_option("container", sf->container, "container name or ID (a removed one: its full ID)");
    show->add_option("-f,--file", sf->file, "the baseline file to print instead");
    show->add_option("--format", sf->format, "text or json");
    show->callback([&g, sf] {
        if (sf->format != "text" && sf->format != "json")
            throw Error(EINVAL, "--format \"" + sf->format + "\": expected text or json");
        std::string path = sf->file;
        if (path.empty()) {
            if (sf->container.empty()) throw Error(EINVAL, "give a CONTAINER or --file");
            std::string id = sf->container;
            try {
                engine::Engine eng(engine_options(g));
                id = eng.get(sf->container).id;
            } catch (const engine::NotFoundError&) {
                // Not a container of this engine: CONTAINER is taken as an ID as given
            }
            path = default_baseline_path(engine_options(g).root, id);
        }
        Baseline b = Baseline::load(path);
        if (sf->format == "json") {
            std::printf("%s\n", b.to_json().dump(2).c_str());
            return;
        }
        std::printf("Container:   %s (%s)\nImage:       %s %s\nLearned:     %s over %.1f s\n", b.container_name.c_str(),
                    b.container_id.substr(0, 12).c_str(), b.image.c_str(), b.image_digest.c_str(),
                    rfc3339_ns(b.learned_at_ns).c_str(), b.duration_s);
        std::printf("Executables:\n");
        for (const auto& [p, h] : b.executables) std::printf("  %s %s\n", p.c_str(), h.c_str());
        std::printf("Lineage:\n");
        for (const auto& [p, c] : b.lineage) std::printf("  %s -> %s\n", p.c_str(), c.c_str());
        std::printf("Listening:  ");
        for (int p : b.listen) std::printf(" %d", p);
        std::printf("\nOutbound:   ");
        for (const auto& e : b.outbound) std::printf(" %s", e.c_str());
        std::printf("\nWritten:\n");
        for (const auto& w : b.written) std::printf("  %s\n", w.c_str());
        std::printf("Resources:   CPU max %.3f cores (1 s windows), memory max %llu bytes, pids max %llu\n",
                    b.cpu_max_cores, static_cast<unsigned long long>(b.memory_max_bytes),
                    static_cast<unsigned long long>(b.pids_max));
    });

    // ---------------- alerts
    struct AlertsFlags {
        std::string container, since, store, format = "text";
    };
    auto af = std::make_shared<AlertsFlags>();
    auto* al = app.add_subcommand("alerts", "print the detection alerts recorded in the evidence store");
    al->add_option("container", af->container, "only this container's (name or ID)");
    al->add_option("--since", af->since, "from this time: unix seconds, RFC 3339 or a duration ago (10m)");
    al->add_option("--store", af->store, "the evidence store (default <root>/evidence/evidence.db)");
    al->add_option("--format", af->format, "text (one line per alert) or json (one object per line)");
    al->callback([&g, af] {
        if (af->format != "text" && af->format != "json")
            throw Error(EINVAL, "--format \"" + af->format + "\": expected text or json");
        int64_t since = af->since.empty() ? 0 : parse_since_ns(af->since);
        std::string id, name;
        if (!af->container.empty()) {
            try {
                engine::Engine eng(engine_options(g));
                auto c = eng.get(af->container);
                id = c.id;
                name = c.name;
            } catch (const engine::NotFoundError&) {
                id = name = af->container;  // removed: its full ID or its name as recorded
            }
        }
        std::string path = evidence_store(g, af->store);
        if (!path_exists(path)) return;  // nothing recorded yet: no alerts
        EvidenceStore store(path, false);
        for (const auto& r : store.of_kind("alert", since)) {
            if (!r.payload) continue;
            json a = json::parse(*r.payload, nullptr, false);
            if (a.is_discarded()) continue;
            if (!id.empty() && r.container_id != id && a.value("container", "") != name) continue;
            if (af->format == "json") {
                json j = {{"seq", r.seq}, {"time", rfc3339_ns(r.time_ns)}, {"time_ns", r.time_ns},
                          {"container_id", r.container_id}};
                j.update(a);
                std::printf("%s\n", j.dump().c_str());
            } else {
                std::printf("%s\n", alert_line(r.time_ns, a, r.seq).c_str());
            }
        }
    });

    // ---------------- detect
    struct DetectFlags {
        std::string container, baseline, store, format = "text";
        bool no_store = false;
        int duration = 0;
    };
    auto df = std::make_shared<DetectFlags>();
    auto* det = app.add_subcommand(
        "detect", "compare a running container against its baseline and print alerts as they happen (Ctrl-C stops)");
    det->add_option("container", df->container, "container name or ID")->required();
    det->add_option("--baseline", df->baseline, "baseline file (default <root>/baselines/<container-id>.json)");
    det->add_option("--store", df->store, "evidence store for events and alerts (default <root>/evidence/evidence.db)");
    det->add_flag("--no-store", df->no_store, "record nothing, print the alerts only");
    det->add_option("--duration", df->duration, "stop after this many seconds (default: until Ctrl-C)");
    det->add_option("--format", df->format, "text (one line per alert) or json (one object per line)");
    det->callback([&g, df] {
        if (df->format != "text" && df->format != "json")
            throw Error(EINVAL, "--format \"" + df->format + "\": expected text or json");
        engine::Engine eng(engine_options(g));
        ContainerRecord c = running(eng, df->container);
        std::string bpath = df->baseline.empty() ? default_baseline_path(engine_options(g).root, c.id) : df->baseline;
        Baseline b = Baseline::load(bpath);
        std::string store = df->no_store ? "" : evidence_store(g, df->store);
        if (!store.empty()) EvidenceStore make(store);
        CaptureOptions copts;
        copts.store_path = store;
        copts.sample_interval_ms = 10000;
        Capture cap(copts);
        Detector detector({.store_path = store});
        WatchTarget t = watch_target(c);
        detector.watch(t, std::move(b), c.image, c.image_digest);  // refuses another image's baseline
        const bool as_json = df->format == "json";
        detector.on_alert([as_json](const Alert& a) {
            if (as_json) {
                json j = {{"seq", a.seq}, {"time", rfc3339_ns(a.time_ns)}, {"time_ns", a.time_ns}};
                j.update(a.to_json());
                std::printf("%s\n", j.dump().c_str());
            } else {
                std::printf("%s\n", alert_line(a.time_ns, a.to_json(), a.seq).c_str());
            }
            std::fflush(stdout);
        });
        detector.attach(cap);
        cap.watch(t);
        StopSignals sw;
        std::jthread sampler = detector.start_sampler();
        std::fprintf(stderr, "detect: watching %s against %s\n", c.name.c_str(), bpath.c_str());
        run_capture(cap, sw, df->duration);
        sampler.request_stop();
        sampler.join();
        std::fprintf(stderr, "detect: %zu alerts\n", detector.alerts().size());
    });
}

}  // namespace vitro::cli
