#include "introspect/evidence/upper_diff.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "introspect/common/process_snapshot.hpp"
#include "linux/overlay_diff.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"

namespace vitro::introspect {

namespace {

int open_beneath(int dirfd, const std::string& rel, uint64_t flags) {
    open_how how{};
    how.flags = flags | O_CLOEXEC | O_NOFOLLOW;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
    return static_cast<int>(::syscall(SYS_openat2, dirfd, rel.c_str(), &how, sizeof how));
}

const char* type_name(mode_t m) {
    switch (m & S_IFMT) {
        case S_IFREG: return "file";
        case S_IFDIR: return "dir";
        case S_IFLNK: return "symlink";
        case S_IFCHR: return "char";
        case S_IFBLK: return "block";
        case S_IFIFO: return "fifo";
        case S_IFSOCK: return "socket";
    }
    return "unknown";
}

}  // namespace

nlohmann::json describe_upper_entry(int upper_fd, const std::string& rel_path) {
    nlohmann::json j = {{"path", "/" + rel_path}};
    // O_PATH: opens symlinks and devices themselves without touching them.
    UniqueFd p(open_beneath(upper_fd, rel_path, O_PATH));
    if (!p) {
        j["error"] = errno == ELOOP ? std::string("a symlink on the path (not followed)") : errno_name(errno);
        return j;
    }
    struct stat st {};
    if (::fstat(p.get(), &st) < 0) {
        j["error"] = errno_name(errno);
        return j;
    }
    j["type"] = type_name(st.st_mode);
    j["mode"] = st.st_mode & 07777;
    j["uid"] = st.st_uid;
    j["size"] = st.st_size;
    j["mtime_ns"] = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    if (S_ISLNK(st.st_mode)) {
        char buf[4096];
        ssize_t n = ::readlinkat(p.get(), "", buf, sizeof buf);
        if (n >= 0) j["link"] = std::string(buf, static_cast<size_t>(n));
    } else if (S_ISREG(st.st_mode)) {
        // Re-open for reading through the same checked path; O_NONBLOCK: no
        // wait on a lease. Must still be the inode we stat'ed.
        UniqueFd f(open_beneath(upper_fd, rel_path, O_RDONLY | O_NONBLOCK | O_NOCTTY));
        struct stat st2 {};
        if (!f || ::fstat(f.get(), &st2) < 0 || st2.st_ino != st.st_ino || st2.st_dev != st.st_dev) {
            j["error"] = "changed while being read";
        } else {
            try {
                j["sha256"] = sha256_fd(f.get());
            } catch (const Error& e) {
                j["error"] = e.what();
            }
        }
    }
    return j;
}

std::optional<std::string> read_upper_file(int upper_fd, const std::string& rel_path, size_t max_bytes) {
    UniqueFd f(open_beneath(upper_fd, rel_path, O_RDONLY | O_NONBLOCK | O_NOCTTY));
    struct stat st {};
    if (!f || ::fstat(f.get(), &st) < 0 || !S_ISREG(st.st_mode) || static_cast<size_t>(st.st_size) > max_bytes)
        return std::nullopt;
    std::string out;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(f.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::nullopt;
        if (n == 0) break;
        out.append(buf, static_cast<size_t>(n));
        if (out.size() > max_bytes) return std::nullopt;  // grew while read
    }
    return out;
}

nlohmann::json upper_diff(const std::string& upper_dir, const std::vector<std::string>& layers) {
    UniqueFd upper(::open(upper_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (!upper) throw_errno("open upper dir", upper_dir);
    nlohmann::json out = nlohmann::json::array();
    for (const auto& c : os::overlay_diff(upper_dir, layers)) {
        nlohmann::json j;
        if (c.kind == 'D') {
            j = {{"path", c.path}};
        } else {
            j = describe_upper_entry(upper.get(), c.path.substr(1));
        }
        j["kind"] = std::string(1, c.kind);
        out.push_back(std::move(j));
    }
    return out;
}

}  // namespace vitro::introspect
