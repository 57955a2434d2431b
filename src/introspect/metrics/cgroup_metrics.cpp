#include "introspect/metrics/cgroup_metrics.hpp"

#include <unistd.h>

#include <charconv>

#include "introspect/metrics/process_activity.hpp"

namespace vitro::introspect {

namespace {

// Unlimited reads as nullopt: v2 "max", v1 -1 or the page-rounded LONG_MAX.
std::optional<uint64_t> limit_of(std::string_view text) {
    if (text.rfind("max", 0) == 0 || text.rfind("-1", 0) == 0) return std::nullopt;
    auto v = first_number(text);
    if (v && *v >= (uint64_t{1} << 62)) return std::nullopt;
    return v;
}

uint64_t key_or0(std::string_view text, std::string_view key) { return keyed(text, key).value_or(0); }

// v2 io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 ..." per line.
void parse_io_v2(std::string_view text, std::vector<DeviceIo>& out) {
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t eol = text.find('\n', pos);
        if (eol == std::string_view::npos) eol = text.size();
        std::string_view f[16];
        std::size_t n = 0;
        fields(text.substr(pos, eol - pos), f, 16, n);
        pos = eol + 1;
        if (n < 2) continue;
        DeviceIo d{std::string(f[0])};
        for (std::size_t i = 1; i < n; ++i) {
            auto eq = f[i].find('=');
            if (eq == std::string_view::npos) continue;
            uint64_t v = first_number(f[i].substr(eq + 1)).value_or(0);
            auto k = f[i].substr(0, eq);
            if (k == "rbytes") d.read_bytes = v;
            else if (k == "wbytes") d.write_bytes = v;
            else if (k == "rios") d.reads = v;
            else if (k == "wios") d.writes = v;
        }
        out.push_back(std::move(d));
    }
}

// v1 blkio.throttle.io_service{_bytes}_recursive: "8:0 Read 123" lines.
void parse_io_v1(std::string_view text, std::vector<DeviceIo>& out, bool bytes) {
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t eol = text.find('\n', pos);
        if (eol == std::string_view::npos) eol = text.size();
        std::string_view f[3];
        std::size_t n = 0;
        fields(text.substr(pos, eol - pos), f, 3, n);
        pos = eol + 1;
        if (n != 3 || (f[1] != "Read" && f[1] != "Write")) continue;
        DeviceIo* d = nullptr;
        for (auto& e : out)
            if (e.device == f[0]) d = &e;
        if (!d) d = &out.emplace_back(DeviceIo{std::string(f[0])});
        uint64_t v = first_number(f[2]).value_or(0);
        (f[1] == "Read" ? (bytes ? d->read_bytes : d->reads) : (bytes ? d->write_bytes : d->writes)) = v;
    }
}

void parse_procs(std::string_view text, std::vector<pid_t>& out) {
    const char* p = text.data();
    const char* end = p + text.size();
    while (p < end) {
        pid_t pid = 0;
        auto r = std::from_chars(p, end, pid);
        if (r.ec == std::errc() && pid > 0) out.push_back(pid);
        p = r.ptr;
        while (p < end && *p != '\n') ++p;
        ++p;
    }
}

// Swap in use needs swap: without any on the host, a container's swap is 0
// and its memsw file is not worth a read per scrape. Asked again every 10 s.
bool host_has_swap() {
    static StatFile meminfo("/proc/meminfo");
    static std::string buf;
    static bool swap = false;
    static double checked = -1e9;
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    double t = static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
    if (t - checked >= 10 && meminfo.read(buf)) {
        checked = t;
        swap = keyed(buf, "SwapTotal:").value_or(0) > 0;
    }
    return swap;
}

std::string in(const cgroups::ProcessCgroups& w, const char* controller, const char* file) {
    auto it = w.v1.find(controller);
    return it == w.v1.end() ? std::string() : it->second + "/" + file;
}

}  // namespace

uint64_t weight_to_shares(uint64_t weight) {
    if (weight == 0) return 0;
    return 2 + ((weight - 1) * 262142) / 9999;
}

