// Content digests ("sha256:<64 hex>") as image/ takes them from outside:
// strict validation, so that a digest can be used as a file name. The
// hashing itself is util/sha256.hpp.
#pragma once

#include <string>
#include <string_view>

#include "util/sha256.hpp"

namespace vitro::image {

// True for "sha256:" followed by exactly 64 lowercase hex digits.
bool is_valid_digest(std::string_view digest);
// Throws vitro::Error naming `what` unless is_valid_digest(digest).
void check_digest(std::string_view digest, std::string_view what);
// The hex part of a valid digest.
std::string digest_hex(std::string_view digest);

}  // namespace vitro::image
