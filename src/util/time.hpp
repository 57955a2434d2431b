// Wall-clock timestamps in RFC 3339 (UTC, nanoseconds), for state and logs.
#pragma once

#include <string>

namespace vitro {

std::string rfc3339_now();

}  // namespace vitro