CgroupCounters::CgroupCounters(const cgroups::ProcessCgroups& w) {
    // Hybrid hosts keep every controller on v1; only a host whose v2 cgroup
    // has the controllers (no v1 memory hierarchy) is read as v2.
    v2_ = w.v1.find("memory") == w.v1.end() && w.v1.find("cpu") == w.v1.end() && !w.v2.empty();
    if (v2_) {
        cpu_dir_ = mem_dir_ = w.v2;
        cpu_id_ = mem_id_ = CgroupActivity::id_of(w.v2);
        const std::string d = w.v2 + "/";
        cpu_stat_ = StatFile(d + "cpu.stat");
        cpu_max_ = StatFile(d + "cpu.max");
        cpu_weight_ = StatFile(d + "cpu.weight");
        mem_usage_ = StatFile(d + "memory.current");
        mem_stat_ = StatFile(d + "memory.stat");
        mem_events_ = StatFile(d + "memory.events");
        mem_swap_ = StatFile(d + "memory.swap.current");
        mem_peak_ = StatFile(d + "memory.peak");
        mem_limit_ = StatFile(d + "memory.max");
        mem_swap_limit_ = StatFile(d + "memory.swap.max");
        mem_low_ = StatFile(d + "memory.low");
        io_ = StatFile(d + "io.stat");
        pids_max_ = StatFile(d + "pids.max");
        procs_ = StatFile(d + "cgroup.procs");
        return;
    }
    if (auto it = w.v1.find("cpu"); it != w.v1.end()) cpu_dir_ = it->second;
    if (auto it = w.v1.find("memory"); it != w.v1.end()) mem_dir_ = it->second;
    cpu_id_ = cpu_dir_.empty() ? 0 : CgroupActivity::id_of(cpu_dir_);
    mem_id_ = mem_dir_.empty() ? 0 : CgroupActivity::id_of(mem_dir_);
    // Not usage_all: its user/system columns are the tick-sampled split
    // (cpuacct.stat's, in ns) and do not add up to the exact usage.
    cpu_usage_ = StatFile(in(w, "cpuacct", "cpuacct.usage"));
    cpu_times_ = StatFile(in(w, "cpuacct", "cpuacct.stat"));
    cpu_stat_ = StatFile(in(w, "cpu", "cpu.stat"));
    cpu_quota_ = StatFile(in(w, "cpu", "cpu.cfs_quota_us"));
    cpu_period_ = StatFile(in(w, "cpu", "cpu.cfs_period_us"));
    cpu_weight_ = StatFile(in(w, "cpu", "cpu.shares"));
    mem_usage_ = StatFile(in(w, "memory", "memory.usage_in_bytes"));
    mem_stat_ = StatFile(in(w, "memory", "memory.stat"));
    mem_swap_ = StatFile(in(w, "memory", "memory.memsw.usage_in_bytes"));
    mem_peak_ = StatFile(in(w, "memory", "memory.max_usage_in_bytes"));
    mem_failcnt_ = StatFile(in(w, "memory", "memory.failcnt"));
    mem_limit_ = StatFile(in(w, "memory", "memory.limit_in_bytes"));
    mem_swap_limit_ = StatFile(in(w, "memory", "memory.memsw.limit_in_bytes"));
    mem_low_ = StatFile(in(w, "memory", "memory.soft_limit_in_bytes"));
    io_ = StatFile(in(w, "blkio", "blkio.throttle.io_service_bytes_recursive"));
    pids_max_ = StatFile(in(w, "pids", "pids.max"));
    // The process list from the memory hierarchy (any would do; memory is always there).
    procs_ = StatFile(in(w, w.v1.count("memory") ? "memory" : "cpu", "cgroup.procs"));
}

std::vector<std::string> CgroupCounters::activity_dirs() const {
    std::vector<std::string> out;
    if (!cpu_dir_.empty()) out.push_back(cpu_dir_);
    if (!mem_dir_.empty() && mem_dir_ != cpu_dir_) out.push_back(mem_dir_);
    return out;
}

void CgroupCounters::read_spec(CgroupSample& s) {
    auto& b = buf_;
    if (v2_) {
        if (cpu_max_.read(b)) {  // "max 100000" or "50000 100000"
            s.cpu_quota_us = limit_of(b);
            auto sp = b.find(' ');
            if (sp != std::string::npos) s.cpu_period_us = first_number(std::string_view(b).substr(sp + 1)).value_or(0);
        }
        if (cpu_weight_.read(b)) s.cpu_shares = weight_to_shares(first_number(b).value_or(0));
    } else {
        if (cpu_quota_.read(b)) s.cpu_quota_us = limit_of(b);
        if (cpu_period_.read(b)) s.cpu_period_us = first_number(b).value_or(0);
        if (cpu_weight_.read(b)) s.cpu_shares = first_number(b).value_or(0);
    }
    if (mem_limit_.read(b)) s.memory_limit = limit_of(b);
    if (mem_swap_limit_.read(b)) s.memory_swap_limit = limit_of(b);
    if (mem_low_.read(b)) {
        s.memory_reservation = limit_of(b);
        if (s.memory_reservation == 0u) s.memory_reservation.reset();
    }
    if (pids_max_.read(b)) s.tasks_max = limit_of(b);
}

