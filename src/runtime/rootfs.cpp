#include "runtime/rootfs.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <map>
#include <set>

#include "linux/mounts.hpp"
#include "oci/sysctl.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace vitro::runtime {

using os::copy_dir_contents;
using os::fd_path;
using os::mkdir_all_in_root;
using os::mount_or_throw;

namespace {

struct DefaultDevice {
    const char* path;
    int major, minor;
};
constexpr DefaultDevice kDefaultDevices[] = {
    {"/dev/null", 1, 3}, {"/dev/zero", 1, 5},    {"/dev/full", 1, 7},
    {"/dev/random", 1, 8}, {"/dev/urandom", 1, 9}, {"/dev/tty", 5, 0},
};

std::string parent_of(const std::string& p) {
    size_t s = p.find_last_of('/');
    return s == 0 || s == std::string::npos ? "/" : p.substr(0, s);
}
std::string base_of(const std::string& p) { return p.substr(p.find_last_of('/') + 1); }

// Re-opens a destination after something was mounted on it, so the fd names
// the new mount's root rather than the covered directory.
UniqueFd reopen(int root_fd, const std::string& dest) { return os::open_in_root(root_fd, dest); }

void remount_bind(int root_fd, const std::string& dest, unsigned long flags) {
    auto fd = reopen(root_fd, dest);
    struct statvfs sv;
    unsigned long locked = 0;
    if (::statvfs(fd_path(fd.get()).c_str(), &sv) == 0) {
        // Flags the kernel locks in a user namespace must be kept on remount.
        if (sv.f_flag & ST_NOSUID) locked |= MS_NOSUID;
        if (sv.f_flag & ST_NODEV) locked |= MS_NODEV;
        if (sv.f_flag & ST_NOEXEC) locked |= MS_NOEXEC;
        if (sv.f_flag & ST_RDONLY) locked |= MS_RDONLY;
    }
    if (::mount("", fd_path(fd.get()).c_str(), nullptr, MS_BIND | MS_REMOUNT | flags | locked, nullptr) < 0) {
        // Some locked atime flags make the remount fail: retry with what was asked only.
        if (::mount("", fd_path(fd.get()).c_str(), nullptr, MS_BIND | MS_REMOUNT | flags, nullptr) < 0)
            throw_errno("remount", dest);
    }
}

void make_device(int root_fd, const std::string& path, mode_t type, int major, int minor, mode_t mode, uid_t uid,
                 gid_t gid, bool bind_from_host) {
    auto parent = mkdir_all_in_root(root_fd, parent_of(path));
    UniqueFd pdir(::openat(parent.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!pdir) throw_errno("open", parent_of(path));
    std::string name = base_of(path);
    if (bind_from_host) {
        // mknod is not allowed in a user namespace: bind the host's node.
        int f = ::openat(pdir.get(), name.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (f < 0 && errno != EEXIST) throw_errno("create device placeholder", path);
        if (f >= 0) ::close(f);
        auto target = os::open_in_root(root_fd, path);
        mount_or_throw(path, fd_path(target.get()), "", MS_BIND, "", path);
        return;
    }
    ::unlinkat(pdir.get(), name.c_str(), 0);
    if (::mknodat(pdir.get(), name.c_str(), type | (mode & 07777), makedev(major, minor)) < 0)
        throw_errno("mknod", path);
    if (::fchownat(pdir.get(), name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) < 0) throw_errno("chown", path);
}

mode_t device_type(const std::string& t) {
    if (t == "b") return S_IFBLK;
    if (t == "p") return S_IFIFO;
    return S_IFCHR;  // "c" and "u"
}

void setup_dev(int root_fd, const oci::Spec& spec, bool user_ns) {
    std::set<std::string> given;
    if (spec.linux)
        for (const auto& d : spec.linux->devices) {
            given.insert(d.path);
            make_device(root_fd, d.path, device_type(d.type), static_cast<int>(d.major), static_cast<int>(d.minor),
                        d.file_mode.value_or(0666), d.uid.value_or(0), d.gid.value_or(0), user_ns);
        }
    for (const auto& d : kDefaultDevices)
        if (!given.count(d.path)) make_device(root_fd, d.path, S_IFCHR, d.major, d.minor, 0666, 0, 0, user_ns);

    auto dev = mkdir_all_in_root(root_fd, "/dev");
    UniqueFd devdir(::openat(dev.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    const std::pair<const char*, const char*> links[] = {
        {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
        {"/proc/self/fd/2", "stderr"}, {"/proc/kcore", "core"},
    };
    for (const auto& [target, name] : links)
        if (::symlinkat(target, devdir.get(), name) < 0 && errno != EEXIST) throw_errno("symlink /dev/", name);
    // /dev/ptmx must point at this container's devpts instance.
    struct stat st;
    if (::fstatat(devdir.get(), "pts/ptmx", &st, 0) == 0) {
        ::unlinkat(devdir.get(), "ptmx", 0);
        if (::symlinkat("pts/ptmx", devdir.get(), "ptmx") < 0) throw_errno("symlink", "/dev/ptmx");
    }
}

// Host cgroup hierarchies, from our mountinfo: mount point -> (fstype, super options).
struct Hierarchy {
    std::string mountpoint, fstype, options;
};
std::vector<Hierarchy> cgroup_hierarchies() {
    std::vector<Hierarchy> out;
    for (const auto& line : split(read_file("/proc/self/mountinfo"), '\n')) {
        auto dash = line.find(" - ");
        if (dash == std::string::npos) continue;
        auto pre = split(line.substr(0, dash), ' ');
        auto post = split(line.substr(dash + 3), ' ');
        if (pre.size() < 5 || post.size() < 3) continue;
        if (post[0] != "cgroup" && post[0] != "cgroup2") continue;
        out.push_back({pre[4], post[0], post[2]});
    }
    return out;
}

// This process's cgroup path in the hierarchy whose controllers are `ctrls`.
std::string own_cgroup(const std::string& fstype, const std::string& options) {
    std::set<std::string> want;
    for (auto& o : split(options, ','))
        if (o != "rw" && o != "ro") want.insert(o);
    for (const auto& line : split(read_file("/proc/self/cgroup"), '\n')) {
        auto f = split(line, ':');
        if (f.size() < 3) continue;
        if (fstype == "cgroup2") {
            if (f[0] == "0") return f[2];
            continue;
        }
        for (auto& c : split(f[1], ','))
            if (want.count(c)) return line.substr(line.find(':', line.find(':') + 1) + 1);
    }
    return "/";
}

void mount_cgroup(int root_fd, const oci::Mount& m, const RootfsConfig& cfg) {
    auto opts = os::parse_mount_options(m.options);
    unsigned long flags = opts.flags & ~MS_RDONLY;
    auto hier = cgroup_hierarchies();
    auto dest = mkdir_all_in_root(root_fd, m.destination);
    bool pure_v2 = hier.size() == 1 && hier[0].fstype == "cgroup2";
    if (pure_v2) {
        if (cfg.new_cgroup_ns) {
            mount_or_throw("cgroup2", fd_path(dest.get()), "cgroup2", opts.flags, "", m.destination);
        } else {
            std::string src = hier[0].mountpoint + own_cgroup("cgroup2", "");
            mount_or_throw(src, fd_path(dest.get()), "", MS_BIND | MS_REC, "", m.destination);
            if (opts.flags & MS_RDONLY) remount_bind(root_fd, m.destination, MS_RDONLY | flags);
        }
        return;
    }
    mount_or_throw("tmpfs", fd_path(dest.get()), "tmpfs", flags, "mode=755", m.destination);
    for (const auto& h : hier) {
        if (h.mountpoint.rfind("/sys/fs/cgroup/", 0) != 0) continue;
        std::string sub = h.mountpoint.substr(std::string("/sys/fs/cgroup/").size());
        std::string target = m.destination + "/" + sub;
        auto t = mkdir_all_in_root(root_fd, target);
        if (cfg.new_cgroup_ns) {
            std::string data;
            for (auto& o : split(h.options, ','))
                if (o != "rw" && o != "ro") data += (data.empty() ? "" : ",") + o;
            mount_or_throw("cgroup", fd_path(t.get()), h.fstype, opts.flags, h.fstype == "cgroup" ? data : "",
                           target);
        } else {
            std::string src = h.mountpoint + own_cgroup(h.fstype, h.options);
            mount_or_throw(src, fd_path(t.get()), "", MS_BIND | MS_REC, "", target);
            remount_bind(root_fd, target, (opts.flags & MS_RDONLY) | MS_NOSUID | MS_NODEV | MS_NOEXEC);
        }
    }
    if (opts.flags & MS_RDONLY) remount_bind(root_fd, m.destination, MS_RDONLY | flags);
}

void mount_one(int root_fd, const oci::Mount& m, const RootfsConfig& cfg) {
    if (m.type == "cgroup" || m.type == "cgroup2") {
        mount_cgroup(root_fd, m, cfg);
        return;
    }
    auto opts = os::parse_mount_options(m.options);
    if (m.type == "bind") opts.bind = true;
    if (opts.bind) {
        struct stat st;
        if (::stat(m.source.c_str(), &st) < 0) throw_errno("stat bind source", m.source);
        auto dest = mkdir_all_in_root(root_fd, m.destination, !S_ISDIR(st.st_mode));
        mount_or_throw(m.source, fd_path(dest.get()), "", MS_BIND | (opts.recursive ? MS_REC : 0), "",
                       m.destination);
        unsigned long extra = opts.flags & ~(MS_REMOUNT | MS_BIND | MS_REC);
        if (extra) remount_bind(root_fd, m.destination, extra);
    } else {
        auto dest = mkdir_all_in_root(root_fd, m.destination);
        UniqueFd covered;
        if (opts.tmpcopyup) covered.reset(::openat(dest.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        std::string data = opts.data;
        if (::mount(m.source.c_str(), fd_path(dest.get()).c_str(), m.type.c_str(), opts.flags,
                    data.empty() ? nullptr : data.c_str()) < 0) {
            int err = errno;
            // sysfs needs a network namespace owned by our user namespace; as
            // runc does, fall back to a read-only bind of the host's /sys.
            if (m.type == "sysfs" && (err == EPERM || err == EBUSY)) {
                mount_or_throw("/sys", fd_path(dest.get()), "", MS_BIND | MS_REC, "", m.destination);
                remount_bind(root_fd, m.destination, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
            } else if (m.type == "mqueue" && err == EPERM) {
                mount_or_throw("/dev/mqueue", fd_path(dest.get()), "", MS_BIND | MS_REC, "", m.destination);
            } else {
                throw_errno(err, "mount " + m.type + " on " + m.destination);
            }
        }
        if (covered) {
            auto top = reopen(root_fd, m.destination);
            UniqueFd into(::openat(top.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            if (!into) throw_errno("open", m.destination);
            copy_dir_contents(covered.get(), into.get());
        }
    }
    if (opts.propagation) {
        auto fd = reopen(root_fd, m.destination);
        if (::mount("", fd_path(fd.get()).c_str(), nullptr, opts.propagation, nullptr) < 0)
            throw_errno("set propagation of", m.destination);
    }
}

bool mounted_at(const oci::Spec& spec, const std::string& dest) {
    for (const auto& m : spec.mounts)
        if (m.destination == dest) return true;
    return false;
}

}  // namespace

void mount_rootfs(const RootfsConfig& cfg) {
    const oci::Spec& spec = *cfg.spec;
    bool in_cgroup = false;
    auto ensure_in_cgroup = [&] {
        if (in_cgroup) return;
        in_cgroup = true;
        if (cfg.in_cgroup) cfg.in_cgroup();
    };
    if (!cfg.new_mount_ns) {
        ensure_in_cgroup();
        return;
    }
    // Nothing we mount may propagate back to the host.
    if (::mount("", "/", nullptr, MS_REC | MS_SLAVE, nullptr) < 0) throw_errno("make / rslave");
    mount_or_throw(cfg.rootfs, cfg.rootfs, "", MS_BIND | MS_REC, "", cfg.rootfs);
    if (::mount("", cfg.rootfs.c_str(), nullptr, MS_PRIVATE, nullptr) < 0) throw_errno("make rootfs private");

    UniqueFd root(::open(cfg.rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) throw_errno("open rootfs", cfg.rootfs);
    for (const auto& m : spec.mounts) {
        if (m.type == "cgroup" || m.type == "cgroup2") ensure_in_cgroup();
        try {
            mount_one(root.get(), m, cfg);
        } catch (const Error& e) {
            throw e.wrap("mounts: " + m.destination);
        }
    }
    ensure_in_cgroup();  // before mknod: the device cgroup rules apply
    if (mounted_at(spec, "/dev")) setup_dev(root.get(), spec, cfg.user_ns);
    else if (spec.linux && !spec.linux->devices.empty()) setup_dev(root.get(), spec, cfg.user_ns);
    // The process's working directory is created if the image lacks it.
    if (spec.process) mkdir_all_in_root(root.get(), spec.process->cwd);
}

void enter_rootfs(const RootfsConfig& cfg) {
    if (!cfg.new_mount_ns) {
        if (::chroot(cfg.rootfs.c_str()) < 0) throw_errno("chroot", cfg.rootfs);
        if (::chdir("/") < 0) throw_errno("chdir /");
        return;
    }
    if (cfg.no_pivot) {
        if (::chdir(cfg.rootfs.c_str()) < 0) throw_errno("chdir", cfg.rootfs);
        if (::mount(cfg.rootfs.c_str(), "/", nullptr, MS_MOVE, nullptr) < 0) throw_errno("move rootfs to /");
        if (::chroot(".") < 0) throw_errno("chroot", cfg.rootfs);
        if (::chdir("/") < 0) throw_errno("chdir /");
        return;
    }
    UniqueFd newroot(::open(cfg.rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!newroot) throw_errno("open rootfs", cfg.rootfs);
    if (::fchdir(newroot.get()) < 0) throw_errno("chdir", cfg.rootfs);
    // pivot_root(".", ".") stacks the old root on top of the new one; it is
    // then made a slave (so the unmount does not reach the host) and detached.
    if (::syscall(SYS_pivot_root, ".", ".") < 0) throw_errno("pivot_root", cfg.rootfs);
    if (::mount("", ".", nullptr, MS_SLAVE | MS_REC, nullptr) < 0) throw_errno("make old root rslave");
    if (::umount2(".", MNT_DETACH) < 0) throw_errno("unmount old root");
    if (::chdir("/") < 0) throw_errno("chdir /");
}

void finish_rootfs(const RootfsConfig& cfg) {
    const oci::Spec& spec = *cfg.spec;
    // Without a mount namespace of its own, every mount would land on the host's.
    if (spec.linux && cfg.new_mount_ns) {
        // validate_spec has refused every key outside the container's own namespaces.
        for (const auto& [key, value] : spec.linux->sysctl) {
            try {
                write_file("/proc/sys/" + oci::sysctl_proc_path(key), value);
            } catch (const Error& e) {
                throw e.wrap("linux.sysctl: " + key);
            }
        }
        UniqueFd root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
        for (const auto& p : spec.linux->readonly_paths) {
            UniqueFd fd = os::try_open_in_root(root.get(), p);
            if (!fd && errno == ENOENT) continue;
            if (!fd) throw_errno("linux.readonlyPaths: open", p);
            mount_or_throw(fd_path(fd.get()), fd_path(fd.get()), "", MS_BIND | MS_REC, "", p);
            remount_bind(root.get(), p, MS_RDONLY | MS_REC | MS_NOSUID | MS_NODEV | MS_NOEXEC);
        }
        for (const auto& p : spec.linux->masked_paths) {
            UniqueFd fd = os::try_open_in_root(root.get(), p);
            if (!fd && errno == ENOENT) continue;
            if (!fd) throw_errno("linux.maskedPaths: open", p);
            struct stat st;
            if (::fstat(fd.get(), &st) < 0) throw_errno("stat", p);
            if (S_ISDIR(st.st_mode))
                mount_or_throw("tmpfs", fd_path(fd.get()), "tmpfs", MS_RDONLY, "size=0k", p);
            else
                mount_or_throw("/dev/null", fd_path(fd.get()), "", MS_BIND, "", p);
        }
    }
    if (spec.root_readonly && cfg.new_mount_ns) {
        UniqueFd root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
        remount_bind(root.get(), "/", MS_RDONLY);
    }
    if (spec.linux && !spec.linux->rootfs_propagation.empty() && cfg.new_mount_ns) {
        if (::mount("", "/", nullptr, os::propagation_flag(spec.linux->rootfs_propagation), nullptr) < 0)
            throw_errno("linux.rootfsPropagation: set propagation of /");
    }
    if (!spec.hostname.empty()) {
        if (!spec.has_namespace("uts")) throw Error("hostname: cannot set a hostname without a uts namespace");
        if (::sethostname(spec.hostname.data(), spec.hostname.size()) < 0) throw_errno("sethostname", spec.hostname);
    }
    if (!spec.domainname.empty()) {
        if (!spec.has_namespace("uts")) throw Error("domainname: cannot set a domainname without a uts namespace");
        if (::setdomainname(spec.domainname.data(), spec.domainname.size()) < 0)
            throw_errno("setdomainname", spec.domainname);
    }
}

void mount_console(const std::string& slave_path) {
    UniqueFd root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    auto dest = mkdir_all_in_root(root.get(), "/dev/console", true);
    mount_or_throw(slave_path, fd_path(dest.get()), "", MS_BIND, "", "/dev/console");
}

}  // namespace vitro::runtime
