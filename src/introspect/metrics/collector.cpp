#include "introspect/metrics/collector.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "introspect/common/proc_stats.hpp"
#include "introspect/common/process_snapshot.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/time.hpp"

namespace vitro::introspect {

namespace {

double wall_now() { return clock_seconds(CLOCK_REALTIME); }
double mono_now() { return clock_seconds(CLOCK_MONOTONIC); }
double cpu_now() { return clock_seconds(CLOCK_PROCESS_CPUTIME_ID); }
double d(uint64_t v) { return static_cast<double>(v); }

// Whether a periodic read last made at `at` is due at `now` (and then `at`
// moves). The first is at once; the next ones are spread over the interval
// by the container's id, not all due in the same scrape.
bool due(double& at, double interval, double now, const std::string& id) {
    if (now - at < interval) return false;
    const double spread = at < 0 ? static_cast<double>(std::hash<std::string>{}(id) % 1000) / 1000 : 0;
    at = now - spread * interval;
    return true;
}

// Bytes used under `dir`, not following symlinks nor leaving the file system.
uint64_t tree_usage(int dirfd, dev_t dev, int depth) {
    if (depth > 64) return 0;
    DIR* dir = ::fdopendir(dirfd);
    if (!dir) {
        ::close(dirfd);
        return 0;
    }
    uint64_t total = 0;
    while (auto* e = ::readdir(dir)) {
        if (e->d_name[0] == '.' && (e->d_name[1] == 0 || (e->d_name[1] == '.' && e->d_name[2] == 0))) continue;
        struct stat st;
        if (::fstatat(::dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_dev != dev) continue;
        total += static_cast<uint64_t>(st.st_blocks) * 512;
        if (S_ISDIR(st.st_mode)) {
            int sub = ::openat(::dirfd(dir), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0) total += tree_usage(sub, dev, depth + 1);
        }
    }
    ::closedir(dir);
    return total;
}

}  // namespace

struct Collector::Tracked {
    Target target;
    CgroupCounters counters;
    StatFile net_dev;
    ino_t netns = 0;
    double start_time = 0;
    std::string labels;  // id, image, name (+ namespace, pod), formatted once
    // Each process's /proc/<pid>/stat held open (without the process walk),
    // its CPU at the last scrape, its executable's hash (once), its fd count
    // (every process_interval_s; every scrape from the walk) and its sockets
    // (every sockets_interval_s).
    struct Proc {
        uint64_t start_ticks = 0;
        StatFile stat;
        double cpu_s = 0;
        std::string exe_sha256, exe_comm;  // hashed again when an exec changes comm
        OpenFiles files;
        double files_at = -1e9, sockets_at = -1e9;
        bool sockets_read = false;  // with the process walk: its sockets were counted once
        std::optional<ProcessSample> last;  // as read last
    };
    std::map<pid_t, Proc> procs;
    // What its processes add up to, as last read: kept while the cgroup is quiet.
    bool procs_read = false;
    uint64_t threads = 0;
    OpenFiles files;
    struct Top {
        pid_t pid;
        ProcessSample p;
        std::string exe_sha256;
    };
    std::vector<Top> top;  // the busiest, busiest first
    double full_at = -1e9, spec_at = -1e9;  // last read of every cgroup file, of the limits
    bool read_ok = false, full = false;     // this scrape's read: whether it worked, was full
    uint64_t fs_usage = 0;
    double fs_usage_at = -1e9;
    CgroupSample sample;
    std::vector<InterfaceCounters> net;
    bool net_read = false;   // `net` holds a read of its net/dev
    std::optional<int> nsid;  // its network namespace's id here, when a veth here peers into it

