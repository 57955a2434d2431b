#include "util/file.hpp"

#include <cstdlib>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "util/error.hpp"

namespace vitro {

std::string read_fd(int fd) {
    std::string out;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno("read");
        }
        if (n == 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

std::string read_file(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw_errno("open", path);
    try {
        return read_fd(fd.get());
    } catch (const Error& e) {
        throw e.wrap(path);
    }
}

bool try_write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
}

std::string find_program(const std::string& name) {
    if (name.empty()) return "";
    if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    size_t start = 0;
    while (start <= dirs.size()) {
        size_t end = dirs.find(':', start);
        if (end == std::string::npos) end = dirs.size();
        std::string cand = dirs.substr(start, end - start) + "/" + name;
        if (end > start && ::access(cand.c_str(), X_OK) == 0) return cand;
        start = end + 1;
    }
    return "";
}

std::string require_program(const std::string& name) {
    std::string path = find_program(name);
    if (path.empty()) throw Error(ENOENT, name + ": not found (install it: scripts/setup.sh)");
    return path;
}

void write_all(int fd, std::string_view data, std::string_view what) {
    if (!try_write_all(fd, data)) throw_errno("write", what);
}

void write_file(const std::string& path, std::string_view data) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) throw_errno("open", path);
    write_all(fd.get(), data, path);
}

void write_file_atomic(const std::string& path, std::string_view data, int mode) {
    std::string tmp = path + ".tmp." + std::to_string(::getpid());
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
    if (!fd) throw_errno("create", tmp);
    try {
        write_all(fd.get(), data, tmp);
        // No fsync: rename() alone makes the switch atomic for readers, and the
        // runtime's state lives on tmpfs, gone at reboot as the spec expects.
        fd.reset();
        if (::rename(tmp.c_str(), path.c_str()) < 0) throw_errno("rename", tmp + " to " + path);
    } catch (...) {
        ::unlink(tmp.c_str());
        throw;
    }
}

bool path_exists(const std::string& path) {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0;
}

void make_dirs(const std::string& path, int mode) {
    if (path.empty()) return;
    // The leaf first: its parents are nearly always there (one system call
    // instead of one per component). A parent made here may be removed by
    // another process before its child is made (an empty shared parent,
    // e.g. a cgroup, removed with its last child): try again a few times.
    for (int attempt = 0;; ++attempt) {
        if (::mkdir(path.c_str(), static_cast<mode_t>(mode)) == 0 || errno == EEXIST) return;
        const size_t slash = path.find_last_of('/', path.size() - 2);  // a trailing '/' is no parent
        if (errno != ENOENT || attempt >= 5 || slash == 0 || slash == std::string::npos) throw_errno("mkdir", path);
        make_dirs(path.substr(0, slash), mode);
    }
}

UniqueFd lock_file(const std::string& path, bool shared) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd) throw_errno("open lock file", path);
    while (::flock(fd.get(), shared ? LOCK_SH : LOCK_EX) < 0)
        if (errno != EINTR) throw_errno("lock", path);
    return fd;
}

}  // namespace vitro
