// A container's file-system changes, from its overlay upper dir: what
// `vitro diff` lists, plus for each added or changed entry its type, size,
// mode and the SHA-256 of a regular file's content (a symlink's target as
// text). Every path below the upper dir is the container's to shape, so each
// file is opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) from the
// upper dir: a symlink anywhere on the way is reported, never followed, and
// nothing outside the upper dir is read.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vitro::introspect {

// [{kind: "A"|"C"|"D", path, type, size, mode, sha256 | link | error}] sorted by path.
nlohmann::json upper_diff(const std::string& upper_dir, const std::vector<std::string>& layers);

// One entry of the upper dir (path relative to it, no leading '/'), described
// as above; used by upper_diff and by the continuous capture.
nlohmann::json describe_upper_entry(int upper_fd, const std::string& rel_path);

// The content of a regular file below the upper dir (same safe open), when it
// is at most `max_bytes` long; nullopt otherwise (or when unreadable).
std::optional<std::string> read_upper_file(int upper_fd, const std::string& rel_path, size_t max_bytes);

}  // namespace vitro::introspect
