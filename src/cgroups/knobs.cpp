// Reading and writing cgroup files, walking and removing cgroup trees.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <thread>

#include "cgroups/detail.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace vitro::cgroups::detail {

std::string knob_path(const std::string& dir, std::string_view file) {
    std::string p = dir;
    p += '/';
    p += file;
    return p;
}

bool has_knob(const std::string& dir, std::string_view file) { return path_exists(knob_path(dir, file)); }

std::string device_key(int64_t major, int64_t minor) { return std::to_string(major) + ":" + std::to_string(minor); }

void write_knob(const std::string& dir, std::string_view file, std::string_view value) {
    std::string path = knob_path(dir, file);
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) {
        int err = errno;
        if (err != ENOENT) throw_errno(err, "open", path);
        if (!path_exists(dir)) throw Error(ENOENT, "cgroup " + dir + " does not exist");
        throw Error(ENOENT, std::string(file) + " not supported: " + path + " does not exist");
    }
    // One write() call: the kernel parses each write as a whole value.
    ssize_t n;
    do n = ::write(fd.get(), value.data(), value.size());
    while (n < 0 && errno == EINTR);
    if (n < 0) throw_errno("write \"" + std::string(value) + "\" to", path);
}

std::optional<std::string> read_knob(const std::string& dir, std::string_view file) {
    std::string path = knob_path(dir, file);
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT) return std::nullopt;
        throw_errno("open", path);
    }
    std::string s = read_fd(fd.get());
    while (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
}

std::map<std::string, uint64_t> read_keyed(const std::string& dir, std::string_view file) {
    std::map<std::string, uint64_t> out;
    auto text = read_knob(dir, file);
    if (!text) return out;
    for (auto& line : split(*text, '\n')) {
        auto sp = line.find(' ');
        uint64_t v;
        if (sp != std::string::npos && parse_u64(trim(line.substr(sp + 1)), v)) out[line.substr(0, sp)] = v;
    }
    return out;
}

std::optional<uint64_t> read_u64(const std::string& dir, std::string_view file, uint64_t max_value) {
    auto text = read_knob(dir, file);
    if (!text) return std::nullopt;
    std::string t = trim(*text);
    if (t == "max") return max_value;
    uint64_t v;
    if (!parse_u64(t, v)) return std::nullopt;
    return v;
}

namespace {

struct DirCloser {
    void operator()(DIR* d) const { ::closedir(d); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

// Child cgroups of dir (sub-directories); empty when dir is gone.
std::vector<std::string> child_cgroups(const std::string& dir) {
    std::vector<std::string> out;
    DirPtr d(::opendir(dir.c_str()));
    if (!d) {
        if (errno == ENOENT) return out;
        throw_errno("opendir", dir);
    }
    while (auto* e = ::readdir(d.get())) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        if (e->d_type == DT_DIR) out.push_back(knob_path(dir, name));
    }
    return out;
}

void rmdir_retrying(const std::string& dir) {
    using namespace std::chrono;
    // Exiting processes leave the cgroup a little after they are reaped.
    auto deadline = steady_clock::now() + seconds(1);
    for (;;) {
        if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return;
        if (errno != EBUSY || steady_clock::now() >= deadline) throw_errno("rmdir", dir);
        std::this_thread::sleep_for(milliseconds(10));
    }
}

}  // namespace

std::vector<pid_t> read_procs_recursive(const std::string& dir) {
    std::vector<pid_t> out;
    auto text = read_knob(dir, "cgroup.procs");
    if (!text) return out;
    for (auto& line : split(*text, '\n')) {
        uint64_t v;
        if (parse_u64(trim(line), v)) out.push_back(static_cast<pid_t>(v));
    }
    for (auto& child : child_cgroups(dir)) {
        auto more = read_procs_recursive(child);
        out.insert(out.end(), more.begin(), more.end());
    }
    return out;
}

void join_cgroup(const std::string& dir, pid_t pid) {
    try {
        write_knob(dir, "cgroup.procs", std::to_string(pid));
    } catch (const Error& e) {
        throw e.wrap("add pid " + std::to_string(pid) + " to cgroup " + dir);
    }
}

void remove_cgroup_tree(const std::string& dir) {
    for (auto& child : child_cgroups(dir)) remove_cgroup_tree(child);
    rmdir_retrying(dir);
}

void remove_default_parent(const std::string& dir, const std::string& path) {
    const std::string prefix = std::string(kDefaultParent) + "/";
    if (path.compare(0, prefix.size(), prefix) != 0 || path.find('/', prefix.size()) != std::string::npos) return;
    std::string parent = dir.substr(0, dir.rfind('/'));
    ::rmdir(parent.c_str());  // ENOTEMPTY/EBUSY: other containers are still in it
}

void signal_pids(const std::vector<pid_t>& pids, int sig) {
    for (pid_t p : pids)
        if (::kill(p, sig) < 0 && errno != ESRCH) throw_errno("kill " + std::to_string(p));
}

}  // namespace vitro::cgroups::detail
