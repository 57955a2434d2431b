// The OCI runtime behind the engine: vitro's own runtime/ library, called
// in-process (the fast path), or any runc-compatible binary (--runtime crun,
// runc or a path) driven through its command line, for comparisons.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/runtime.hpp"
#include "util/fd.hpp"

namespace vitro::engine {

// What `vitro exec` changes in the container's own process settings.
struct ExecRequest {
    std::vector<std::string> args;
    std::vector<std::string> env;  // "K=V", added to (or replacing in) the container's
    std::optional<oci::User> user;
    std::string cwd;               // empty: the container's
    bool tty = false, detach = false;
};

struct StartedProcess {
    pid_t pid = -1;
    UniqueFd console_master;  // process.terminal only
};

class RuntimeDriver {
public:
    virtual ~RuntimeDriver() = default;
    // Creates and starts container `id` from `bundle`. The container's stdio is
    // the caller's fds 0-2 (unless the spec asks for a terminal: then its pty
    // master comes back). The caller must be a child subreaper: the container's
    // init ends up as its child.
    virtual StartedProcess create_and_start(const std::string& id, const std::string& bundle) = 0;
    virtual void kill(const std::string& id, int signal, bool all) = 0;
    // Deletes the runtime's record and cgroup; a missing container is fine.
    virtual void remove(const std::string& id) = 0;
    // Runs a process in the container in the foreground; returns its status.
    virtual int exec(const std::string& id, const ExecRequest& req) = 0;
    virtual std::vector<pid_t> pids(const std::string& id) = 0;
    // Freezes (pause) or thaws (resume) every process of the container.
    virtual void pause(const std::string& id) = 0;
    virtual void resume(const std::string& id) = 0;
    // The cgroup's counters, as runc's `events --stats` data ("cpu", "memory", "pids").
    virtual nlohmann::json stats(const std::string& id) = 0;
    virtual std::string name() const = 0;
};

// `binary` empty: the built-in runtime; "crun"/"runc" are searched in PATH.
// State lives under <runroot>/runtime (built-in) or <runroot>/runtime-<name>.
std::unique_ptr<RuntimeDriver> make_runtime_driver(const std::string& binary, const std::string& runroot);

// Docker's exit code for a process that could not be started: 127 when the
// executable does not exist, 126 when it cannot be run, 0 when `e` is not such an error.
int exec_failure_exit_code(const std::exception& e);

}  // namespace vitro::engine
