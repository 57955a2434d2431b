#include "introspect/metrics/cgroup_activity.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <linux/types.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include "util/fd.hpp"

extern "C" {
#include "introspect/metrics/cgroup_usage_record.h"
}

extern "C" const unsigned char vitro_cgroup_usage_bpf_start[];
extern "C" const unsigned char vitro_cgroup_usage_bpf_end[];

namespace vitro::introspect {

CgroupActivity::CgroupActivity()
    : obj_(bpf::open_embedded(vitro_cgroup_usage_bpf_start, vitro_cgroup_usage_bpf_end, "vitro_cgroups")),
      page_size_(static_cast<uint64_t>(::sysconf(_SC_PAGESIZE))),
      buf_(64 * 1024) {
    const int rc = bpf_object__load(obj_.get());
    // libbpf read and parsed the kernel's BTF (~6 MB) to relocate the
    // program, and freed it: into a heap the exporter does not trim by
    // itself (its mallopt settings keep scrape buffers there). Given back.
    ::malloc_trim(0);
    if (rc) throw bpf::error(-rc, "load the cgroup walk's BPF program");
    watched_fd_ = bpf_object__find_map_fd_by_name(obj_.get(), "watched");
    int cpus_fd = bpf_object__find_map_fd_by_name(obj_.get(), "cpu_ids");
    int ncpus = libbpf_num_possible_cpus();
    uint32_t key = 0, n = ncpus > 0 ? static_cast<uint32_t>(ncpus) : 0;
    if (watched_fd_ < 0 || cpus_fd < 0) throw Error(EINVAL, "the cgroup walk's BPF object has no maps (built wrong?)");
    if (n == 0 || bpf_map_update_elem(cpus_fd, &key, &n, BPF_ANY) != 0)
        throw bpf::error(ncpus < 0 ? -ncpus : errno, "set the cgroup walk's CPU count");
}

uint64_t CgroupActivity::id_of(const std::string& dir) {
    struct stat st;
    return ::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode) ? static_cast<uint64_t>(st.st_ino) : 0;
}

void CgroupActivity::watch(const std::vector<std::string>& dirs) {
    std::set<uint64_t> ids;
    std::set<std::string> parents;
    for (const auto& d : dirs) {
        uint64_t id = id_of(d);
        if (id == 0) continue;
        ids.insert(id);
        parents.insert(std::filesystem::path(d).parent_path().string());
    }
    // The map: what is watched now, and nothing else. A new one's first
    // sight counts as having run (State::walk 0: not seen yet).
    bpf::mirror_set(watched_fd_, ids, cgroups_, "watch cgroup");
    // One walk per parent directory, kept while it still has a watched child.
    for (auto it = walks_.begin(); it != walks_.end();)
        it = parents.count(it->first) ? std::next(it) : walks_.erase(it);
    bpf_program* prog = bpf_object__find_program_by_name(obj_.get(), "cgroup_usage");
    for (const auto& p : parents) {
        if (walks_.count(p)) continue;
        UniqueFd dir(::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!dir) continue;  // gone since: its children are read from their files
        union bpf_iter_link_info info;
        std::memset(&info, 0, sizeof info);
        info.cgroup.cgroup_fd = static_cast<__u32>(dir.get());
        info.cgroup.order = BPF_CGROUP_ITER_DESCENDANTS_PRE;
        LIBBPF_OPTS(bpf_iter_attach_opts, opts, .link_info = &info, .link_info_len = sizeof info);
        bpf_link* l = bpf_program__attach_iter(prog, &opts);
        if (!l) throw bpf::error(errno, "attach the cgroup walk to " + p);
        walks_[p] = bpf::Link(l);
    }
}

void CgroupActivity::sample() {
    ++walks_done_;
    for (auto& [parent, link] : walks_) {
        const size_t have = bpf::read_iterator(link, buf_, "walk the cgroups under " + parent);
        for (size_t off = 0; off + sizeof(cgroup_usage_record) <= have; off += sizeof(cgroup_usage_record)) {
            cgroup_usage_record r;
            std::memcpy(&r, buf_.data() + off, sizeof r);
            auto c = cgroups_.find(r.id);
            if (c == cgroups_.end()) continue;
            State& st = c->second;
            Seen& s = st.seen;
            s.cpu = (r.flags & CGROUP_USAGE_CPU) != 0;
            // New to us, or not seen in the walk before: ran, as far as we know.
            s.ran = !s.cpu || st.walk != walks_done_ - 1 || r.run_ns != st.run_ns;
            s.memory = (r.flags & CGROUP_USAGE_MEMORY) != 0;
            s.memory_bytes = r.memory_pages * page_size_;
            s.memory_peak_bytes = r.memory_peak_pages * page_size_;
            st.run_ns = r.run_ns;
            st.walk = walks_done_;
        }
    }
}

const CgroupActivity::Seen* CgroupActivity::seen(uint64_t id) const {
    auto it = cgroups_.find(id);
    return it != cgroups_.end() && it->second.walk == walks_done_ ? &it->second.seen : nullptr;
}

}  // namespace vitro::introspect
