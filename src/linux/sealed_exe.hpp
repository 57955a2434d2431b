// CVE-2019-5736 defence: before touching a container, the runtime re-executes
// itself from a copy of its binary that no process can write: a detached,
// read-only bind mount of the binary (open_tree + mount_setattr, never
// attached to any mount namespace, so no container can remount it), or,
// where the kernel lacks those calls, a sealed memfd copy. A process in the
// container that reaches /proc/<runtime pid>/exe gets EROFS (or a sealed copy).
#pragma once

namespace vitro::os {

// Re-execs from a protected binary unless already running from one. Returns
// only when already protected (or, with VITRO_NO_SEALED_EXE=1, for
// measurements, without re-executing).
void ensure_sealed_exe(int argc, char** argv);
// True when /proc/self/exe is on a read-only mount or a sealed memfd.
bool running_sealed();

}  // namespace vitro::os
