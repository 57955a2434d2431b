// The cgroup v1 manager: one directory per mounted hierarchy, each controller
// configured in the hierarchy it is bound to.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "cgroups/detail.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace vitro::cgroups::detail {

namespace {

// A new cpuset cgroup starts with empty cpus/mems and refuses tasks until they
// are set: copy them down from the parent at every level we created.
void init_cpuset(const std::string& mountpoint, const std::string& dir) {
    std::string parent = mountpoint;
    for (auto& part : split(dir.substr(mountpoint.size()), '/')) {
        if (part.empty()) continue;
        std::string cur = knob_path(parent, part);
        for (const char* knob : {"cpuset.cpus", "cpuset.mems"}) {
            auto v = read_knob(cur, knob);
            if (v && trim(*v).empty()) {
                auto from = read_knob(parent, knob);
                if (from && !trim(*from).empty()) write_knob(cur, knob, trim(*from));
            }
        }
        parent = cur;
    }
}

bool has(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

V1Manager::V1Manager(std::vector<V1Hierarchy> hierarchies, std::string path)
    : hierarchies_(std::move(hierarchies)), path_(std::move(path)) {
    for (auto& h : hierarchies_)
        for (auto& c : h.controllers) dirs_[c] = h.dir;
}

const std::string* V1Manager::dir_of(const std::string& c) const {
    auto it = dirs_.find(c);
    return it == dirs_.end() ? nullptr : &it->second;
}

void V1Manager::create(const std::optional<oci::Resources>& resources) {
    created_.clear();
    try {
        for (auto& h : hierarchies_) {
            if (!path_exists(h.dir)) {
                make_dirs(h.dir);
                created_.push_back(h.dir);
            }
            if (has(h.controllers, "cpuset")) init_cpuset(h.mountpoint, h.dir);
        }
        if (resources) apply(*resources);
    } catch (...) {
        undo_create();
        throw;
    }
}

void V1Manager::undo_create() {
    for (auto& dir : created_) {
        try {
            remove_cgroup_tree(dir);
            remove_default_parent(dir, path_);
        } catch (const Error&) {
            // Best effort: the original error is the one worth reporting.
        }
    }
    created_.clear();
}

void V1Manager::apply(const oci::Resources& r) {
    try {
        apply_v1_resources(dirs_, r);
    } catch (const Error& e) {
        throw e.wrap("cgroup " + path_);
    }
}

void V1Manager::update(const oci::Resources& resources) { apply(resources); }

void V1Manager::add_process(pid_t pid) {
    for (auto& h : hierarchies_) join_cgroup(h.dir, pid);
}

void freeze_v1(const std::string& dir, bool frozen) {
    using namespace std::chrono;
    const char* want = frozen ? "FROZEN" : "THAWED";
    // A v1 freeze can stay in FREEZING while tasks fork; writing FROZEN again
    // retries it. Bounded, so a stuck cgroup gives an error, not a hang.
    auto deadline = steady_clock::now() + seconds(10);
    for (int i = 0;; ++i) {
        write_knob(dir, "freezer.state", want);
        auto state = read_knob(dir, "freezer.state");
        if (state && trim(*state) == want) return;
        if (steady_clock::now() >= deadline) {
            if (frozen) write_knob(dir, "freezer.state", "THAWED");
            throw Error(std::string("cgroup ") + dir + " did not reach " + want + " (state " +
                        (state ? trim(*state) : "unknown") + ")");
        }
        std::this_thread::sleep_for(microseconds(i < 100 ? 100 : 10000));
    }
}

void V1Manager::freeze(bool frozen) {
    auto* dir = dir_of("freezer");
    if (!dir) throw Error("cannot " + std::string(frozen ? "pause" : "resume") + " cgroup " + path_ +
                          ": the freezer controller is not mounted");
    freeze_v1(*dir, frozen);
}

bool V1Manager::is_frozen() const {
    auto* dir = dir_of("freezer");
    if (!dir) return false;
    auto state = read_knob(*dir, "freezer.state");
    return state && trim(*state) == "FROZEN";
}

std::vector<pid_t> V1Manager::pids() const {
    // Controllers every container has, so their hierarchy holds every process.
    for (const char* c : {"pids", "memory", "freezer", "cpu", "devices"})
        if (auto* dir = dir_of(c)) return read_procs_recursive(*dir);
    if (!hierarchies_.empty()) return read_procs_recursive(hierarchies_.front().dir);
    return {};
}

Stats V1Manager::stats() const { return read_v1_stats(dirs_); }

void V1Manager::kill_all(int signal) {
    // Freeze first so that no process can fork past the signal.
    bool can_freeze = dir_of("freezer") && path_exists(*dir_of("freezer"));
    bool was_frozen = can_freeze && is_frozen();
    if (can_freeze && !was_frozen) freeze(true);
    try {
        signal_pids(pids(), signal);
    } catch (...) {
        if (can_freeze && !was_frozen) freeze(false);
        throw;
    }
    // Frozen v1 tasks act on SIGKILL only once thawed.
    if (can_freeze && (!was_frozen || signal == SIGKILL)) freeze(false);
}

void V1Manager::destroy() {
    std::optional<Error> first;
    for (auto& h : hierarchies_) {
        try {
            remove_cgroup_tree(h.dir);
            remove_default_parent(h.dir, path_);
        } catch (const Error& e) {
            if (!first) first = e;
        }
    }
    if (first) throw *first;
}

nlohmann::json V1Manager::to_json() const {
    nlohmann::json hs = nlohmann::json::array();
    for (auto& h : hierarchies_)
        hs.push_back({{"mount", h.mountpoint}, {"dir", h.dir}, {"controllers", h.controllers}});
    return {{"mode", "v1"}, {"path", path_}, {"v1", hs}};
}

}  // namespace vitro::cgroups::detail
