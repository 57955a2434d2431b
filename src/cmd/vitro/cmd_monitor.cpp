// vitro monitor: the metrics exporter, a foreground service (systemd unit and
// DaemonSet in deploy/examples/). Flags override the config file's keys.
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <chrono>
#include <memory>
#include <thread>

#include <yaml-cpp/yaml.h>

#include "cmd/vitro/cli.hpp"
#include "introspect/detect/detector.hpp"
#include "introspect/evidence/capture.hpp"
#include "introspect/evidence/evidence_store.hpp"
#include "introspect/metrics/collector.hpp"
#include "introspect/metrics/metrics_server.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/log.hpp"

namespace vitro::cli {

namespace {

struct MonitorFlags {
    std::string config;
    std::string listen = "127.0.0.1:9323";
    std::vector<std::string> runtime_roots;
    std::string cgroup_root = "/sys/fs/cgroup";
    int top_processes = 5;
    bool no_process_metrics = false;
    bool once = false;
    bool gzip = false;
    bool evidence = false;
    std::string evidence_store;
};

// --evidence: continuous capture of every watched container into the
// evidence store, and detection for those with a baseline
// (<root>/baselines/<id>.json, followed: one learned, replaced or removed
// while the service runs applies within a second). It follows the
// collector's discovery.
class EvidenceService {
public:
    EvidenceService(const Globals& g, const std::string& store)
        : root_(g.root),
          cap_({.store_path = store}),
          det_({.store_path = store}),
          // Started without it where inotify is used up (it says so).
          baselines_(introspect::BaselineWatch::unless_exhausted(
              g.root, [this](const std::string& id) { baseline_changed(id); })) {
        det_.on_alert([](const introspect::Alert& a) {
            log::warn("alert: " + a.to_json().dump());
        });
        det_.attach(cap_);
    }
    void follow(introspect::Collector& c) {
        c.on_discovery([this](const std::vector<const introspect::Target*>& now) { update(now); });
        c.add_source([this](introspect::Exposition& e) { det_.add_metrics(e); });
    }
    void start() {
        capture_ = cap_.start();
        sampler_ = det_.start_sampler();
        if (baselines_) baseline_watch_ = baselines_->start();
    }
    void stop() {
        for (auto* t : {&baseline_watch_, &capture_, &sampler_}) t->request_stop();
        for (auto* t : {&baseline_watch_, &capture_, &sampler_})
            if (t->joinable()) t->join();
        if (auto f = cap_.failure()) {
            try {
                std::rethrow_exception(f);
            } catch (const std::exception& e) {
                log::warn(std::string("evidence capture stopped: ") + e.what());
            }
        }
    }

private:
    struct Watched {
        introspect::WatchTarget w;
        std::string image, image_digest;
        bool vitro = false;  // baselines are vitro's containers'
    };

    void update(const std::vector<const introspect::Target*>& now) {
        std::lock_guard lk(mu_);
        std::set<std::string> seen;
        for (const auto* t : now) {
            if (t->container.empty()) continue;
            seen.insert(t->container);
            if (watched_.count(t->container)) continue;
            Watched& n = watched_[t->container];
            n = {{t->container, t->name, t->pid, "", t->upper_dir}, t->image, t->image_digest, t->runtime == "vitro"};
            cap_.watch(n.w);
            apply_baseline(n);
        }
        for (auto it = watched_.begin(); it != watched_.end();) {
            if (seen.count(it->first)) {
                ++it;
                continue;
            }
            cap_.unwatch(it->first);
            det_.unwatch(it->first);
            it = watched_.erase(it);
        }
    }

    // "": any baseline may have changed.
    void baseline_changed(const std::string& id) {
        std::lock_guard lk(mu_);
        for (auto& [cid, w] : watched_)
            if (id.empty() || id == cid) apply_baseline(w);
    }

