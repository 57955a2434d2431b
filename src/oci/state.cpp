#include "oci/state.hpp"

#include <time.h>

#include <cstdio>

namespace vitro::oci {

const char* status_name(Status s) {
    switch (s) {
        case Status::Creating: return "creating";
        case Status::Created: return "created";
        case Status::Running: return "running";
        case Status::Paused: return "paused";
        case Status::Stopped: return "stopped";
    }
    return "unknown";
}

namespace {
Status status_from(const std::string& s) {
    for (Status st : {Status::Creating, Status::Created, Status::Running, Status::Paused, Status::Stopped})
        if (s == status_name(st)) return st;
    return Status::Stopped;
}
}  // namespace

nlohmann::json State::to_spec_json() const {
    nlohmann::json j = {{"ociVersion", oci_version}, {"id", id}, {"status", status_name(status)}, {"bundle", bundle}};
    if (status != Status::Stopped) j["pid"] = pid;
    if (!annotations.empty()) j["annotations"] = annotations;
    return j;
}

nlohmann::json State::to_runc_json() const {
    nlohmann::json j = to_spec_json();
    j["pid"] = status == Status::Stopped ? 0 : pid;
    j["rootfs"] = rootfs;
    j["created"] = created;
    j["owner"] = owner;
    return j;
}

nlohmann::json State::to_disk_json() const {
    nlohmann::json j = to_runc_json();
    j["pid"] = pid;
    j["initStartTime"] = init_start_time;
    j["cgroup"] = cgroup;
    j["terminal"] = use_terminal;
    return j;
}

State State::from_disk_json(const nlohmann::json& j) {
    State s;
    s.oci_version = j.value("ociVersion", "1.0.2");
    s.id = j.value("id", "");
    s.status = status_from(j.value("status", "stopped"));
    s.pid = j.value("pid", 0);
    s.bundle = j.value("bundle", "");
    if (j.contains("annotations")) s.annotations = j.at("annotations").get<std::map<std::string, std::string>>();
    s.rootfs = j.value("rootfs", "");
    s.created = j.value("created", "");
    s.owner = j.value("owner", "");
    s.init_start_time = j.value("initStartTime", uint64_t{0});
    if (j.contains("cgroup")) s.cgroup = j.at("cgroup");
    s.use_terminal = j.value("terminal", false);
    return s;
}

}  // namespace vitro::oci
