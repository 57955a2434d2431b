// The processes of the watched containers and what /proc would say of each
// (comm, CPU time, threads, RSS, start), their fd counts and executables'
// identities, for all of them in one BPF task-iterator walk per scrape
// (process_usage.bpf.c) instead of a cgroup.procs read per container and a
// /proc/<pid>/stat read, an fd-directory stat and an exe stat per process.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "bpf/object.hpp"
#include "introspect/common/proc_stats.hpp"

namespace vitro::introspect {

class ProcessActivity {
public:
    // Loads the walk. Throws Error where it cannot be loaded (no BPF task
    // iterators: kernel < 5.8, no BTF, not root).
    ProcessActivity();

    // Watch these cgroup directories (replacing the last set): the
    // processes with a thread in one of them are sampled. One that is gone
    // is left out.
    void watch(const std::vector<std::string>& dirs);

    // Walks every task once. Throws on a BPF failure.
    void sample();

    struct Process {
        // As /proc/<pid>/stat would read, less ppid and state; the CPU time
        // to the nanosecond (the group's threads' run times), not in ticks.
        ProcessSample sample;
        bool files = false;  // it has a file table: fds is its size
        uint64_t fds = 0;
        // Its executable's identity (file system, inode, size, mtime),
        // when it has one (not once it exited).
        bool exe = false;
        uint64_t exe_dev = 0, exe_ino = 0, exe_size = 0, exe_mtime_ns = 0;
    };
    // The live processes with a thread in the watched cgroup of kernfs id
    // `id` at the last walk; null when `id` is not watched.
    const std::vector<pid_t>* processes(uint64_t id) const;
    // What the last walk saw of process `pid`; null when it did not see it.
    const Process* process(pid_t pid) const;

private:
    bpf::Object obj_;
    bpf::Link walk_;
    int watched_fd_ = -1;
    std::unordered_map<uint64_t, std::vector<pid_t>> by_cgroup_;  // every watched id
    struct Seen {
        Process p;
        uint64_t cgroup = 0;  // the cgroup it was last listed under (threads of one come apart)
        bool live = false;    // a thread of it has not exited
        bool leader = false;  // its leader's record was read
        uint64_t walk = 0;    // the sample() that saw it last
    };
    std::unordered_map<pid_t, Seen> procs_;  // kept between walks: no allocation per process per walk
    uint64_t walks_ = 0;
    std::vector<char> buf_;
};

}  // namespace vitro::introspect
