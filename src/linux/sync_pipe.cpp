#include "linux/sync_pipe.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "util/error.hpp"

namespace vitro::os {

std::pair<SyncSocket, SyncSocket> SyncSocket::make_pair() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) throw_errno("socketpair");
    return {SyncSocket(UniqueFd(sv[0])), SyncSocket(UniqueFd(sv[1]))};
}

void SyncSocket::send(uint32_t code, const std::string& text) const {
    std::vector<char> buf(sizeof code + text.size());
    std::memcpy(buf.data(), &code, sizeof code);
    std::memcpy(buf.data() + sizeof code, text.data(), text.size());
    for (;;) {
        ssize_t n = ::send(fd_.get(), buf.data(), buf.size(), MSG_NOSIGNAL);
        if (n >= 0) return;
        if (errno != EINTR) throw_errno("sync send");
    }
}

SyncMsg SyncSocket::recv() const {
    std::vector<char> buf(65536);
    ssize_t n;
    do {
        n = ::recv(fd_.get(), buf.data(), buf.size(), 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) throw_errno("sync recv");
    if (n < static_cast<ssize_t>(sizeof(uint32_t))) throw Error("container setup process exited unexpectedly");
    SyncMsg m;
    std::memcpy(&m.code, buf.data(), sizeof m.code);
    m.text.assign(buf.data() + sizeof m.code, static_cast<size_t>(n) - sizeof m.code);
    return m;
}

void SyncSocket::send_error(int err, const std::string& message) const {
    send(kError, std::to_string(err) + ":" + message);
}

void SyncSocket::fail_and_exit(const std::exception& e, int status) const noexcept {
    const auto* ve = dynamic_cast<const Error*>(&e);
    try {
        send_error(ve ? ve->code() : 0, e.what());
    } catch (...) {
        // The parent is gone or the socket closed: nothing left to tell; the exit status still reports the failure
    }
    ::_exit(status);
}

void SyncSocket::throw_if_error(const SyncMsg& m) {
    if (m.code != kError) return;
    size_t colon = m.text.find(':');
    int err = std::atoi(m.text.substr(0, colon).c_str());
    throw Error(err, colon == std::string::npos ? m.text : m.text.substr(colon + 1));
}

SyncMsg SyncSocket::expect(uint32_t code) const {
    SyncMsg m = recv();
    throw_if_error(m);
    if (m.code != code)
        throw Error("container setup: protocol error (expected message " + std::to_string(code) + ", got " +
                    std::to_string(m.code) + ")");
    return m;
}

void send_fd_over(int sock, int fd, const std::string& name) {
    char data[1] = {'F'};
    iovec iov{data, 1};
    alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int))]{};
    msghdr msg{};
    // runc's console protocol sends the terminal name as the payload.
    std::string payload = name.empty() ? std::string(1, 'F') : name;
    iov = {payload.data(), payload.size()};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctrl;
    msg.msg_controllen = sizeof ctrl;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    if (::sendmsg(sock, &msg, MSG_NOSIGNAL) < 0) throw_errno("send fd over socket");
}

UniqueFd recv_fd_over(int sock) {
    char data[4096];
    iovec iov{data, sizeof data};
    alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int))]{};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctrl;
    msg.msg_controllen = sizeof ctrl;
    ssize_t n;
    do {
        n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) throw_errno("receive fd over socket");
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_type != SCM_RIGHTS) throw Error("receive fd over socket: no descriptor in message");
    int fd;
    std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return UniqueFd(fd);
}

void SyncSocket::send_fd(int fd) const { send_fd_over(fd_.get(), fd, {}); }
UniqueFd SyncSocket::recv_fd() const { return recv_fd_over(fd_.get()); }

}  // namespace vitro::os
