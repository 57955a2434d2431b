// Internals of the cgroup layer, shared by its .cpp files and the unit tests.
// Nothing outside src/cgroups/ (and its tests) should include this.
#pragma once

#include <linux/bpf.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cgroups/cgroup.hpp"
#include "util/fd.hpp"

namespace vitro::cgroups::detail {

// ---- mounts (detect.cpp) ----

// One mounted v1 hierarchy: where it is mounted and what is bound to it
// ("cpu", "cpuacct", "name=systemd").
struct V1Mount {
    std::string mountpoint;
    std::vector<std::string> controllers;
};
struct Mounts {
    std::vector<V1Mount> v1;
    std::string v2;  // the cgroup2 mount point, "" when there is none
};
// Parses /proc/self/mountinfo text; keeps only mounts at or under `root`.
Mounts parse_mountinfo(std::string_view text, const std::string& root);
Mounts find_mounts(const std::string& root);

// The hierarchy-relative path ("/a/b") for an OCI cgroupsPath; throws on
// "..", systemd-style paths and empty ids.
std::string normalize_cgroups_path(const std::string& cgroups_path, const std::string& container_id);

// ---- knob files (knobs.cpp) ----

std::string knob_path(const std::string& dir, std::string_view file);
bool has_knob(const std::string& dir, std::string_view file);
// Writes a knob; a missing file is reported as "<file> not supported".
void write_knob(const std::string& dir, std::string_view file, std::string_view value);
// "MAJOR:MINOR", as the blkio/io knobs name a device.
std::string device_key(int64_t major, int64_t minor);
// The knob's content without the trailing newline; nullopt when it does not exist.
std::optional<std::string> read_knob(const std::string& dir, std::string_view file);
// "key value" lines (memory.stat, cpu.stat, cgroup.events) as a map.
std::map<std::string, uint64_t> read_keyed(const std::string& dir, std::string_view file);
// A single number; "max" reads as `max_value`. nullopt when missing or junk.
std::optional<uint64_t> read_u64(const std::string& dir, std::string_view file,
                                 uint64_t max_value = UINT64_MAX);

// Pids in dir/cgroup.procs and in every descendant cgroup.
std::vector<pid_t> read_procs_recursive(const std::string& dir);
// Moves pid into dir (cgroup.procs).
void join_cgroup(const std::string& dir, pid_t pid);
// rmdir of dir and its descendants, deepest first; EBUSY is retried for about
// a second (processes still exiting). An absent dir is not an error.
void remove_cgroup_tree(const std::string& dir);
// The parent of default cgroup paths ("/vitro/<id>") is the runtime's own:
// removed, if empty, with its last container. Other paths' parents belong to
// whoever chose them (kubelet's pod cgroups) and are left alone.
inline constexpr const char* kDefaultParent = "/vitro";
void remove_default_parent(const std::string& dir, const std::string& path);
// Sends sig to each pid; ESRCH (already gone) is fine.
void signal_pids(const std::vector<pid_t>& pids, int sig);

// ---- conversions (resources_v2.cpp) ----

// cgroup v1 cpu.shares [2, 262144] -> cgroup v2 cpu.weight [1, 10000].
uint64_t shares_to_weight(uint64_t shares);
// blkio weight [10, 1000] -> io.weight [1, 10000].
uint64_t blkio_weight_to_io_weight(uint64_t weight);
// OCI memory.swap is memory+swap; v2 memory.swap.max is swap alone. Returns
// the value to write ("max" or bytes), nullopt to leave the knob alone.
std::optional<std::string> swap_to_v2(std::optional<int64_t> swap, std::optional<int64_t> limit);

// ---- resources ----

// Controller name -> directory of this cgroup in the hierarchy holding it.
using V1Dirs = std::map<std::string, std::string>;
void apply_v1_resources(const V1Dirs& dirs, const oci::Resources& r);
void apply_v2_resources(const std::string& dir, const oci::Resources& r);

// ---- v2 device controller (device_bpf.cpp) ----

// A BPF_PROG_TYPE_CGROUP_DEVICE program implementing the OCI rules with
// cgroup v1 semantics: the last matching rule decides, allow when none does.
std::vector<bpf_insn> build_device_program(const std::vector<oci::DeviceRule>& rules);
// Loads the program for `rules` and attaches it to the cgroup at dir, replacing
// whatever device programs were attached there before.
void apply_device_program(const std::string& dir, const std::vector<oci::DeviceRule>& rules);

// ---- stats (stats.cpp) ----

Stats read_v1_stats(const V1Dirs& dirs);
Stats read_v2_stats(const std::string& dir);

// ---- managers ----

// A v1 hierarchy as a manager sees it: its mount, its controllers, and the
// container's directory in it (mountpoint + path).
struct V1Hierarchy {
    std::string mountpoint, dir;
    std::vector<std::string> controllers;
};

class V1Manager final : public Manager {
public:
    V1Manager(std::vector<V1Hierarchy> hierarchies, std::string path);

