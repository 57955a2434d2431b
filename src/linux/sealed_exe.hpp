// CVE-2019-5736 defence: before touching a container, the runtime re-executes
// itself from a sealed, anonymous memfd copy of its binary. A process in the
// container that opens /proc/<runtime pid>/exe then reaches only that copy,
// which it can neither write nor truncate; the binary on disk is never exposed.
#pragma once

namespace vitro::os {

// Re-execs from a sealed memfd unless already running from one. Returns only
// when already sealed (or, with VITRO_NO_SEALED_EXE=1 for measurements, never re-execs).
void ensure_sealed_exe(int argc, char** argv);
// True when /proc/self/exe is a sealed memfd.
bool running_sealed();

}  // namespace vitro::os