// The memory the cgroup holds, by kind: memory.stat, swap and the peak (the
// walk's when it saw the cgroup's). s.memory_usage is read already.
void CgroupCounters::read_memory(CgroupSample& s, bool peak, const CgroupActivity::Seen* mem) {
    auto& b = buf_;
    if (v2_) {
        if (mem_stat_.read(b)) {
            s.memory_rss = key_or0(b, "anon");
            s.memory_cache = key_or0(b, "file");
            s.memory_mapped_file = key_or0(b, "file_mapped");
            s.pgfault = key_or0(b, "pgfault");
            s.pgmajfault = key_or0(b, "pgmajfault");
            s.memory_inactive_file = key_or0(b, "inactive_file");
        }
        if (host_has_swap() && mem_swap_.read(b)) s.memory_swap = first_number(b).value_or(0);
    } else {
        if (mem_stat_.read(b)) {
            // total_*: this cgroup and its descendants, as usage_in_bytes counts them.
            s.memory_rss = key_or0(b, "total_rss");
            s.memory_cache = key_or0(b, "total_cache");
            s.memory_mapped_file = key_or0(b, "total_mapped_file");
            s.pgfault = key_or0(b, "total_pgfault");
            s.pgmajfault = key_or0(b, "total_pgmajfault");
            s.memory_inactive_file = key_or0(b, "total_inactive_file");
        }
        if (host_has_swap() && mem_swap_.read(b)) {
            uint64_t memsw = first_number(b).value_or(0);
            s.memory_swap = memsw > s.memory_usage ? memsw - s.memory_usage : 0;
        }
    }
    set_working_set(s);
    if (peak && mem) s.memory_max_usage = mem->memory_peak_bytes;
    else if (peak && mem_peak_.read(b)) s.memory_max_usage = first_number(b).value_or(0);
}

// cAdvisor's working set: the usage less the inactive file pages.
void CgroupCounters::set_working_set(CgroupSample& s) {
    s.memory_working_set = s.memory_usage > s.memory_inactive_file ? s.memory_usage - s.memory_inactive_file : 0;
}

// The memory usage (the walk's when it saw the cgroup's), and the memory's
// files when it moved (its peak only when it rose: the peak cannot have
// moved in a fall).
void CgroupCounters::read_memory_usage(CgroupSample& s, const CgroupActivity::Seen* mem) {
    uint64_t usage = 0;
    if (mem) usage = mem->memory_bytes;
    else if (mem_usage_.read(buf_)) usage = first_number(buf_).value_or(0);
    else return;
    if (usage == s.memory_usage) return;
    // A fall of at most one CPU's charge stock (MEMCG_CHARGE_BATCH, 64
    // pages) in a cgroup that did not run is that stock drained: another
    // cgroup charged on that CPU, and the pages this one had charged ahead
    // went back. What memory.stat counts did not move; the usage and the
    // working set did. (A reclaim as small is seen at the next full read.)
    static const uint64_t stock = 64 * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    if (usage < s.memory_usage && s.memory_usage - usage <= stock) {
        s.memory_usage = usage;
        set_working_set(s);
        return;
    }
    const bool rose = usage > s.memory_usage;
    s.memory_usage = usage;
    read_memory(s, rose, mem);
}

