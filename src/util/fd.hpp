// UniqueFd: sole owner of a file descriptor; closes it on every path.
#pragma once

#include <unistd.h>

#include <utility>

namespace vitro {

class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
    UniqueFd& operator=(UniqueFd&& o) noexcept {
        if (this != &o) reset(o.release());
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { reset(); }

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    int release() noexcept { return std::exchange(fd_, -1); }
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

}  // namespace vitro

#include <algorithm>
#include <initializer_list>
#include <vector>

#include <linux/close_range.h>
#include <sys/syscall.h>

namespace vitro {

// Closes every fd >= `from` except those in `keep` (close_range between them).
inline void close_fds_from(int from, std::initializer_list<int> keep) {
    std::vector<int> k;
    for (int fd : keep)
        if (fd >= from) k.push_back(fd);
    std::sort(k.begin(), k.end());
    unsigned lo = static_cast<unsigned>(from);
    for (int fd : k) {
        if (static_cast<unsigned>(fd) > lo) ::syscall(SYS_close_range, lo, static_cast<unsigned>(fd) - 1, 0);
        lo = static_cast<unsigned>(fd) + 1;
    }
    ::syscall(SYS_close_range, lo, ~0U, 0);
}

}  // namespace vitro
