#include "util/strings.hpp"

#include "util/error.hpp"

#include <cctype>
#include <charconv>
#include <cstdint>

namespace vitro {

std::vector<std::string> split(std::string_view s, char sep) {
    std::vector<std::string> out;
    size_t start = 0;
    for (;;) {
        size_t pos = s.find(sep, start);
        out.emplace_back(s.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
        if (pos == std::string_view::npos) break;
        start = pos + 1;
    }
    return out;
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i) {
        if (i) out += sep;
        out += parts[i];
    }
    return out;
}

std::string trim(std::string_view s) {
    size_t b = s.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) return {};
    size_t e = s.find_last_not_of(" \t\r\n");
    return std::string(s.substr(b, e - b + 1));
}

bool parse_u64(std::string_view s, uint64_t& out) {
    if (s.empty()) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

uint64_t parse_size(const std::string& s, std::string_view what) {
    if (s == "-1") return static_cast<uint64_t>(-1);
    size_t i = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    uint64_t v = 0;
    if (!parse_u64(s.substr(0, i), v)) throw Error(std::string(what) + ": invalid size '" + s + "'");
    std::string unit = s.substr(i);
    for (auto& ch : unit) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    int shift = 0;
    if (unit == "" || unit == "b") shift = 0;
    else if (unit == "k" || unit == "kb" || unit == "kib") shift = 10;
    else if (unit == "m" || unit == "mb" || unit == "mib") shift = 20;
    else if (unit == "g" || unit == "gb" || unit == "gib") shift = 30;
    else throw Error(std::string(what) + ": invalid size unit in '" + s + "' (use b, k, m or g)");
    if (shift && v > (UINT64_MAX >> shift)) throw Error(std::string(what) + ": size '" + s + "' is too large");
    return v << shift;
}

}  // namespace vitro
