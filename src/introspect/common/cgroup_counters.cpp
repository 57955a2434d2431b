#include "introspect/common/cgroup_counters.hpp"

#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "introspect/common/process_snapshot.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace vitro::introspect {

namespace {

struct CgroupMount {
    std::string dir;
    std::vector<std::string> controllers;  // v1: from the super options; v2: empty
    bool v2 = false;
};

std::vector<CgroupMount> cgroup_mounts() {
    std::vector<CgroupMount> out;
    for (const auto& m : mounts(::getpid())) {
        const std::string fs = m["fs_type"];
        if (fs == "cgroup2") out.push_back({m["mount_point"], {}, true});
        if (fs == "cgroup") {
            CgroupMount c{m["mount_point"], {}, false};
            for (const auto& o : split(m["super_options"].get<std::string>(), ','))
                if (o == "cpu" || o == "cpuacct" || o == "memory" || o == "pids") c.controllers.push_back(o);
            if (!c.controllers.empty()) out.push_back(c);
        }
    }
    return out;
}

struct Line {
    std::string controllers, path;
};
std::vector<Line> cgroup_lines(pid_t pid) {
    std::vector<Line> out;
    for (const auto& l : split(proc_text(pid, "cgroup"), '\n')) {
        auto a = l.find(':'), b = l.find(':', a + 1);
        if (a == std::string::npos || b == std::string::npos) continue;
        out.push_back({l.substr(a + 1, b - a - 1), l.substr(b + 1)});
    }
    return out;
}

// (dir, is_v2, controllers) for each hierarchy the process is in that we read.
struct Dir {
    std::string path;
    bool v2;
    std::vector<std::string> controllers;
};
std::vector<Dir> dirs_of(pid_t pid) {
    std::vector<Dir> out;
    auto ms = cgroup_mounts();
    for (const auto& l : cgroup_lines(pid)) {
        if (l.controllers.empty()) {
            // The root of a hybrid host's unified tree is the machine's, not the
            // process's (its counters are in the v1 hierarchies). /proc/<pid>/cgroup
            // lists the v2 line last, so the v1 ones are known by now.
            if (l.path == "/" && !out.empty()) continue;
            for (const auto& m : ms)
                if (m.v2) out.push_back({m.dir + (l.path == "/" ? "" : l.path), true, {}});
            continue;
        }
        auto ctl = split(l.controllers, ',');
        for (const auto& m : ms) {
            if (m.v2) continue;
            bool same = false;
            for (const auto& c : m.controllers)
                for (const auto& c2 : ctl) same |= c == c2;
            if (same) {
                out.push_back({m.dir + (l.path == "/" ? "" : l.path), false, m.controllers});
                break;
            }
        }
    }
    return out;
}

std::optional<std::string> try_read(const std::string& path) {
    try {
        return read_file(path);
    } catch (const Error&) {
        return std::nullopt;
    }
}

std::optional<uint64_t> number(const std::optional<std::string>& s) {
    if (!s || s->empty() || (*s)[0] < '0' || (*s)[0] > '9') return std::nullopt;
    return std::strtoull(s->c_str(), nullptr, 10);
}

std::optional<uint64_t> keyed_value(const std::optional<std::string>& s, const std::string& key) {
    if (!s) return std::nullopt;
    for (const auto& l : split(*s, '\n'))
        if (l.rfind(key + " ", 0) == 0) return std::strtoull(l.c_str() + key.size() + 1, nullptr, 10);
    return std::nullopt;
}

}  // namespace

nlohmann::json cgroup_counters(pid_t pid) {
    nlohmann::json files = nlohmann::json::object();
    static const char* v1_files[] = {"cpu.stat", "cpuacct.usage", "cpuacct.stat", "memory.usage_in_bytes",
                                     "memory.max_usage_in_bytes", "memory.limit_in_bytes", "memory.failcnt",
                                     "memory.stat", "memory.oom_control", "pids.current", "pids.max"};
    static const char* v2_files[] = {"cpu.stat", "memory.current", "memory.max", "memory.peak", "memory.stat",
                                     "memory.events", "pids.current", "pids.max", "cgroup.procs"};
    for (const auto& d : dirs_of(pid)) {
        if (d.v2) {
            for (const char* f : v2_files)
                if (auto t = try_read(d.path + "/" + f)) files[d.path + "/" + f] = *t;
        } else {
            for (const char* f : v1_files)
                if (auto t = try_read(d.path + "/" + f)) files[d.path + "/" + f] = *t;
        }
    }
    nlohmann::json lines = nlohmann::json::array();
    for (const auto& l : split(proc_text(pid, "cgroup"), '\n'))
        if (!l.empty()) lines.push_back(l);
    return {{"cgroup", lines}, {"files", files}};
}

UsageSample sample_usage(pid_t pid) {
    UsageSample s;
    for (const auto& d : dirs_of(pid)) {
        if (d.v2) {
            if (!s.cpu_ns)
                if (auto u = keyed_value(try_read(d.path + "/cpu.stat"), "usage_usec")) s.cpu_ns = *u * 1000;
            if (!s.memory_bytes) s.memory_bytes = number(try_read(d.path + "/memory.current"));
            if (!s.pids) s.pids = number(try_read(d.path + "/pids.current"));
            continue;
        }
        for (const auto& c : d.controllers) {
            if (c == "cpuacct" && !s.cpu_ns) s.cpu_ns = number(try_read(d.path + "/cpuacct.usage"));
            if (c == "memory" && !s.memory_bytes) s.memory_bytes = number(try_read(d.path + "/memory.usage_in_bytes"));
            if (c == "pids" && !s.pids) s.pids = number(try_read(d.path + "/pids.current"));
        }
    }
    return s;
}

nlohmann::json UsageSample::to_json() const {
    nlohmann::json j = nlohmann::json::object();
    if (cpu_ns) j["cpu_ns"] = *cpu_ns;
    if (memory_bytes) j["memory_bytes"] = *memory_bytes;
    if (pids) j["pids"] = *pids;
    return j;
}

}  // namespace vitro::introspect
