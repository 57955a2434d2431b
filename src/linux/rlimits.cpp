#include "linux/rlimits.hpp"

#include <sys/resource.h>

#include <array>
#include <utility>

#include "util/error.hpp"

namespace vitro::os {

namespace {
constexpr std::array<std::pair<const char*, int>, 16> kLimits = {{
    {"RLIMIT_CPU", RLIMIT_CPU}, {"RLIMIT_FSIZE", RLIMIT_FSIZE}, {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_STACK", RLIMIT_STACK}, {"RLIMIT_CORE", RLIMIT_CORE}, {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_NPROC", RLIMIT_NPROC}, {"RLIMIT_NOFILE", RLIMIT_NOFILE}, {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
    {"RLIMIT_AS", RLIMIT_AS}, {"RLIMIT_LOCKS", RLIMIT_LOCKS}, {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE}, {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
    {"RLIMIT_RTTIME", RLIMIT_RTTIME},
}};
}  // namespace

std::optional<int> rlimit_from_name(const std::string& name) {
    for (const auto& [n, v] : kLimits)
        if (name == n) return v;
    return std::nullopt;
}

void set_rlimit(const std::string& name, uint64_t soft, uint64_t hard) {
    auto r = rlimit_from_name(name);
    if (!r) throw Error("unknown rlimit '" + name + "'");
    struct rlimit lim {
        soft, hard
    };
    if (::setrlimit(*r, &lim) < 0) throw_errno("setrlimit", name);
}

}  // namespace vitro::os
