// A container's cgroup counters in cAdvisor's terms, read the same way on
// cgroup v1, v2 and hybrid hosts (hybrid: the v1 controllers hold them).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cgroups/cgroup.hpp"
#include "introspect/common/stat_file.hpp"
#include "introspect/metrics/cgroup_activity.hpp"

namespace vitro::introspect {

class ProcessActivity;

struct DeviceIo {
    std::string device;  // "major:minor"
    uint64_t read_bytes = 0, write_bytes = 0, reads = 0, writes = 0;
};

struct CgroupSample {
    double cpu_usage_s = 0, cpu_user_s = 0, cpu_system_s = 0;
    uint64_t cfs_periods = 0, cfs_throttled_periods = 0;
    double cfs_throttled_s = 0;
    uint64_t memory_usage = 0, memory_working_set = 0, memory_rss = 0, memory_cache = 0;
    uint64_t memory_swap = 0, memory_failcnt = 0, memory_max_usage = 0, memory_mapped_file = 0;
    uint64_t pgfault = 0, pgmajfault = 0;
    uint64_t memory_inactive_file = 0;  // as memory.stat last read: the working set is the usage less it
    std::vector<DeviceIo> io;
    std::optional<uint64_t> tasks_max;  // pids controller: threads, not processes
    std::vector<pid_t> procs;
    // Set by a read that found the cgroup quiet (not a nanosecond of CPU
    // since the read before) and kept what only its processes' running can
    // move: the process list included.
    bool quiet = false;
    // No CPU since the read before (quiet, or a full read of a cgroup that
    // did not run): its processes' counters and fd tables are as they were.
    bool idle = false;
    // Limits ("spec"): nullopt = unlimited.
    std::optional<uint64_t> cpu_quota_us;
    uint64_t cpu_period_us = 0, cpu_shares = 0;
    std::optional<uint64_t> memory_limit, memory_swap_limit, memory_reservation;
};

// The open stat files of one cgroup. A file the host lacks stays closed and
// its counters read zero; a cgroup that disappears makes read() false.
class CgroupCounters {
public:
    explicit CgroupCounters(const cgroups::ProcessCgroups& where);
    struct What {
        // Every file, quiet or not. Otherwise a quiet cgroup (nothing ran
        // since the last read of `out`) costs two reads, its CPU time and
        // memory usage, and the memory's files when the charge moved (see
        // CgroupSample::quiet).
        bool full = true;
        // The limits (the "spec" fields); otherwise kept from the last read
        // of `out` (seven reads fewer). Only with `full`.
        bool spec = true;
        // This scrape's walk of the cgroups (null: none): a quiet cgroup it
        // saw not run costs no read at all, and the memory usage is the
        // walk's (the same page counter the file prints).
        const CgroupActivity* activity = nullptr;
        // This scrape's walk of the processes (null: none): the process
        // list is its, not cgroup.procs'.
        const ProcessActivity* processes = nullptr;
    };
    // The task count is not read (pids.current): the collector sums the
    // threads of the processes it reads anyway.
    bool read(CgroupSample& out, What what);
    bool read(CgroupSample& out, bool full = true) { return read(out, What{full, full}); }
    bool v2() const { return v2_; }
    // The directories a CgroupActivity should watch for this cgroup: the
    // cpu and memory controllers' (one on v2).
    std::vector<std::string> activity_dirs() const;

private:
    void read_spec(CgroupSample& s);
    void read_memory(CgroupSample& s, bool peak, const CgroupActivity::Seen* mem);
    void read_memory_usage(CgroupSample& s, const CgroupActivity::Seen* mem);
    static void set_working_set(CgroupSample& s);
    bool v2_ = false;
    std::string cpu_dir_, mem_dir_;
    uint64_t cpu_id_ = 0, mem_id_ = 0;  // their kernfs ids
    bool read_once_ = false;
    StatFile cpu_stat_, cpu_usage_, cpu_times_, cpu_max_, cpu_quota_, cpu_period_, cpu_weight_;
    StatFile mem_usage_, mem_stat_, mem_events_, mem_swap_, mem_peak_, mem_failcnt_;
    StatFile mem_limit_, mem_swap_limit_, mem_low_;
    StatFile io_, pids_max_, procs_;
    std::string buf_;
};

// cgroup v2 cpu.weight [1, 10000] back to v1 cpu.shares [2, 262144], as cAdvisor reports it.
uint64_t weight_to_shares(uint64_t weight);

}  // namespace vitro::introspect
