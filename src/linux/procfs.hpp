// /proc readers: is a pid still the process we started, and in what state.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

namespace vitro::os {

struct ProcStat {
    char state = '?';          // R S D Z T t X ...
    uint64_t start_time = 0;   // clock ticks after boot (field 22)
    pid_t ppid = 0;
};

std::optional<ProcStat> read_proc_stat(pid_t pid);
// True when `pid` exists, is not a zombie, and (if start_time != 0) started at start_time.
bool process_alive(pid_t pid, uint64_t start_time);

}  // namespace vitro::os
