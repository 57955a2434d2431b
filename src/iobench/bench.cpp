#include "iobench/bench.hpp"

#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "util/error.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"
#include "util/subprocess.hpp"

namespace vitro::iobench {

namespace {

std::string first_line(const std::string& s) { return trim(s.substr(0, s.find('\n'))); }

std::string version_of(const std::string& program, const std::string& flag) {
    std::string path = find_program(program);
    if (path.empty()) return "";
    try {
        auto r = run_program_capture(path, {program, flag}, {}, "", 10);
        return first_line(r.stdout_data);
    } catch (const Error&) {
        return "";
    }
}

std::string cpu_model() {
    try {
        for (const auto& line : split(read_file("/proc/cpuinfo"), '\n'))
            if (line.rfind("model name", 0) == 0) return trim(line.substr(line.find(':') + 1));
    } catch (const Error&) {
    }
    return "";
}

std::string duration(double s) {
    char b[32];
    if (s < 90) std::snprintf(b, sizeof b, "%.0f s", s);
    else std::snprintf(b, sizeof b, "%.1f min", s / 60);
    return b;
}

}  // namespace

void describe_machine(Report& rep) {
    utsname u{};
    ::uname(&u);
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    rep.machine = std::string(host) + ", " + cpu_model() + ", " + std::to_string(::sysconf(_SC_NPROCESSORS_ONLN)) + " CPUs";
    rep.kernel = std::string(u.sysname) + " " + u.release + " " + u.machine;
    rep.fio_version = version_of("fio", "--version");
    for (const char* rt : {"crun", "runc"})
        for (const auto& c : rep.plan.cells)
            if (c.runtime == rt) {
                rep.runtime_versions.push_back(version_of(rt, "--version"));
                break;
            }
}

void run_bench(Report& rep, Runner& runner, const std::atomic<bool>* stop) {
    const Plan& plan = rep.plan;
    long ticks = ::sysconf(_SC_CLK_TCK);
    rep.device = runner.device();
    size_t total = plan.cells.size() * static_cast<size_t>(plan.repeat), done = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (const auto& cell : plan.cells) {
        CellResult r;
        r.cell = cell;
        for (int i = 0; i < plan.repeat && !stop->load(); ++i) {
            auto s = runner.run(cell);
            if (!s) break;
            r.runs.push_back(*s);
            ++done;
            double spent = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            double left = spent / static_cast<double>(done) * static_cast<double>(total - done);
            std::fprintf(stderr, "[%zu/%zu] %s/%s %s bs=%s run %d/%d: %s, %.0f IOPS (about %s left)\n", done, total,
                         cell.isolation.c_str(), cell.runtime.c_str(), workload_name(cell.workload), cell.bs.given.c_str(),
                         i + 1, plan.repeat, human_rate(s->fio.bandwidth_bytes_per_s).c_str(), s->fio.iops,
                         duration(left).c_str());
        }
        if (!r.runs.empty()) {
            summarize_cell(r, rep.device, ticks);
            rep.cells.push_back(std::move(r));
        }
        if (stop->load()) break;
    }
}

}  // namespace vitro::iobench
