// Counters read from whichever stat files the host has; absent files leave
// their fields at zero.
#include <unistd.h>

#include "cgroups/detail.hpp"

namespace vitro::cgroups {

nlohmann::json Stats::to_json() const {
    return {
        {"cpu",
         {{"usage", {{"total", cpu_usage_ns}, {"kernel", cpu_system_ns}, {"user", cpu_user_ns}}},
          {"throttling",
           {{"periods", cpu_periods},
            {"throttled_periods", cpu_throttled_periods},
            {"throttled_time", cpu_throttled_ns}}}}},
        {"memory",
         {{"cache", memory_cache},
          {"usage",
           {{"usage", memory_usage}, {"max", memory_max_usage}, {"limit", memory_limit}, {"failcnt", memory_failcnt}}},
          {"swap", {{"usage", memory_swap}}},
          {"raw", {{"cache", memory_cache}, {"rss", memory_rss}, {"oom_kill", oom_kills}}}}},
        {"pids", {{"current", pids_current}, {"limit", pids_limit}}},
    };
}

namespace detail {

namespace {

uint64_t get(const std::map<std::string, uint64_t>& m, const char* key, const char* fallback = nullptr) {
    auto it = m.find(key);
    if (it != m.end()) return it->second;
    if (fallback && (it = m.find(fallback)) != m.end()) return it->second;
    return 0;
}

const std::string* find_dir(const V1Dirs& dirs, const char* c) {
    auto it = dirs.find(c);
    return it == dirs.end() ? nullptr : &it->second;
}

void v1_cpu(const V1Dirs& dirs, Stats& s) {
    if (auto* dir = find_dir(dirs, "cpuacct")) {
        s.cpu_usage_ns = read_u64(*dir, "cpuacct.usage").value_or(0);
        // cpuacct.stat counts USER_HZ ticks.
        auto st = read_keyed(*dir, "cpuacct.stat");
        uint64_t ns_per_tick = 1000000000ULL / static_cast<uint64_t>(::sysconf(_SC_CLK_TCK));
        s.cpu_user_ns = get(st, "user") * ns_per_tick;
        s.cpu_system_ns = get(st, "system") * ns_per_tick;
    }
    if (auto* dir = find_dir(dirs, "cpu")) {
        auto st = read_keyed(*dir, "cpu.stat");
        s.cpu_periods = get(st, "nr_periods");
        s.cpu_throttled_periods = get(st, "nr_throttled");
        s.cpu_throttled_ns = get(st, "throttled_time");
    }
}

void v1_memory(const std::string& dir, Stats& s) {
    s.memory_usage = read_u64(dir, "memory.usage_in_bytes").value_or(0);
    s.memory_max_usage = read_u64(dir, "memory.max_usage_in_bytes").value_or(0);
    s.memory_failcnt = read_u64(dir, "memory.failcnt").value_or(0);
    s.memory_limit = read_u64(dir, "memory.limit_in_bytes").value_or(0);
    // total_* include descendant cgroups.
    auto st = read_keyed(dir, "memory.stat");
    s.memory_cache = get(st, "total_cache", "cache");
    s.memory_rss = get(st, "total_rss", "rss");
    if (auto memsw = read_u64(dir, "memory.memsw.usage_in_bytes"))
        s.memory_swap = *memsw > s.memory_usage ? *memsw - s.memory_usage : 0;
    s.oom_kills = get(read_keyed(dir, "memory.oom_control"), "oom_kill");
}

void read_pids(const std::string& dir, Stats& s) {
    s.pids_current = read_u64(dir, "pids.current").value_or(0);
    s.pids_limit = read_u64(dir, "pids.max", 0).value_or(0);  // "max": 0, as runc reports it
}

}  // namespace

Stats read_v1_stats(const V1Dirs& dirs) {
    Stats s;
    v1_cpu(dirs, s);
    if (auto* dir = find_dir(dirs, "memory")) v1_memory(*dir, s);
    if (auto* dir = find_dir(dirs, "pids")) read_pids(*dir, s);
    return s;
}

Stats read_v2_stats(const std::string& dir) {
    Stats s;
    auto cpu = read_keyed(dir, "cpu.stat");
    s.cpu_usage_ns = get(cpu, "usage_usec") * 1000;
    s.cpu_user_ns = get(cpu, "user_usec") * 1000;
    s.cpu_system_ns = get(cpu, "system_usec") * 1000;
    s.cpu_periods = get(cpu, "nr_periods");
    s.cpu_throttled_periods = get(cpu, "nr_throttled");
    s.cpu_throttled_ns = get(cpu, "throttled_usec") * 1000;

    s.memory_usage = read_u64(dir, "memory.current").value_or(0);
    s.memory_limit = read_u64(dir, "memory.max").value_or(0);
    s.memory_max_usage = read_u64(dir, "memory.peak").value_or(0);
    s.memory_swap = read_u64(dir, "memory.swap.current").value_or(0);
    auto st = read_keyed(dir, "memory.stat");
    s.memory_cache = get(st, "file");
    s.memory_rss = get(st, "anon");
    auto events = read_keyed(dir, "memory.events");
    s.memory_failcnt = get(events, "max");
    s.oom_kills = get(events, "oom_kill");

    read_pids(dir, s);
    return s;
}

}  // namespace detail

}  // namespace vitro::cgroups
