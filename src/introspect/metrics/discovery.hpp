// Which containers run on this host: vitro's own (from its state store) and,
// from the OCI runtimes' state directories, those that podman, containerd,
// crun or runc started. Each is found again by its init's cgroups.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "cgroups/cgroup.hpp"
#include "util/fd.hpp"

namespace vitro::introspect {

struct Target {
    std::string id;         // the cgroup path ("/vitro/<id>"), as cAdvisor's `id` label
    std::string container;  // the runtime's container id
    std::string name, image, pod, ns;  // ns: the Kubernetes namespace of a pod member
    std::string image_digest;          // vitro's containers: what a baseline was learned on
    std::string runtime;    // vitro, or the runtime whose state named it
    pid_t pid = 0;          // the container's init, as seen from the host
    uint64_t pid_start_ticks = 0;
    std::string upper_dir;  // the writable layer, where known (vitro's overlay snapshot)
    cgroups::ProcessCgroups cgroups;
};

struct DiscoveryOptions {
    std::string vitro_root = "/var/lib/vitro";  // holds vitro.db
    // OCI runtime --root directories; a directory whose entries hold no
    // state file is searched one level deeper (containerd's per-namespace roots).
    std::vector<std::string> runtime_roots = {"/run/vitro-runtime", "/run/crun", "/run/runc",
                                              "/run/containerd/runc"};
};

// A cheap fingerprint of what discovery reads (modification times of the
// state database and runtime roots): rediscover only when it changes.
std::string discovery_fingerprint(const DiscoveryOptions& o);

// Whether what discovery reads may have changed since the last call to
// changed(): inotify on the state database's directory, the runtime roots
// and their entries (what the fingerprint's times move with), so that a
// scrape with nothing new costs one read instead of ~30 system calls.
// Without inotify (the instances are limited per user), the fingerprint.
class DiscoveryWatch {
public:
    explicit DiscoveryWatch(DiscoveryOptions o);
    bool changed();
    bool watching() const { return static_cast<bool>(fd_); }  // by inotify

private:
    void arm();  // watches what exists now; remembers what does not
    DiscoveryOptions o_;
    UniqueFd fd_;
    std::vector<std::string> missing_;  // watched for by a stat at each call
    int root_wd_ = -1;                  // the watch of the database's directory
    std::string fingerprint_;
    bool first_ = true;
};

// Every running container found, one per cgroup. Containers that vanish
// while being looked at are skipped; `errors` counts what could not be read.
std::vector<Target> discover(const DiscoveryOptions& o, const cgroups::CgroupMounts& mounts, uint64_t* errors);

}  // namespace vitro::introspect
