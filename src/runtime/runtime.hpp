// runtime/: the OCI lifecycle as a library. vitro-runtime is a thin CLI over
// these calls; the engine calls them in-process.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "oci/spec.hpp"
#include "oci/state.hpp"

namespace vitro::runtime {

struct Context {
    std::string root = "/run/vitro-runtime";  // --root: state directories live here
};

struct CreateOptions {
    std::string bundle = ".";
    std::string pid_file;
    std::string console_socket;
    bool no_pivot = false;
    bool no_new_keyring = false;
    int preserve_fds = 0;
    // For `run` in the foreground: keep the init a child of this process and
    // proxy its terminal here when process.terminal is set without a socket.
    bool foreground = false;
};

// create: sets up the container and leaves its init waiting for `start`.
// Returns the init's host pid.
pid_t create(const Context& ctx, const std::string& id, const CreateOptions& opts);
// start: releases a created container's process; runs poststart hooks.
void start(const Context& ctx, const std::string& id);
// run: create + start; in the foreground waits and returns the exit status
// (128+signal when killed), deleting the container afterwards.
int run(const Context& ctx, const std::string& id, const CreateOptions& opts, bool detach);

// The container's state with a live status (the on-disk record refreshed).
oci::State state(const Context& ctx, const std::string& id);
std::vector<oci::State> list(const Context& ctx);

void kill(const Context& ctx, const std::string& id, int signal, bool all);
void remove(const Context& ctx, const std::string& id, bool force);
void pause(const Context& ctx, const std::string& id);
void resume(const Context& ctx, const std::string& id);
std::vector<pid_t> pids(const Context& ctx, const std::string& id);
void update(const Context& ctx, const std::string& id, const oci::Resources& resources);
// runc's "stats" event data for the container.
nlohmann::json stats(const Context& ctx, const std::string& id);

struct ExecOptions {
    oci::Process process;
    bool detach = false;
    std::string pid_file;
    std::string console_socket;
    int preserve_fds = 0;
};
// The process that `exec` runs by default: the container's own process
// settings (user, env, caps, rlimits...) with these args.
oci::Process exec_base_process(const Context& ctx, const std::string& id);
// Runs a new process inside a running container. Detached: returns 0 once it
// started; otherwise waits and returns its exit status.
int exec(const Context& ctx, const std::string& id, const ExecOptions& opts);

// Container ids: [A-Za-z0-9][A-Za-z0-9_.+-]*, at most 1024 bytes.
void validate_id(const std::string& id);

// Signal names ("KILL", "SIGKILL") or numbers ("9").
int parse_signal(const std::string& s);

}  // namespace vitro::runtime
