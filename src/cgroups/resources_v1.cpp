// linux.resources on cgroup v1: one function per controller, in the order and
// with the value formats runc uses, so tools reading the files back agree.
#include <cerrno>

#include "cgroups/detail.hpp"
#include "util/error.hpp"

namespace vitro::cgroups::detail {

namespace {

const std::string& need_dir(const V1Dirs& dirs, const std::string& controller, std::string_view what) {
    auto it = dirs.find(controller);
    if (it == dirs.end())
        throw Error("linux.resources." + std::string(what) + " needs the cgroup v1 " + controller +
                    " controller, which is not mounted on this host");
    return it->second;
}

// Two inter-dependent knobs (cfs period/quota, rt period/runtime): the kernel
// may refuse the first with EINVAL until the second is set, so retry it after.
void write_pair(const std::string& dir, const char* first, const std::optional<std::string>& v1,
                const char* second, const std::optional<std::string>& v2) {
    bool retry_first = false;
    if (v1) {
        try {
            write_knob(dir, first, *v1);
        } catch (const Error& e) {
            if (e.code() != EINVAL || !v2) throw;
            retry_first = true;
        }
    }
    if (v2) write_knob(dir, second, *v2);
    if (retry_first) write_knob(dir, first, *v1);
}

void set_memory_limits(const std::string& dir, const oci::Resources::Memory& m) {
    // 0 means "not set" in the OCI spec, as in runc.
    std::optional<int64_t> limit = m.limit, swap = m.swap;
    if (limit == 0) limit.reset();
    if (swap == 0) swap.reset();
    bool has_memsw = has_knob(dir, "memory.memsw.limit_in_bytes");
    // Unlimited memory with swap unset means unlimited memory+swap too.
    if (limit == -1 && !swap && has_memsw) swap = -1;
    // memsw needs swap accounting in the kernel; without it the host cannot
    // limit swap at all, so the request is dropped rather than failing.
    if (!has_memsw) swap.reset();
    auto write_limit = [&] {
        if (!limit) return;
        try {
            write_knob(dir, "memory.limit_in_bytes", std::to_string(*limit));
        } catch (const Error& e) {
            if (e.code() != EBUSY) throw;
            throw Error(EBUSY, "memory limit " + std::to_string(*limit) +
                                   " is below the cgroup's current usage: " + e.what());
        }
    };
    auto write_swap = [&] {
        if (swap) write_knob(dir, "memory.memsw.limit_in_bytes", std::to_string(*swap));
    };
    // memory.limit_in_bytes must stay <= memory.memsw.limit_in_bytes at every step.
    if (limit && swap) {
        auto cur = read_u64(dir, "memory.limit_in_bytes").value_or(0);
        if (*swap == -1 || cur < static_cast<uint64_t>(*swap)) {
            write_swap();
            write_limit();
            return;
        }
    }
    write_limit();
    write_swap();
}

void check_usage(const std::string& dir, const oci::Resources::Memory& m) {
    if (!m.check_before_update.value_or(false) || !m.limit || *m.limit < 0) return;
    auto usage = read_u64(dir, "memory.usage_in_bytes").value_or(0);
    if (usage > static_cast<uint64_t>(*m.limit))
        throw Error("memory limit " + std::to_string(*m.limit) + " is below the current usage " +
                    std::to_string(usage) + " (checkBeforeUpdate)");
}

void set_memory(const V1Dirs& dirs, const oci::Resources::Memory& m) {
    const auto& dir = need_dir(dirs, "memory", "memory");
    check_usage(dir, m);
    set_memory_limits(dir, m);
    if (m.reservation && *m.reservation) write_knob(dir, "memory.soft_limit_in_bytes", std::to_string(*m.reservation));
    if (m.swappiness) {
        if (*m.swappiness > 100)
            throw Error("linux.resources.memory.swappiness " + std::to_string(*m.swappiness) +
                        " is out of range 0-100");
        write_knob(dir, "memory.swappiness", std::to_string(*m.swappiness));
    }
    if (m.disable_oom_killer.value_or(false)) write_knob(dir, "memory.oom_control", "1");
    // kernel / kernelTCP: kernel memory limits are gone from recent kernels
    // and runc ignores them; so does vitro. useHierarchy is always on since 6.x.
}

void set_cpu(const V1Dirs& dirs, const oci::Resources::Cpu& c) {
    bool wants_cpu = c.shares || c.period || c.quota || c.realtime_period || c.realtime_runtime ||
                     c.burst || c.idle;
    if (wants_cpu) {
        const auto& dir = need_dir(dirs, "cpu", "cpu");
        auto str = [](auto v) { return std::optional<std::string>(std::to_string(v)); };
        write_pair(dir, "cpu.rt_period_us", c.realtime_period ? str(*c.realtime_period) : std::nullopt,
                   "cpu.rt_runtime_us", c.realtime_runtime ? str(*c.realtime_runtime) : std::nullopt);
        if (c.shares && *c.shares != 0) {
            write_knob(dir, "cpu.shares", std::to_string(*c.shares));
            // The kernel clamps silently; a clamped value is a user error.
            auto got = read_u64(dir, "cpu.shares");
            if (got && *got != *c.shares)
                throw Error("linux.resources.cpu.shares " + std::to_string(*c.shares) +
                            " is out of range: the kernel set " + std::to_string(*got));
        }
        write_pair(dir, "cpu.cfs_period_us", c.period && *c.period ? str(*c.period) : std::nullopt,
                   "cpu.cfs_quota_us", c.quota && *c.quota ? str(*c.quota) : std::nullopt);
        if (c.burst) write_knob(dir, "cpu.cfs_burst_us", std::to_string(*c.burst));
        // idle=false is the kernel default: nothing to do where cpu.idle is missing.
        if (c.idle && (*c.idle || has_knob(dir, "cpu.idle"))) write_knob(dir, "cpu.idle", *c.idle ? "1" : "0");
    }
    if (!c.cpus.empty() || !c.mems.empty()) {
        const auto& dir = need_dir(dirs, "cpuset", "cpu.cpus/mems");
        if (!c.cpus.empty()) write_knob(dir, "cpuset.cpus", c.cpus);
        if (!c.mems.empty()) write_knob(dir, "cpuset.mems", c.mems);
    }
}

void set_pids(const V1Dirs& dirs, const oci::Resources::Pids& p) {
    if (p.limit == 0) return;  // unset, as in runc
    write_knob(need_dir(dirs, "pids", "pids"), "pids.max", p.limit > 0 ? std::to_string(p.limit) : "max");
}


void set_blkio(const V1Dirs& dirs, const oci::Resources::BlockIO& b) {
    const auto& dir = need_dir(dirs, "blkio", "blockIO");
    // Kernels with BFQ and without CFQ have only the blkio.bfq.* weights.
    bool bfq = !has_knob(dir, "blkio.weight") && has_knob(dir, "blkio.bfq.weight");
    const char* weight = bfq ? "blkio.bfq.weight" : "blkio.weight";
    const char* weight_device = bfq ? "blkio.bfq.weight_device" : "blkio.weight_device";
    if (b.weight && *b.weight) write_knob(dir, weight, std::to_string(*b.weight));
    if (b.leaf_weight && *b.leaf_weight) write_knob(dir, "blkio.leaf_weight", std::to_string(*b.leaf_weight));
    for (auto& wd : b.weight_device) {
        if (wd.weight && *wd.weight)
            write_knob(dir, weight_device, device_key(wd.major, wd.minor) + " " + std::to_string(*wd.weight));
        if (wd.leaf_weight && *wd.leaf_weight)
            write_knob(dir, "blkio.leaf_weight_device",
                       device_key(wd.major, wd.minor) + " " + std::to_string(*wd.leaf_weight));
    }
    auto throttle = [&](const char* file, const std::vector<oci::ThrottleDevice>& devs) {
        for (auto& t : devs) write_knob(dir, file, device_key(t.major, t.minor) + " " + std::to_string(t.rate));
    };
    throttle("blkio.throttle.read_bps_device", b.read_bps);
    throttle("blkio.throttle.write_bps_device", b.write_bps);
    throttle("blkio.throttle.read_iops_device", b.read_iops);
    throttle("blkio.throttle.write_iops_device", b.write_iops);
}

void set_hugetlb(const V1Dirs& dirs, const std::vector<oci::Resources::HugepageLimit>& limits) {
    const auto& dir = need_dir(dirs, "hugetlb", "hugepageLimits");
    for (auto& h : limits) {
        std::string v = std::to_string(h.limit);
        write_knob(dir, "hugetlb." + h.page_size + ".limit_in_bytes", v);
        // Reservations (kernel 5.7+) are limited too, as runc does.
        std::string rsvd = "hugetlb." + h.page_size + ".rsvd.limit_in_bytes";
        if (has_knob(dir, rsvd)) write_knob(dir, rsvd, v);
    }
}

void set_network(const V1Dirs& dirs, const oci::Resources::Network& n) {
    if (n.class_id)
        write_knob(need_dir(dirs, "net_cls", "network.classID"), "net_cls.classid", std::to_string(*n.class_id));
    for (auto& [ifname, prio] : n.priorities)
        write_knob(need_dir(dirs, "net_prio", "network.priorities"), "net_prio.ifpriomap",
                   ifname + " " + std::to_string(prio));
}

// The devices.allow/deny lines for one rule. The kernel reads any line that
// starts with "a" as "every device", so a narrower type-a rule becomes one
// line for char and one for block devices.
std::vector<std::string> v1_device_lines(const oci::DeviceRule& r) {
    std::string access = r.access.empty() ? "rwm" : r.access;
    auto num = [](const std::optional<int64_t>& v) { return v && *v >= 0 ? std::to_string(*v) : "*"; };
    std::string rest = " " + num(r.major) + ":" + num(r.minor) + " " + access;
    if (r.type == "a") {
        if (rest == " *:* rwm") return {"a"};
        return {"c" + rest, "b" + rest};
    }
    if (r.type != "b" && r.type != "c")
        throw Error("linux.resources.devices: type \"" + r.type + "\" is not one of a, b, c");
    return {r.type + rest};
}

void set_devices(const V1Dirs& dirs, const std::vector<oci::DeviceRule>& rules) {
    const auto& dir = need_dir(dirs, "devices", "devices");
    std::vector<std::pair<const char*, std::string>> writes;  // all checked before the first write
    for (auto& r : rules)
        for (auto& line : v1_device_lines(r)) writes.emplace_back(r.allow ? "devices.allow" : "devices.deny", line);
    // Start from deny-all, then apply the rules in order, as runc does.
    write_knob(dir, "devices.deny", "a");
    for (auto& [file, line] : writes) write_knob(dir, file, line);
}

}  // namespace

void apply_v1_resources(const V1Dirs& dirs, const oci::Resources& r) {
    if (!r.unified.empty())
        throw Error("linux.resources.unified (\"" + r.unified.begin()->first +
                    "\") needs cgroup v2; this host's controllers are on cgroup v1");
    if (r.memory) set_memory(dirs, *r.memory);
    if (r.cpu) set_cpu(dirs, *r.cpu);
    if (r.pids) set_pids(dirs, *r.pids);
    if (r.block_io) set_blkio(dirs, *r.block_io);
    if (!r.hugepage_limits.empty()) set_hugetlb(dirs, r.hugepage_limits);
    if (r.network) set_network(dirs, *r.network);
    if (!r.devices.empty()) set_devices(dirs, r.devices);
}

}  // namespace vitro::cgroups::detail
