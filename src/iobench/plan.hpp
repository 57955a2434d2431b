// What `vitro bench io` will run, checked before anything runs: every mode,
// runtime, workload and block size known, fio and the runtimes installed,
// the target there with room for the file. Bad input is an Error(EINVAL)
// naming the flag.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "iobench/fio_job.hpp"

namespace vitro::iobench {

struct Options {
    std::vector<std::string> isolations{"host", "namespace"};
    std::vector<std::string> runtimes{"vitro"};
    std::vector<std::string> workloads{"seqread", "seqwrite", "randread", "randwrite", "randrw"};
    std::vector<std::string> block_sizes{"4k", "1m"};
    std::string size = "64m";
    bool direct = false;
    std::string target = "rootfs";  // rootfs, volume, tmpfs or an existing directory (bound as the volume)
    int repeat = 3;
    bool profile = false;
    std::string image = "localhost/busybox";
    std::string storage_root;  // the engine's --root: the rootfs target's filesystem
};

struct Cell {
    std::string isolation;  // host, namespace
    std::string runtime;    // none (host), vitro, crun, runc
    Workload workload;
    BlockSize bs;
};

enum class TargetKind { Rootfs, Volume, Tmpfs };

struct Plan {
    std::vector<Cell> cells;  // mode x runtime x workload x bs, in that order
    int repeat = 1;
    uint64_t size = 0;
    bool direct = false;
    TargetKind target = TargetKind::Rootfs;
    std::string target_dir;  // a directory the user named (Volume), else ""
    std::string fio;         // the host's fio binary
    std::vector<std::string> fio_files;  // fio and the libraries it loads (ldd), bound read-only into containers
    bool needs_engine = false;
};

// Checks everything that can be checked before a run (free space: of the
// target's file system, or MemAvailable for tmpfs).
Plan make_plan(const Options& o);
const char* target_name(TargetKind t);

// fio's binary and every shared library `ldd` names for it (absolute paths,
// the loader included).
std::vector<std::string> binary_with_libraries(const std::string& binary);

}  // namespace vitro::iobench
