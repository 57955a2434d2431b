// One cgroup interface, with managers behind it for cgroup v1, v2 and hybrid
// hosts (v1 controllers plus a cgroup2 mount such as /sys/fs/cgroup/unified).
// A manager owns one container's cgroup: it creates it, places processes in
// it, applies linux.resources, freezes, reports stats and removes it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "oci/spec.hpp"

namespace vitro::cgroups {

enum class Mode { V1, V2, Hybrid };
// Looks at the cgroup mount root (default /sys/fs/cgroup).
Mode detect_mode(const std::string& root = "/sys/fs/cgroup");
const char* mode_name(Mode m);

// Counters for `events --stats` (runc's "stats" event shape) and introspection.
struct Stats {
    uint64_t cpu_usage_ns = 0, cpu_user_ns = 0, cpu_system_ns = 0;
    uint64_t cpu_periods = 0, cpu_throttled_periods = 0, cpu_throttled_ns = 0;
    uint64_t memory_usage = 0, memory_limit = 0, memory_max_usage = 0, memory_failcnt = 0;
    uint64_t memory_cache = 0, memory_rss = 0, memory_swap = 0;
    uint64_t pids_current = 0, pids_limit = 0;
    uint64_t oom_kills = 0;
    nlohmann::json to_json() const;  // runc's events --stats "data" object
};

class Manager {
public:
    virtual ~Manager() = default;

    virtual Mode mode() const = 0;
    // Creates the cgroup directories (idempotent) and applies resources.
    virtual void create(const std::optional<oci::Resources>& resources) = 0;
    // Moves a process (and, on v1, into every mounted hierarchy) into the cgroup.
    virtual void add_process(pid_t pid) = 0;
    // `update`: applies a new set of resources to an existing cgroup.
    virtual void update(const oci::Resources& resources) = 0;
    virtual void freeze(bool frozen) = 0;
    virtual bool is_frozen() const = 0;
    // Every pid in the cgroup (and its descendants), as seen from the host.
    virtual std::vector<pid_t> pids() const = 0;
    virtual Stats stats() const = 0;
    // Sends `signal` to every process in the cgroup. SIGKILL goes through
    // cgroup.kill where the kernel has it (no race with forking processes);
    // otherwise the cgroup is frozen while the pids are signalled.
    virtual void kill_all(int signal) = 0;
    // Removes the cgroup directories; retries briefly while processes exit.
    // Never throws for an already-removed cgroup.
    virtual void destroy() = 0;
    // An O_PATH|O_DIRECTORY fd of the v2 leaf for clone3(CLONE_INTO_CGROUP), or -1
    // (v1 and hybrid: a process must also join the v1 hierarchies, so no).
    // The manager owns the fd; it stays valid until destroy() or destruction.
    virtual int v2_dir_fd() const { return -1; }
    // What `load` needs to find this cgroup again (stored in the container state).
    virtual nlohmann::json to_json() const = 0;
};

// cgroups_path: the OCI linux.cgroupsPath ("" means "/vitro/<container_id>").
// Absolute paths are relative to each hierarchy's mount point; relative ones
// are put under the mount point too (cgroupfs style). ".." components and
// systemd "slice:prefix:name" paths are refused. `root` is the cgroup mount
// root; the controllers under it are found from /proc/self/mountinfo.
std::unique_ptr<Manager> make_manager(const std::string& cgroups_path, const std::string& container_id,
                                      const std::string& root = "/sys/fs/cgroup");
// Where a process's cgroups are on this host, as introspection needs them:
// the directory of each v1 controller ("memory" -> /sys/fs/cgroup/memory/a/b)
// and the v2 directory ("" when the process has none or no cgroup2 is mounted).
struct ProcessCgroups {
    std::map<std::string, std::string> v1;
    std::string v2;
    std::string path;  // the hierarchy-relative path: v2's on a pure v2 host, memory's otherwise
};
// The cgroup mounts under `root`, read once and passed to process_cgroups().
class CgroupMounts {
public:
    explicit CgroupMounts(const std::string& root = "/sys/fs/cgroup");
    Mode mode() const;
    bool empty() const { return v1_.empty() && v2_.empty(); }
    // Parses /proc/<pid>/cgroup; throws when the process is gone.
    ProcessCgroups of_process(pid_t pid) const;
    // Parses /proc/<pid>/cgroup text (for tests).
    ProcessCgroups from_text(std::string_view proc_cgroup) const;

private:
    std::vector<std::pair<std::vector<std::string>, std::string>> v1_;  // controllers, mountpoint
    std::string v2_;
};

// Re-opens the manager recorded by Manager::to_json().
std::unique_ptr<Manager> load_manager(const nlohmann::json& saved);

}  // namespace vitro::cgroups
