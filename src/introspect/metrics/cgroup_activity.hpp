// Which containers' cgroups ran since the last scrape, and the memory they
// are charged, for all of them in one BPF cgroup-iterator walk per parent
// directory (cgroup_usage.bpf.c) instead of two file reads per container
// (cpuacct.usage and memory.usage_in_bytes; v2: cpu.stat and
// memory.current). Most containers are quiet in any one second: the
// collector then reads none of their files (CgroupCounters::What::seen).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bpf/object.hpp"

namespace vitro::introspect {

class CgroupActivity {
public:
    // Loads the walk. Throws Error where it cannot be loaded (no BPF cgroup
    // iterators: kernel < 6.1, no BTF, not root).
    CgroupActivity();

    // Watch these cgroup directories (replacing the last set): each is
    // walked from its parent. One that is gone is left out.
    void watch(const std::vector<std::string>& dirs);

    // Walks them all. Throws on a BPF failure.
    void sample();

    struct Seen {
        bool cpu = false;             // its CPU time was read (its own cpu controller state)
        bool ran = false;             // ... and moved since the walk before (or is new)
        bool memory = false;          // its memory charge was read
        uint64_t memory_bytes = 0;    // the charge
        uint64_t memory_peak_bytes = 0;  // its high watermark
    };
    // What the last walk saw of the cgroup with kernfs id `id`; null when it
    // did not see it (gone, or not watched).
    const Seen* seen(uint64_t id) const;

    // A cgroup directory's kernfs id (its inode number); 0 when it is gone.
    static uint64_t id_of(const std::string& dir);

private:
    bpf::Object obj_;
    int watched_fd_ = -1;
    std::map<std::string, bpf::Link> walks_;  // by parent directory (the link holds the cgroup)
    struct State {
        Seen seen;
        uint64_t run_ns = 0;
        uint64_t walk = 0;  // the sample() that saw it last
    };
    std::map<uint64_t, State> cgroups_;  // by id
    uint64_t walks_done_ = 0;
    uint64_t page_size_;
    std::vector<char> buf_;
};

}  // namespace vitro::introspect
