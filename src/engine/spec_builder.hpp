// Image config + run options -> OCI runtime config.json (the shape of
// vitro-runtime's default spec, oci::default_spec()), with docker's semantics:
//   - args: an --entrypoint replaces the image's Entrypoint and clears its Cmd;
//     a command given on the command line replaces Cmd; args = entrypoint + cmd.
//   - env: the image's, then the run options' (same name: replaced in place);
//     PATH defaulted when missing, HOSTNAME, TERM=xterm with a tty, HOME from
//     the user's passwd entry ("/" without one).
//   - user: "name", "uid", "name:group", "uid:gid", …, names resolved in the
//     rootfs's /etc/passwd and /etc/group (opened confined to the rootfs);
//     supplementary groups from /etc/group.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "image/manifest.hpp"

namespace vitro::engine {

using image::ImageConfig;

inline constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

struct MountSpec {
    std::string source, destination;
    std::string type = "bind";  // "bind" (rbind unless "bind" is given) or a filesystem type ("tmpfs")
    std::vector<std::string> options;
};

// --ulimit TYPE=SOFT[:HARD]: process.rlimits' entry ("RLIMIT_NOFILE").
struct Ulimit {
    std::string name;  // podman's: "nofile"
    uint64_t soft = 0, hard = 0;
};
// podman's --ulimit values: TYPE=SOFT[:HARD] (TYPE as podman names them,
// nofile, nproc, core, ...; -1 unlimited; HARD defaults to SOFT), or "host"
// (every limit this process has). Throws Error naming the value.
std::vector<Ulimit> parse_ulimits(const std::vector<std::string>& values);
// Refuses a limit the container's init could not set (setrlimit's EPERM at
// start): a hard limit above this process's without CAP_SYS_RESOURCE, or
// nofile above the kernel's fs.nr_open. Throws Error naming the --ulimit.
void check_ulimits_settable(const std::vector<Ulimit>& ulimits);
// "RLIMIT_NOFILE" for "nofile".
std::string rlimit_type(const std::string& name);

struct RunOptions {
    std::vector<std::string> command;        // replaces the image's Cmd when non-empty
    std::optional<std::string> entrypoint;   // --entrypoint: replaces Entrypoint ("" = none), clears Cmd
    std::vector<std::string> env;            // "K=V", or "K" to take K from this process's environment
    std::string workdir;                     // -w (absolute)
    std::string user;                        // --user
    std::string hostname;                    // empty: the default spec's
    std::string root_path = "rootfs";        // root.path in config.json
    bool read_only = false, tty = false, no_new_privileges = false, rootless = false;
    std::optional<int64_t> memory;           // bytes
    std::optional<double> cpus;
    std::optional<int64_t> pids_limit;
    std::vector<std::string> cap_add, cap_drop;  // "NET_ADMIN", "CAP_NET_ADMIN", "ALL"
    std::vector<MountSpec> mounts;
    std::vector<Ulimit> ulimits;             // replace the default spec's of the same type
};

struct ResolvedUser {
    uint32_t uid = 0, gid = 0;
    std::vector<uint32_t> additional_gids;
    std::string home = "/";
};

// Resolves a docker --user value against the rootfs at `rootfs` (a host
// path). Empty means root. Throws vitro::Error(ENOENT, "unable to find user …")
// for a name that is not in /etc/passwd (a group likewise).
ResolvedUser resolve_user(const std::string& rootfs, const std::string& user);

// Sets "K=V" in env: replaces an entry of the same name in place, else appends.
void env_set(std::vector<std::string>& env, const std::string& kv);

// The capability set docker gives a container by default.
std::vector<std::string> default_capabilities();

// process.args: docker's Entrypoint/Cmd combination (see the top of this file).
std::vector<std::string> container_args(const ImageConfig& image, const RunOptions& opts);

// Builds config.json. `rootfs` is the host path of the container's rootfs
// (e.g. the snapshot's merged dir), read for user names only.
nlohmann::json build_spec(const ImageConfig& image, const RunOptions& opts, const std::string& rootfs);

}  // namespace vitro::engine
