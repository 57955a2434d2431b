// The seccomp profile `vitro run` applies by default, and --security-opt.
//
// The default profile has the effect of the one docker and podman apply: every
// syscall fails with EPERM unless allowed; a large allowlist of harmless
// syscalls; the syscalls that a capability guards (mount, unshare, ptrace,
// reboot, init_module, ...) allowed only when the container's bounding set
// holds that capability; clone without namespace flags and clone3 answering
// ENOSYS (so that libcs fall back to clone) unless CAP_SYS_ADMIN; personality
// with the harmless values only; no AF_VSOCK sockets.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vitro::engine {

// The OCI linux.seccomp object (runtime-spec JSON) for a container whose
// bounding capability set is `caps` ("CAP_NET_ADMIN", ...), for this host's
// architecture (x86_64 also lists x86 and x32, as docker does).
nlohmann::json default_seccomp_profile(const std::vector<std::string>& caps);

// A docker-format seccomp profile (docker's and podman's seccomp.json:
// names/name, action, errnoRet, args, includes/excludes with caps, arches and
// minKernel, architectures or archMap) turned into the OCI linux.seccomp
// object for a container with bounding set `caps` on this host. `source` names
// the document in errors (a file path). Throws vitro::Error.
nlohmann::json convert_docker_seccomp(const nlohmann::json& profile, const std::vector<std::string>& caps,
                                      const std::string& source);

// --security-opt handling for the spec JSON built by engine/spec_builder:
//   seccomp=unconfined     no seccomp filter
//   seccomp=FILE           a docker-format profile file, converted to the OCI form
//   no-new-privileges[=true|false]   process.noNewPrivileges
//   label=..., apparmor=...          accepted, no effect (no SELinux/AppArmor here)
// docker's older "KEY:VALUE" spelling is accepted too. Unknown options are an
// Error naming the value. Without a seccomp= option, spec["linux"]["seccomp"]
// becomes the default profile for spec.process.capabilities.bounding.
void apply_security_opts(nlohmann::json& spec, const std::vector<std::string>& security_opts);

}  // namespace vitro::engine
