#include "introspect/common/process_snapshot.hpp"

#include "introspect/common/proc_stats.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "linux/procfs.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/sha256.hpp"
#include "util/strings.hpp"
#include "util/time.hpp"

namespace vitro::introspect {

namespace {

std::string proc_path(pid_t pid, const std::string& rest) { return "/proc/" + std::to_string(pid) + "/" + rest; }

std::optional<std::string> read_link(const std::string& path) {
    char buf[4096];
    ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<size_t>(n));
}

std::vector<std::string> split_nul(const std::string& s) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start < s.size()) {
        size_t end = s.find('\0', start);
        if (end == std::string::npos) end = s.size();
        out.push_back(s.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

}  // namespace

std::string proc_text(pid_t pid, const char* file) {
    if (pid <= 0) return "";
    UniqueFd fd(::open(proc_path(pid, file).c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return "";
    try {
        return read_fd(fd.get());
    } catch (const Error&) {
        return "";
    }
}

std::string sha256_fd(int fd) {
    Sha256 h;
    char buf[1 << 16];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno("read");
        }
        if (n == 0) break;
        h.update(buf, static_cast<size_t>(n));
    }
    return h.digest();
}

std::optional<nlohmann::json> process_info(pid_t pid, bool hash_exe) {
    auto st = os::read_proc_stat(pid);
    if (!st) return std::nullopt;
    std::string status = proc_text(pid, "status");
    if (status.empty()) return std::nullopt;
    nlohmann::json j = {{"pid", pid}, {"ppid", st->ppid}, {"state", std::string(1, st->state)}};
    std::string comm = proc_text(pid, "comm");
    if (!comm.empty() && comm.back() == '\n') comm.pop_back();
    j["comm"] = comm;
    auto uid_at = status.find("\nUid:");
    if (uid_at != std::string::npos) j["uid"] = std::atoi(status.c_str() + uid_at + 5);
    j["cmdline"] = split_nul(proc_text(pid, "cmdline"));
    j["start_ticks"] = st->start_time;
    static const long long btime = static_cast<long long>(boot_time());
    const long hz = ::sysconf(_SC_CLK_TCK);
    if (btime && hz > 0) {
        long long ticks = static_cast<long long>(st->start_time);
        j["start_time"] = rfc3339(btime + ticks / hz, static_cast<long>((ticks % hz) * (1000000000 / hz)));
    }
    if (auto exe = read_link(proc_path(pid, "exe"))) j["exe"] = *exe;
    if (hash_exe) {
        // Opening the magic link opens the very file the process executes.
        UniqueFd fd(::open(proc_path(pid, "exe").c_str(), O_RDONLY | O_CLOEXEC));
        if (fd) {
            try {
                j["exe_sha256"] = sha256_fd(fd.get());
            } catch (const Error& e) {
                j["exe_error"] = e.what();
            }
        } else {
            j["exe_error"] = std::string("open exe: ") + errno_name(errno);  // kernel threads, gone, EACCES
        }
    }
    // The process may have exited (and its pid been reused) while we read.
    if (!os::process_alive(pid, st->start_time)) return std::nullopt;
    return j;
}

nlohmann::json open_files(pid_t pid) {
    nlohmann::json out = nlohmann::json::array();
    std::string dir = proc_path(pid, "fd");
    DIR* d = ::opendir(dir.c_str());
    if (!d) return out;
    std::vector<int> fds;
    while (auto* e = ::readdir(d))
        if (e->d_name[0] != '.') fds.push_back(std::atoi(e->d_name));
    ::closedir(d);
    std::sort(fds.begin(), fds.end());
    for (int fd : fds)
        if (auto t = read_link(dir + "/" + std::to_string(fd))) out.push_back({{"fd", fd}, {"target", *t}});
    return out;
}

nlohmann::json namespaces(pid_t pid) {
    nlohmann::json out = nlohmann::json::object();
    for (const char* ns : {"cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time", "user", "uts"})
        if (auto t = read_link(proc_path(pid, std::string("ns/") + ns))) out[ns] = *t;
    return out;
}

nlohmann::json mounts(pid_t pid) {
    nlohmann::json out = nlohmann::json::array();
    std::string text = proc_text(pid, "mountinfo");
    size_t start = 0;
    while (start < text.size()) {
        size_t nl = text.find('\n', start);
        if (nl == std::string::npos) nl = text.size();
        auto f = split(text.substr(start, nl - start), ' ');
        start = nl + 1;
        // id parent major:minor root mount_point options [optional...] - fstype source super_options
        size_t dash = 6;
        while (dash < f.size() && f[dash] != "-") ++dash;
        if (f.size() < 6 || dash + 2 >= f.size()) continue;
        out.push_back({{"mount_id", std::atoi(f[0].c_str())},
                       {"parent_id", std::atoi(f[1].c_str())},
                       {"dev", f[2]},
                       {"root", f[3]},
                       {"mount_point", f[4]},
                       {"options", f[5]},
                       {"fs_type", f[dash + 1]},
                       {"source", f[dash + 2]},
                       {"super_options", dash + 3 < f.size() ? f[dash + 3] : ""}});
    }
    return out;
}

std::map<uint64_t, nlohmann::json> socket_owners(const std::vector<pid_t>& pids) {
    std::map<uint64_t, nlohmann::json> out;
    for (pid_t pid : pids)
        for (const auto& f : open_files(pid)) {
            const std::string t = f["target"];
            if (t.rfind("socket:[", 0) != 0) continue;
            uint64_t inode = std::strtoull(t.c_str() + 8, nullptr, 10);
            out[inode].push_back({{"pid", pid}, {"fd", f["fd"]}});
        }
    return out;
}

}  // namespace vitro::introspect
