// vitro evidence collect|verify|export|watch: the evidence store and bundles
// (src/introspect/evidence_*), point-in-time capture (introspect/collect) and
// the continuous sources (introspect/capture) run in the foreground.
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <ctime>
#include <exception>
#include <memory>

#include "cmd/vitro/capture_run.hpp"
#include "cmd/vitro/common.hpp"
#include "engine/engine.hpp"
#include "introspect/evidence/capture.hpp"
#include "introspect/evidence/evidence_archive.hpp"
#include "introspect/evidence/evidence_collect.hpp"
#include "introspect/evidence/evidence_store.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/time.hpp"

namespace vitro::cli {

namespace {

using engine::ContainerRecord;
using nlohmann::json;
using namespace vitro::introspect;

constexpr const char* kVerifyHelp = R"(Store: every record's hash is recomputed over (seq, time, container, kind,
payload SHA-256, prev_hash) and each prev_hash must be the hash before it, so
any record changed, removed, inserted or reordered is found and the first bad
one named. The head row (last seq + hash, with an HMAC under
<root>/evidence/head.key) shows whether the tail was cut off.
Bundle: each member's SHA-256 against manifest.json, manifest.json against
manifest.sha256, the records as a chain segment, and the tar byte for byte.

What it cannot prove: someone able to write the store AND read head.key
(root on this machine) can rewrite the chain and the head consistently, and a
bundle can be rebuilt whole. Compare the printed last hash with a copy kept
elsewhere (an earlier export, a ticket) to rule that out.
)";

std::string store_path(const Globals& g, const std::string& flag) {
    return flag.empty() ? default_evidence_path(engine_options(g).root) : flag;
}

// "1733040000" (unix seconds), RFC 3339 ("2026-12-01T08:00:00Z", fraction and
// offset allowed) or a duration before now ("90s", "10m", "2h", "1d").
int64_t parse_time_ns(const std::string& v, const char* flag) {
    auto bad = [&] {
        return Error(EINVAL, std::string(flag) + " \"" + v +
                                 "\": expected unix seconds, an RFC 3339 time or a duration like 10m");
    };
    if (v.empty()) throw bad();
    size_t used = 0;
    bool digits = v.find_first_not_of("0123456789") == std::string::npos;
    if (digits) return std::stoll(v) * 1000000000LL;
    char unit = v.back();
    std::string num = v.substr(0, v.size() - 1);
    if (!num.empty() && num.find_first_not_of("0123456789") == std::string::npos &&
        (unit == 's' || unit == 'm' || unit == 'h' || unit == 'd')) {
        int64_t mult = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : 86400;
        return now_ns() - std::stoll(num, &used) * mult * 1000000000LL;
    }
    std::tm tm{};
    const char* rest = ::strptime(v.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest) throw bad();
    int64_t ns = static_cast<int64_t>(::timegm(&tm)) * 1000000000LL;
    if (*rest == '.') {
        int64_t scale = 100000000;
        for (++rest; *rest >= '0' && *rest <= '9'; ++rest, scale /= 10) ns += (*rest - '0') * scale;
    }
    if (*rest == 'Z' && rest[1] == 0) return ns;
    int hh = 0, mm = 0;
    if ((*rest == '+' || *rest == '-') && std::sscanf(rest + 1, "%2d:%2d", &hh, &mm) == 2 && std::strlen(rest) == 6)
        return ns - (*rest == '+' ? 1 : -1) * (hh * 3600LL + mm * 60LL) * 1000000000LL;
    throw bad();
}


std::string stamp() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
    return buf;
}

json container_json(const ContainerRecord& c) {
    return {{"Id", c.id},
            {"Name", c.name},
            {"Image", c.image},
            {"ImageDigest", c.image_digest},
            {"Created", c.created_at},
            {"StartedAt", c.started_at.value_or("")},
            {"Pid", engine::init_pid(c)},
            {"Command", c.config.value("command", json::array())},
            {"Args", c.config.value("args", json::array())},
            {"Network", c.config.value("network", "")},
            {"Bundle", c.bundle}};
}

