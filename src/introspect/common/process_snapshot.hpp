// What /proc says about a process, read once: identity, executable (with the
// SHA-256 of the file it runs), open files, namespaces; and which process
// holds which socket. A process that exits while being read is reported as
// gone (nullopt), never as an error: processes come and go.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vitro::introspect {

// "sha256:<hex>" of everything readable from `fd` (from its current offset).
std::string sha256_fd(int fd);

// pid, ppid, uid, comm, cmdline, exe (path as the process sees it), exe_sha256
// (of the file /proc/<pid>/exe refers to: the kernel's reference, no path
// lookup, so no symlink in the container can redirect it), start_ticks,
// start_time (RFC 3339). `hash_exe` false skips the hash.
std::optional<nlohmann::json> process_info(pid_t pid, bool hash_exe = true);
// [{fd, target}] from /proc/<pid>/fd (readlink only: nothing is opened).
nlohmann::json open_files(pid_t pid);
// {"net": "net:[4026531840]", ...} from /proc/<pid>/ns.
nlohmann::json namespaces(pid_t pid);
// /proc/<pid>/mountinfo parsed: [{mount_id, parent_id, dev, root, mount_point, options, fs_type, source, super_options}].
nlohmann::json mounts(pid_t pid);
// socket inode -> [{pid, fd}] over `pids`' fd links ("socket:[N]").
std::map<uint64_t, nlohmann::json> socket_owners(const std::vector<pid_t>& pids);
// The text of /proc/<pid>/<file> ("" when gone).
std::string proc_text(pid_t pid, const char* file);

}  // namespace vitro::introspect
