// Whole-file helpers with vitro::Error on failure.
#pragma once

#include <string>
#include <string_view>

#include "util/fd.hpp"

namespace vitro {

std::string read_file(const std::string& path);
std::string read_fd(int fd);
// Writes data to an existing file (e.g. /proc or cgroup knobs), no O_CREAT.
void write_file(const std::string& path, std::string_view data);
void write_all(int fd, std::string_view data, std::string_view what);
// The same without throwing: false (errno set) when a write failed. For copies
// that must go on whatever the reader does (a container's output).
bool try_write_all(int fd, std::string_view data);
// A program name as a shell finds it: a name with a '/' as it is, else the
// first executable <dir>/name in $PATH (a default PATH when unset). "" when none.
std::string find_program(const std::string& name);
// The same, but a missing program is an Error naming it (and the setup script).
std::string require_program(const std::string& name);
// Writes via a temporary file + rename, so readers never see a partial file.
void write_file_atomic(const std::string& path, std::string_view data, int mode = 0644);
bool path_exists(const std::string& path);
// mkdir -p; existing directories are fine.
void make_dirs(const std::string& path, int mode = 0755);
// An exclusive (or shared) flock on `path` (created 0600 if missing), held
// until the fd is closed; between processes, and released by the kernel when one dies.
UniqueFd lock_file(const std::string& path, bool shared = false);

}  // namespace vitro