void print_verdict(const std::string& what, const VerifyResult& r, const std::string& format, Globals& g) {
    if (format == "json") {
        json j = {{"input", what}, {"ok", r.ok}, {"records", r.count}, {"last_hash", r.last_hash}};
        if (!r.ok) {
            j["problem"] = r.problem;
            if (r.bad_seq) j["bad_seq"] = *r.bad_seq;
        }
        std::printf("%s\n", j.dump(2).c_str());
    } else if (r.ok) {
        std::printf("OK: %s: %llu records verified, last hash %s\n", what.c_str(),
                    static_cast<unsigned long long>(r.count), r.last_hash.empty() ? "(none)" : r.last_hash.c_str());
    } else {
        std::printf("FAILED: %s: %s%s\n", what.c_str(),
                    r.bad_seq ? ("record " + std::to_string(*r.bad_seq) + ": ").c_str() : "", r.problem.c_str());
    }
    g.exit_code = r.ok ? 0 : 1;
}

}  // namespace

void add_evidence_commands(CLI::App& app, Globals& g) {
    auto* ev = app.add_subcommand("evidence", "tamper-evident evidence about containers: collect, verify, export, watch");
    ev->require_subcommand(1);

    // --- verify
    struct VerifyFlags {
        std::string store, bundle, format = "text";
    };
    auto vf = std::make_shared<VerifyFlags>();
    auto* verify = ev->add_subcommand("verify", "check an evidence store or bundle: exit 0 when intact, 1 naming the first bad record");
    verify->footer(kVerifyHelp);
    verify->add_option("--store", vf->store, "the evidence store to check (default <root>/evidence/evidence.db)");
    verify->add_option("bundle", vf->bundle, "an exported or collected bundle (.tar) to check instead of the store");
    verify->add_option("--format", vf->format, "text or json");
    verify->callback([&g, vf] {
        if (vf->format != "text" && vf->format != "json")
            throw Error(EINVAL, "--format \"" + vf->format + "\": expected text or json");
        if (!vf->bundle.empty() && !vf->store.empty()) throw Error(EINVAL, "give either --store or a BUNDLE, not both");
        if (!vf->bundle.empty()) {
            if (!path_exists(vf->bundle)) throw Error(ENOENT, "bundle " + vf->bundle + ": no such file");
            print_verdict(vf->bundle, verify_bundle(vf->bundle), vf->format, g);
            return;
        }
        std::string path = store_path(g, vf->store);
        VerifyResult r;
        try {
            EvidenceStore s(path, false);
            r = s.verify();
        } catch (const sql::SqliteError& e) {
            // A damaged database file is a verdict, not an engine failure.
            r.fail(std::nullopt, std::string("the store cannot be read as SQLite: ") + e.what());
        }
        print_verdict(path, r, vf->format, g);
    });

    // --- export
    struct ExportFlags {
        std::string store, since, until, out, container;
    };
    auto xf = std::make_shared<ExportFlags>();
    auto* exp = ev->add_subcommand("export", "write a container's records between two times as a bundle to verify "
                                             "offline (a store that does not verify is refused)");
    exp->add_option("--store", xf->store, "the evidence store (default <root>/evidence/evidence.db)");
    exp->add_option("--since", xf->since, "from this time: unix seconds, RFC 3339 or a duration ago (10m); default: the start");
    exp->add_option("--until", xf->until, "up to this time (same forms); default: now");
    exp->add_option("-o,--output", xf->out, "bundle file to write (default evidence-<id>-<time>.tar here)");
    exp->add_option("container", xf->container, "container name or ID (a removed container: its full ID)")->required();
    exp->callback([&g, xf] {
        int64_t since = xf->since.empty() ? 0 : parse_time_ns(xf->since, "--since");
        int64_t until = xf->until.empty() ? INT64_MAX : parse_time_ns(xf->until, "--until");
        std::string id = xf->container;
        json about = {{"id", id}};
        try {
            engine::Engine eng(engine_options(g));
            auto c = eng.get(xf->container);
            id = c.id;
            about = {{"id", c.id}, {"name", c.name}, {"image", c.image}, {"image_digest", c.image_digest}};
        } catch (const engine::NotFoundError&) {
            // Gone from the engine: its records may still be here, under its full ID.
        }
        EvidenceStore store(store_path(g, xf->store), false);
        // What is exported is what was verified: a store whose index or
        // chain is damaged would yield a bundle that verifies but lacks records.
        auto snap = store.snapshot();
        if (auto v = store.verify(); !v.ok)
            throw Error(EINVAL, "evidence store " + store.path() + " does not verify (" +
                                    (v.bad_seq ? "record " + std::to_string(*v.bad_seq) + ": " : std::string()) +
                                    v.problem + "): not exporting from it; see vitro evidence verify");
        auto seg = store.segment_for(id, since, until);
        if (seg.empty()) throw Error(ENOENT, "no evidence records for container " + xf->container + " in that time range");
        std::string out = xf->out.empty() ? "evidence-" + id.substr(0, 12) + "-" + stamp() + ".tar" : xf->out;
        auto head = store.head();
        json manifest = {{"type", "export"},
                         {"container", about},
                         {"since_ns", since},
                         {"until_ns", until},
                         {"chain", chain_manifest(seg)},
                         {"store_head", {{"seq", head ? head->seq : 0}, {"hash", head ? head->hash : ""}}}};
        write_bundle(out, manifest, {{"records.jsonl", records_jsonl(seg)}});
        size_t mine = 0;
        for (const auto& r : seg) mine += !r.redacted();
        std::printf("%s: %zu records of %s (%zu others in the range redacted), last hash %s\n", out.c_str(), mine,
                    xf->container.c_str(), seg.size() - mine, seg.back().hash.c_str());
    });

    // --- collect
    struct CollectFlags {
        std::string store, out, container;
        size_t records = 1000;
        size_t copy_max = 1 << 20;
    };
    auto cf = std::make_shared<CollectFlags>();
    auto* col = ev->add_subcommand("collect", "capture a running container's state now into one verifiable bundle");
    col->add_option("--store", cf->store, "the evidence store for the recent records (default <root>/evidence/evidence.db)");
    col->add_option("--records", cf->records, "how many of the container's latest records to include (default 1000; 0: all)");
    col->add_option("--copy-max", cf->copy_max,
                    "copy each added/changed file up to this many bytes into the bundle (default 1048576; 0: none)");
    col->add_option("-o,--output", cf->out, "bundle file to write (default evidence-<id>-<time>.tar here)");
    col->add_option("container", cf->container, "container name or ID")->required();
    col->callback([&g, cf] {
        engine::Engine eng(engine_options(g));
        ContainerRecord c = eng.get(cf->container);
        if (!engine::is_running(c) || engine::init_pid(c) <= 0)
            throw Error(ESRCH, "container " + cf->container + " is not running");
        CollectTarget t;
        t.id = c.id;
        t.name = c.name;
        t.init_pid = engine::init_pid(c);
        t.init_start_ticks = c.config.value("init_start_time", uint64_t{0});
        t.pids = eng.pids(c.id);
        t.upper_dir = c.bundle + "/upper";
        t.layers = c.config.value("layers", std::vector<std::string>{});
        t.container = container_json(c);
        t.copy_max_file = cf->copy_max;
        try {
            t.stats = eng.stats(c.id);
        } catch (const Error& e) {
            t.stats = {{"error", e.what()}};
        }
        std::unique_ptr<EvidenceStore> store;
        std::string sp = store_path(g, cf->store);
        if (path_exists(sp)) store = std::make_unique<EvidenceStore>(sp, false);
        std::string out = cf->out.empty() ? "evidence-" + c.id.substr(0, 12) + "-" + stamp() + ".tar" : cf->out;
        auto sum = collect(t, store.get(), cf->records, out);
        std::printf("%s: %zu processes, %zu sockets, %zu file changes (%zu copied), %zu records\n", out.c_str(),
                    sum.processes, sum.sockets, sum.changes, sum.files_copied, sum.records);
    });

    // --- bench-append (hidden): the cost of one append, for docs/benchmarks.md.
    struct BenchFlags {
        std::string store;
        int count = 10000, batch = 1;
    };
    auto bf = std::make_shared<BenchFlags>();
    auto* bench = ev->add_subcommand("bench-append", "(internal) append COUNT records to a new store and print records/s");
    bench->group("");
    bench->add_option("--store", bf->store, "the store to create (must not exist)")->required();
    bench->add_option("--count", bf->count, "records to append (default 10000)");
    bench->add_option("--batch", bf->batch, "records per transaction (default 1)");
    bench->callback([bf] {
        if (path_exists(bf->store)) throw Error(EEXIST, "--store " + bf->store + ": exists");
        EvidenceStore s(bf->store);
        json payload = {{"pid", 12345}, {"ppid", 1}, {"comm", "sh"}, {"exe", "/bin/busybox"},
                        {"cmdline", {"sh", "-c", "while :; do true; done"}}, {"uid", 0}};
        auto t0 = std::chrono::steady_clock::now();
        std::vector<EvidenceStore::NewRecord> batch;
        for (int i = 0; i < bf->count; ++i) {
            batch.push_back({"0123456789abcdef", "process.exec", payload, 0});
            if (static_cast<int>(batch.size()) >= std::max(bf->batch, 1) || i + 1 == bf->count) {
                s.append_all(batch);
                batch.clear();
            }
        }
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        auto t1 = std::chrono::steady_clock::now();
        auto r = s.verify();
        double vsecs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
        std::printf("%d appends (batch %d) in %.3f s: %.0f records/s; verify %.0f records/s (%s)\n", bf->count, bf->batch, secs,
                    bf->count / secs, r.count / vsecs, r.ok ? "ok" : r.problem.c_str());
    });

    // --- watch
    struct WatchFlags {
        std::string store, format = "text";
        std::vector<std::string> containers;
        bool no_store = false, no_forks = false;
        int sample = 10, duration = 0;
    };
    auto wf = std::make_shared<WatchFlags>();
    auto* watch = ev->add_subcommand(
        "watch", "record process, network, file and resource events of running containers (foreground; ends on Ctrl-C, "
        "after --duration, or when every watched container has exited)");
    watch->add_option("--store", wf->store, "the evidence store to append to (default <root>/evidence/evidence.db)");
    watch->add_flag("--no-store", wf->no_store, "print the events only, record nothing");
    watch->add_flag("--no-forks", wf->no_forks, "do not record forks (exec and exit still are)");
    watch->add_option("--sample-interval", wf->sample, "seconds between resource samples (0: none; default 10)");
    watch->add_option("--duration", wf->duration, "stop after this many seconds (default: until Ctrl-C)");
    watch->add_option("--format", wf->format, "text (one line per event) or json (one JSON object per line)");
    watch->add_option("containers", wf->containers, "container names or IDs (default: every running container)");
    watch->callback([&g, wf] {
        if (wf->format != "text" && wf->format != "json")
            throw Error(EINVAL, "--format \"" + wf->format + "\": expected text or json");
        engine::Engine eng(engine_options(g));
        std::vector<WatchTarget> targets;
        if (wf->containers.empty()) {
            for (const auto& c : eng.list())
                if (engine::is_running(c)) targets.push_back(watch_target(c));
        } else {
            for (const auto& ref : wf->containers) {
                auto c = eng.get(ref);
                if (!engine::is_running(c)) throw Error(ESRCH, "container " + ref + " is not running");
                targets.push_back(watch_target(c));
            }
        }
        if (targets.empty()) throw Error(ESRCH, "no running container to watch");
        CaptureOptions opts;
        if (!wf->no_store) {
            opts.store_path = store_path(g, wf->store);
            EvidenceStore make(opts.store_path);  // created here, so errors name it before anything starts
        }
        opts.forks = !wf->no_forks;
        opts.sample_interval_ms = wf->sample * 1000;
        Capture cap(opts);
        for (auto& t : targets) cap.watch(t);
        const bool as_json = wf->format == "json";
        cap.subscribe([as_json](const Event& e) {
            if (as_json) {
                json j = {{"seq", e.seq}, {"time", rfc3339_ns(e.time_ns)}, {"container_id", e.container_id},
                          {"kind", e.kind}, {"data", e.data}};
                std::printf("%s\n", j.dump().c_str());
            } else {
                std::printf("%s %-12s %-16s %s\n", rfc3339_ns(e.time_ns).c_str(), e.container_id.substr(0, 12).c_str(),
                            e.kind.c_str(), e.data.dump().c_str());
            }
            std::fflush(stdout);
        });
        // SIGINT/SIGTERM are waited for here; the capture runs on its own thread.
        StopSignals sw;
        run_capture(cap, sw, wf->duration);
        auto st = cap.stats();
        std::fprintf(stderr, "evidence watch: %llu events recorded, %llu proc events seen, %llu overruns\n",
                     static_cast<unsigned long long>(st.events), static_cast<unsigned long long>(st.proc_events_seen),
                     static_cast<unsigned long long>(st.proc_overruns));
    });
}

}  // namespace vitro::cli
