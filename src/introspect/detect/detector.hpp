// Pristine versus infected: a container's baseline (what it did while known
// good) and a Detector that compares what Capture sees against it, raising
// alerts as they happen.
//
// Baseline (learned by BaselineLearner from the same Capture events, plus a
// snapshot of the processes there when learning began):
//   executables   exe path + sha256 of every process executed
//   lineage       parent comm -> child comm/exe (which parents spawn shells)
//   listen        listening TCP ports;  outbound  addr:port connected to
//   written       paths written in the overlay upper dir
//   resources     max CPU rate over 1 s windows (cores), max memory, max pids
// stored as JSON with the image name + digest it was learned on; a Detector
// refuses a baseline learned on another image digest.
//
// Rules (Alert::rule), each alert raised once per container and key:
//   exec-not-in-baseline  an executable (path, sha256) never seen           high
//   drop-and-execute      ... and the file was written after start (upper dir
//                         entry or a file.* event)                          critical
//   unexpected-shell      a shell (sh, bash, ash, dash, zsh, ksh, busybox sh)
//                         spawned by a parent (comm) that never spawned one  high
//   reverse-shell         a shell whose fd 0 or 1 is a socket at exec time  critical
//   unseen-outbound       net.connect to an addr:port not in the baseline   medium
//                         (the accepted side of a connection to a port it
//                         listens on, and loopback connections to its
//                         baseline listening ports, are not outbound)
//   unseen-listen         a listening port not in the baseline              medium
//   cpu-above-envelope    CPU rate above max(2 x baseline max, baseline max
//                         + 0.5 core) in every sample interval for >= 1 s   high
//                         (and over the last 1 s as a whole); sampled by the
//                         Detector itself every cpu_sample_ms (250 ms)
//   mining-command-line   stratum+tcp://, xmrig, --donate-level, cryptonight,
//                         ... in the command line                          critical
// Each alert is appended to the evidence store as a record of kind "alert"
// (data: rule, severity, container, details, trigger_seq = the seq of the
// event's record, 0 for CPU), counted for vitro_alerts_total{container,rule}
// and handed to on_alert callbacks.
//
// Threading: on_event runs on the Capture thread; the CPU sampler on its own
// thread; both take the Detector's mutex (so the store is used by one thread
// at a time). Callbacks run under that mutex: keep them short.
//
// Use (vitro detect; the monitor service):
//   Capture cap({.store_path = default_evidence_path(root)});
//   Detector det({.store_path = default_evidence_path(root)});
//   det.watch(target, Baseline::load(file), c.image, c.image_digest);  // throws on a digest mismatch
//   det.on_alert([](const Alert& a) { print(a); });
//   det.attach(cap);                        // subscribes to the capture
//   cap.watch(target);
//   std::jthread ct = cap.start(), st = det.start_sampler();
//   ... det.add_metrics(exposition);        // vitro_alerts_total{container,rule}
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "introspect/evidence/capture.hpp"
#include "introspect/metrics/exposition.hpp"
#include "util/fd.hpp"

namespace vitro::introspect {

struct Baseline {
    std::string container_id, container_name, image, image_digest;
    int64_t learned_at_ns = 0;
    double duration_s = 0;
    std::set<std::pair<std::string, std::string>> executables;  // (path, sha256)
    std::set<std::pair<std::string, std::string>> lineage;      // (parent comm, child comm)
    std::set<std::string> shell_parents;                        // parent comms that spawned a shell
    std::set<int> listen;                                       // ports
    std::set<std::string> outbound;                             // "addr:port"
    std::set<std::string> written;                              // paths in the upper dir
    double cpu_max_cores = 0;
    uint64_t memory_max_bytes = 0, pids_max = 0;

