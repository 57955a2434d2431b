#include "image/snapshot.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>

#include "image/fsutil.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace vitro::image {

namespace {

void mkdir_or_throw(const std::string& path, mode_t mode) {
    if (::mkdir(path.c_str(), mode) < 0) throw_errno("mkdir", path);
}

// Characters that the overlay option parser treats specially.
void check_overlay_path(const std::string& p, const char* what) {
    if (p.find_first_of(":,\\") != std::string::npos || p.find('\n') != std::string::npos)
        throw Error(EINVAL, std::string("overlay ") + what + " " + p + ": path holds ':', ',' or '\\'");
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

std::vector<Change> Snapshot::diff() const { return os::overlay_diff(upper_dir(), layers_); }

}  // namespace vitro::image
