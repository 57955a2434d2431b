// Which cgroup layout the host has, where each controller is mounted, and the
// factory that picks a manager for it.
#include <linux/magic.h>
#include <sys/statfs.h>

#include <algorithm>
#include <set>

#include "cgroups/detail.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace vitro::cgroups {

namespace detail {

namespace {

// v1 controllers a kernel may bind to a hierarchy; other mount options
// ("rw", "clone_children", "xattr", ...) are not controllers.
const std::set<std::string> kV1Controllers = {
    "cpu",   "cpuacct",    "cpuset",  "memory", "devices", "freezer", "net_cls", "net_prio",
    "blkio", "perf_event", "hugetlb", "pids",   "rdma",    "misc",    "debug"};

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_mountinfo(std::string_view s) {
    auto oct = [&](size_t k) { return k < s.size() && s[k] >= '0' && s[k] <= '7'; };
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && oct(i + 1) && oct(i + 2) && oct(i + 3)) {
            out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
            i += 3;
        } else {
            out += s[i];
        }
    }
    return out;
}

bool at_or_under(const std::string& path, const std::string& root) {
    if (root == "/") return true;
    return path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
                            path[root.size()] == '/');
}

std::string strip_trailing_slashes(std::string p) {
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    return p;
}

std::vector<std::string> v1_controllers_of(const std::string& super_options) {
    std::vector<std::string> out;
    for (auto& opt : split(super_options, ','))
        if (kV1Controllers.count(opt) || opt.rfind("name=", 0) == 0) out.push_back(opt);
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace

Mounts parse_mountinfo(std::string_view text, const std::string& root_in) {
    const std::string root = strip_trailing_slashes(root_in);
    Mounts m;
    std::set<std::vector<std::string>> seen;  // one entry per hierarchy, bind mounts skipped
    for (auto& line : split(text, '\n')) {
        auto sep = line.find(" - ");
        if (sep == std::string::npos) continue;
        auto pre = split(line.substr(0, sep), ' ');
        auto post = split(line.substr(sep + 3), ' ');
        if (pre.size() < 5 || post.size() < 3) continue;
        std::string mountpoint = unescape_mountinfo(pre[4]);
        if (!at_or_under(mountpoint, root)) continue;
        if (post[0] == "cgroup2") {
            if (m.v2.empty()) m.v2 = mountpoint;
        } else if (post[0] == "cgroup") {
            auto ctrls = v1_controllers_of(post[2]);
            if (ctrls.empty() || !seen.insert(ctrls).second) continue;
            m.v1.push_back({mountpoint, std::move(ctrls)});
        }
    }
    return m;
}

Mounts find_mounts(const std::string& root) {
    return parse_mountinfo(read_file("/proc/self/mountinfo"), root);
}

std::string normalize_cgroups_path(const std::string& cgroups_path, const std::string& container_id) {
    if (cgroups_path.empty()) {
        if (container_id.empty() || container_id.find('/') != std::string::npos || container_id == "." ||
            container_id == "..")
            throw Error("cannot derive a cgroup path from container id \"" + container_id + "\"");
        return std::string(detail::kDefaultParent) + "/" + container_id;
    }
    if (cgroups_path[0] != '/' && std::count(cgroups_path.begin(), cgroups_path.end(), ':') == 2)
        throw Error("linux.cgroupsPath \"" + cgroups_path +
                    "\" is a systemd slice:prefix:name path; the systemd cgroup driver is not "
                    "supported, give a cgroupfs path such as /vitro/<id>");
    std::string out;
    for (auto& part : split(cgroups_path, '/')) {
        if (part.empty() || part == ".") continue;
        if (part == "..")
            throw Error("linux.cgroupsPath \"" + cgroups_path + "\" must not contain \"..\"");
        out += '/';
        out += part;
    }
    if (out.empty()) throw Error("linux.cgroupsPath \"" + cgroups_path + "\" names the cgroup root");
    return out;
}

}  // namespace detail

