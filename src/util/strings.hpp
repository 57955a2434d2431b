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
// A byte size as docker and runc take it: "512", "64k", "100m", "1g" (KiB units,
// optional "b"/"ib" suffix); "-1" is unlimited (UINT64_MAX). Throws Error naming `what`.
uint64_t parse_size(const std::string& s, std::string_view what);

}  // namespace vitro
