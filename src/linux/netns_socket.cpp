#include "linux/netns_socket.hpp"

#include <sched.h>
#include <sys/socket.h>

#include <thread>

#include "util/error.hpp"

namespace vitro::os {

int in_netns(int netns_fd, const std::function<int()>& fn) {
    // setns(CLONE_NEWNET) changes only the calling thread; that thread ends
    // right after, so nothing else ever runs in the other namespace.
    int result = -EINVAL;
    std::thread t([&] { result = ::setns(netns_fd, CLONE_NEWNET) < 0 ? -errno : fn(); });
    t.join();
    return result;
}

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
    bool joined = false;
    int result = in_netns(netns_fd, [&] {
        joined = true;
        return open_here();
    });
    if (result < 0) throw_errno(-result, joined ? "socket in" : "setns", "another network namespace");
    return UniqueFd(result);
}

}  // namespace vitro::os
