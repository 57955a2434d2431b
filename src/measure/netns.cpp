#include "measure/netns.hpp"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <exception>
#include <thread>

#include "util/error.hpp"

namespace vitro::measure {
namespace {

NetnsHandle open_ns(const std::string& path, std::string description) {
    NetnsHandle h;
    h.fd = UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!h.fd) {
        if (errno == ENOENT) throw Error(ENOENT, description + ": no such network namespace (" + path + " does not exist)");
        throw_errno("open", path);
    }
    struct stat st {};
    check(::fstat(h.fd.get(), &st), "stat", path);
    // A namespace file lives on nsfs; anything else is not a namespace.
    struct stat self {};
    if (::stat("/proc/self/ns/net", &self) == 0 && st.st_dev != self.st_dev)
        throw Error(EINVAL, description + ": " + path + " is not a network namespace (nsfs) file");
    // Another kind of namespace (mnt, pid, ...) lives on nsfs too.
    int type = ::ioctl(h.fd.get(), NS_GET_NSTYPE);
    if (type >= 0 && type != CLONE_NEWNET) throw Error(EINVAL, description + ": " + path + " is a namespace, but not a network namespace");
    h.inode = static_cast<uint32_t>(st.st_ino);
    h.description = std::move(description);
    return h;
}

}  // namespace

NetnsHandle open_netns_path(const std::string& path) { return open_ns(path, "netns " + path); }

NetnsHandle open_netns_of_pid(pid_t pid) {
    std::string proc = "/proc/" + std::to_string(pid);
    struct stat st {};
    if (::stat(proc.c_str(), &st) != 0) throw Error(ESRCH, "pid " + std::to_string(pid) + ": no such process");
    return open_ns(proc + "/ns/net", "pid " + std::to_string(pid));
}

NetnsHandle own_netns() { return open_ns("/proc/self/ns/net", "this process's netns"); }

void run_in_netns(int netns_fd, const std::function<void()>& fn) {
    if (netns_fd < 0) return fn();
    std::exception_ptr err;
    // setns(CLONE_NEWNET) changes only the calling thread: a thread of its
    // own leaves the rest of the process where it was.
    std::thread t([&] {
        try {
            check(::setns(netns_fd, CLONE_NEWNET), "setns", "network namespace");
            fn();
        } catch (...) {
            err = std::current_exception();
        }
    });
    t.join();
    if (err) std::rethrow_exception(err);
}

}  // namespace vitro::measure