    nlohmann::json to_json() const;
    static Baseline from_json(const nlohmann::json& j);  // throws vitro::Error on a malformed one
    static Baseline load(const std::string& path);
    void save(const std::string& path) const;            // atomically (tmp + rename)
};

// <root>/baselines/<container-id>.json
std::string default_baseline_path(const std::string& root, const std::string& container_id);

// Follows <root>/baselines/ with inotify (making the directory when missing,
// or waiting for it where the root is read-only), so that a service applies baselines learned, replaced or removed while it
// runs: calls `changed` on its own thread with the container id of each
// baseline file written or renamed into place, or removed, and with "" when
// any may have changed (the directory itself replaced, the event queue
// overflowed). Temporary files (<id>.json.tmp.<pid>) are not baselines.
class BaselineWatch {
public:
    // Throws vitro::Error naming the directory (or the root) when it cannot be watched.
    BaselineWatch(const std::string& root, std::function<void(const std::string& container_id)> changed);
    // The same, or none where inotify is used up (EMFILE, ENFILE: instances or
    // fds; ENOSPC: watches), which one warning says: a service then applies a
    // baseline only when it (re)discovers its container. Other errors throw.
    static std::unique_ptr<BaselineWatch> unless_exhausted(const std::string& root,
                                                           std::function<void(const std::string& container_id)> changed);
    // Reads events until stopped (stopping the jthread wakes it at once).
    std::jthread start();

private:
    void arm();
    void drain();
    std::string dir_;
    std::function<void(const std::string&)> changed_;
    UniqueFd inotify_, wake_;
    int wd_ = -1, parent_wd_ = -1;  // parent_wd_: <root>, while baselines/ is missing
};

// Classification helpers (also used by the tests).
bool is_shell(const std::string& comm, const nlohmann::json& cmdline);
// The mining marker found in the command line ("" = none).
std::string mining_marker(const nlohmann::json& cmdline);

// CPU rate over a sliding window from cumulative cgroup CPU time samples.
class CpuWindow {
public:
    // Adds a sample; returns the rate (cores) over the last >= window_ns, or
    // a negative value while there is less than a window of samples.
    double add(int64_t t_ns, uint64_t cpu_ns, int64_t window_ns = 1000000000);

private:
    std::deque<std::pair<int64_t, uint64_t>> s_;
};

// Builds a baseline from events (feed it the Capture's) and CPU samples.
class BaselineLearner {
public:
    explicit BaselineLearner(Baseline seed) : b_(std::move(seed)) {}
    // A process present when learning began (process_info JSON) and its parent's comm.
    void add_process(const nlohmann::json& info, const std::string& parent_comm);
    void on_event(const Event& e);
    void on_sample(int64_t t_ns, uint64_t cpu_ns, uint64_t memory_bytes, uint64_t pids);
    Baseline result() const;

private:
    void note_exec(const nlohmann::json& d, const std::string& parent_comm);
    std::string parent_comm(pid_t ppid) const;
    mutable std::mutex mu_;
    Baseline b_;
    std::map<pid_t, std::string> comm_;
    CpuWindow cpu_;
};

struct Alert {
    std::string rule, severity, container_id, container_name, details;
    uint64_t trigger_seq = 0;  // the evidence record that triggered it (0: CPU samples)
    uint64_t seq = 0;          // the alert's own record (0 when not stored)
    int64_t time_ns = 0;
    nlohmann::json to_json() const;
};

class Detector {
public:
    struct Options {
        std::string store_path;  // "" = alerts are not stored
        int cpu_sample_ms = 250;
        int64_t cpu_window_ns = 1000000000;
    };
    explicit Detector(Options opts);

    // Compares `t`'s events against `b`. Throws vitro::Error when the baseline
    // was learned on another image digest (naming both). Watching a container
    // again with a baseline that judges alike (the same but for when and how
    // long it was learned) keeps all, its alerts raised included; with another
    // replaces it: what was seen of it (process names, files written,
    // listening ports) is kept; its alerts may be raised anew.
    void watch(const WatchTarget& t, Baseline b, const std::string& image, const std::string& image_digest);
    // Stops comparing the container (its baseline removed, or it is gone).
    // False when it was not watched.
    bool unwatch(const std::string& container_id);
    void on_alert(std::function<void(const Alert&)> cb);
    void attach(Capture& cap);  // cap.subscribe(on_event)

    void on_event(const Event& e);
    // One cumulative CPU sample of a container (what the sampler feeds).
    void on_cpu(const std::string& container_id, int64_t t_ns, uint64_t cpu_ns);
    // Samples every watched container's cgroup CPU every cpu_sample_ms until stopped.
    std::jthread start_sampler();

    void add_metrics(Exposition& e) const;
    std::vector<Alert> alerts() const;

private:
    struct Watched {
        WatchTarget t;
        Baseline b;
        std::set<int> listening;
        std::set<std::string> written;
        std::set<std::string> raised;  // rule + key
        std::map<pid_t, std::string> comm;
        CpuWindow cpu;
        int64_t last_t = 0, above_since = 0;
        uint64_t last_cpu = 0;
        bool cpu_high = false;
    };
    void raise(Watched& w, const std::string& rule, const std::string& key, const std::string& severity,
               const std::string& details, uint64_t trigger_seq);
    void check_exec(Watched& w, const Event& e);
    std::string parent_comm(const Watched& w, pid_t ppid) const;

    Options opts_;
    mutable std::mutex mu_;
    std::map<std::string, Watched> watched_;
    std::vector<std::function<void(const Alert&)>> callbacks_;
    std::vector<Alert> alerts_;
    std::map<std::pair<std::string, std::string>, uint64_t> counts_;  // (container name, rule)
    struct StoreHolder;
    std::shared_ptr<StoreHolder> store_;
};

}  // namespace vitro::introspect
