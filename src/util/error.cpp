#include "util/error.hpp"

#include <cstring>

namespace vitro {

namespace {
std::string compose(int err, std::string what) {
    if (err == 0) return what;
    return what + ": " + errno_name(err);
}
}  // namespace

Error::Error(int err, std::string what) : std::runtime_error(std::move(what)), errno_(err) {}

Error Error::wrap(std::string_view context) const {
    return Error(errno_, std::string(context) + ": " + what());
}

std::string errno_name(int err) {
    const char* name = strerrorname_np(err);
    const char* desc = strerrordesc_np(err);
    if (!name) return "errno " + std::to_string(err);
    return std::string(name) + " (" + (desc ? desc : "") + ")";
}

void throw_errno(int err, std::string_view op, std::string_view object) {
    std::string msg(op);
    if (!object.empty()) {
        msg += ' ';
        msg += object;
    }
    throw Error(err, compose(err, std::move(msg)));
}

void throw_errno(std::string_view op, std::string_view object) { throw_errno(errno, op, object); }

}  // namespace vitro
