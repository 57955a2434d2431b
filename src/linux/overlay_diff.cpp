#include "linux/overlay_diff.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/strings.hpp"

namespace vitro::os {

namespace {

constexpr const char* kOpaqueXattr = "trusted.overlay.opaque";

bool is_whiteout(const struct stat& st) {
    return S_ISCHR(st.st_mode) && major(st.st_rdev) == 0 && minor(st.st_rdev) == 0;
}

bool is_opaque_fd(int dir_fd) {
    char v[4];
    ssize_t n = ::fgetxattr(dir_fd, kOpaqueXattr, v, sizeof v);
    return n == 1 && v[0] == 'y';
}

// lstat of `rel` beneath dir fd `base`, no symlink followed anywhere (a
// symlinked parent counts as missing). False when missing.
bool lstat_beneath(int base, const std::string& rel, struct stat& st, UniqueFd* keep = nullptr) {
    open_how how{};
    how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
    int fd;
    do {
        fd = static_cast<int>(::syscall(SYS_openat2, base, rel.c_str(), &how, sizeof how));
    } while (fd < 0 && errno == EAGAIN);
    if (fd < 0) return false;
    UniqueFd f(fd);
    if (::fstat(fd, &st) < 0) return false;
    if (keep) *keep = std::move(f);
    return true;
}

std::vector<std::string> read_names(int dir_fd) {
    std::vector<std::string> names;
    int dup = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) throw_errno("dup directory fd");
    DIR* d = ::fdopendir(dup);
    if (!d) {
        ::close(dup);
        throw_errno("opendir");
    }
    ::rewinddir(d);
    while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    return names;
}

UniqueFd open_dir_at(int base, const std::string& name, const std::string& what) {
    UniqueFd fd(::openat(base, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) throw_errno("open directory", what);
    return fd;
}

// The lower layers as the merged view sees them, top layer first.
class LowerView {
public:
    explicit LowerView(const std::vector<std::string>& layers) {
        for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
            UniqueFd fd(::open(it->c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            if (!fd) throw_errno("open layer", *it);
            fds_.push_back(std::move(fd));
        }
    }

    // Whether `rel` ("a/b/c") is visible through the lower layers.
    bool exists(const std::string& rel) const {
        auto comps = split(rel, '/');
        for (const auto& layer : fds_) {
            // An ancestor in this layer that is a whiteout, not a directory,
            // or opaque hides the layers below it.
            std::string prefix;
            bool stop = false;
            for (size_t i = 0; i + 1 < comps.size() && !stop; ++i) {
                prefix += (i ? "/" : "") + comps[i];
                struct stat st {};
                UniqueFd fd;
                if (!lstat_beneath(layer.get(), prefix, st, &fd)) break;  // absent here: look lower
                if (is_whiteout(st) || !S_ISDIR(st.st_mode)) return false;
                UniqueFd d(::openat(fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
                if (d && is_opaque_fd(d.get())) stop = true;
            }
            struct stat st {};
            if (lstat_beneath(layer.get(), rel, st)) return !is_whiteout(st);
            if (stop) return false;
        }
        return false;
    }

    // Names in directory `rel` across the layers (visible or not).
    std::set<std::string> names(const std::string& rel) const {
        std::set<std::string> out;
        for (const auto& layer : fds_) {
            struct stat st {};
            UniqueFd fd;
            if (!lstat_beneath(layer.get(), rel, st, &fd) || !S_ISDIR(st.st_mode)) continue;
            UniqueFd d(::openat(fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            if (!d) continue;
            for (auto& n : read_names(d.get())) out.insert(n);
        }
        return out;
    }

private:
    std::vector<UniqueFd> fds_;
};

void walk(int dir_fd, const std::string& rel, const LowerView& lower, std::vector<OverlayChange>& out) {
    auto names = read_names(dir_fd);
    for (const auto& n : names) {
        std::string path = rel.empty() ? n : rel + "/" + n;
        struct stat st {};
        if (::fstatat(dir_fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT) continue;
            throw_errno("stat", path);
        }
        if (is_whiteout(st)) {
            out.push_back({'D', "/" + path});
            continue;
        }
        out.push_back({lower.exists(path) ? 'C' : 'A', "/" + path});
        if (!S_ISDIR(st.st_mode)) continue;
        UniqueFd sub = open_dir_at(dir_fd, n, path);
        if (is_opaque_fd(sub.get())) {
            auto mine = read_names(sub.get());
            std::set<std::string> upper_names(mine.begin(), mine.end());
            for (const auto& ln : lower.names(path))
                if (!upper_names.count(ln) && lower.exists(path + "/" + ln)) out.push_back({'D', "/" + path + "/" + ln});
        }
        walk(sub.get(), path, lower, out);
    }
}

}  // namespace

std::vector<OverlayChange> overlay_diff(const std::string& upper_dir, const std::vector<std::string>& layers) {
    LowerView lower(layers);
    UniqueFd up(::open(upper_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!up) throw_errno("open upper dir", upper_dir);
    std::vector<OverlayChange> out;
    walk(up.get(), "", lower, out);
    std::sort(out.begin(), out.end(),
              [](const OverlayChange& a, const OverlayChange& b) { return a.path < b.path; });
    return out;
}

std::string format_changes(const std::vector<OverlayChange>& changes) {
    std::string out;
    for (const auto& c : changes) {
        out += c.kind;
        out += ' ';
        out += c.path;
        out += '\n';
    }
    return out;
}

}  // namespace vitro::os
