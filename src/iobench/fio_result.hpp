// What fio's JSON output (--output-format=json) says about one job: bytes,
// bandwidth, IOPS and completion-latency percentiles, reads and writes
// summed (randrw), and fio's own CPU use.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace vitro::iobench {

struct FioResult {
    std::string version;  // "fio-3.33"
    uint64_t read_bytes = 0, write_bytes = 0;
    double bandwidth_bytes_per_s = 0;  // read + write
    double iops = 0;                   // read + write
    double runtime_s = 0;              // the longer of the two directions
    double clat_p50_us = 0, clat_p99_us = 0;  // the busier direction's
    double usr_cpu_pct = 0, sys_cpu_pct = 0;  // of one CPU, over the job
    uint64_t bytes() const { return read_bytes + write_bytes; }
};

// Parses fio's JSON (text before the first '{', such as fio's warnings, is
// skipped). Throws Error(EINVAL) when it is not fio's JSON or has no job.
FioResult parse_fio_json(std::string_view text);

}  // namespace vitro::iobench
