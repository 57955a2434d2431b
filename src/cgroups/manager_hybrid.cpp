// The hybrid manager: the v1 manager for the v1 hierarchies plus the v2
// manager for the cgroup2 mount (e.g. /sys/fs/cgroup/unified). Processes join
// both; each resource goes where its controller is.
#include <signal.h>

#include <algorithm>

#include "cgroups/detail.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace vitro::cgroups::detail {

std::pair<oci::Resources, oci::Resources> HybridManager::split(const oci::Resources& r) const {
    oci::Resources v1 = r, v2;
    v1.unified.clear();
    if (!r.hugepage_limits.empty() && !v1_.dir_of("hugetlb")) {
        v2.hugepage_limits = r.hugepage_limits;
        v1.hugepage_limits.clear();
    }
    if (r.unified.empty()) return {v1, v2};
    auto on_v2 = v2_.available_controllers();
    for (auto& [key, value] : r.unified) {
        std::string controller = key.substr(0, key.find('.'));
        if (controller != "cgroup" && std::find(on_v2.begin(), on_v2.end(), controller) == on_v2.end())
            throw Error("linux.resources.unified[\"" + key + "\"]: the " + controller +
                        " controller is not on this hybrid host's cgroup2 hierarchy (it has: " +
                        (on_v2.empty() ? "none" : join(on_v2, " ")) + ")");
        v2.unified[key] = value;
    }
    return {v1, v2};
}

void HybridManager::create(const std::optional<oci::Resources>& resources) {
    std::optional<oci::Resources> a, b;
    if (resources) std::tie(a, b) = split(*resources);
    v1_.create(a);
    try {
        v2_.create(b);
    } catch (...) {
        v1_.undo_create();
        throw;
    }
}

void HybridManager::add_process(pid_t pid) {
    v1_.add_process(pid);
    v2_.add_process(pid);
}

void HybridManager::update(const oci::Resources& resources) {
    auto [a, b] = split(resources);
    v1_.update(a);
    v2_.update(b);
}

// The v1 freezer where it is mounted, else cgroup.freeze on the cgroup2 side.
void HybridManager::freeze(bool frozen) {
    if (v1_.dir_of("freezer"))
        v1_.freeze(frozen);
    else
        v2_.freeze(frozen);
}

bool HybridManager::is_frozen() const { return v1_.dir_of("freezer") ? v1_.is_frozen() : v2_.is_frozen(); }

std::vector<pid_t> HybridManager::pids() const { return v1_.pids(); }

Stats HybridManager::stats() const { return v1_.stats(); }

void HybridManager::kill_all(int signal) {
    if (signal == SIGKILL && has_knob(v2_.dir(), "cgroup.kill")) {
        v2_.kill_all(SIGKILL);
        // A process that joined only the v1 hierarchies is not in the cgroup2 one.
        signal_pids(v1_.pids(), SIGKILL);
        return;
    }
    v1_.kill_all(signal);
}

void HybridManager::destroy() {
    std::optional<Error> first;
    for (Manager* m : {static_cast<Manager*>(&v1_), static_cast<Manager*>(&v2_)}) {
        try {
            m->destroy();
        } catch (const Error& e) {
            if (!first) first = e;
        }
    }
    if (first) throw *first;
}

nlohmann::json HybridManager::to_json() const {
    auto j = v1_.to_json();
    j["mode"] = "hybrid";
    j["v2"] = v2_.to_json()["v2"];
    return j;
}

}  // namespace vitro::cgroups::detail
