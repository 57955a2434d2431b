// A process's cgroup counters read straight from the cgroup files, for
// evidence (the raw files, as the kernel wrote them) and for resource samples:
// cgroup v1 (cpu, cpuacct, memory, pids hierarchies), v2 (the unified
// hierarchy) and hybrid hosts alike. Mount points come from
// /proc/self/mountinfo, paths from /proc/<pid>/cgroup.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace vitro::introspect {

// {"cgroup": [/proc/<pid>/cgroup lines], "files": {"<dir>/<file>": "<text>"}}
// for cpu.stat, cpuacct.usage, cpuacct.stat, memory.* counters, pids.*.
nlohmann::json cgroup_counters(pid_t pid);

struct UsageSample {
    std::optional<uint64_t> cpu_ns, memory_bytes, pids;
    nlohmann::json to_json() const;
};
// Total CPU time, memory in use and process count of `pid`'s cgroup.
UsageSample sample_usage(pid_t pid);

}  // namespace vitro::introspect