    // Detection for `w` follows its baseline file: compared against it when
    // there, not at all when not. A file that cannot be read as a baseline
    // (half-written by hand, damaged) leaves the last good one applied.
    void apply_baseline(const Watched& w) {
        if (!w.vitro) return;
        std::string path = introspect::default_baseline_path(root_, w.w.id);
        if (!path_exists(path)) {
            if (det_.unwatch(w.w.id)) log::info("detection for " + w.w.name + ": baseline removed, detection off");
            return;
        }
        introspect::Baseline b;
        try {
            b = introspect::Baseline::load(path);
        } catch (const std::exception& e) {
            log::warn("detection for " + w.w.name + ": " + e.what() + " (the baseline applied before, if any, stays)");
            return;
        }
        try {
            det_.watch(w.w, std::move(b), w.image, w.image_digest);
            log::info("detection for " + w.w.name + ": baseline " + path + " applied");
        } catch (const std::exception& e) {
            det_.unwatch(w.w.id);
            log::warn("detection for " + w.w.name + ": " + e.what());  // another image's baseline
        }
    }

    std::string root_;
    introspect::Capture cap_;
    introspect::Detector det_;
    std::mutex mu_;  // watched_: discovery's thread and the baseline watch's
    std::map<std::string, Watched> watched_;
    std::unique_ptr<introspect::BaselineWatch> baselines_;  // its callback uses the members above; null: not followed
    std::jthread capture_, sampler_, baseline_watch_;
};

// The config file: YAML with the flags' names (listen, runtime_roots,
// cgroup_root, top_processes, process_metrics). A flag given on the command
// line wins over the file.
void apply_config(MonitorFlags& f, const CLI::App& cmd) {
    YAML::Node y;
    try {
        y = YAML::LoadFile(f.config);
    } catch (const YAML::BadFile&) {
        throw Error("config file " + f.config + ": cannot be read");
    } catch (const YAML::Exception& e) {
        throw Error("config file " + f.config + ": " + e.what());
    }
    if (!y.IsMap() && !y.IsNull()) throw Error("config file " + f.config + ": expected a map of settings");
    static const std::set<std::string> known = {"listen", "runtime_roots", "cgroup_root", "top_processes", "process_metrics"};
    try {
        for (auto it : y) {
            auto key = it.first.as<std::string>();
            if (!known.count(key)) throw Error("config file " + f.config + ": unknown setting \"" + key + "\"");
            auto given = [&](const char* flag) { return cmd.count(flag) > 0; };
            if (key == "listen" && !given("--listen")) f.listen = it.second.as<std::string>();
            if (key == "runtime_roots" && !given("--runtime-root")) f.runtime_roots = it.second.as<std::vector<std::string>>();
            if (key == "cgroup_root" && !given("--cgroup-root")) f.cgroup_root = it.second.as<std::string>();
            if (key == "top_processes" && !given("--top-processes")) f.top_processes = it.second.as<int>();
            if (key == "process_metrics" && !given("--no-process-metrics")) f.no_process_metrics = !it.second.as<bool>();
        }
    } catch (const YAML::Exception& e) {
        throw Error("config file " + f.config + ": " + e.what());
    }
}

void run_monitor(const Globals& g, MonitorFlags& f, const CLI::App& cmd) {
    if (!f.config.empty()) apply_config(f, cmd);
    if (f.top_processes < 0 || f.top_processes > 100)
        throw Error("--top-processes " + std::to_string(f.top_processes) + ": must be from 0 to 100");
    auto address = introspect::parse_listen_address(f.listen);  // checked with --once too
    introspect::CollectorOptions o;
    o.discovery.vitro_root = g.root;
    if (!f.runtime_roots.empty()) o.discovery.runtime_roots = f.runtime_roots;
    o.cgroup_root = f.cgroup_root;
    o.top_processes = f.top_processes;
    o.process_metrics = !f.no_process_metrics;
    // One malloc arena (the server's threads would each grow their own), and
    // the scrape's large buffers kept in the heap rather than mmap'ed and
    // faulted in again at every scrape.
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 128 << 20);
    introspect::Collector collector(o);
    if (f.once) {
        // One scrape: through the BPF walks where they load in reasonable time.
        collector.wait_for_walks(std::chrono::seconds(5));
        const std::string text = collector.scrape();
        std::fwrite(text.data(), 1, text.size(), stdout);
        return;
    }
    // Each watched container holds ~20 open stat files.
    rlimit nofile{};
    if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &nofile);
    }
    introspect::MetricsServer server(collector, address, f.gzip);
    server.bind();
    // SIGINT/SIGTERM end the service: blocked before any thread starts (each
    // inherits the mask) and taken by one thread that stops the server.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    std::unique_ptr<EvidenceService> evidence;
    std::jthread rediscovery;
    if (f.evidence) {
        std::string store = f.evidence_store.empty() ? introspect::default_evidence_path(g.root) : f.evidence_store;
        { introspect::EvidenceStore create(store); }  // a store that cannot be opened fails here, before serving
        evidence = std::make_unique<EvidenceService>(g, store);
        evidence->follow(collector);
        collector.rediscover();
        evidence->start();
        // New containers are watched within a second, scraped or not.
        rediscovery = std::jthread([&collector](std::stop_token st) {
            while (!st.stop_requested()) {
                std::this_thread::sleep_for(std::chrono::seconds(1));
                collector.rediscover();
            }
        });
    }
    std::thread waiter([&] {
        int sig = 0;
        sigwait(&stop_signals, &sig);
        server.stop();
    });
    std::printf("vitro monitor: serving http://%s:%d/metrics\n", f.listen.substr(0, f.listen.rfind(':')).c_str(),
                server.port());
    std::fflush(stdout);
    server.run();
    pthread_kill(waiter.native_handle(), SIGTERM);  // when run() ended on its own
    waiter.join();
    if (rediscovery.joinable()) {
        rediscovery.request_stop();
        rediscovery.join();
    }
    if (evidence) evidence->stop();
}

