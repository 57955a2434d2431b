// Finding a process's cgroup directories from /proc/<pid>/cgroup and the
// mounted hierarchies, for introspection of containers any runtime started.
#include <unistd.h>

#include "cgroups/detail.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace vitro::cgroups {

CgroupMounts::CgroupMounts(const std::string& root) {
    auto m = detail::find_mounts(root);
    for (auto& h : m.v1) v1_.emplace_back(std::move(h.controllers), std::move(h.mountpoint));
    v2_ = std::move(m.v2);
}

Mode CgroupMounts::mode() const {
    if (v1_.empty()) return Mode::V2;
    return v2_.empty() ? Mode::V1 : Mode::Hybrid;
}

ProcessCgroups CgroupMounts::of_process(pid_t pid) const {
    return from_text(read_file("/proc/" + std::to_string(pid) + "/cgroup"));
}

ProcessCgroups CgroupMounts::from_text(std::string_view text) const {
    ProcessCgroups out;
    for (auto& line : split(std::string(text), '\n')) {
        // hierarchy-id:controller,list:/path
        auto a = line.find(':');
        auto b = a == std::string::npos ? a : line.find(':', a + 1);
        if (b == std::string::npos) continue;
        std::string path = line.substr(b + 1);
        if (path.find("/..") != std::string::npos) continue;  // never leave the mount
        std::string controllers = line.substr(a + 1, b - a - 1);
        if (controllers.empty()) {
            if (!v2_.empty()) out.v2 = v2_ + (path == "/" ? "" : path);
            if (v1_.empty()) out.path = path;
            continue;
        }
        for (auto& c : split(controllers, ',')) {
            for (const auto& [names, mountpoint] : v1_)
                for (const auto& n : names)
                    if (n == c) out.v1[c] = mountpoint + (path == "/" ? "" : path);
            if (c == "memory") out.path = path;
        }
    }
    return out;
}

}  // namespace vitro::cgroups
