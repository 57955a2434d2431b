#include "linux/mounts.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <dirent.h>

#include <cstring>
#include <memory>
#include <map>

#include "util/error.hpp"
#include "util/strings.hpp"

namespace vitro::os {

namespace {
struct Opt {
    bool clear;
    unsigned long flag;
};
const std::map<std::string, Opt>& flag_table() {
    static const std::map<std::string, Opt> t = {
        {"ro", {false, MS_RDONLY}},          {"rw", {true, MS_RDONLY}},
        {"nosuid", {false, MS_NOSUID}},      {"suid", {true, MS_NOSUID}},
        {"nodev", {false, MS_NODEV}},        {"dev", {true, MS_NODEV}},
        {"noexec", {false, MS_NOEXEC}},      {"exec", {true, MS_NOEXEC}},
        {"sync", {false, MS_SYNCHRONOUS}},   {"async", {true, MS_SYNCHRONOUS}},
        {"dirsync", {false, MS_DIRSYNC}},    {"remount", {false, MS_REMOUNT}},
        {"mand", {false, MS_MANDLOCK}},      {"nomand", {true, MS_MANDLOCK}},
        {"atime", {true, MS_NOATIME}},       {"noatime", {false, MS_NOATIME}},
        {"diratime", {true, MS_NODIRATIME}}, {"nodiratime", {false, MS_NODIRATIME}},
        {"relatime", {false, MS_RELATIME}},  {"norelatime", {true, MS_RELATIME}},
        {"strictatime", {false, MS_STRICTATIME}}, {"nostrictatime", {true, MS_STRICTATIME}},
        {"silent", {false, MS_SILENT}},      {"loud", {true, MS_SILENT}},
        {"defaults", {false, 0}},
    };
    return t;
}
}  // namespace

unsigned long propagation_flag(const std::string& name) {
    static const std::map<std::string, unsigned long> t = {
        {"private", MS_PRIVATE},     {"rprivate", MS_PRIVATE | MS_REC},       {"shared", MS_SHARED},
        {"rshared", MS_SHARED | MS_REC}, {"slave", MS_SLAVE},                {"rslave", MS_SLAVE | MS_REC},
        {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
    };
    auto it = t.find(name);
    return it == t.end() ? 0 : it->second;
}

MountOptions parse_mount_options(const std::vector<std::string>& options) {
    MountOptions m;
    std::vector<std::string> data;
    for (const auto& o : options) {
        if (o == "bind") {
            m.bind = true;
        } else if (o == "rbind") {
            m.bind = m.recursive = true;
        } else if (o == "tmpcopyup") {
            m.tmpcopyup = true;
        } else if (o == "idmap" || o == "ridmap") {
            m.idmap = true;
        } else if (auto p = propagation_flag(o)) {
            m.propagation |= p;
        } else if (auto it = flag_table().find(o); it != flag_table().end()) {
            if (it->second.clear) {
                m.flags &= ~it->second.flag;
                m.clear |= it->second.flag;
            } else {
                m.flags |= it->second.flag;
            }
        } else if (o.rfind("r", 0) == 0 && flag_table().count(o.substr(1))) {
            // Recursive mount attributes ("rro", "rnosuid"): applied like their plain form.
            const auto& f = flag_table().at(o.substr(1));
            if (f.clear) m.flags &= ~f.flag;
            else m.flags |= f.flag;
        } else {
            data.push_back(o);
        }
    }
    m.data = join(data, ",");
    return m;
}

std::string fd_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

UniqueFd open_in_root(int root_fd, const std::string& path, int flags) {
    UniqueFd fd = try_open_in_root(root_fd, path, flags);
    if (!fd) throw_errno("open in container rootfs", path);
    return fd;
}

UniqueFd try_open_in_root(int root_fd, const std::string& path, int flags) {
    open_how how{};
    how.flags = static_cast<uint64_t>(O_PATH | O_CLOEXEC | flags);
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    std::string rel = path;
    while (!rel.empty() && rel[0] == '/') rel.erase(0, 1);
    if (rel.empty()) rel = ".";
    int fd;
    do {
        fd = static_cast<int>(::syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof how));
    } while (fd < 0 && errno == EAGAIN);
    return UniqueFd(fd);
}

UniqueFd mkdir_all_in_root(int root_fd, const std::string& path, bool as_file) {
    // Walk component by component: each step is opened confined to the root,
    // so a symlinked component resolves inside it, never outside.
    auto parts = split(path, '/');
    std::vector<std::string> comps;
    for (auto& p : parts)
        if (!p.empty() && p != ".") comps.push_back(p);
    std::string cur;
    UniqueFd dir(::dup(root_fd));
    if (!dir) throw_errno("dup rootfs fd");
    for (size_t i = 0; i < comps.size(); ++i) {
        bool last = i + 1 == comps.size();
        cur += "/" + comps[i];
        open_how how{};
        how.flags = O_PATH | O_CLOEXEC;
        how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
        std::string rel = cur.substr(1);
        int fd = static_cast<int>(::syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof how));
        if (fd < 0 && errno == ENOENT) {
            // Create it in the (already safely resolved) parent directory.
            if (comps[i] == "..") throw_errno(ENOENT, "create in container rootfs", cur);
            int rc = (last && as_file)
                         ? ::mknodat(dir.get(), comps[i].c_str(), S_IFREG | 0644, 0)
                         : ::mkdirat(dir.get(), comps[i].c_str(), 0755);
            if (rc < 0 && errno != EEXIST) throw_errno(last && as_file ? "create file" : "mkdir", cur);
            fd = static_cast<int>(::syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof how));
        }
        if (fd < 0) throw_errno("open in container rootfs", cur);
        UniqueFd next(fd);
        if (!last) {
            // The parent for the next mkdirat must be a real directory fd.
            UniqueFd d(::openat(next.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            if (!d) throw_errno("open directory in container rootfs", cur);
            dir = std::move(d);
        } else {
            return next;
        }
    }
    return dir;  // path was "/"
}

void copy_dir_contents(int from_dir, int to_dir) {
    int dup_fd = ::dup(from_dir);
    if (dup_fd < 0) throw_errno("dup");
    DIR* d = ::fdopendir(dup_fd);
    if (!d) {
        ::close(dup_fd);
        throw_errno("opendir for copy");
    }
    std::unique_ptr<DIR, int (*)(DIR*)> guard(d, ::closedir);
    ::rewinddir(d);
    while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        struct stat st;
        if (::fstatat(from_dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) throw_errno("stat", name);
        if (S_ISDIR(st.st_mode)) {
            if (::mkdirat(to_dir, name.c_str(), st.st_mode & 07777) < 0 && errno != EEXIST) throw_errno("mkdir", name);
            UniqueFd src(::openat(from_dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            UniqueFd dst(::openat(to_dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!src || !dst) throw_errno("open directory", name);
            copy_dir_contents(src.get(), dst.get());
        } else if (S_ISLNK(st.st_mode)) {
            char target[4096];
            ssize_t n = ::readlinkat(from_dir, name.c_str(), target, sizeof target - 1);
            if (n < 0) throw_errno("readlink", name);
            target[n] = 0;
            if (::symlinkat(target, to_dir, name.c_str()) < 0) throw_errno("symlink", name);
        } else if (S_ISREG(st.st_mode)) {
            UniqueFd src(::openat(from_dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
            UniqueFd dst(::openat(to_dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                  st.st_mode & 07777));
            if (!src || !dst) throw_errno("copy", name);
            char buf[65536];
            ssize_t n;
            while ((n = ::read(src.get(), buf, sizeof buf)) > 0)
                if (::write(dst.get(), buf, static_cast<size_t>(n)) != n) throw_errno("write", name);
            if (n < 0) throw_errno("read", name);
        } else {
            continue;  // devices, fifos, sockets: not copied into a tmpfs
        }
        ::fchownat(to_dir, name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
        if (!S_ISLNK(st.st_mode)) ::fchmodat(to_dir, name.c_str(), st.st_mode & 07777, 0);
    }
}

void mount_or_throw(const std::string& source, const std::string& target, const std::string& fstype,
                    unsigned long flags, const std::string& data, const std::string& what_target) {
    if (::mount(source.empty() ? nullptr : source.c_str(), target.c_str(), fstype.empty() ? nullptr : fstype.c_str(),
                flags, data.empty() ? nullptr : data.c_str()) < 0) {
        std::string desc = (fstype.empty() ? std::string("mount ") : "mount " + fstype + " ") +
                           (source.empty() ? std::string() : source + " ") + "on " +
                           (what_target.empty() ? target : what_target);
        throw_errno(desc);
    }
}

}  // namespace vitro::os
