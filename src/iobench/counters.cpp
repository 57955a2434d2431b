#include "iobench/counters.hpp"

#include <cerrno>
#include <sstream>

#include "util/error.hpp"
#include "util/strings.hpp"

namespace vitro::iobench {

namespace {
std::vector<std::string> words(std::string_view line) {
    std::vector<std::string> w;
    std::istringstream in{std::string(line)};
    for (std::string s; in >> s;) w.push_back(s);
    return w;
}
uint64_t u64(const std::string& s) {
    uint64_t v = 0;
    parse_u64(s, v);
    return v;
}
double pct(uint64_t part, uint64_t total) { return total ? 100.0 * static_cast<double>(part) / static_cast<double>(total) : 0; }
uint64_t sub(uint64_t b, uint64_t a) { return b > a ? b - a : 0; }
std::string base_name(const std::string& p) {
    size_t s = p.rfind('/');
    return s == std::string::npos ? p : p.substr(s + 1);
}
}  // namespace

CpuTimes parse_proc_stat_cpu(std::string_view line) {
    auto w = words(line);
    if (w.size() < 9 || w[0] != "cpu") throw Error(EINVAL, "not /proc/stat's cpu line: " + std::string(line.substr(0, 80)));
    CpuTimes t;
    uint64_t* f[] = {&t.user, &t.nice, &t.system, &t.idle, &t.iowait, &t.irq, &t.softirq, &t.steal, &t.guest, &t.guest_nice};
    for (size_t i = 1; i < w.size() && i <= 10; ++i) *f[i - 1] = u64(w[i]);
    return t;
}

CpuBreakdown cpu_breakdown(const CpuTimes& a, const CpuTimes& b, long ticks_per_s) {
    // /proc/stat's user includes guest (and nice guest_nice): mpstat subtracts them.
    uint64_t user = sub(b.user, a.user), guest = sub(b.guest, a.guest);
    uint64_t nice = sub(b.nice, a.nice), gnice = sub(b.guest_nice, a.guest_nice);
    uint64_t total = sub(b.total(), a.total());
    CpuBreakdown c;
    c.usr = pct(sub(user, guest), total);
    c.nice = pct(sub(nice, gnice), total);
    c.sys = pct(sub(b.system, a.system), total);
    c.iowait = pct(sub(b.iowait, a.iowait), total);
    c.irq = pct(sub(b.irq, a.irq), total);
    c.soft = pct(sub(b.softirq, a.softirq), total);
    c.steal = pct(sub(b.steal, a.steal), total);
    c.guest = pct(guest + gnice, total);
    c.idle = pct(sub(b.idle, a.idle), total);
    uint64_t busy = sub(total, sub(b.idle, a.idle) + sub(b.iowait, a.iowait));
    c.busy_cpu_s = ticks_per_s > 0 ? static_cast<double>(busy) / static_cast<double>(ticks_per_s) : 0;
    return c;
}

std::map<std::string, DiskCounters> parse_diskstats(std::string_view text) {
    std::map<std::string, DiskCounters> m;
    for (const auto& line : split(text, '\n')) {
        auto w = words(line);
        if (w.size() < 10) continue;
        // major minor name reads merged sectors ms writes merged sectors ...
        m[w[0] + ":" + w[1]] = {u64(w[5]) * 512, u64(w[9]) * 512};
    }
    return m;
}

DiskCounters parse_task_io(std::string_view text) {
    DiskCounters d;
    for (const auto& l : split(text, '\n')) {
        auto w = words(l);
        if (w.size() != 2) continue;
        if (w[0] == "read_bytes:") d.read_bytes = u64(w[1]);
        if (w[0] == "write_bytes:") d.write_bytes = u64(w[1]);
    }
    return d;
}

void add_cgroup_file(CgroupCounters& c, const std::string& name, std::string_view text, long ticks_per_s) {
    auto lines = split(text, '\n');
    if (name == "cpuacct.usage") {
        c.cpu_known = true;
        c.cpu_ns = u64(trim(text));
    } else if (name == "cpuacct.stat") {
        uint64_t tick_ns = ticks_per_s > 0 ? 1000000000ull / static_cast<uint64_t>(ticks_per_s) : 0;
        for (const auto& l : lines) {
            auto w = words(l);
            if (w.size() != 2) continue;
            if (w[0] == "user") c.user_ns = u64(w[1]) * tick_ns;
            if (w[0] == "system") c.system_ns = u64(w[1]) * tick_ns;
        }
    } else if (name == "cpu.stat") {
        for (const auto& l : lines) {
            auto w = words(l);
            if (w.size() != 2) continue;
            if (w[0] == "usage_usec") c.cpu_known = true, c.cpu_ns = u64(w[1]) * 1000;
            if (w[0] == "user_usec") c.user_ns = u64(w[1]) * 1000;
            if (w[0] == "system_usec") c.system_ns = u64(w[1]) * 1000;
        }
    } else if (name == "blkio.throttle.io_service_bytes_recursive" || name == "blkio.throttle.io_service_bytes") {
        c.io_known = true;
        for (const auto& l : lines) {
            auto w = words(l);  // "8:0 Read 4096"
            if (w.size() != 3) continue;
            if (w[1] == "Read") c.io[w[0]].read_bytes = u64(w[2]);
            if (w[1] == "Write") c.io[w[0]].write_bytes = u64(w[2]);
        }
    } else if (name == "io.stat") {
        c.io_known = true;
        for (const auto& l : lines) {
            auto w = words(l);  // "8:0 rbytes=N wbytes=N rios=..."
            for (size_t i = 1; i < w.size(); ++i) {
                if (w[i].rfind("rbytes=", 0) == 0) c.io[w[0]].read_bytes = u64(w[i].substr(7));
                if (w[i].rfind("wbytes=", 0) == 0) c.io[w[0]].write_bytes = u64(w[i].substr(7));
            }
        }
    }
}

std::string snapshot_script(const std::string& tag, const std::vector<std::string>& cgroup_files) {
    std::string s = "echo '@@snap " + tag + "'; echo '@@stat'; head -n1 /proc/stat; echo '@@diskstats'; cat /proc/diskstats; echo '@@taskio'; cat /proc/$$/io; ";
    for (const auto& f : cgroup_files) s += "[ -r '" + f + "' ] && { echo '@@file " + f + "'; cat '" + f + "'; }; ";
    return s + "echo '@@end'; ";
}

std::map<std::string, Snapshot> parse_snapshots(std::string_view out, std::string& rest, long ticks_per_s) {
    std::map<std::string, Snapshot> snaps;
    Snapshot* cur = nullptr;
    std::string section, body;
    auto flush = [&] {
        if (!cur) return;
        if (section == "stat") cur->cpu = parse_proc_stat_cpu(trim(body));
        else if (section == "diskstats") cur->disks = parse_diskstats(body);
        else if (section == "taskio") cur->task_io = parse_task_io(body);
        else if (section.rfind("file ", 0) == 0) add_cgroup_file(cur->cgroup, base_name(section.substr(5)), body, ticks_per_s);
        body.clear();
    };
    for (const auto& line : split(out, '\n')) {
        if (line.rfind("@@", 0) == 0) {
            flush();
            std::string head = line.substr(2);
            if (head.rfind("snap ", 0) == 0) cur = &snaps[head.substr(5)], section.clear();
            else if (head == "end") cur = nullptr;
            else section = head;
            continue;
        }
        if (cur) body += line + "\n";
        else if (!line.empty()) rest += line + "\n";
    }
    flush();
    return snaps;
}

std::vector<std::string> container_cgroup_files() {
    return {"/sys/fs/cgroup/cpuacct/cpuacct.usage", "/sys/fs/cgroup/cpuacct/cpuacct.stat",
            "/sys/fs/cgroup/blkio/blkio.throttle.io_service_bytes_recursive", "/sys/fs/cgroup/cpu.stat",
            "/sys/fs/cgroup/io.stat"};
}

}  // namespace vitro::iobench
