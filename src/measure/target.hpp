// Which network namespace `vitro netlat ping` probes from: a container by
// name or ID (vitro's state store; for podman or containerd containers, pass
// their pid or netns path), a pid, or a namespace path. The host namespace
// (where the traffic leaves for the target) is this process's unless given.
#pragma once

#include <string>

#include "engine/engine.hpp"
#include "measure/netns.hpp"

namespace vitro::measure {

// Throws when the container is unknown, not running, or has no network
// namespace of its own.
NetnsHandle open_netns_of_container(engine::Engine& eng, const std::string& ref);

// Refuses a source namespace that is the host's own: there are no virtual
// devices in between to remove.
void require_separate_netns(const NetnsHandle& source, const NetnsHandle& host);

}  // namespace vitro::measure
