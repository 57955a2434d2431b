// The results of `vitro bench io`: per cell (mode x runtime x workload x
// block size) the medians of the repeats, their coefficient of variation,
// the CPU split and the efficiency figure, and the ground truth (fio's bytes
// against the block layer's); rendered as text, JSON, CSV or SVG plots.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "iobench/counters.hpp"
#include "iobench/plan.hpp"
#include "iobench/runner.hpp"

namespace vitro::iobench {

struct CellResult {
    Cell cell;
    std::vector<RunSample> runs;
    // Medians of the repeats.
    double bandwidth = 0, iops = 0, clat_p50_us = 0, clat_p99_us = 0;
    double cv = 0;  // of the bandwidth: stdev / mean
    CpuBreakdown cpu;          // mean of the repeats (percent of all CPUs)
    double cgroup_cpu_s = 0;   // the container's (host: fio's cgroup's) CPU-seconds, median
    double bytes_per_cpu_s = 0;         // median of fio bytes / the cgroup's CPU-seconds
    double bytes_per_busy_cpu_s = 0;    // median of fio bytes / all CPUs' busy seconds
    // Ground truth, summed over the repeats.
    // task_io: /proc/PID/io of fio's parent shell, in every mode; diskstats:
    // the whole device (other users' I/O included); cgroup_io: unknown
    // (null) when the counters never moved (cgroup v1's blk-throttle counts
    // only groups that have a limit).
    uint64_t fio_bytes = 0, task_io_bytes = 0, cgroup_io_bytes = 0, diskstats_bytes = 0;
    bool cgroup_io_known = false;
};

struct Report {
    std::string machine, kernel, fio_version, device;
    std::vector<std::string> runtime_versions;
    Plan plan;
    std::vector<CellResult> cells;
    std::string stopped_by;  // a signal name when interrupted
};

// Fills the medians, CV, CPU and ground truth of r from r.runs.
void summarize_cell(CellResult& r, const std::string& device, long ticks_per_s);

nlohmann::json to_json(const Report& rep);
std::string to_text(const Report& rep);
std::string to_csv(const Report& rep);
// One SVG per workload: bandwidth by block size, a series per mode/runtime.
std::vector<std::pair<std::string, std::string>> plots(const Report& rep);  // file name, SVG

// "1.5 GiB/s"
std::string human_rate(double bytes_per_s);

}  // namespace vitro::iobench
