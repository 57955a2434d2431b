#include "image/digest.hpp"

#include "util/error.hpp"

namespace vitro::image {

bool is_valid_digest(std::string_view d) {
    constexpr std::string_view prefix = "sha256:";
    if (d.size() != prefix.size() + 64 || d.substr(0, prefix.size()) != prefix) return false;
    for (char c : d.substr(prefix.size()))
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

void check_digest(std::string_view d, std::string_view what) {
    if (!is_valid_digest(d))
        throw Error(EINVAL, std::string(what) + ": invalid digest \"" + std::string(d.substr(0, 100)) +
                                "\" (expected sha256:<64 lowercase hex digits>)");
}

std::string digest_hex(std::string_view d) {
    check_digest(d, "digest");
    return std::string(d.substr(7));
}

}  // namespace vitro::image
