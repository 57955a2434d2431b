// The OCI runtime-spec (config.json) model for Linux: parsed strictly, with
// every type error naming the JSON path of the field ("process.user.uid").
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vitro::oci {

struct User {
    uint32_t uid = 0, gid = 0;
    std::optional<uint32_t> umask;
    std::vector<uint32_t> additional_gids;
};

struct Rlimit {
    std::string type;
    uint64_t hard = 0, soft = 0;
};

struct Capabilities {
    std::vector<std::string> bounding, effective, inheritable, permitted, ambient;
};

struct IoPriority {
    std::string klass;
    int priority = 0;
};

struct Scheduler {
    std::string policy;
    std::optional<int> nice, priority;
    std::vector<std::string> flags;
    std::optional<uint64_t> runtime, deadline, period;
};

struct Process {
    bool terminal = false;
    std::optional<std::pair<unsigned, unsigned>> console_size;  // height, width
    User user;
    std::vector<std::string> args;
    std::vector<std::string> env;
    std::string cwd = "/";
    std::optional<Capabilities> capabilities;
    std::vector<Rlimit> rlimits;
    bool no_new_privileges = false;
    std::optional<int> oom_score_adj;
    std::string apparmor_profile, selinux_label;
    std::optional<IoPriority> io_priority;
    std::optional<Scheduler> scheduler;
};

struct Mount {
    std::string destination, type, source;
    std::vector<std::string> options;
};

struct Hook {
    std::string path;
    std::vector<std::string> args, env;
    std::optional<int> timeout;
};

struct Hooks {
    std::vector<Hook> prestart, create_runtime, create_container, start_container, poststart,
        poststop;
};

struct Namespace {
    std::string type;  // pid network mount ipc uts user cgroup time
    std::string path;
};

struct IdMapping {
    uint32_t container_id = 0, host_id = 0, size = 0;
};

struct Device {
    std::string path, type;  // c b u p
    int64_t major = 0, minor = 0;
    std::optional<uint32_t> file_mode, uid, gid;
};

struct DeviceRule {
    bool allow = false;
    std::string type = "a";
    std::optional<int64_t> major, minor;
    std::string access = "rwm";
};

struct WeightDevice {
    int64_t major = 0, minor = 0;
    std::optional<uint16_t> weight, leaf_weight;
};
struct ThrottleDevice {
    int64_t major = 0, minor = 0;
    uint64_t rate = 0;
};

struct Resources {
    std::vector<DeviceRule> devices;
    struct Memory {
        std::optional<int64_t> limit, reservation, swap, kernel, kernel_tcp;
        std::optional<uint64_t> swappiness;
        std::optional<bool> disable_oom_killer, use_hierarchy, check_before_update;
    };
    std::optional<Memory> memory;
    struct Cpu {
        std::optional<uint64_t> shares, period, realtime_period;
        std::optional<int64_t> quota, realtime_runtime, burst;
        std::string cpus, mems;
        std::optional<bool> idle;
    };
    std::optional<Cpu> cpu;
    struct Pids {
        int64_t limit = 0;
    };
    std::optional<Pids> pids;
    struct BlockIO {
        std::optional<uint16_t> weight, leaf_weight;
        std::vector<WeightDevice> weight_device;
        std::vector<ThrottleDevice> read_bps, write_bps, read_iops, write_iops;
    };
    std::optional<BlockIO> block_io;
    struct HugepageLimit {
        std::string page_size;
        uint64_t limit = 0;
    };
    std::vector<HugepageLimit> hugepage_limits;
    struct Network {
        std::optional<uint32_t> class_id;
        std::vector<std::pair<std::string, uint32_t>> priorities;
    };
    std::optional<Network> network;
    std::map<std::string, std::string> unified;
};

struct SeccompArg {
    unsigned index = 0;
    uint64_t value = 0, value_two = 0;
    std::string op;
};
struct SeccompSyscall {
    std::vector<std::string> names;
    std::string action;
    std::optional<unsigned> errno_ret;
    std::vector<SeccompArg> args;
};
struct Seccomp {
    std::string default_action;
    std::optional<unsigned> default_errno_ret;
    std::vector<std::string> architectures, flags;
    std::string listener_path;
    std::vector<SeccompSyscall> syscalls;
};

struct Personality {
    std::string domain;
    std::vector<std::string> flags;
};

struct Linux {
    std::vector<Namespace> namespaces;
    std::vector<IdMapping> uid_mappings, gid_mappings;
    std::vector<Device> devices;
    std::string cgroups_path;
    std::optional<Resources> resources;
    std::map<std::string, std::string> sysctl;
    std::optional<Seccomp> seccomp;
    std::string rootfs_propagation;
    std::vector<std::string> masked_paths, readonly_paths;
    std::string mount_label;
    std::optional<Personality> personality;
    std::optional<std::map<std::string, int64_t>> time_offsets_secs;  // "monotonic"/"boottime"
    std::map<std::string, std::pair<int64_t, uint32_t>> time_offsets;
};

struct Spec {
    std::string oci_version;
    std::string root_path;
    bool root_readonly = false;
    std::optional<Process> process;
    std::string hostname, domainname;
    std::vector<Mount> mounts;
    std::optional<Hooks> hooks;
    std::map<std::string, std::string> annotations;
    std::optional<Linux> linux;

    bool has_namespace(const std::string& type) const;
    const Namespace* find_namespace(const std::string& type) const;
};

// Parses config.json text; throws vitro::Error naming the field on any problem.
Spec parse_spec(const std::string& text);
// Parses a process.json (exec --process) document.
Process parse_process(const nlohmann::json& j, const std::string& path = "process");
// Parses a linux.resources document (`update --resources`).
Resources parse_resources(const nlohmann::json& j, const std::string& path = "resources");
// Checks values the runtime must refuse at create (unknown capabilities,
// rlimits, namespace types, relative paths...). Throws naming the field.
void validate_spec(const Spec& spec);
void validate_process(const Process& p, const std::string& path = "process");

// Loads <bundle>/config.json; errors name the file.
Spec load_bundle_spec(const std::string& bundle);

}  // namespace vitro::oci