    explicit Tracked(Target t)
        : target(std::move(t)),
          counters(target.cgroups),
          net_dev("/proc/" + std::to_string(target.pid) + "/net/dev") {
        Labels l = {{"id", target.id}, {"image", target.image}, {"name", target.name}};
        if (!target.pod.empty()) {
            l.emplace_back("namespace", target.ns);
            l.emplace_back("pod", target.pod);
        }
        labels = format_labels(l);
        struct stat st;
        if (::stat(("/proc/" + std::to_string(target.pid) + "/ns/net").c_str(), &st) == 0) netns = st.st_ino;
        start_time = boot_time() + d(target.pid_start_ticks) / clock_ticks_per_second();
    }
};

Collector::Collector(CollectorOptions o)
    : o_(std::move(o)),
      mounts_(o_.cgroup_root),
      watch_(o_.discovery),
      host_stat_("/proc/stat"),
      host_meminfo_("/proc/meminfo"),
      host_loadavg_("/proc/loadavg") {
    if (mounts_.empty()) throw Error("no cgroup hierarchy is mounted under " + o_.cgroup_root);
    try {
        veths_ = std::make_unique<VethActivity>();
    } catch (const std::exception& ex) {
        log::warn(std::string("network counters: every container's read at every scrape: ") + ex.what());
    }
    loading_ = std::async(std::launch::async, load_walks);
}

Collector::Walks Collector::load_walks() {
    Walks w;
    const double t0 = mono_now();
    try {
        w.cgroup = std::make_unique<CgroupActivity>();
        log::debug("cgroup walk: BPF program loaded in " + std::to_string(mono_now() - t0) + " s");
    } catch (const std::exception& ex) {
        log::warn(std::string("cgroup counters: every container's CPU and memory files read at every scrape: ") + ex.what());
    }
    const double t1 = mono_now();
    try {
        w.process = std::make_unique<ProcessActivity>();
        log::debug("process walk: BPF program loaded in " + std::to_string(mono_now() - t1) + " s");
    } catch (const std::exception& ex) {
        log::warn(std::string("process counters: every running container's processes read from /proc: ") + ex.what());
    }
    return w;
}

// Under mu_: the walks, once loaded, replace the file reads from this scrape
// on (a discovery then tells them what to watch).
void Collector::take_walks() {
    if (!loading_.valid() || loading_.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return;
    Walks w = loading_.get();
    cgroup_walk_ = std::move(w.cgroup);
    process_walk_ = std::move(w.process);
    stale_ = true;
}

bool Collector::wait_for_walks(std::chrono::milliseconds timeout) {
    std::lock_guard lock(mu_);
    if (loading_.valid()) loading_.wait_for(timeout);
    take_walks();
    return !loading_.valid();
}

Collector::~Collector() = default;

void Collector::refresh(bool force) {
    take_walks();
    double now = mono_now();
    const bool changed = watch_.changed();
    const double every = watch_.watching() ? o_.rediscover_after_s : std::min(o_.rediscover_after_s, 30.0);
    if (!force && !stale_ && !changed && now - last_discovery_ < every) return;
    last_discovery_ = now;
    stale_ = false;
    ++discoveries_;
    auto targets = discover(o_.discovery, mounts_, &errors_);
    // Keep what is still there (its open files and history), add what is new.
    std::vector<std::unique_ptr<Tracked>> next;
    for (auto& t : targets) {
        auto it = std::find_if(containers_.begin(), containers_.end(), [&](const auto& c) {
            return c && c->target.id == t.id && c->target.pid == t.pid && c->target.pid_start_ticks == t.pid_start_ticks;
        });
        if (it != containers_.end()) {
            next.push_back(std::move(*it));
            continue;
        }
        auto c = std::make_unique<Tracked>(std::move(t));
        UniqueFd netns(::open(("/proc/" + std::to_string(c->target.pid) + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC));
        if (veths_ && netns) c->nsid = veths_->nsid_of(netns.get());
        next.push_back(std::move(c));
    }
    containers_ = std::move(next);
    if (veths_) veths_->relearn();
    std::vector<std::string> dirs;
    for (auto& c : containers_)
        for (auto& d : c->counters.activity_dirs()) dirs.push_back(std::move(d));
    if (cgroup_walk_) {
        try {
            cgroup_walk_->watch(dirs);
        } catch (const std::exception& ex) {
            walk_failed(ex);
        }
    }
    if (process_walk_) {
        try {
            process_walk_->watch(dirs);
        } catch (const std::exception& ex) {
            process_walk_failed(ex);
        }
    }
    if (on_discovery_) {
        std::vector<const Target*> now_watched;
        for (auto& c : containers_) now_watched.push_back(&c->target);
        on_discovery_(now_watched);
    }
}

void Collector::walk_failed(const std::exception& ex) {
    ++errors_;
    log::warn(std::string("cgroup counters: every container's files read at every scrape from now on: ") + ex.what());
    cgroup_walk_.reset();
}

void Collector::process_walk_failed(const std::exception& ex) {
    ++errors_;
    log::warn(std::string("process counters: every running container's processes read from /proc from now on: ") + ex.what());
    process_walk_.reset();
}

void Collector::rediscover() {
    std::lock_guard lock(mu_);
    try {
        refresh(false);
    } catch (const std::exception& ex) {
        ++errors_;
        log::warn(std::string("discovery: ") + ex.what());
    }
}

std::string Collector::scrape() {
    std::lock_guard lock(mu_);
    const double t0 = mono_now();
    const double now = wall_now();
    Exposition& e = expo_;
    e.reset();
    try {
        refresh(false);
    } catch (const std::exception& ex) {
        ++errors_;
        log::warn(std::string("discovery: ") + ex.what());
    }
    collect_host(e);
    if (veths_) {
        try {
            veths_->sample();
        } catch (const std::exception& ex) {
            ++errors_;
            log::warn(std::string("network counters: every container's read at every scrape from now on: ") + ex.what());
            veths_.reset();
        }
    }
    if (cgroup_walk_) {
        try {
            cgroup_walk_->sample();
        } catch (const std::exception& ex) {
            walk_failed(ex);
        }
    }
    if (process_walk_) {
        try {
            process_walk_->sample();
        } catch (const std::exception& ex) {
            process_walk_failed(ex);
        }
    }
    // Every cgroup read first: a container that exits mid-scrape is dropped
    // whole, never half-written.
    for (auto& c : containers_) {
        const bool spec = due(c->spec_at, o_.spec_interval_s, now, c->target.id);
        c->full = due(c->full_at, o_.process_interval_s, now, c->target.id) || spec;
        c->read_ok = c->counters.read(c->sample, {c->full, spec, cgroup_walk_.get(), process_walk_.get()});
        if (!c->read_ok) {
            ++vanished_;
            stale_ = true;
        }
    }
    for (auto& c : containers_)
        if (c->read_ok) collect_container(e, *c, now, c->full);
    // Pod level: members summed; the network once per shared namespace.
    struct Pod {
        double cpu = 0, working_set = 0, rx = 0, tx = 0;
        int containers = 0;
        std::set<ino_t> netns;
        std::string ns;
    };
    std::map<std::string, Pod> pods;
    for (auto& c : containers_) {
        if (c->target.pod.empty() || !c->read_ok || c->sample.procs.empty()) continue;
        auto& p = pods[c->target.pod + '\0' + c->target.ns];
        p.ns = c->target.ns;
        p.cpu += c->sample.cpu_usage_s;
        p.working_set += d(c->sample.memory_working_set);
        ++p.containers;
        if (p.netns.insert(c->netns).second)
            for (auto& i : c->net) {
                p.rx += d(i.rx_bytes);
                p.tx += d(i.tx_bytes);
            }
    }
    auto pod_cpu = e.family("vitro_pod_cpu_usage_seconds_total", MetricType::counter, "CPU time of the pod's containers, in seconds");
    auto pod_ws = e.family("vitro_pod_memory_working_set_bytes", MetricType::gauge, "Working set of the pod's containers");
    auto pod_rx = e.family("vitro_pod_network_receive_bytes_total", MetricType::counter, "Bytes received in the pod's network namespaces");
    auto pod_tx = e.family("vitro_pod_network_transmit_bytes_total", MetricType::counter, "Bytes sent from the pod's network namespaces");
    auto pod_n = e.family("vitro_pod_containers", MetricType::gauge, "Running containers in the pod");
    for (auto& [key, p] : pods) {
        std::string_view pod(key.data(), key.find('\0'));
        Labels l = {{"namespace", p.ns}, {"pod", pod}};
        e.add(pod_cpu, l, p.cpu);
        e.add(pod_ws, l, p.working_set);
        e.add(pod_rx, l, p.rx);
        e.add(pod_tx, l, p.tx);
        e.add(pod_n, l, p.containers);
    }
    for (auto& fn : sources_) {
        try {
            fn(e);
        } catch (const std::exception& ex) {
            ++errors_;
            log::warn(std::string("metrics source: ") + ex.what());
        }
    }
    ++scrapes_;
    collect_self(e, last_scrape_s_);
    std::string text = e.text();  // sized once, from the families' sizes
    last_scrape_s_ = mono_now() - t0;
    return text;
}

void Collector::collect_host(Exposition& e) {
    HostSample h;
    if (host_stat_.read(buf_)) parse_proc_stat_host(buf_, h);
    if (host_meminfo_.read(buf_)) parse_meminfo(buf_, h);
    if (host_loadavg_.read(buf_)) parse_loadavg(buf_, h);
    e.add(e.family("machine_cpu_cores", MetricType::gauge, "Number of logical CPU cores"), {}, d(h.cpus.size()));
    e.add(e.family("machine_memory_bytes", MetricType::gauge, "Amount of memory installed on the machine"), {},
          d(h.meminfo["MemTotal"]));
    auto cpu = e.family("node_cpu_seconds_total", MetricType::counter, "Seconds the CPUs spent in each mode");
    for (auto& c : h.cpus) {
        std::pair<const char*, double> modes[] = {{"idle", c.idle},     {"iowait", c.iowait}, {"irq", c.irq},
                                                  {"nice", c.nice},     {"softirq", c.softirq}, {"steal", c.steal},
                                                  {"system", c.system}, {"user", c.user}};
        for (auto& [mode, v] : modes) e.add(cpu, {{"cpu", c.cpu}, {"mode", mode}}, v);
    }
    // node_exporter's node_memory_MemTotal_bytes & co. fail `promtool check
    // metrics` (camelCase); these are the same fields in snake_case.
    static const std::pair<const char*, const char*> mem[] = {
        {"MemTotal", "vitro_host_memory_total_bytes"},     {"MemFree", "vitro_host_memory_free_bytes"},
        {"MemAvailable", "vitro_host_memory_available_bytes"}, {"Buffers", "vitro_host_memory_buffers_bytes"},
        {"Cached", "vitro_host_memory_cached_bytes"},      {"Shmem", "vitro_host_memory_shmem_bytes"},
        {"SwapTotal", "vitro_host_swap_total_bytes"},      {"SwapFree", "vitro_host_swap_free_bytes"}};
    for (auto& [key, name] : mem) {
        auto it = h.meminfo.find(key);
        if (it == h.meminfo.end()) continue;
        e.add(e.family(name, MetricType::gauge, std::string("The host's ") + key + " (/proc/meminfo), in bytes"), {},
              d(it->second));
    }
    e.add(e.family("node_load1", MetricType::gauge, "1m load average"), {}, h.load1);
    e.add(e.family("node_load5", MetricType::gauge, "5m load average"), {}, h.load5);
    e.add(e.family("node_load15", MetricType::gauge, "15m load average"), {}, h.load15);
    e.add(e.family("node_boot_time_seconds", MetricType::gauge, "Node boot time, in unixtime"), {}, h.boot_time);
    e.add(e.family("node_procs_running", MetricType::gauge, "Number of processes in runnable state"), {}, d(h.procs_running));
    e.add(e.family("node_procs_blocked", MetricType::gauge, "Number of processes blocked waiting for I/O to complete"), {},
          d(h.procs_blocked));
    e.add(e.family("node_context_switches_total", MetricType::counter, "Total number of context switches"), {},
          d(h.context_switches));
    e.add(e.family("node_forks_total", MetricType::counter, "Total number of forks"), {}, d(h.forks));
}

// Its net/dev is read when one of its veths moved (VethActivity), at a full
// read, and always for a container with an interface that is not the peer of
// a veth here (host network, macvlan, ...): `net` then counts more
// interfaces than there are veths peering into its namespace.
void Collector::collect_network(Tracked& t, bool full) {
    if (veths_ && t.nsid && t.net_read && !full && veths_->peers_in(*t.nsid) == t.net.size() && !veths_->moved(*t.nsid))
        return;
    t.net.clear();
    if (t.net_dev.read(buf_)) t.net = parse_net_dev(buf_);
    t.net_read = true;
}

// Processes: every one read for the thread count and the top-N ranking (CPU
// since the last scrape); their fds counted (a stat of the fd directory)
// every process_interval_s, sockets (a readlink per fd) every
// sockets_interval_s. With the process walk, all but the sockets come from
// it at every scrape, for no file read. When the cgroup did not run since
// the last read, its processes did not either: what they added up to
// stands, unless the list itself changed (a process moved in or out by
// someone else).
void Collector::collect_processes(Tracked& t, double now) {
    const CgroupSample& s = t.sample;
    const bool ran = !s.idle || !t.procs_read;
    if (!ran && s.procs.size() == t.procs.size() &&
        std::all_of(s.procs.begin(), s.procs.end(), [&](pid_t pid) { return t.procs.count(pid) != 0; }))
        return;
    struct Ranked {
        pid_t pid;
        ProcessSample p;
        double delta;
        Tracked::Proc* state;
        const ProcessActivity::Process* walked;
    };
    std::vector<Ranked> ranked;
    t.threads = 0;
    t.files = {};
    std::map<pid_t, Tracked::Proc> seen;
    const ProcessActivity* walk = process_walk_.get();
    for (pid_t pid : s.procs) {
        auto it = t.procs.find(pid);
        Tracked::Proc st;
        if (it != t.procs.end()) st = std::move(it->second);
        const ProcessActivity::Process* w = walk ? walk->process(pid) : nullptr;
        std::optional<ProcessSample> p;
        if (w) {
            p = w->sample;
        } else if (!walk) {
            if (!st.stat) st.stat = StatFile("/proc/" + std::to_string(pid) + "/stat");
            if (!ran && st.last) p = st.last;
            else if (st.stat.read(buf_)) p = parse_proc_stat(buf_);
        }
        if (!p) continue;
        if (st.start_ticks != p->start_ticks) {  // new, or the pid was reused
            st = Tracked::Proc{p->start_ticks, std::move(st.stat)};
        }
        st.last = p;
        t.threads += p->threads;
        if (o_.process_metrics) {
            // Opening or closing a file takes the process running.
            const bool born = st.files_at < 0;
            if (w) {
                // The count from the walk; the sockets from a walk of the
                // fd directory when due: at once for one there at the first
                // read, a second on for one born since (most such are
                // short-lived children), then when it ran.
                st.files.fds = w->files ? w->fds : 0;
                if (born && t.procs_read) {
                    st.sockets_at = now - o_.sockets_interval_s + 1;
                } else if (born || (now - st.sockets_at >= o_.sockets_interval_s && (!st.sockets_read || p->cpu_s != st.cpu_s))) {
                    st.files.sockets = count_open_files(pid).sockets;
                    st.sockets_at = now;
                    st.sockets_read = true;
                }
                st.files_at = now;
            } else if (born && t.procs_read) {
                // Born since the last read: its fds from the size of its
                // fd directory (one stat), its sockets from its first
                // walk, a second on. Most such are short-lived children.
                st.files = {count_open_files(pid, false).fds, 0};
                st.files_at = now - o_.process_interval_s + 1;
                st.sockets_at = now - o_.sockets_interval_s + 1;
            } else if (born || (ran && now - st.files_at >= o_.process_interval_s)) {
                // The count from the size of its fd directory (one stat); the
                // sockets from a walk of it (a readlink per fd), less often.
                if (born || now - st.sockets_at >= o_.sockets_interval_s) {
                    st.files = count_open_files(pid);
                    st.sockets_at = now;
                } else {
                    st.files.fds = count_open_files(pid, false).fds;
                }
                st.files_at = now;
            }
            t.files.fds += st.files.fds;
            t.files.sockets += st.files.sockets;
        }
        double delta = p->cpu_s - st.cpu_s;
        st.cpu_s = p->cpu_s;
        auto& kept = seen[pid] = std::move(st);
        ranked.push_back({pid, std::move(*p), delta, &kept, w});
    }
    t.procs = std::move(seen);  // map nodes are stable: the pointers in `ranked` stay valid
    t.procs_read = true;
    t.top.clear();
    std::size_t n = std::min(ranked.size(), static_cast<std::size_t>(std::max(o_.top_processes, 0)));
    std::partial_sort(ranked.begin(), ranked.begin() + static_cast<long>(n), ranked.end(),
                      [](const Ranked& a, const Ranked& b) {
                          return a.delta != b.delta ? a.delta > b.delta : a.p.cpu_s > b.p.cpu_s;
                      });
    for (std::size_t i = 0; i < n; ++i) {
        auto& r = ranked[i];
        if (r.state->exe_sha256.empty() || r.state->exe_comm != r.p.comm) {
            r.state->exe_sha256 = exe_sha256(r.pid, r.walked);
            r.state->exe_comm = r.p.comm;
        }
        t.top.push_back({r.pid, std::move(r.p), r.state->exe_sha256});
    }
}

void Collector::collect_container(Exposition& e, Tracked& t, double now, bool full) {
    const CgroupSample& s = t.sample;
    const std::string_view l = t.labels;
    using MT = MetricType;
    e.add_formatted(e.family("container_cpu_usage_seconds_total", MT::counter, "Cumulative cpu time consumed in seconds."), l,
          {{"cpu", "total"}}, s.cpu_usage_s);
    e.add_formatted(e.family("container_cpu_user_seconds_total", MT::counter, "Cumulative user cpu time consumed in seconds."), l,
          s.cpu_user_s);
    e.add_formatted(e.family("container_cpu_system_seconds_total", MT::counter, "Cumulative system cpu time consumed in seconds."),
          l, s.cpu_system_s);
    e.add_formatted(e.family("container_cpu_cfs_periods_total", MT::counter, "Number of elapsed enforcement period intervals."), l,
          d(s.cfs_periods));
    e.add_formatted(e.family("container_cpu_cfs_throttled_periods_total", MT::counter, "Number of throttled period intervals."),
          l, d(s.cfs_throttled_periods));
    e.add_formatted(e.family("container_cpu_cfs_throttled_seconds_total", MT::counter,
                   "Total time duration the container has been throttled."),
          l, s.cfs_throttled_s);

    e.add_formatted(e.family("container_memory_usage_bytes", MT::gauge, "Current memory usage in bytes, including all memory regardless of when it was accessed"),
          l, d(s.memory_usage));
    e.add_formatted(e.family("container_memory_working_set_bytes", MT::gauge, "Current working set in bytes."), l,
          d(s.memory_working_set));
    e.add_formatted(e.family("container_memory_rss", MT::gauge, "Size of RSS in bytes."), l, d(s.memory_rss));
    e.add_formatted(e.family("container_memory_cache", MT::gauge, "Number of bytes of page cache memory."), l, d(s.memory_cache));
    e.add_formatted(e.family("container_memory_mapped_file", MT::gauge, "Size of memory mapped files in bytes."), l,
          d(s.memory_mapped_file));
    e.add_formatted(e.family("container_memory_swap", MT::gauge, "Container swap usage in bytes."), l, d(s.memory_swap));
    // A counter in cAdvisor, typed gauge here: promtool wants counters named *_total.
    e.add_formatted(e.family("container_memory_failcnt", MT::gauge, "Number of memory usage hits limits"), l, d(s.memory_failcnt));
    e.add_formatted(e.family("container_memory_max_usage_bytes", MT::gauge, "Maximum memory usage recorded in bytes"), l,
          d(s.memory_max_usage));
    auto failures = e.family("container_memory_failures_total", MT::counter, "Cumulative count of memory allocation failures.");
    for (const char* scope : {"container", "hierarchy"}) {
        e.add_formatted(failures, l, {{"failure_type", "pgfault"}, {"scope", scope}}, d(s.pgfault));
        e.add_formatted(failures, l, {{"failure_type", "pgmajfault"}, {"scope", scope}}, d(s.pgmajfault));
    }

    auto rb = e.family("container_fs_reads_bytes_total", MT::counter, "Cumulative count of bytes read");
    auto wb = e.family("container_fs_writes_bytes_total", MT::counter, "Cumulative count of bytes written");
    auto rn = e.family("container_fs_reads_total", MT::counter, "Cumulative count of reads completed");
    auto wn = e.family("container_fs_writes_total", MT::counter, "Cumulative count of writes completed");
    for (auto& io : s.io) {
        Labels dev = {{"device", io.device}};
        e.add_formatted(rb, l, dev, d(io.read_bytes));
        e.add_formatted(wb, l, dev, d(io.write_bytes));
        e.add_formatted(rn, l, dev, d(io.reads));
        e.add_formatted(wn, l, dev, d(io.writes));
    }
    if (!t.target.upper_dir.empty()) {
        // Spread over the interval like the other periodic reads, not every
        // container's upper dir walked in the same scrape every 15 s.
        if (due(t.fs_usage_at, o_.fs_usage_interval_s, now, t.target.id)) {
            int fd = ::open(t.target.upper_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            struct stat st;
            if (fd >= 0 && ::fstat(fd, &st) == 0) t.fs_usage = tree_usage(fd, st.st_dev, 0);
            else if (fd >= 0) ::close(fd);
        }
        e.add_formatted(e.family("container_fs_usage_bytes", MT::gauge, "Number of bytes that are consumed by the container on this filesystem."),
              l, {{"device", t.target.upper_dir}}, d(t.fs_usage));
    }

    collect_network(t, full);
    struct NetFamily {
        const char* name;
        const char* help;
        uint64_t InterfaceCounters::*field;
    };
    static const NetFamily net_families[] = {
        {"container_network_receive_bytes_total", "Cumulative count of bytes received", &InterfaceCounters::rx_bytes},
        {"container_network_receive_packets_total", "Cumulative count of packets received", &InterfaceCounters::rx_packets},
        {"container_network_receive_errors_total", "Cumulative count of errors encountered while receiving", &InterfaceCounters::rx_errors},
        {"container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving", &InterfaceCounters::rx_dropped},
        {"container_network_transmit_bytes_total", "Cumulative count of bytes transmitted", &InterfaceCounters::tx_bytes},
        {"container_network_transmit_packets_total", "Cumulative count of packets transmitted", &InterfaceCounters::tx_packets},
        {"container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting", &InterfaceCounters::tx_errors},
        {"container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting", &InterfaceCounters::tx_dropped},
    };
    for (auto& nf : net_families) {
        auto f = e.family(nf.name, MT::counter, nf.help);
        for (auto& i : t.net) e.add_formatted(f, l, {{"interface", i.name}}, d(i.*nf.field));
    }

    collect_processes(t, now);
    e.add_formatted(e.family("container_processes", MT::gauge, "Number of processes running inside the container."), l,
          d(s.procs.size()));
    e.add_formatted(e.family("container_threads", MT::gauge, "Number of threads running inside the container"), l,
          d(t.threads));
    if (s.tasks_max)
        e.add_formatted(e.family("container_threads_max", MT::gauge, "Maximum number of threads allowed inside the container, infinity if value is zero"),
              l, d(*s.tasks_max));
    if (o_.process_metrics) {
        e.add_formatted(e.family("container_file_descriptors", MT::gauge, "Number of open file descriptors for the container."), l,
              d(t.files.fds));
        e.add_formatted(e.family("container_sockets", MT::gauge, "Number of open sockets for the container."), l, d(t.files.sockets));
    }
    e.add_formatted(e.family("container_start_time_seconds", MT::gauge, "Start time of the container since unix epoch in seconds."),
          l, t.start_time);
    e.add_formatted(e.family("container_last_seen", MT::gauge, "Last time a container was seen by the exporter"), l, now);

    e.add_formatted(e.family("container_spec_cpu_period", MT::gauge, "CPU period of the container."), l, d(s.cpu_period_us));
    if (s.cpu_quota_us)
        e.add_formatted(e.family("container_spec_cpu_quota", MT::gauge, "CPU quota of the container."), l, d(*s.cpu_quota_us));
    e.add_formatted(e.family("container_spec_cpu_shares", MT::gauge, "CPU share of the container."), l, d(s.cpu_shares));
    e.add_formatted(e.family("container_spec_memory_limit_bytes", MT::gauge, "Memory limit for the container."), l,
          d(s.memory_limit.value_or(0)));
    e.add_formatted(e.family("container_spec_memory_swap_limit_bytes", MT::gauge, "Memory swap limit for the container."), l,
          d(s.memory_swap_limit.value_or(0)));
    e.add_formatted(e.family("container_spec_memory_reservation_limit_bytes", MT::gauge, "Memory reservation limit for the container."),
          l, d(s.memory_reservation.value_or(0)));

    if (t.top.empty()) return;
    auto pcpu = e.family("vitro_process_cpu_seconds_total", MT::counter,
                         "CPU time of one of the container's busiest processes (top N by CPU since the last scrape)");
    auto prss = e.family("vitro_process_resident_memory_bytes", MT::gauge, "Resident memory of that process");
    auto pthr = e.family("vitro_process_threads", MT::gauge, "Threads of that process");
    auto pstart = e.family("vitro_process_start_time_seconds", MT::gauge, "Start time of that process since unix epoch");
    for (auto& top : t.top) {
        std::string pid = std::to_string(top.pid);
        Labels pl = {{"comm", top.p.comm}, {"exe_sha256", top.exe_sha256}, {"pid", pid}};
        e.add_formatted(pcpu, l, pl, top.p.cpu_s);
        e.add_formatted(prss, l, pl, d(top.p.rss_bytes));
        e.add_formatted(pthr, l, pl, d(top.p.threads));
        e.add_formatted(pstart, l, pl, boot_time() + d(top.p.start_ticks) / clock_ticks_per_second());
    }
}

namespace {
// One hash per file version: the key of what `st` describes.
std::string exe_key(const struct stat& st) {
    return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
           std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}
}  // namespace

std::string Collector::exe_sha256(pid_t pid, const ProcessActivity::Process* walked) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/exe", pid);
    // The file's identity as the walk saw it, or a stat through the link:
    // finds a file already hashed without reading it (new processes of a
    // known binary are the common case); the walk's costs no system call.
    std::string key;
    struct stat st;
    if (walked && walked->exe) {
        key = "w" + std::to_string(walked->exe_dev) + ":" + std::to_string(walked->exe_ino) + ":" +
              std::to_string(walked->exe_size) + ":" + std::to_string(walked->exe_mtime_ns);
    } else if (walked || ::stat(path, &st) != 0) {
        return "unknown";  // gone, or a kernel thread
    } else {
        key = exe_key(st);
    }
    if (auto it = exe_hashes_.find(key); it != exe_hashes_.end()) return it->second;
    UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
    if (!fd || ::fstat(fd.get(), &st) != 0) return "unknown";
    std::string digest;
    try {
        digest = sha256_fd(fd.get()).substr(7);  // without "sha256:"
    } catch (const Error&) {
        return "unknown";
    }
    if (exe_hashes_.size() > 4096) exe_hashes_.clear();  // bounded under a churn of binaries
    if (!walked) key = exe_key(st);  // the file as opened
    return exe_hashes_.emplace(key, digest).first->second;
}

void Collector::collect_self(Exposition& e, double scrape_s) {
    using MT = MetricType;
    e.add(e.family("vitro_build_info", MT::gauge, "vitro's version"), {{"version", VITRO_VERSION}}, 1);
    e.add(e.family("vitro_exporter_scrape_duration_seconds", MT::gauge, "How long the previous collection took (a scrape waits for it only when it was not made ahead)"), {}, scrape_s);
    e.add(e.family("vitro_exporter_scrapes_total", MT::counter, "Scrapes served"), {}, d(scrapes_));
    e.add(e.family("vitro_exporter_discoveries_total", MT::counter, "Container discoveries run"), {}, d(discoveries_));
    auto loaded = e.family("vitro_exporter_bpf_walk_loaded", MT::gauge,
                           "Whether a BPF walk reads the containers' counters (1) or their files and /proc are read (0: "
                           "still loading, or it cannot load here; the log says why)");
    e.add(loaded, {{"walk", "cgroup"}}, cgroup_walk_ ? 1 : 0);
    e.add(loaded, {{"walk", "task"}}, process_walk_ ? 1 : 0);
    e.add(e.family("vitro_exporter_errors_total", MT::counter, "State or files that could not be read"), {}, d(errors_));
    e.add(e.family("vitro_exporter_containers_vanished_total", MT::counter, "Containers gone between discovery and scrape"),
          {}, d(vanished_));
    std::map<std::string, int> by_runtime;
    for (auto& c : containers_) ++by_runtime[c->target.runtime];
    auto fam = e.family("vitro_exporter_containers", MT::gauge, "Containers watched, by the runtime that named them");
    for (auto& [rt, n] : by_runtime) e.add(fam, {{"runtime", rt}}, n);

    e.add(e.family("process_cpu_seconds_total", MT::counter, "Total user and system CPU time spent in seconds."), {},
          cpu_now());
    if (auto self = read_process(::getpid())) {
        e.add(e.family("process_resident_memory_bytes", MT::gauge, "Resident memory size in bytes."), {},
              d(self->rss_bytes));
        e.add(e.family("process_start_time_seconds", MT::gauge, "Start time of the process since unix epoch in seconds."),
              {}, boot_time() + d(self->start_ticks) / clock_ticks_per_second());
    }
    // Our own fd table is ~20 entries per container: walked every process_interval_s.
    const double now = mono_now();
    if (now - self_fds_at_ >= o_.process_interval_s) {
        self_fds_ = count_open_files(::getpid(), false).fds;
        self_fds_at_ = now;
    }
    e.add(e.family("process_open_fds", MT::gauge, "Number of open file descriptors."), {}, d(self_fds_));
}

}  // namespace vitro::introspect
