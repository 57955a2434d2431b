// Runs one fio job in one mode and returns what fio and the counters said.
// The same shell script runs in every mode: lay the file out (read
// workloads), snapshot the counters, fio, snapshot again, remove the file.
//  - host: `sh -c SCRIPT` in a cgroup of its own (its CPU and block I/O
//    counted alone);
//  - namespace: `vitro [--runtime R] run --rm` of the image with fio and its
//    libraries bound read-only at their host paths; the container reads its
//    own cgroup's counters (cgroup namespace).
// The runner owns its work directory (<root>/bench-io-PID: the host mode's
// files, the volume, a tmpfs), removed with it.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "iobench/counters.hpp"
#include "iobench/fio_result.hpp"
#include "iobench/plan.hpp"

namespace vitro::iobench {

struct Engine {
    std::string vitro;                  // this binary
    std::vector<std::string> globals;   // --root R --runroot RR ...: the engine the containers run in
    std::string image;
};

struct RunSample {
    FioResult fio;
    Snapshot before, after;
    double wall_s = 0;
};

class Runner {
public:
    Runner(const Plan& plan, Engine engine, std::string storage_root, const std::atomic<bool>* stop);
    ~Runner();
    Runner(const Runner&) = delete;
    Runner& operator=(const Runner&) = delete;

    // nullopt when a stop was asked for: the container (or the host
    // cgroup's processes) is gone and the file removed before it returns.
    std::optional<RunSample> run(const Cell& cell);
    // The block device ("MAJ:MIN") under the target, "" for tmpfs.
    const std::string& device() const { return device_; }

private:
    std::string script(const Cell& cell, const std::string& file, const std::vector<std::string>& cgroup_files,
                       const std::vector<std::string>& fio_cmd) const;
    // fio and its libraries copied into one directory: a VM takes
    // directories only (virtiofs); fio runs there through its own loader.
    const std::string& fio_dir();
    std::optional<RunSample> run_host(const Cell& cell);
    std::optional<RunSample> run_container(const Cell& cell);

    const Plan& plan_;
    Engine engine_;
    std::string work_;           // <root>/bench-io-PID
    std::string host_dir_;       // where host-mode files go
    std::string volume_dir_;     // bound at /bench in containers (Volume)
    std::string fio_dir_;        // <work>/fio, made by fio_dir()
    bool tmpfs_mounted_ = false;
    std::string device_;
    const std::atomic<bool>* stop_;
    int seq_ = 0;
    long ticks_;
};

}  // namespace vitro::iobench
