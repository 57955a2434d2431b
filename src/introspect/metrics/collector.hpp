// The exporter's collection: discovers containers, keeps their stat files
// open, and writes host, container, process and exporter metrics in
// Prometheus text at each scrape. cAdvisor's names and labels where it has
// them, node_exporter's for the host, vitro_* for the rest.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cgroups/cgroup.hpp"
#include "introspect/common/stat_file.hpp"
#include "introspect/metrics/cgroup_activity.hpp"
#include "introspect/metrics/cgroup_metrics.hpp"
#include "introspect/metrics/discovery.hpp"
#include "introspect/metrics/exposition.hpp"
#include "introspect/metrics/process_activity.hpp"
#include "introspect/metrics/veth_activity.hpp"

namespace vitro::introspect {

struct CollectorOptions {
    DiscoveryOptions discovery;
    std::string cgroup_root = "/sys/fs/cgroup";
    int top_processes = 5;           // vitro_process_* series per container (0: none)
    bool process_metrics = true;     // container_file_descriptors/sockets (sockets: walks /proc/<pid>/fd)
    double process_interval_s = 10;  // ... at most this often per process; every cgroup file too
    double sockets_interval_s = 30;  // ... their sockets (a readlink per fd) at most this often
    double spec_interval_s = 30;     // the limits (container_spec_*): they move only on an update
    // Rediscover at least this often, even when nothing seemed to change
    // (a discovery reads the state database and every container's state):
    // 30 s when the state cannot be watched with inotify.
    double rediscover_after_s = 300;
    double fs_usage_interval_s = 15; // container_fs_usage_bytes: a walk of the upper dir
};

class Collector {
public:
    explicit Collector(CollectorOptions o);
    ~Collector();

    // One scrape's text. Never throws for a container that goes away or a
    // file that cannot be read: those are skipped and counted.
    // Handed over, not copied: the text of 100 containers is ~800 KB.
    std::string scrape();

    // Extra families from other parts of the exporter (alerts, evidence):
    // called at each scrape after the built-in ones.
    void add_source(std::function<void(Exposition&)> fn) { sources_.push_back(std::move(fn)); }

    // Called (under the collector's lock) after each discovery with what is
    // watched now: continuous capture and detection follow the same set.
    void on_discovery(std::function<void(const std::vector<const Target*>&)> fn) { on_discovery_ = std::move(fn); }
    // Runs discovery if anything changed (as a scrape does), from any thread.
    void rediscover();

    // The BPF walks load on a thread of their own (the verifier may take
    // seconds), never delaying the server; scrapes read the files until they
    // are in. Waits up to `timeout` for them to load or fail, for a one-off
    // scrape (--once); false when they are still loading.
    bool wait_for_walks(std::chrono::milliseconds timeout);

private:
    struct Tracked;
    struct Walks {
        std::unique_ptr<CgroupActivity> cgroup;
        std::unique_ptr<ProcessActivity> process;
    };
    static Walks load_walks();
    void take_walks();
    void refresh(bool force);
    void walk_failed(const std::exception& ex);
    void process_walk_failed(const std::exception& ex);
    void collect_host(Exposition& e);
    void collect_container(Exposition& e, Tracked& t, double now, bool full);
    void collect_network(Tracked& t, bool full);
    void collect_processes(Tracked& t, double now);
    void collect_self(Exposition& e, double scrape_s);
    std::string exe_sha256(pid_t pid, const ProcessActivity::Process* walked);

    CollectorOptions o_;
    cgroups::CgroupMounts mounts_;
    std::vector<std::unique_ptr<Tracked>> containers_;
    DiscoveryWatch watch_;
    double last_discovery_ = 0;
    bool stale_ = true;
    uint64_t scrapes_ = 0, discoveries_ = 0, errors_ = 0, vanished_ = 0;
    double last_scrape_s_ = 0;
    uint64_t self_fds_ = 0;
    double self_fds_at_ = -1e9;
    StatFile host_stat_, host_meminfo_, host_loadavg_;
    std::string buf_;
    Exposition expo_;
    // Null when this namespace's devices cannot be dumped: every container's
    // net/dev is read at every scrape then.
    std::unique_ptr<VethActivity> veths_;
    // Null while loading, and where BPF cgroup iterators cannot be loaded:
    // every container's CPU time and memory usage are read from its files at
    // every scrape then.
    std::unique_ptr<CgroupActivity> cgroup_walk_;
    // Null while loading, and where BPF task iterators cannot be loaded: the
    // processes of every container that ran are read from /proc then.
    std::unique_ptr<ProcessActivity> process_walk_;
    std::map<std::string, std::string> exe_hashes_;  // "dev:ino:size:mtime" -> sha256 hex
    std::vector<std::function<void(Exposition&)>> sources_;
    std::function<void(const std::vector<const Target*>&)> on_discovery_;
    std::mutex mu_;  // scrape() and rediscover() from different threads
    std::future<Walks> loading_;  // last: its destructor waits for the loading thread
};

}  // namespace vitro::introspect
