// linux.resources on cgroup v2: OCI's v1-shaped values converted to the v2
// knobs (the conversions runc and crun use), then the "unified" map verbatim.
#include "cgroups/detail.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

namespace vitro::cgroups::detail {

uint64_t shares_to_weight(uint64_t shares) {
    if (shares == 0) return 0;
    if (shares < 2) shares = 2;
    if (shares > 262144) shares = 262144;
    return 1 + ((shares - 2) * 9999) / 262142;
}

uint64_t blkio_weight_to_io_weight(uint64_t weight) {
    if (weight == 0) return 0;
    if (weight < 10) weight = 10;
    if (weight > 1000) weight = 1000;
    return 1 + (weight - 10) * 9999 / 990;
}

std::optional<std::string> swap_to_v2(std::optional<int64_t> swap, std::optional<int64_t> limit) {
    int64_t s = swap.value_or(0), m = limit.value_or(0);
    // Unlimited memory with swap unset: unlimited swap too (v1 compatible).
    if (m == -1 && s == 0) return "max";
    if (s == 0) return std::nullopt;
    if (s == -1) return "max";
    if (m == 0 || m == -1) throw Error("linux.resources.memory.swap needs a memory limit on cgroup v2");
    if (m < 0 || s < m)
        throw Error("linux.resources.memory.swap (" + std::to_string(s) + ") must be >= memory.limit (" +
                    std::to_string(m) + ")");
    return std::to_string(s - m);
}

namespace {

std::string bytes_or_max(int64_t v) { return v < 0 ? "max" : std::to_string(v); }

void set_memory(const std::string& dir, const oci::Resources::Memory& m) {
    if (m.check_before_update.value_or(false) && m.limit && *m.limit > 0) {
        auto usage = read_u64(dir, "memory.current").value_or(0);
        if (usage > static_cast<uint64_t>(*m.limit))
            throw Error("memory limit " + std::to_string(*m.limit) + " is below the current usage " +
                        std::to_string(usage) + " (checkBeforeUpdate)");
    }
    if (m.swappiness) throw Error("linux.resources.memory.swappiness is not supported on cgroup v2");
    if (m.disable_oom_killer.value_or(false))
        throw Error("linux.resources.memory.disableOOMKiller is not supported on cgroup v2");
    // Swap first: memory.swap.max does not depend on memory.max, but a failed
    // swap write should not leave a new memory limit half-applied.
    if (auto swap = swap_to_v2(m.swap, m.limit)) {
        // Without swap accounting there is no memory.swap.max; "no limit" and
        // "no swap" then need no knob (as in runc).
        if (has_knob(dir, "memory.swap.max") || (*swap != "max" && *swap != "0"))
            write_knob(dir, "memory.swap.max", *swap);
    }
    if (m.limit && *m.limit) write_knob(dir, "memory.max", bytes_or_max(*m.limit));
    if (m.reservation && *m.reservation) write_knob(dir, "memory.low", bytes_or_max(*m.reservation));
    // kernel / kernelTCP: no v2 equivalent; ignored as runc does.
}

void set_cpu_max(const std::string& dir, const oci::Resources::Cpu& c) {
    bool quota = c.quota && *c.quota != 0, period = c.period && *c.period != 0;
    if (!quota && !period) return;
    std::string q;
    if (quota) {
        q = *c.quota > 0 ? std::to_string(*c.quota) : "max";
    } else {
        // Only the period changes: keep the quota that is there.
        auto cur = read_knob(dir, "cpu.max");
        q = cur ? split(trim(*cur), ' ')[0] : "max";
    }
    write_knob(dir, "cpu.max", period ? q + " " + std::to_string(*c.period) : q);
}

void set_cpu(const std::string& dir, const oci::Resources::Cpu& c) {
    if ((c.realtime_period && *c.realtime_period) || (c.realtime_runtime && *c.realtime_runtime))
        throw Error("linux.resources.cpu.realtimePeriod/realtimeRuntime are not supported on cgroup v2");
    if (c.shares && *c.shares) write_knob(dir, "cpu.weight", std::to_string(shares_to_weight(*c.shares)));
    set_cpu_max(dir, c);
    if (c.burst) write_knob(dir, "cpu.max.burst", std::to_string(*c.burst));
    // idle=false is the kernel default: nothing to do where cpu.idle is missing.
    if (c.idle && (*c.idle || has_knob(dir, "cpu.idle"))) write_knob(dir, "cpu.idle", *c.idle ? "1" : "0");
    if (!c.cpus.empty()) write_knob(dir, "cpuset.cpus", c.cpus);
    if (!c.mems.empty()) write_knob(dir, "cpuset.mems", c.mems);
}


void set_io(const std::string& dir, const oci::Resources::BlockIO& b) {
    // With BFQ, io.bfq.weight takes blkio's own 1-1000 scale.
    bool bfq = has_knob(dir, "io.bfq.weight");
    if (b.weight && *b.weight) {
        if (bfq)
            write_knob(dir, "io.bfq.weight", std::to_string(*b.weight));
        else
            write_knob(dir, "io.weight", std::to_string(blkio_weight_to_io_weight(*b.weight)));
    }
    if (b.leaf_weight && *b.leaf_weight)
        throw Error("linux.resources.blockIO.leafWeight is not supported on cgroup v2");
    for (auto& wd : b.weight_device) {
        if (wd.leaf_weight && *wd.leaf_weight)
            throw Error("linux.resources.blockIO.weightDevice[].leafWeight is not supported on cgroup v2");
        if (!wd.weight || !*wd.weight) continue;
        if (bfq)
            write_knob(dir, "io.bfq.weight", device_key(wd.major, wd.minor) + " " + std::to_string(*wd.weight));
        else
            write_knob(dir, "io.weight",
                       device_key(wd.major, wd.minor) + " " + std::to_string(blkio_weight_to_io_weight(*wd.weight)));
    }
    auto throttle = [&](const char* key, const std::vector<oci::ThrottleDevice>& devs) {
        for (auto& t : devs)
            write_knob(dir, "io.max", device_key(t.major, t.minor) + " " + key + "=" + std::to_string(t.rate));
    };
    throttle("rbps", b.read_bps);
    throttle("wbps", b.write_bps);
    throttle("riops", b.read_iops);
    throttle("wiops", b.write_iops);
}

void set_hugetlb(const std::string& dir, const std::vector<oci::Resources::HugepageLimit>& limits) {
    for (auto& h : limits) {
        std::string v = std::to_string(h.limit);
        write_knob(dir, "hugetlb." + h.page_size + ".max", v);
        std::string rsvd = "hugetlb." + h.page_size + ".rsvd.max";
        if (has_knob(dir, rsvd)) write_knob(dir, rsvd, v);
    }
}

void check_unified_key(const std::string& key) {
    if (key.empty() || key.find('/') != std::string::npos || key == "." || key == "..")
        throw Error("linux.resources.unified: invalid key \"" + key + "\"");
}

void set_unified(const std::string& dir, const std::map<std::string, std::string>& unified) {
    for (auto& [key, value] : unified) {
        try {
            write_knob(dir, key, value);
        } catch (const Error& e) {
            throw e.wrap("linux.resources.unified[\"" + key + "\"]");
        }
    }
}

}  // namespace

void apply_v2_resources(const std::string& dir, const oci::Resources& r) {
    // Refuse bad input before anything is written.
    for (auto& kv : r.unified) check_unified_key(kv.first);
    if (r.memory) set_memory(dir, *r.memory);
    if (r.cpu) set_cpu(dir, *r.cpu);
    if (r.pids && r.pids->limit != 0)
        write_knob(dir, "pids.max", r.pids->limit > 0 ? std::to_string(r.pids->limit) : "max");
    if (r.block_io) set_io(dir, *r.block_io);
    if (!r.hugepage_limits.empty()) set_hugetlb(dir, r.hugepage_limits);
    if (r.network && (r.network->class_id || !r.network->priorities.empty()))
        throw Error("linux.resources.network (net_cls/net_prio) is not available on cgroup v2");
    if (!r.devices.empty()) apply_device_program(dir, r.devices);
    // Last, so that explicit unified values win over converted ones.
    set_unified(dir, r.unified);
}

}  // namespace vitro::cgroups::detail
