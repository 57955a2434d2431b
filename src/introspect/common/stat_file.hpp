// Kernel statistics files (cgroupfs, procfs) held open and re-read from
// offset 0 at each scrape: one pread where a fresh read costs open + read +
// close and a path walk. The kernel regenerates the text on every read.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "util/fd.hpp"

namespace vitro::introspect {

class StatFile {
public:
    StatFile() = default;
    // Opens `path` read-only; a missing or unreadable file leaves it closed.
    explicit StatFile(const std::string& path);
    explicit operator bool() const { return static_cast<bool>(fd_); }
    // Reads the whole file into `buf` (reused between calls). False when the
    // file is closed or the read fails (its cgroup or process is gone).
    bool read(std::string& buf) const;

private:
    UniqueFd fd_;
};

// Value of `key` in "key value" lines (cpu.stat, memory.stat, meminfo's
// "Key: value kB" with key "Key:"); nullopt when absent.
std::optional<uint64_t> keyed(std::string_view text, std::string_view key);
// The first number of the text ("max" reads as nullopt).
std::optional<uint64_t> first_number(std::string_view text);
// Splits at spaces/tabs, skipping empty fields.
void fields(std::string_view line, std::string_view* out, std::size_t max, std::size_t& n);

}  // namespace vitro::introspect
