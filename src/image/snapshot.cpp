#include "image/snapshot.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <set>

#include "image/fsutil.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace vitro::image {

namespace {

constexpr const char* kOpaqueXattr = "trusted.overlay.opaque";

void mkdir_or_throw(const std::string& path, mode_t mode) {
    if (::mkdir(path.c_str(), mode) < 0) throw_errno("mkdir", path);
}

// Characters that the overlay option parser treats specially.
void check_overlay_path(const std::string& p, const char* what) {
    if (p.find_first_of(":,\\") != std::string::npos || p.find('\n') != std::string::npos)
        throw Error(EINVAL, std::string("overlay ") + what + " " + p + ": path holds ':', ',' or '\\'");
}

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

void walk(int dir_fd, const std::string& rel, const LowerView& lower, std::vector<Change>& out) {
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

// Decodes mountinfo's octal escapes (\040 for a space, …).
std::string unescape_mountinfo(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size()) {
            int v = 0;
            bool ok = true;
            for (size_t k = 1; k <= 3; ++k) {
                if (i + k >= s.size() || s[i + k] < '0' || s[i + k] > '7') {
                    ok = false;
                    break;
                }
                v = v * 8 + (s[i + k] - '0');
            }
            if (ok) {
                out.push_back(static_cast<char>(v));
                i += 3;
                continue;
            }
        }
        out.push_back(s[i]);
    }
    return out;
}

std::string common_parent(const std::vector<std::string>& paths) {
    if (paths.empty()) return {};
    std::string p = paths[0];
    auto slash = p.rfind('/');
    p = slash == std::string::npos ? std::string() : p.substr(0, slash);
    for (const auto& q : paths) {
        while (!p.empty() && !(q.size() > p.size() && q.compare(0, p.size(), p) == 0 && q[p.size()] == '/')) {
            auto s = p.rfind('/');
            p = s == std::string::npos ? std::string() : p.substr(0, s);
        }
    }
    return p;
}

// mount(2) from a child that chdir'ed into `dir` first, so relative lower dirs
// resolve there while this process's cwd (shared by its threads) stays put.
void mount_overlay_from(const std::string& dir, const std::string& target, const std::string& data) {
    pid_t pid = ::fork();
    if (pid < 0) throw_errno("fork for overlay mount");
    if (pid == 0) {
        if (::chdir(dir.c_str()) < 0) ::_exit(255);
        if (::mount("overlay", target.c_str(), "overlay", 0, data.c_str()) < 0) ::_exit(errno & 0xff);
        ::_exit(0);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) throw_errno("wait for overlay mount child");
    if (!WIFEXITED(status)) throw Error(EIO, "mount overlay on " + target + ": helper child died");
    int code = WEXITSTATUS(status);
    if (code == 255) throw_errno(ENOENT, "chdir", dir);
    if (code != 0) throw_errno(code, "mount overlay on", target);
}

}  // namespace

Snapshot::Snapshot(std::string id, std::string dir, std::vector<std::string> layers, bool owned)
    : id_(std::move(id)), dir_(std::move(dir)), layers_(std::move(layers)), owned_(owned) {}

Snapshot::Snapshot(Snapshot&& o) noexcept
    : id_(std::move(o.id_)), dir_(std::move(o.dir_)), layers_(std::move(o.layers_)), owned_(o.owned_) {
    o.owned_ = false;
}

Snapshot::~Snapshot() {
    if (!owned_) return;
    try {
        remove();
    } catch (...) {
        // Best effort on a failure path: unmount at least.
        ::umount2(merged_dir().c_str(), MNT_DETACH);
    }
}

static void check_id(const std::string& id) {
    if (id.empty() || id == "." || id == ".." || id.find('/') != std::string::npos)
        throw Error(EINVAL, "snapshot id \"" + id + "\": not a plain name");
}

Snapshot Snapshot::create(const std::string& root, const std::string& id, std::vector<std::string> layers) {
    check_id(id);
    make_dirs(root + "/containers", 0700);
    std::string dir = root + "/containers/" + id;
    mkdir_or_throw(dir, 0700);
    Snapshot s(id, dir, std::move(layers), true);  // owned from here: a throw below removes dir
    mkdir_or_throw(s.upper_dir(), 0755);
    mkdir_or_throw(s.work_dir(), 0700);
    mkdir_or_throw(s.merged_dir(), 0755);
    return s;
}