    Mode mode() const override { return Mode::V1; }
    void create(const std::optional<oci::Resources>& resources) override;
    void add_process(pid_t pid) override;
    void update(const oci::Resources& resources) override;
    void freeze(bool frozen) override;
    bool is_frozen() const override;
    std::vector<pid_t> pids() const override;
    Stats stats() const override;
    void kill_all(int signal) override;
    void destroy() override;
    nlohmann::json to_json() const override;

    // The directory of controller c, or nullptr where c is not mounted.
    const std::string* dir_of(const std::string& c) const;
    // Removes the directories the last create() made (a failed create).
    void undo_create();

private:
    void apply(const oci::Resources& r);

    std::vector<V1Hierarchy> hierarchies_;
    std::string path_;
    V1Dirs dirs_;
    std::vector<std::string> created_;
};

class V2Manager final : public Manager {
public:
    V2Manager(std::string mountpoint, std::string path);

    Mode mode() const override { return Mode::V2; }
    void create(const std::optional<oci::Resources>& resources) override;
    void add_process(pid_t pid) override;
    void update(const oci::Resources& resources) override;
    void freeze(bool frozen) override;
    bool is_frozen() const override;
    std::vector<pid_t> pids() const override;
    Stats stats() const override;
    void kill_all(int signal) override;
    void destroy() override;
    int v2_dir_fd() const override;
    nlohmann::json to_json() const override;

    const std::string& dir() const { return dir_; }
    // Controllers the hierarchy has (the root's cgroup.controllers).
    std::vector<std::string> available_controllers() const;
    void undo_create();

private:
    void enable_controllers() const;

    std::string mountpoint_, path_, dir_;
    mutable UniqueFd dir_fd_;
    bool created_ = false;
};

// Hybrid hosts: every v1 hierarchy plus the cgroup2 mount, which holds what
// v1 lacks here (hugetlb) and the "unified" keys it can serve.
class HybridManager final : public Manager {
public:
    HybridManager(V1Manager v1, V2Manager v2) : v1_(std::move(v1)), v2_(std::move(v2)) {}

    Mode mode() const override { return Mode::Hybrid; }
    void create(const std::optional<oci::Resources>& resources) override;
    void add_process(pid_t pid) override;
    void update(const oci::Resources& resources) override;
    void freeze(bool frozen) override;
    bool is_frozen() const override;
    std::vector<pid_t> pids() const override;
    Stats stats() const override;
    void kill_all(int signal) override;
    void destroy() override;
    nlohmann::json to_json() const override;

private:
    // Splits resources between the v1 hierarchies and the cgroup2 mount.
    std::pair<oci::Resources, oci::Resources> split(const oci::Resources& r) const;

    V1Manager v1_;
    V2Manager v2_;
};

// Freezer helpers, shared by the managers.
void freeze_v1(const std::string& freezer_dir, bool frozen);
void freeze_v2(const std::string& dir, bool frozen);

}  // namespace vitro::cgroups::detail
