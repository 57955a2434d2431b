// State directories under --root: one per container, holding state.json and
// (while the container is created but not started) exec.fifo. Commands on one
// container serialise on an flock of its directory.
#pragma once

#include <string>
#include <vector>

#include "oci/state.hpp"
#include "runtime/runtime.hpp"
#include "util/fd.hpp"

namespace vitro::runtime {

std::string container_dir(const Context& ctx, const std::string& id);
std::string exec_fifo_path(const Context& ctx, const std::string& id);
// Compiled seccomp filters (runtime/seccomp.hpp). A dot name: no container id
// can take it.
std::string seccomp_cache_dir(const Context& ctx);

// Exclusive lock on the container's directory, held until destroyed.
class ContainerLock {
public:
    ContainerLock(const Context& ctx, const std::string& id);

private:
    UniqueFd fd_;
};

bool container_exists(const Context& ctx, const std::string& id);
oci::State load_state(const Context& ctx, const std::string& id);
void save_state(const Context& ctx, const oci::State& st);
// Recomputes the status from the live system (pid alive, fifo, freezer).
void refresh_status(const Context& ctx, oci::State& st);
std::vector<std::string> list_ids(const Context& ctx);

}  // namespace vitro::runtime
