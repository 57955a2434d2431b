#include "iobench/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "measure/stats.hpp"
#include "measure/svg_plot.hpp"

namespace vitro::iobench {

namespace {

double median(std::vector<double> v) { return measure::summarize(v).median; }

uint64_t delta(uint64_t b, uint64_t a) { return b > a ? b - a : 0; }

uint64_t io_bytes(const DiskCounters& a, const DiskCounters& b, Workload w) {
    uint64_t n = 0;
    if (reads(w)) n += delta(b.read_bytes, a.read_bytes);
    if (writes(w)) n += delta(b.write_bytes, a.write_bytes);
    return n;
}

std::string fmt(const char* f, double v) {
    char b[64];
    std::snprintf(b, sizeof b, f, v);
    return b;
}

std::string label(const Cell& c) { return c.isolation == "host" ? "host" : c.isolation + "/" + c.runtime; }

}  // namespace

std::string human_rate(double b) {
    const char* units[] = {"B/s", "KiB/s", "MiB/s", "GiB/s"};
    int u = 0;
    while (b >= 1024 && u < 3) b /= 1024, ++u;
    return fmt("%.1f ", b) + units[u];
}

void summarize_cell(CellResult& r, const std::string& device, long ticks) {
    std::vector<double> bw, iops, p50, p99, cg_s, eff, eff_busy;
    CpuBreakdown sum;
    r.fio_bytes = r.cgroup_io_bytes = r.diskstats_bytes = 0;
    r.cgroup_io_known = !r.runs.empty();
    for (const auto& s : r.runs) {
        bw.push_back(s.fio.bandwidth_bytes_per_s);
        iops.push_back(s.fio.iops);
        p50.push_back(s.fio.clat_p50_us);
        p99.push_back(s.fio.clat_p99_us);
        auto c = cpu_breakdown(s.before.cpu, s.after.cpu, ticks);
        sum.usr += c.usr, sum.nice += c.nice, sum.sys += c.sys, sum.iowait += c.iowait, sum.irq += c.irq;
        sum.soft += c.soft, sum.steal += c.steal, sum.guest += c.guest, sum.idle += c.idle;
        sum.busy_cpu_s += c.busy_cpu_s;
        double cpu_s = static_cast<double>(delta(s.after.cgroup.cpu_ns, s.before.cgroup.cpu_ns)) / 1e9;
        cg_s.push_back(cpu_s);
        double bytes = static_cast<double>(s.fio.bytes());
        if (cpu_s > 0) eff.push_back(bytes / cpu_s);
        if (c.busy_cpu_s > 0) eff_busy.push_back(bytes / c.busy_cpu_s);
        r.fio_bytes += s.fio.bytes();
        r.task_io_bytes += io_bytes(s.before.task_io, s.after.task_io, r.cell.workload);
        if (!s.after.cgroup.io_known) r.cgroup_io_known = false;
        // The cgroup's bytes on every device (its I/O goes to the target's).
        for (const auto& [dev, after] : s.after.cgroup.io) {
            auto b = s.before.cgroup.io.find(dev);
            r.cgroup_io_bytes += io_bytes(b == s.before.cgroup.io.end() ? DiskCounters{} : b->second, after, r.cell.workload);
        }
        if (!device.empty() && s.after.disks.count(device) && s.before.disks.count(device))
            r.diskstats_bytes += io_bytes(s.before.disks.at(device), s.after.disks.at(device), r.cell.workload);
    }
    if (r.cgroup_io_bytes == 0) r.cgroup_io_known = false;
    auto st = measure::summarize(bw);
    r.bandwidth = st.median;
    r.cv = st.mean > 0 && st.n > 1 ? st.stdev / st.mean : 0;
    r.iops = median(iops);
    r.clat_p50_us = median(p50);
    r.clat_p99_us = median(p99);
    r.cgroup_cpu_s = median(cg_s);
    r.bytes_per_cpu_s = median(eff);
    r.bytes_per_busy_cpu_s = median(eff_busy);
    double n = static_cast<double>(std::max<size_t>(r.runs.size(), 1));
    r.cpu = {sum.usr / n, sum.nice / n, sum.sys / n, sum.iowait / n, sum.irq / n, sum.soft / n, sum.steal / n,
             sum.guest / n, sum.idle / n, sum.busy_cpu_s / n};
}

nlohmann::json to_json(const Report& rep) {
    nlohmann::json j;
    j["machine"] = rep.machine;
    j["kernel"] = rep.kernel;
    j["fio_version"] = rep.fio_version;
    j["runtime_versions"] = rep.runtime_versions;
    j["size_bytes"] = rep.plan.size;
    j["direct"] = rep.plan.direct;
    j["target"] = target_name(rep.plan.target);
    j["device"] = rep.device;
    j["repeat"] = rep.plan.repeat;
    j["stopped_by"] = rep.stopped_by;
    j["results"] = nlohmann::json::array();
    for (const auto& r : rep.cells) {
        const auto& c = r.cpu;
        nlohmann::json e = {
            {"isolation", r.cell.isolation},
            {"runtime", r.cell.runtime},
            {"workload", workload_name(r.cell.workload)},
            {"bs", r.cell.bs.given},
            {"repeats", r.runs.size()},
            {"bandwidth_bytes_per_s", r.bandwidth},
            {"iops", r.iops},
            {"cv", r.cv},
            {"bandwidth_runs", nlohmann::json::array()},
            {"clat_p50_us", r.clat_p50_us},
            {"clat_p99_us", r.clat_p99_us},
            {"cpu", {{"usr", c.usr}, {"nice", c.nice}, {"sys", c.sys}, {"iowait", c.iowait}, {"irq", c.irq},
                     {"soft", c.soft}, {"steal", c.steal}, {"guest", c.guest}, {"idle", c.idle},
                     {"busy_cpu_s", c.busy_cpu_s}}},
            {"cgroup_cpu_s", r.cgroup_cpu_s},
            {"bytes_per_cpu_s", r.bytes_per_cpu_s},
            {"bytes_per_busy_cpu_s", r.bytes_per_busy_cpu_s},
            {"ground_truth",
             {{"fio_bytes", r.fio_bytes},
              {"task_io_bytes", r.task_io_bytes},
              {"cgroup_io_bytes", r.cgroup_io_known ? nlohmann::json(r.cgroup_io_bytes) : nlohmann::json()},
              {"diskstats_bytes", rep.device.empty() ? nlohmann::json() : nlohmann::json(r.diskstats_bytes)}}},
        };
        for (const auto& s : r.runs) e["bandwidth_runs"].push_back(s.fio.bandwidth_bytes_per_s);
        j["results"].push_back(e);
    }
    return j;
}

std::string to_text(const Report& rep) {
    std::string s = "machine: " + rep.machine + "\nkernel: " + rep.kernel + "\nfio: " + rep.fio_version + "\n";
    for (const auto& v : rep.runtime_versions) s += "runtime: " + v + "\n";
    s += "target: " + std::string(target_name(rep.plan.target)) + (rep.device.empty() ? "" : " (device " + rep.device + ")") +
         ", size " + std::to_string(rep.plan.size >> 20) + " MiB, " + (rep.plan.direct ? "O_DIRECT" : "buffered") +
         ", " + std::to_string(rep.plan.repeat) + " repeats\n\n";
    char line[512];
    std::snprintf(line, sizeof line, "%-18s %-9s %-5s %14s %10s %6s %6s %6s %7s %6s %14s %s\n", "MODE", "WORKLOAD", "BS",
                  "BANDWIDTH", "IOPS", "CV%", "USR%", "SYS%", "IOWAIT%", "IDLE%", "BYTES/CPU-S", "VS HOST");
    s += line;
    std::map<std::string, double> host;  // workload/bs -> host bandwidth
    for (const auto& r : rep.cells)
        if (r.cell.isolation == "host") host[std::string(workload_name(r.cell.workload)) + r.cell.bs.given] = r.bandwidth;
    for (const auto& r : rep.cells) {
        auto h = host.find(std::string(workload_name(r.cell.workload)) + r.cell.bs.given);
        std::string vs = h != host.end() && h->second > 0 && r.cell.isolation != "host" ? fmt("%.1f%%", 100 * r.bandwidth / h->second) : "";
        std::snprintf(line, sizeof line, "%-18s %-9s %-5s %14s %10.0f %6.1f %6.1f %6.1f %7.1f %6.1f %14s %s\n", label(r.cell).c_str(),
                      workload_name(r.cell.workload), r.cell.bs.given.c_str(), human_rate(r.bandwidth).c_str(), r.iops,
                      100 * r.cv, r.cpu.usr, r.cpu.sys, r.cpu.iowait, r.cpu.idle,
                      r.bytes_per_cpu_s > 0 ? human_rate(r.bytes_per_cpu_s).c_str() : "-", vs.c_str());
        s += line;
    }
    if (!rep.stopped_by.empty()) s += "\nstopped by " + rep.stopped_by + ": the table has the runs that finished\n";
    return s;
}

std::string to_csv(const Report& rep) {
    std::string s = "isolation,runtime,workload,bs,repeats,bandwidth_bytes_per_s,iops,cv,clat_p50_us,clat_p99_us,usr,sys,"
                    "iowait,irq,soft,steal,guest,idle,cgroup_cpu_s,bytes_per_cpu_s,fio_bytes,task_io_bytes,cgroup_io_bytes,diskstats_bytes\n";
    for (const auto& r : rep.cells) {
        const auto& c = r.cpu;
        s += r.cell.isolation + "," + r.cell.runtime + "," + workload_name(r.cell.workload) + "," + r.cell.bs.given + "," +
             std::to_string(r.runs.size()) + "," + fmt("%.0f", r.bandwidth) + "," + fmt("%.1f", r.iops) + "," +
             fmt("%.4f", r.cv) + "," + fmt("%.1f", r.clat_p50_us) + "," + fmt("%.1f", r.clat_p99_us);
        for (double v : {c.usr, c.sys, c.iowait, c.irq, c.soft, c.steal, c.guest, c.idle}) s += "," + fmt("%.2f", v);
        s += "," + fmt("%.4f", r.cgroup_cpu_s) + "," + fmt("%.0f", r.bytes_per_cpu_s) + "," + std::to_string(r.fio_bytes) +
             "," + std::to_string(r.task_io_bytes) + "," + (r.cgroup_io_known ? std::to_string(r.cgroup_io_bytes) : "") + "," +
             (rep.device.empty() ? "" : std::to_string(r.diskstats_bytes)) + "\n";
    }
    return s;
}

std::vector<std::pair<std::string, std::string>> plots(const Report& rep) {
    static const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};
    std::map<std::string, std::map<std::string, measure::Series>> by_workload;  // workload -> mode -> series
    for (const auto& r : rep.cells) {
        auto& series = by_workload[workload_name(r.cell.workload)];
        auto& s = series[label(r.cell)];
        if (s.name.empty()) s.name = label(r.cell), s.color = colors[(series.size() - 1) % 6];
        // x: log2 of the block size in KiB, so 4k and 1m are apart.
        s.points.emplace_back(std::log2(static_cast<double>(r.cell.bs.bytes) / 1024), r.bandwidth / (1 << 20));
    }
    std::vector<std::pair<std::string, std::string>> out;
    for (auto& [w, series] : by_workload) {
        measure::Chart bw{w + ": bandwidth (median of " + std::to_string(rep.plan.repeat) + ")", "log2(block size / KiB)",
                          "MiB/s", {}};
        for (auto& [name, s] : series) {
            std::sort(s.points.begin(), s.points.end());
            bw.series.push_back(s);
        }
        out.emplace_back("bench-io-" + w + ".svg", measure::render_svg(std::span<const measure::Chart>(&bw, 1)));
    }
    return out;
}

}  // namespace vitro::iobench
