#include "measure/trace_bpf.hpp"

#include <arpa/inet.h>
#include <linux/types.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <cstring>

#include "bpf/object.hpp"
#include "util/error.hpp"

extern "C" {
#include "measure/netlat_event.h"
}

extern "C" const unsigned char vitro_netlat_bpf_start[];
extern "C" const unsigned char vitro_netlat_bpf_end[];

namespace vitro::measure {

using bpf::error;

void BpfTracer::RingFree::operator()(ring_buffer* r) const { ring_buffer__free(r); }

BpfTracer::BpfTracer(const Config& cfg) {
    obj_ = bpf::open_embedded(vitro_netlat_bpf_start, vitro_netlat_bpf_end, "vitro_netlat");
    bpf_object* o = obj_.get();

    // The settings go into .rodata before load (the verifier folds them),
    // each variable found by name in the section's BTF.
    bpf_map* rodata = nullptr;
    bpf_map* m = nullptr;
    bpf_object__for_each_map(m, o) {
        const char* name = bpf_map__name(m);
        if (bpf_map__is_internal(m) && std::strstr(name, ".rodata")) rodata = m;
    }
    if (!rodata) throw Error(EINVAL, "netlat BPF object: no .rodata section (built wrong?)");
    size_t rsize = 0;
    auto* cur = static_cast<const uint8_t*>(bpf_map__initial_value(rodata, &rsize));
    const btf* b = bpf_object__btf(o);
    if (!cur || !b) throw Error(EINVAL, "netlat BPF object: no .rodata or BTF (built wrong?)");
    std::vector<uint8_t> ro(cur, cur + rsize);
    int sec_id = btf__find_by_name_kind(b, ".rodata", BTF_KIND_DATASEC);
    if (sec_id < 0) throw Error(EINVAL, "netlat BPF object: no .rodata in its BTF");
    const btf_type* sec = btf__type_by_id(b, static_cast<__u32>(sec_id));
    auto set = [&](const char* var, const void* value, size_t size) {
        const btf_var_secinfo* vs = btf_var_secinfos(sec);
        for (unsigned i = 0; i < btf_vlen(sec); ++i, ++vs) {
            const btf_type* t = btf__type_by_id(b, vs->type);
            if (std::strcmp(btf__name_by_offset(b, t->name_off), var) != 0) continue;
            if (vs->size != size || vs->offset + size > ro.size()) break;
            std::memcpy(ro.data() + vs->offset, value, size);
            return;
        }
        throw Error(EINVAL, std::string("netlat BPF object: no setting ") + var);
    };
    uint16_t id = htons(cfg.icmp_id), alt = htons(cfg.alt_id);
    uint8_t edges = cfg.all_hops ? 0 : 1;
    set("target_id", &id, sizeof(id));
    set("target_id_alt", &alt, sizeof(alt));
    set("ns_container", &cfg.ns_container, sizeof(cfg.ns_container));
    set("ns_host", &cfg.ns_host, sizeof(cfg.ns_host));
    set("edges_only", &edges, sizeof(edges));
    if (int rc = bpf_map__set_initial_value(rodata, ro.data(), ro.size()); rc)
        throw error(-rc, "configure the netlat BPF programs");

    if (int rc = bpf_object__load(o); rc) throw error(-rc, "load the netlat BPF programs");

    int ring_fd = bpf_object__find_map_fd_by_name(o, "events");
    if (ring_fd < 0) throw Error(EINVAL, "netlat BPF object: no events ring buffer");
    auto on_event = [](void* ctx, void* data, size_t len) -> int {
        auto* self = static_cast<BpfTracer*>(ctx);
        if (len < sizeof(netlat_event) || !self->sink_) return 0;
        netlat_event e;
        std::memcpy(&e, data, sizeof(e));
        TraceEvent t;
        t.ts_ns = e.ts_ns;
        t.netns = e.netns;
        t.ifindex = e.ifindex;
        t.icmp_id = e.icmp_id;
        t.icmp_seq = e.icmp_seq;
        t.icmp_type = e.icmp_type;
        t.hook = e.hook == NETLAT_HOOK_RECV ? Hook::Recv : e.hook == NETLAT_HOOK_PROCESS ? Hook::Process : Hook::Xmit;
        t.local_peer = (e.flags & NETLAT_F_LOCAL_PEER) != 0;
        t.queued = (e.flags & NETLAT_F_QUEUED) != 0;
        t.ifname.assign(e.ifname, strnlen(e.ifname, sizeof(e.ifname)));
        self->sink_->push_back(std::move(t));
        return 0;
    };
    ring_buffer* rb = ring_buffer__new(ring_fd, on_event, this, nullptr);
    if (!rb) throw error(errno, "set up the netlat ring buffer");
    ring_.reset(rb);
}

BpfTracer::~BpfTracer() { detach(); }

void BpfTracer::attach() {
    if (attached()) return;
    bpf_program* p = nullptr;
    try {
        bpf_object__for_each_program(p, obj_.get()) {
            bpf_link* l = bpf_program__attach(p);
            if (!l) throw error(errno, std::string("attach BPF program ") + bpf_program__name(p));
            links_.emplace_back(l);
        }
    } catch (...) {
        detach();
        throw;
    }
}

void BpfTracer::detach() { links_.clear(); }

void BpfTracer::drain(std::vector<TraceEvent>& out) {
    sink_ = &out;
    int rc = ring_buffer__consume(ring_.get());
    sink_ = nullptr;
    if (rc < 0) throw error(-rc, "read the netlat ring buffer");
}

uint64_t BpfTracer::dropped() const {
    int fd = bpf_object__find_map_fd_by_name(obj_.get(), "dropped");
    if (fd < 0) return 0;
    int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0) return 0;
    std::vector<uint64_t> per_cpu(static_cast<size_t>(ncpu));
    uint32_t key = 0;
    if (bpf_map_lookup_elem(fd, &key, per_cpu.data())) return 0;
    uint64_t sum = 0;
    for (auto v : per_cpu) sum += v;
    return sum;
}

}  // namespace vitro::measure
