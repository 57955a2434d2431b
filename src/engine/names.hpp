// Generated IDs and names of containers and pods, and the names users may give.
#pragma once

#include <cstddef>
#include <string>

namespace vitro::engine {

// `bytes` random bytes as lowercase hex (IDs: 32 bytes, 64 digits).
std::string random_hex(size_t bytes);
// "adjective_scientist_xxxx", as docker names containers.
std::string random_name();
// [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 253 characters.
bool valid_name(const std::string& n);

}  // namespace vitro::engine
