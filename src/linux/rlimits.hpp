// Resource limits by their OCI names ("RLIMIT_NOFILE").
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace vitro::os {

std::optional<int> rlimit_from_name(const std::string& name);
void set_rlimit(const std::string& name, uint64_t soft, uint64_t hard);

}  // namespace vitro::os
