// Forking into a cgroup: on cgroup v2, clone3(CLONE_INTO_CGROUP) starts the
// child inside the container's cgroup, so it is accounted from its first
// instruction and no migration write is needed.
#pragma once

#include <sys/types.h>

namespace vitro::os {

// Like fork(); with cgroup_fd >= 0 the child starts in that cgroup (v2 only).
// Falls back to fork() when the kernel lacks clone3 (ENOSYS); `placed` then
// says whether the caller must still move the child.
// `flags` may add CLONE_NEW* namespaces for the child.
pid_t fork_into_cgroup(int cgroup_fd, bool& placed, int flags = 0);

// fork() whose child becomes a child of our parent (CLONE_PARENT): setup
// stages use it so the container's processes are the runtime's children.
pid_t clone_parent();

}  // namespace vitro::os
