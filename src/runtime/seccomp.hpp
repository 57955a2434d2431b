// Seccomp: turns linux.seccomp (actions, architectures, argument conditions,
// flags) into a filter with libseccomp and loads it into the calling process.
#pragma once

#include "oci/spec.hpp"
#include "util/fd.hpp"

namespace vitro::runtime {

// Checks the profile at create time (unknown actions, arches, operators, flags
// are errors naming the field; unknown syscall names are skipped, as runc does).
void validate_seccomp(const oci::Seccomp& profile);

// Loads the filter into the calling thread's process. When the profile has a
// SCMP_ACT_NOTIFY rule, returns the listener fd (else an empty UniqueFd).
UniqueFd load_seccomp(const oci::Seccomp& profile);

}  // namespace vitro::runtime
