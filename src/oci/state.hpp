// The OCI state (runtime-spec "state" schema) plus what vitro-runtime keeps
// about a container between invocations.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "util/time.hpp"

namespace vitro::oci {

enum class Status { Creating, Created, Running, Paused, Stopped };
const char* status_name(Status s);

struct State {
    std::string oci_version = "1.0.2";
    std::string id;
    Status status = Status::Creating;
    pid_t pid = 0;
    std::string bundle;
    std::map<std::string, std::string> annotations;

    // vitro-runtime's own record (not in the spec's schema).
    std::string rootfs;
    std::string created;        // RFC 3339, UTC
    std::string owner;          // user name of the creator
    uint64_t init_start_time = 0;  // /proc/<pid>/stat starttime: guards against pid reuse
    nlohmann::json cgroup;      // cgroups::Manager::to_json()
    bool use_terminal = false;

    // The spec's state document: ociVersion, id, status, pid, bundle, annotations.
    nlohmann::json to_spec_json() const;
    // runc's `state` output adds rootfs, created, owner.
    nlohmann::json to_runc_json() const;
    // Everything, for state.json on disk.
    nlohmann::json to_disk_json() const;
    static State from_disk_json(const nlohmann::json& j);
};


}  // namespace vitro::oci
