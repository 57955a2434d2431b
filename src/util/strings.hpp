// Small string helpers used across layers.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace vitro {

std::vector<std::string> split(std::string_view s, char sep);
std::string join(const std::vector<std::string>& parts, std::string_view sep);
std::string trim(std::string_view s);
// Parses a non-negative decimal; false on junk or overflow.
bool parse_u64(std::string_view s, uint64_t& out);

}  // namespace vitro