Snapshot Snapshot::open(const std::string& root, const std::string& id, std::vector<std::string> layers) {
    check_id(id);
    std::string dir = root + "/containers/" + id;
    struct stat st {};
    if (::stat(dir.c_str(), &st) < 0) throw_errno("open snapshot", dir);
    return Snapshot(id, dir, std::move(layers), false);
}

void Snapshot::mount() {
    std::vector<std::string> lowers(layers_.rbegin(), layers_.rend());  // top first
    if (lowers.empty()) {
        std::string empty = dir_ + "/empty";
        if (::mkdir(empty.c_str(), 0755) < 0 && errno != EEXIST) throw_errno("mkdir", empty);
        lowers.push_back(empty);
    }
    for (const auto& l : lowers) {
        check_overlay_path(l, "lower dir");
        if (l.empty() || l[0] != '/') throw Error(EINVAL, "overlay lower dir \"" + l + "\": not an absolute path");
    }
    check_overlay_path(upper_dir(), "upper dir");
    check_overlay_path(work_dir(), "work dir");

    const std::string tail = ",upperdir=" + upper_dir() + ",workdir=" + work_dir();
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    std::string data = "lowerdir=" + join(lowers, ":") + tail;
    if (data.size() < page) {
        os_mount(data);
        return;
    }
    std::string parent = common_parent(lowers);
    std::vector<std::string> rel;
    for (const auto& l : lowers) rel.push_back(parent.empty() ? l.substr(1) : l.substr(parent.size() + 1));
    data = "lowerdir=" + join(rel, ":") + tail;
    if (data.size() >= page)
        throw Error(E2BIG, "mount overlay on " + merged_dir() + ": " + std::to_string(lowers.size()) +
                               " layers make a mount option string of " + std::to_string(data.size()) +
                               " bytes, even relative to " + (parent.empty() ? "/" : parent) +
                               " (the limit is one page, " + std::to_string(page) + ")");
    mount_overlay_from(parent.empty() ? "/" : parent, merged_dir(), data);
}

void Snapshot::os_mount(const std::string& data) {
    if (::mount("overlay", merged_dir().c_str(), "overlay", 0, data.c_str()) < 0)
        throw_errno("mount overlay on", merged_dir());
}

void Snapshot::unmount() {
    if (::umount2(merged_dir().c_str(), MNT_DETACH) == 0) return;
    if (errno == EINVAL || errno == ENOENT) return;  // not mounted
    throw_errno("unmount", merged_dir());
}

void Snapshot::remove() {
    unmount();
    if (mounted()) throw Error(EBUSY, "remove snapshot " + dir_ + ": " + merged_dir() + " is still mounted");
    remove_tree(dir_);
    owned_ = false;
}

bool Snapshot::mounted() const {
    std::string info;
    try {
        info = read_file("/proc/self/mountinfo");
    } catch (const Error&) {
        return false;
    }
    std::string target = merged_dir();
    char real[PATH_MAX];
    std::string resolved = ::realpath(target.c_str(), real) ? std::string(real) : target;
    for (const auto& line : split(info, '\n')) {
        auto f = split(line, ' ');
        if (f.size() < 5) continue;
        std::string mp = unescape_mountinfo(f[4]);
        if (mp == target || mp == resolved) return true;
    }
    return false;
}

std::vector<Change> Snapshot::diff() const { return image::diff(upper_dir(), layers_); }

std::vector<Change> diff(const std::string& upper_dir, const std::vector<std::string>& layers) {
    LowerView lower(layers);
    UniqueFd up(::open(upper_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!up) throw_errno("open upper dir", upper_dir);
    std::vector<Change> out;
    walk(up.get(), "", lower, out);
    std::sort(out.begin(), out.end(), [](const Change& a, const Change& b) { return a.path < b.path; });
    return out;
}

std::string format_changes(const std::vector<Change>& changes) {
    std::string out;
    for (const auto& c : changes) {
        out += c.kind;
        out += ' ';
        out += c.path;
        out += '\n';
    }
    return out;
}

}  // namespace vitro::image
