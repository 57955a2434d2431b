// Pods: containers sharing namespaces, as podman (and Kubernetes) make them.
//
// A pod is a row in the state store plus an infra container: a container
// record like any other (config "infra": true), whose process is the static
// vitro-pause copied alone into a one-file rootfs (<root>/pause/rootfs), so a
// pod needs no image. The infra holds the namespaces the pod shares (by
// default net, ipc and uts, as podman): its network is the pod's (CNI network,
// published ports), its hostname the pod's. A member container joins them
// through the OCI spec's namespace paths (the infra's pinned netns, its
// /proc/<pid>/ns/<kind>), set each time the member starts; it bind-mounts the
// infra's /etc/hosts, /etc/resolv.conf (and /etc/hostname with a shared uts).
//
// Lifecycle (Engine's pod_* methods, engine/pods.cpp): starting a member
// starts the infra; stopping the infra stops the members first (and its
// monitor stops any left when the infra dies on its own); a pod is removed
// with its containers; removing the last member leaves the pod.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/container_network.hpp"
#include "engine/state_store.hpp"

namespace vitro::engine {

struct PodCreateRequest {
    std::string name;                     // empty: generated
    std::vector<PortMapping> ports;       // published on the pod (its infra)
    std::string network;                  // "" / "bridge": the default network; none, host, NAME
    std::string hostname;                 // empty: the pod's name
    std::map<std::string, std::string> labels;
    std::string share = "ipc,net,uts";    // --share
};

// The namespaces a pod shares, from --share ("ipc,net,uts", "none" or ""
// for none). Known kinds: ipc, net, uts, pid. Throws Error(EINVAL) naming an
// unknown kind. Sorted, without duplicates.
std::vector<std::string> parse_pod_share(const std::string& value);

// Points the namespaces of the shared kinds in an OCI spec at the infra's:
// net at the pinned `netns`, the others at /proc/<infra_pid>/ns/<kind>.
// Kinds not shared keep their entry as it was.
void join_pod_namespaces(nlohmann::json& spec, const std::vector<std::string>& share, int infra_pid,
                         const std::string& netns);

// A pod's status from its containers' (infra included), podman's words:
// Created (none ever ran, or no containers), Running (all running), Degraded
// (some running), Exited (all exited), Stopped (some exited, some created).
std::string pod_status(const std::vector<ContainerState>& states);

// A pod with its containers (infra first), as ps and inspect show it.
struct PodInfo {
    PodRecord pod;
    std::vector<ContainerRecord> containers;
    std::string status;
    std::string infra_id() const { return pod.config.value("infra_id", ""); }
};

}  // namespace vitro::engine
