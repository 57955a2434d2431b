// /proc readers for introspection: one process's counters, its open files,
// a network namespace's interface counters, the host's CPU, memory and load.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vitro::introspect {

struct ProcessSample {
    pid_t pid = 0, ppid = 0;
    std::string comm;
    char state = '?';
    double cpu_s = 0;        // utime + stime
    uint64_t threads = 0;
    uint64_t start_ticks = 0;  // field 22: tells a reused pid apart
    uint64_t rss_bytes = 0;
};

// Parses /proc/<pid>/stat text (comm may hold spaces and parentheses).
std::optional<ProcessSample> parse_proc_stat(std::string_view text);
std::optional<ProcessSample> read_process(pid_t pid);

struct OpenFiles {
    uint64_t fds = 0, sockets = 0;
};
// Counts /proc/<pid>/fd entries, and (a readlink each) those that are sockets. Zero when gone.
OpenFiles count_open_files(pid_t pid, bool sockets = true);

struct InterfaceCounters {
    std::string name;
    uint64_t rx_bytes = 0, rx_packets = 0, rx_errors = 0, rx_dropped = 0;
    uint64_t tx_bytes = 0, tx_packets = 0, tx_errors = 0, tx_dropped = 0;
};
// Parses /proc/net/dev text; the loopback device is left out.
std::vector<InterfaceCounters> parse_net_dev(std::string_view text);

struct HostSample {
    struct Cpu {
        std::string cpu;  // "0", "1", ...
        double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
    };
    std::vector<Cpu> cpus;
    double boot_time = 0;
    uint64_t procs_running = 0, procs_blocked = 0, context_switches = 0, forks = 0;
    std::map<std::string, uint64_t> meminfo;  // bytes, by /proc/meminfo key ("MemTotal")
    double load1 = 0, load5 = 0, load15 = 0;
};
void parse_proc_stat_host(std::string_view text, HostSample& out);
void parse_meminfo(std::string_view text, HostSample& out);
void parse_loadavg(std::string_view text, HostSample& out);

// Seconds since the epoch at which the system booted (btime in /proc/stat).
double boot_time();
double clock_ticks_per_second();

}  // namespace vitro::introspect
