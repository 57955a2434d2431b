#include "util/time.hpp"

#include <time.h>

#include <cstdio>

namespace vitro {

std::string rfc3339_now() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return rfc3339(ts.tv_sec, ts.tv_nsec);
}

std::string rfc3339(long long seconds, long nanos) {
    time_t secs = static_cast<time_t>(seconds);
    tm t{};
    gmtime_r(&secs, &t);
    char buf[64];
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
    snprintf(buf + n, sizeof buf - n, ".%09ldZ", nanos);
    return buf;
}

double clock_seconds(clockid_t clock) {
    timespec ts{};
    ::clock_gettime(clock, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

std::string rfc3339_ns(long long ns) { return rfc3339(ns / 1000000000, static_cast<long>(ns % 1000000000)); }

}  // namespace vitro
