// The counters a run is judged by, read just before and just after fio by
// the same shell script in every mode (snapshot_script), so that container
// start and removal stay outside the window:
//  - the CPU lines of /proc/stat (all CPUs, as mpstat reads them);
//  - /proc/diskstats (the block layer's per-device sectors);
//  - /proc/$$/io of the script's shell: read_bytes/write_bytes, counted as
//    the bios are submitted, include its reaped children's (fio's);
//  - the cgroup's CPU and block I/O: v1 cpuacct.usage/cpuacct.stat and
//    blkio.throttle.io_service_bytes_recursive, or v2 cpu.stat and io.stat.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace vitro::iobench {

// /proc/stat's "cpu" line, in clock ticks.
struct CpuTimes {
    uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0, guest = 0,
             guest_nice = 0;
    uint64_t total() const { return user + nice + system + idle + iowait + irq + softirq + steal; }
};
CpuTimes parse_proc_stat_cpu(std::string_view line);  // throws Error(EINVAL)

// mpstat's split of the time between two samples, in percent of all CPUs
// (usr excludes guest time, as mpstat's %usr does).
struct CpuBreakdown {
    double usr = 0, nice = 0, sys = 0, iowait = 0, irq = 0, soft = 0, steal = 0, guest = 0, idle = 0;
    double busy_cpu_s = 0;  // CPU-seconds neither idle nor iowait, all CPUs
};
CpuBreakdown cpu_breakdown(const CpuTimes& a, const CpuTimes& b, long ticks_per_s);

struct DiskCounters {
    uint64_t read_bytes = 0, write_bytes = 0;  // sectors * 512
};
// "MAJ:MIN" -> counters, from /proc/diskstats' text.
std::map<std::string, DiskCounters> parse_diskstats(std::string_view text);

struct CgroupCounters {
    bool cpu_known = false, io_known = false;
    uint64_t cpu_ns = 0, user_ns = 0, system_ns = 0;
    std::map<std::string, DiskCounters> io;  // "MAJ:MIN" -> bytes
};
// Folds one cgroup file's text into c, by its name (cpuacct.usage,
// cpuacct.stat, blkio.throttle.io_service_bytes_recursive, cpu.stat, io.stat).
void add_cgroup_file(CgroupCounters& c, const std::string& name, std::string_view text, long ticks_per_s);

// /proc/PID/io's read_bytes and write_bytes.
DiskCounters parse_task_io(std::string_view text);

struct Snapshot {
    CpuTimes cpu;
    std::map<std::string, DiskCounters> disks;
    DiskCounters task_io;
    CgroupCounters cgroup;
};

// Shell (POSIX sh, busybox's too) that prints a snapshot headed by
// "@@snap TAG", the cgroup files taken from `cgroup_files` where readable.
std::string snapshot_script(const std::string& tag, const std::vector<std::string>& cgroup_files);
// The snapshots in a script's output, by tag. The text between them (fio's
// JSON) is returned in `rest`.
std::map<std::string, Snapshot> parse_snapshots(std::string_view out, std::string& rest, long ticks_per_s);

// The cgroup files a container sees of its own cgroup (cgroup namespace).
std::vector<std::string> container_cgroup_files();

}  // namespace vitro::iobench
