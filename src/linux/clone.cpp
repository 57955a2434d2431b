#include "linux/clone.hpp"

#include <linux/sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace vitro::os {

pid_t fork_into_cgroup(int cgroup_fd, bool& placed, int flags) {
    placed = false;
    if (cgroup_fd >= 0) {
        clone_args args{};
        args.flags = CLONE_INTO_CGROUP | static_cast<uint64_t>(flags);
        args.exit_signal = SIGCHLD;
        args.cgroup = static_cast<uint64_t>(cgroup_fd);
        long pid = ::syscall(SYS_clone3, &args, sizeof args);
        if (pid >= 0) {
            placed = true;
            return static_cast<pid_t>(pid);
        }
        if (errno != ENOSYS && errno != E2BIG) return -1;
    }
    if (flags == 0) return ::fork();
    return static_cast<pid_t>(::syscall(SYS_clone, flags | SIGCHLD, nullptr, nullptr, nullptr, nullptr));
}

pid_t clone_parent() {
    return static_cast<pid_t>(::syscall(SYS_clone, CLONE_PARENT | SIGCHLD, nullptr, nullptr, nullptr, nullptr));
}

}  // namespace vitro::os
