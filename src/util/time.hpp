// Wall-clock timestamps in RFC 3339 (UTC, nanoseconds), for state and logs.
#pragma once

#include <time.h>

#include <string>

namespace vitro {

std::string rfc3339_now();
// The same format for a given instant (seconds since the epoch + nanoseconds).
std::string rfc3339(long long seconds, long nanos);
// The same for nanoseconds since the epoch (evidence records' time_ns).
std::string rfc3339_ns(long long ns);
// A clock's reading in seconds (CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_PROCESS_CPUTIME_ID, ...).
double clock_seconds(clockid_t clock);

}  // namespace vitro
