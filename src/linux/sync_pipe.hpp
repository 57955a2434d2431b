// SyncSocket: the channel between the runtime and the container's setup
// processes. Messages are a code plus an optional text (errors, JSON); fds
// can ride along (SCM_RIGHTS).
#pragma once

#include <cstdint>
#include <exception>
#include <string>
#include <utility>

#include "util/fd.hpp"

namespace vitro::os {

struct SyncMsg {
    uint32_t code = 0;
    std::string text;
};

class SyncSocket {
public:
    SyncSocket() = default;
    explicit SyncSocket(UniqueFd fd) : fd_(std::move(fd)) {}
    static std::pair<SyncSocket, SyncSocket> make_pair();

    void send(uint32_t code, const std::string& text = {}) const;
    // Throws if the peer closed the socket ("setup process exited").
    SyncMsg recv() const;
    // Receives a message and expects `code`; an error message from the peer is rethrown.
    SyncMsg expect(uint32_t code) const;
    void send_fd(int fd) const;
    UniqueFd recv_fd() const;

    int fd() const { return fd_.get(); }
    void close() { fd_.reset(); }

    static constexpr uint32_t kError = 0xE0;  // text: "<errno>:<message>"

    void send_error(int err, const std::string& message) const;
    // For a setup child: reports `e` to the peer (best effort) and _exit()s.
    [[noreturn]] void fail_and_exit(const std::exception& e, int status) const noexcept;
    // Rethrows an error message sent by the peer as vitro::Error.
    static void throw_if_error(const SyncMsg& m);

private:
    UniqueFd fd_;
};

// Sends an fd over a connected unix socket (e.g. a console socket).
void send_fd_over(int sock, int fd, const std::string& name);
UniqueFd recv_fd_over(int sock);

}  // namespace vitro::os