// vitro execs the static vitro-exporter beside it, when there is one, to
// serve: same arguments, same pid. Returns when there is none (a build tree
// without it): the monitor then runs in this process.
void exec_exporter(const Globals& g) {
    if (g.exporter || g.self_path.empty() || !g.argv) return;
    std::string exporter = g.self_path.substr(0, g.self_path.rfind('/') + 1) + "vitro-exporter";
    if (::access(exporter.c_str(), X_OK) != 0) return;
    std::vector<char*> argv(g.argv, g.argv + g.argc);
    argv[0] = exporter.data();
    argv.push_back(nullptr);
    ::execv(exporter.c_str(), argv.data());
    log::warn("cannot run " + exporter + " (" + std::strerror(errno) + "); serving from vitro itself");
}

}  // namespace

void add_monitor_commands(CLI::App& app, Globals& g) {
    auto f = std::make_shared<MonitorFlags>();
    auto* cmd = app.add_subcommand("monitor",
                                   "Serve Prometheus metrics of the host, pods, containers and their processes "
                                   "(cAdvisor's names), for containers of vitro, podman, containerd, crun and runc");
    cmd->add_option("--config", f->config, "YAML file with these settings (listen, runtime_roots, cgroup_root, "
                                           "top_processes, process_metrics); flags win")
        ->check(CLI::ExistingFile);
    cmd->add_option("--listen", f->listen, "address to serve /metrics on (HOST:PORT; port 0 picks a free one)")
        ->default_str(f->listen);
    cmd->add_option("--runtime-root", f->runtime_roots,
                    "OCI runtime state directory to discover containers in (repeatable; default: /run/vitro-runtime, "
                    "/run/crun, /run/runc, /run/containerd/runc)");
    cmd->add_option("--cgroup-root", f->cgroup_root, "where the cgroup hierarchies are mounted")->default_str(f->cgroup_root);
    cmd->add_option("--top-processes", f->top_processes,
                    "vitro_process_* series for this many of each container's busiest processes (0: none)")
        ->default_str("5");
    cmd->add_flag("--no-process-metrics", f->no_process_metrics,
                  "skip container_file_descriptors and container_sockets (they walk every process's fd table)");
    cmd->add_flag("--once", f->once, "print one scrape to stdout and exit");
    cmd->add_flag("--evidence", f->evidence,
                  "also record every watched container's process, connection and file events in the evidence store, "
                  "and flag deviations from a container's baseline (vitro baseline learn; one learned, changed or "
                  "removed while this runs applies within a second) as alerts "
                  "(vitro_alerts_total, vitro alerts); needs the host's network namespace (the proc connector)");
    cmd->add_option("--evidence-store", f->evidence_store, "evidence store for --evidence (default <root>/evidence/evidence.db)");
    cmd->add_flag("--gzip", f->gzip, "gzip /metrics for scrapers that accept it (off: it costs more CPU than the "
                                     "scrape; use it when Prometheus scrapes across a slow network)");
    cmd->callback([&g, f, cmd] {
        exec_exporter(g);
        run_monitor(g, *f, *cmd);
    });
}

}  // namespace vitro::cli
