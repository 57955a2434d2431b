#include "net/netns.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "linux/netns_socket.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"

namespace vitro::net {

namespace fs = std::filesystem;

namespace {

// In the child: a new net namespace, lo up, pinned by a bind mount on `target`.
// Returns 0 or the errno, with the failed step in *step.
int make_pinned(const char* target, const char** step) {
    *step = "unshare(CLONE_NEWNET)";
    if (::unshare(CLONE_NEWNET) < 0) return errno;
    *step = "bring up lo";
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return errno;
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (::ioctl(s, SIOCGIFFLAGS, &ifr) < 0) return errno;
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    if (::ioctl(s, SIOCSIFFLAGS, &ifr) < 0) return errno;
    ::close(s);
    *step = "bind mount /proc/self/ns/net";
    if (::mount("/proc/self/ns/net", target, nullptr, MS_BIND, nullptr) < 0) return errno;
    return 0;
}

}  // namespace

void disable_ipv6(const fs::path& netns, const std::string& ifname) {
    if (ifname.empty() || ifname.find('/') != std::string::npos || ifname == "." || ifname == "..")
        throw Error(EINVAL, "interface name \"" + ifname + "\" is not one");
    UniqueFd ns(::open(netns.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns) throw_errno("open network namespace", netns.string());
    // /proc/sys/net is the namespace of the thread that looks it up.
    const std::string knob = "/proc/sys/net/ipv6/conf/" + ifname + "/disable_ipv6";
    int rc = os::in_netns(ns.get(), [&] {
        UniqueFd f(::open(knob.c_str(), O_WRONLY | O_CLOEXEC));
        if (!f) return errno == ENOENT && ::access("/proc/sys/net/ipv6", F_OK) != 0 ? 0 : -errno;
        return ::write(f.get(), "1", 1) == 1 ? 0 : -errno;
    });
    if (rc < 0) throw_errno(-rc, "turn IPv6 off on " + ifname + " (" + knob + ")", netns.string());
}

void remove_netns(const fs::path& path) {
    if (::umount2(path.c_str(), MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
        throw_errno("umount network namespace", path.string());
    if (::unlink(path.c_str()) < 0 && errno != ENOENT) throw_errno("unlink network namespace", path.string());
}

NetNs NetNs::create(const fs::path& dir, const std::string& name) {
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
        throw Error(EINVAL, "network namespace name \"" + name + "\": invalid");
    make_dirs(dir.string(), 0755);
    fs::path path = dir / name;
    {
        UniqueFd f(::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
        if (!f) throw_errno("create network namespace file", path.string());
    }
    NetNs ns(path);  // from here on, the destructor cleans up

    // The child shares our mount namespace, so its bind mount is ours.
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) < 0) throw_errno("pipe");
    UniqueFd rd(pipefd[0]), wr(pipefd[1]);
    pid_t pid = ::fork();
    if (pid < 0) throw_errno("fork for network namespace", path.string());
    if (pid == 0) {
        const char* step = "";
        int err = make_pinned(path.c_str(), &step);
        char msg[256];
        int n = std::snprintf(msg, sizeof msg, "%d %s", err, step);
        if (::write(wr.get(), msg, static_cast<size_t>(n)) < 0) ::_exit(2);
        ::_exit(err ? 1 : 0);
    }
    wr.reset();
    std::string report = read_fd(rd.get());
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    int err = 0;
    char step[200] = "";
    if (std::sscanf(report.c_str(), "%d %199[^\n]", &err, step) < 1) err = EIO;
    if (err != 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        throw Error(err, std::string("create network namespace ") + path.string() + ": " + step + ": " +
                             (err ? errno_name(err) : "helper failed"));
    return ns;
}

NetNs& NetNs::operator=(NetNs&& o) noexcept {
    if (this != &o) {
        if (!path_.empty()) {
            try {
                remove_netns(path_);
            } catch (const Error&) {
                // Move assignment is noexcept: a namespace that cannot be removed is left behind
            }
        }
        path_ = std::move(o.path_);
        o.path_.clear();
    }
    return *this;
}

NetNs::~NetNs() {
    if (path_.empty()) return;
    try {
        remove_netns(path_);
    } catch (const Error&) {
        // A destructor must not throw: a namespace that cannot be removed is left behind
    }
}

fs::path NetNs::release() {
    fs::path p = std::move(path_);
    path_.clear();
    return p;
}

void NetNs::remove() {
    if (path_.empty()) return;
    remove_netns(path_);
    path_.clear();
}

}  // namespace vitro::net