bool CgroupCounters::read(CgroupSample& s, What what) {
    CgroupSample next;
    auto& b = buf_;
    // What this scrape's walk saw, when it saw this cgroup's CPU time and
    // memory; a cgroup that is gone is not seen, and its files tell.
    const CgroupActivity::Seen* cpu = what.activity ? what.activity->seen(cpu_id_) : nullptr;
    const CgroupActivity::Seen* mem = what.activity ? what.activity->seen(mem_id_) : nullptr;
    if (cpu && !cpu->cpu) cpu = nullptr;
    if (mem && !mem->memory) mem = nullptr;
    // Quiet, as the walk saw it (see below): not one file read.
    if (!what.full && read_once_ && cpu && !cpu->ran && mem) {
        s.quiet = s.idle = true;
        read_memory_usage(s, mem);
        return true;
    }
    // The CPU time first (v2: all of cpu.stat, one file): a cgroup that is
    // gone ends the sample here.
    if (v2_) {
        if (!cpu_stat_.read(b)) return false;
        next.cpu_usage_s = static_cast<double>(key_or0(b, "usage_usec")) / 1e6;
        next.cpu_user_s = static_cast<double>(key_or0(b, "user_usec")) / 1e6;
        next.cpu_system_s = static_cast<double>(key_or0(b, "system_usec")) / 1e6;
        next.cfs_periods = key_or0(b, "nr_periods");
        next.cfs_throttled_periods = key_or0(b, "nr_throttled");
        next.cfs_throttled_s = static_cast<double>(key_or0(b, "throttled_usec")) / 1e6;
    } else {
        if (!cpu_usage_.read(b)) return false;
        next.cpu_usage_s = static_cast<double>(first_number(b).value_or(0)) / 1e9;
    }
    // Nothing in the cgroup ran since the last read (not a nanosecond of
    // CPU): what moves only when its processes run stands as read then:
    // forks and exits, faults, failed charges, user/system time, and block
    // I/O on v1. Its memory charge can still move (another cgroup's charge
    // on a CPU drains this one's per-CPU stock; reclaim), and then the
    // memory is read again. A full read at least every spec interval bounds
    // what could still move unseen: I/O a kernel worker submits on the
    // container's behalf after it went quiet, LRU aging without a charge
    // moving, a process moved in or out of the cgroup by someone else.
    if (!what.full && next.cpu_usage_s == s.cpu_usage_s) {
        s.quiet = s.idle = true;
        read_memory_usage(s, mem);
        return true;
    }
    // A full read of a cgroup that did not run reads what can move without
    // it running (see above), not its CPU split, throttling, peak or failures.
    next.idle = read_once_ && next.cpu_usage_s == s.cpu_usage_s;
    const bool ran = !next.idle;
    if (mem) next.memory_usage = mem->memory_bytes;
    else if (mem_usage_.read(b)) next.memory_usage = first_number(b).value_or(0);
    const bool peak = ran || next.memory_usage > s.memory_usage;
    // The processes: from the walk where it watches this cgroup (the one
    // it lists them under: the cpu controller's first), else the file.
    const std::vector<pid_t>* walked = what.processes ? what.processes->processes(cpu_id_ ? cpu_id_ : mem_id_) : nullptr;
    if (walked) {
        next.procs = *walked;
    } else {
        if (!procs_.read(b)) return false;
        parse_procs(b, next.procs);
    }
    // The limits change only on `update`: kept from the last read unless asked.
    if (what.full && what.spec) {
        read_spec(next);  // before cpu.stat: the quota decides whether it is read
    } else {
        next.cpu_quota_us = s.cpu_quota_us;
        next.cpu_period_us = s.cpu_period_us;
        next.cpu_shares = s.cpu_shares;
        next.memory_limit = s.memory_limit;
        next.memory_swap_limit = s.memory_swap_limit;
        next.memory_reservation = s.memory_reservation;
        next.tasks_max = s.tasks_max;
    }
    // v1's failcnt counts the failures at this cgroup's own limit: without
    // one it stays as it is (read again at each spec read).
    const bool failcnt = (what.full && what.spec) || (ran && (v2_ || next.memory_limit));
    next.memory_failcnt = s.memory_failcnt;
    next.memory_max_usage = s.memory_max_usage;
    if (!v2_) {  // v2's are in cpu.stat, read already
        next.cpu_user_s = s.cpu_user_s;
        next.cpu_system_s = s.cpu_system_s;
        next.cfs_periods = s.cfs_periods;
        next.cfs_throttled_periods = s.cfs_throttled_periods;
        next.cfs_throttled_s = s.cfs_throttled_s;
    }
    s = std::move(next);
    read_once_ = true;
    read_memory(s, peak, mem);
    if (v2_) {
        if (failcnt && mem_events_.read(b)) s.memory_failcnt = key_or0(b, "max");
        if (io_.read(b)) parse_io_v2(b, s.io);
    } else {
        if (ran && cpu_times_.read(b)) {  // USER_HZ ticks
            static const double hz = static_cast<double>(::sysconf(_SC_CLK_TCK));
            s.cpu_user_s = static_cast<double>(key_or0(b, "user")) / hz;
            s.cpu_system_s = static_cast<double>(key_or0(b, "system")) / hz;
        }
        // Without a quota no period is enforced: the throttling counters stay 0.
        if (ran && s.cpu_quota_us && cpu_stat_.read(b)) {
            s.cfs_periods = key_or0(b, "nr_periods");
            s.cfs_throttled_periods = key_or0(b, "nr_throttled");
            s.cfs_throttled_s = static_cast<double>(key_or0(b, "throttled_time")) / 1e9;
        }
        if (failcnt && mem_failcnt_.read(b)) s.memory_failcnt = first_number(b).value_or(0);
        if (io_.read(b)) parse_io_v1(b, s.io, true);
    }
    return true;
}

}  // namespace vitro::introspect