namespace {
// The mode of the hierarchies `m` found under `root` (root itself a cgroup2
// mount: v2, whatever else is there).
Mode mode_of(const detail::Mounts& m, const std::string& root, bool root_is_v2) {
    if (root_is_v2) return Mode::V2;
    if (!m.v1.empty()) return m.v2.empty() ? Mode::V1 : Mode::Hybrid;
    if (!m.v2.empty()) return Mode::V2;
    throw Error("no cgroup hierarchy is mounted under " + root);
}

bool is_cgroup2_mount(const std::string& root) {
    struct statfs st;
    if (::statfs(root.c_str(), &st) < 0) throw_errno("statfs", root);
    return st.f_type == CGROUP2_SUPER_MAGIC;
}
}  // namespace

Mode detect_mode(const std::string& root) {
    if (is_cgroup2_mount(root)) return Mode::V2;
    return mode_of(detail::find_mounts(root), root, false);
}

const char* mode_name(Mode m) {
    switch (m) {
        case Mode::V1: return "v1";
        case Mode::V2: return "v2";
        case Mode::Hybrid: return "hybrid";
    }
    return "unknown";
}

namespace {

std::vector<detail::V1Hierarchy> v1_hierarchies(const detail::Mounts& m, const std::string& path) {
    std::vector<detail::V1Hierarchy> out;
    for (auto& mnt : m.v1) out.push_back({mnt.mountpoint, mnt.mountpoint + path, mnt.controllers});
    return out;
}

Mode parse_mode(const std::string& s) {
    if (s == "v1") return Mode::V1;
    if (s == "v2") return Mode::V2;
    if (s == "hybrid") return Mode::Hybrid;
    throw Error("saved cgroup state: unknown mode \"" + s + "\"");
}

}  // namespace

std::unique_ptr<Manager> make_manager(const std::string& cgroups_path, const std::string& container_id,
                                      const std::string& root) {
    std::string path = detail::normalize_cgroups_path(cgroups_path, container_id);
    // One read of mountinfo for both the mode and the mounts.
    const bool root_is_v2 = is_cgroup2_mount(root);
    auto mounts = detail::find_mounts(root);
    Mode mode = mode_of(mounts, root, root_is_v2);
    if (mode == Mode::V2)  // root is the cgroup2 mount itself, or (unusually) holds only one
        return std::make_unique<detail::V2Manager>(root_is_v2 ? root : mounts.v2, path);
    detail::V1Manager v1(v1_hierarchies(mounts, path), path);
    if (mode == Mode::V1) return std::make_unique<detail::V1Manager>(std::move(v1));
    return std::make_unique<detail::HybridManager>(std::move(v1), detail::V2Manager(mounts.v2, path));
}

std::unique_ptr<Manager> load_manager(const nlohmann::json& saved) {
    try {
        Mode mode = parse_mode(saved.at("mode").get<std::string>());
        std::string path = saved.at("path").get<std::string>();
        auto v2 = [&] {
            auto& j = saved.at("v2");
            return detail::V2Manager(j.at("mount").get<std::string>(), path);
        };
        if (mode == Mode::V2) return std::make_unique<detail::V2Manager>(v2());
        std::vector<detail::V1Hierarchy> hs;
        for (auto& h : saved.at("v1"))
            hs.push_back({h.at("mount").get<std::string>(), h.at("dir").get<std::string>(),
                          h.at("controllers").get<std::vector<std::string>>()});
        detail::V1Manager v1(std::move(hs), path);
        if (mode == Mode::V1) return std::make_unique<detail::V1Manager>(std::move(v1));
        return std::make_unique<detail::HybridManager>(std::move(v1), v2());
    } catch (const nlohmann::json::exception& e) {
        throw Error(std::string("saved cgroup state: ") + e.what());
    }
}

}  // namespace vitro::cgroups
