// The cgroup v2 manager: one directory in the unified hierarchy. Also serves
// as the cgroup2 half of the hybrid manager.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "cgroups/detail.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace vitro::cgroups::detail {

namespace {

std::vector<std::string> words(const std::optional<std::string>& s) {
    std::vector<std::string> out;
    if (!s) return out;
    for (auto& w : split(trim(*s), ' '))
        if (!w.empty()) out.push_back(w);
    return out;
}

// Offers every controller a cgroup has to its children. The no-internal-
// process rule or a missing kernel feature can refuse some: those are then
// skipped, and a knob that needs one fails later, naming its file.
void enable_subtree(const std::string& dir) {
    auto ctrls = words(read_knob(dir, "cgroup.controllers"));
    if (ctrls.empty()) return;
    auto have = words(read_knob(dir, "cgroup.subtree_control"));
    std::string all;
    std::vector<std::string> missing;
    for (auto& c : ctrls) {
        if (std::find(have.begin(), have.end(), c) != have.end()) continue;
        missing.push_back(c);
        all += (all.empty() ? "+" : " +") + c;
    }
    if (missing.empty()) return;
    try {
        write_knob(dir, "cgroup.subtree_control", all);
    } catch (const Error&) {
        for (auto& c : missing) {
            try {
                write_knob(dir, "cgroup.subtree_control", "+" + c);
            } catch (const Error&) {
                // A controller this cgroup cannot delegate is skipped: a knob that needs it fails later
            }
        }
    }
}

// Waits until cgroup.events reports "frozen <want>". The kernel signals a
// change of cgroup.events with POLLPRI.
void wait_frozen(const std::string& dir, bool want) {
    using namespace std::chrono;
    std::string path = knob_path(dir, "cgroup.events");
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw_errno("open", path);
    auto deadline = steady_clock::now() + seconds(10);
    for (;;) {
        if (::lseek(fd.get(), 0, SEEK_SET) < 0) throw_errno("lseek", path);
        for (auto& line : split(read_fd(fd.get()), '\n'))
            if (line == (want ? "frozen 1" : "frozen 0")) return;
        auto left = duration_cast<milliseconds>(deadline - steady_clock::now()).count();
        if (left <= 0) throw Error("cgroup " + dir + " did not become " + (want ? "frozen" : "thawed"));
        pollfd p{fd.get(), POLLPRI, 0};
        // Re-read at least every 100 ms in case a notification is missed.
        if (::poll(&p, 1, static_cast<int>(std::min<long>(left, 100))) < 0 && errno != EINTR)
            throw_errno("poll", path);
    }
}

}  // namespace

void freeze_v2(const std::string& dir, bool frozen) {
    write_knob(dir, "cgroup.freeze", frozen ? "1" : "0");
    wait_frozen(dir, frozen);
}

V2Manager::V2Manager(std::string mountpoint, std::string path)
    : mountpoint_(std::move(mountpoint)), path_(std::move(path)), dir_(mountpoint_ + path_) {}

void V2Manager::enable_controllers() const {
    // Every level from the root down to the leaf's parent offers its controllers.
    std::string cur = mountpoint_;
    enable_subtree(cur);
    auto parts = split(path_, '/');
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
        if (parts[i].empty()) continue;
        cur = knob_path(cur, parts[i]);
        enable_subtree(cur);
    }
}

std::vector<std::string> V2Manager::available_controllers() const {
    return words(read_knob(mountpoint_, "cgroup.controllers"));
}

void V2Manager::create(const std::optional<oci::Resources>& resources) {
    created_ = false;
    try {
        if (!path_exists(dir_)) {
            // Parents first, so each can offer its controllers before the leaf
            // exists. An empty default parent removed meanwhile by another
            // container's delete (ENOENT) means starting over.
            for (int attempt = 0;; ++attempt) {
                try {
                    make_dirs(dir_.substr(0, dir_.rfind('/')));
                    enable_controllers();
                    make_dirs(dir_);
                    break;
                } catch (const Error& e) {
                    if (e.code() != ENOENT || attempt >= 5) throw;
                }
            }
            created_ = true;
        } else {
            enable_controllers();
        }
        if (resources) update(*resources);
    } catch (...) {
        undo_create();
        throw;
    }
}

void V2Manager::undo_create() {
    if (!created_) return;
    created_ = false;
    dir_fd_.reset();
    try {
        remove_cgroup_tree(dir_);
        remove_default_parent(dir_, path_);
    } catch (const Error&) {
        // Best effort: the original error is the one worth reporting.
    }
}

void V2Manager::update(const oci::Resources& resources) {
    try {
        apply_v2_resources(dir_, resources);
    } catch (const Error& e) {
        throw e.wrap("cgroup " + path_);
    }
}

void V2Manager::add_process(pid_t pid) { join_cgroup(dir_, pid); }

void V2Manager::freeze(bool frozen) { freeze_v2(dir_, frozen); }

bool V2Manager::is_frozen() const {
    auto v = read_knob(dir_, "cgroup.freeze");
    return v && trim(*v) == "1";
}

std::vector<pid_t> V2Manager::pids() const { return read_procs_recursive(dir_); }

Stats V2Manager::stats() const { return read_v2_stats(dir_); }

void V2Manager::kill_all(int signal) {
    // cgroup.kill (5.14+) kills the whole subtree, forks included.
    if (signal == SIGKILL && has_knob(dir_, "cgroup.kill")) {
        write_knob(dir_, "cgroup.kill", "1");
        return;
    }
    bool was_frozen = is_frozen();
    if (!was_frozen) freeze(true);
    try {
        signal_pids(pids(), signal);
    } catch (...) {
        if (!was_frozen) freeze(false);
        throw;
    }
    if (!was_frozen) freeze(false);
}

void V2Manager::destroy() {
    dir_fd_.reset();
    remove_cgroup_tree(dir_);
    remove_default_parent(dir_, path_);
}

int V2Manager::v2_dir_fd() const {
    if (!dir_fd_) dir_fd_.reset(::open(dir_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    return dir_fd_.get();
}

nlohmann::json V2Manager::to_json() const {
    return {{"mode", "v2"}, {"path", path_}, {"v2", {{"mount", mountpoint_}, {"dir", dir_}}}};
}

}  // namespace vitro::cgroups::detail
