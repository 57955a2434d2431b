// OCI hooks: each gets the container state on stdin, runs with its own
// args/env, and is killed after its timeout.
#pragma once

#include <string>
#include <vector>

#include "oci/spec.hpp"

namespace vitro::runtime {

// Runs the hooks in order. A failing hook throws (naming the phase and path)
// unless `warn_only` (poststart/poststop), where failures are logged.
void run_hooks(const std::vector<oci::Hook>& hooks, const std::string& phase, const std::string& state_json,
               bool warn_only = false);

}  // namespace vitro::runtime
