// vitro::Error: the one error type. It carries the errno (0 when none), the
// operation that failed and the object it was applied to; layers above add
// context as it travels up, and cmd/ prints it once.
#pragma once

#include <cerrno>
#include <stdexcept>
#include <string>
#include <string_view>

namespace vitro {

class Error : public std::runtime_error {
public:
    Error(int err, std::string what);
    explicit Error(std::string what) : Error(0, std::move(what)) {}

    int code() const noexcept { return errno_; }
    // Returns a copy with "context: " put in front of the message.
    Error wrap(std::string_view context) const;

private:
    int errno_;
};

// Throws Error(errno, "op object: strerror") — for a syscall that just failed.
[[noreturn]] void throw_errno(std::string_view op, std::string_view object = {});
[[noreturn]] void throw_errno(int err, std::string_view op, std::string_view object = {});

// Checks a syscall-style result (-1 on failure) and throws with errno.
template <typename T>
T check(T rc, std::string_view op, std::string_view object = {}) {
    if (rc == static_cast<T>(-1)) throw_errno(op, object);
    return rc;
}

// The symbolic errno name ("ENOENT"), for messages.
std::string errno_name(int err);

}  // namespace vitro
