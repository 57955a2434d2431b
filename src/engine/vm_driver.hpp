// --isolation vm: the isolation mode that runs a container in a microVM of
// its own (vm/). Behind the same RuntimeDriver interface as the namespace
// runtimes: the engine starts, signals and removes it alike; its "init" is
// the host-side shim (vm/shim.hpp), whose exit code is the container's.
#pragma once

#include <memory>
#include <string>

#include "engine/runtime_driver.hpp"

namespace vitro::engine {

// State (sockets, logs, the shim's pid) under <runroot>/vm; the initramfs
// cached under <root>/vm; `agent` the static vitro-agent built beside vitro.
std::unique_ptr<RuntimeDriver> make_vm_driver(const std::string& runroot, const std::string& root,
                                              const std::string& agent);

}  // namespace vitro::engine
