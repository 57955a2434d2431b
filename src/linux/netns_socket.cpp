#include "linux/netns_socket.hpp"

#include <sched.h>
#include <sys/socket.h>

#include <thread>

#include "util/error.hpp"

namespace vitro::os {

UniqueFd socket_in_netns(int netns_fd, int domain, int type, int protocol) {
    auto open_here = [=] {
        int fd = ::socket(domain, type | SOCK_CLOEXEC, protocol);
        return fd < 0 ? -errno : fd;
    };
    if (netns_fd < 0) {
        int fd = open_here();
        if (fd < 0) throw_errno(-fd, "socket");
        return UniqueFd(fd);
    }
    // setns(CLONE_NEWNET) changes only the calling thread; that thread ends
    // right after, so nothing else ever runs in the other namespace.
    int result = -EINVAL;
    bool joined = false;
    std::thread t([&] {
        if (::setns(netns_fd, CLONE_NEWNET) < 0) {
            result = -errno;
            return;
        }
        joined = true;
        result = open_here();
    });
    t.join();
    if (result < 0) throw_errno(-result, joined ? "socket in" : "setns", "another network namespace");
    return UniqueFd(result);
}

}  // namespace vitro::os
