// Seccomp: turns linux.seccomp (actions, architectures, argument conditions,
// flags) into a filter with libseccomp and loads it into the calling process.
#pragma once

#include <linux/filter.h>

#include <optional>
#include <string>
#include <vector>

#include "oci/spec.hpp"
#include "util/fd.hpp"

namespace vitro::runtime {

// Checks the profile at create time (unknown actions, arches, operators, flags
// are errors naming the field; unknown syscall names are skipped, as runc does).
void validate_seccomp(const oci::Seccomp& profile);

// A filter compiled to BPF, loaded with seccomp(2) alone: the runtime
// compiles it before cloning the init, so the init (and an exec'd process)
// only loads it.
struct CompiledSeccomp {
    std::vector<sock_filter> program;
    unsigned flags = 0;  // SECCOMP_FILTER_FLAG_*
};

// Compiles the profile with libseccomp, or takes it from `cache_dir` (files
// keyed by everything libseccomp is given, its version and the kernel API
// level it detected), writing it there after a compile ("" = no cache).
// Compiling the default container profile costs milliseconds; a cache hit
// costs a file read. nullopt for a profile with SCMP_ACT_NOTIFY: its listener
// fd comes from libseccomp's own load (load_seccomp).
std::optional<CompiledSeccomp> compile_seccomp(const oci::Seccomp& profile, const std::string& cache_dir = {});
void load_compiled_seccomp(const CompiledSeccomp& filter);

// Compiles and loads the filter into the calling thread's process. When the
// profile has a SCMP_ACT_NOTIFY rule, returns the listener fd (else an empty UniqueFd).
UniqueFd load_seccomp(const oci::Seccomp& profile);

}  // namespace vitro::runtime
