#include "introspect/metrics/process_activity.hpp"

#include <malloc.h>
#include <linux/types.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "introspect/metrics/cgroup_activity.hpp"

extern "C" {
#include "introspect/metrics/process_usage_record.h"
}

extern "C" const unsigned char vitro_process_usage_bpf_start[];
extern "C" const unsigned char vitro_process_usage_bpf_end[];

namespace vitro::introspect {

ProcessActivity::ProcessActivity()
    : obj_(bpf::open_embedded(vitro_process_usage_bpf_start, vitro_process_usage_bpf_end, "vitro_procs")) {
    const int rc = bpf_object__load(obj_.get());
    ::malloc_trim(0);  // libbpf's copy of the kernel's BTF, freed: given back (see CgroupActivity)
    if (rc) throw bpf::error(-rc, "load the process walk's BPF program");
    watched_fd_ = bpf_object__find_map_fd_by_name(obj_.get(), "watched");
    bpf_program* prog = bpf_object__find_program_by_name(obj_.get(), "process_usage");
    if (watched_fd_ < 0 || !prog) throw Error(EINVAL, "the process walk's BPF object is incomplete (built wrong?)");
    bpf_link* l = bpf_program__attach_iter(prog, nullptr);
    if (!l) throw bpf::error(errno, "attach the process walk");
    walk_ = bpf::Link(l);
}

void ProcessActivity::watch(const std::vector<std::string>& dirs) {
    std::set<uint64_t> ids;
    for (const auto& d : dirs)
        if (uint64_t id = CgroupActivity::id_of(d)) ids.insert(id);
    bpf::mirror_set(watched_fd_, ids, by_cgroup_, "watch for processes: cgroup");
}

void ProcessActivity::sample() {
    const size_t have = bpf::read_iterator(walk_, buf_, "walk the processes");
    for (auto& [id, pids] : by_cgroup_) pids.clear();
    ++walks_;
    static const uint64_t ns_per_tick = static_cast<uint64_t>(1e9 / clock_ticks_per_second());
    static const uint64_t page_size = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    for (size_t off = 0; off + sizeof(process_usage_record) <= have; off += sizeof(process_usage_record)) {
        process_usage_record r;
        std::memcpy(&r, buf_.data() + off, sizeof r);
        const pid_t pid = static_cast<pid_t>(r.pid);
        Seen& s = procs_[pid];
        ProcessSample& p = s.p.sample;
        if (s.walk != walks_) {  // its first record in this walk
            s.walk = walks_;
            s.cgroup = 0;
            s.live = s.leader = false;
            p.cpu_s = 0;
        }
        p.cpu_s += static_cast<double>(r.run_ns) / 1e9;
        if (r.flags & PROCESS_USAGE_LEADER) {
            s.leader = true;
            p.pid = pid;
            p.comm.assign(r.comm, strnlen(r.comm, sizeof r.comm));
            p.threads = r.threads;
            p.start_ticks = r.start_ns / ns_per_tick;  // as the kernel's nsec_to_clock_t()
            p.rss_bytes = r.rss_pages * page_size;
            s.p.files = (r.flags & PROCESS_USAGE_FDS) != 0;
            s.p.fds = r.fds;
            s.p.exe = (r.flags & PROCESS_USAGE_EXE) != 0;
            s.p.exe_dev = r.exe_dev;
            s.p.exe_ino = r.exe_ino;
            s.p.exe_size = r.exe_size;
            s.p.exe_mtime_ns = r.exe_mtime_ns;
        }
        // Listed under each cgroup one of its live threads is in, as
        // cgroup.procs lists it (v1 lets a process's threads be apart).
        if (r.flags & PROCESS_USAGE_EXITED) continue;
        s.live = true;
        if (s.cgroup == r.cgroup) continue;
        s.cgroup = r.cgroup;
        if (auto it = by_cgroup_.find(r.cgroup); it != by_cgroup_.end()) it->second.push_back(pid);
    }
    for (auto it = procs_.begin(); it != procs_.end();)  // gone since the walk before
        it = it->second.walk == walks_ ? std::next(it) : procs_.erase(it);
    for (auto& [id, pids] : by_cgroup_) {
        std::sort(pids.begin(), pids.end());
        pids.erase(std::unique(pids.begin(), pids.end()), pids.end());
        // A process whose leader the walk missed (it was reaped between
        // its threads' records) is not one to report.
        pids.erase(std::remove_if(pids.begin(), pids.end(), [&](pid_t pid) { return !procs_.at(pid).leader; }), pids.end());
    }
}

const std::vector<pid_t>* ProcessActivity::processes(uint64_t id) const {
    auto it = by_cgroup_.find(id);
    return it != by_cgroup_.end() ? &it->second : nullptr;
}

const ProcessActivity::Process* ProcessActivity::process(pid_t pid) const {
    auto it = procs_.find(pid);
    return it != procs_.end() && it->second.walk == walks_ && it->second.leader && it->second.live ? &it->second.p : nullptr;
}

}  // namespace vitro::introspect
