// engine/: containers as a user sees them. One Engine per vitro command; no
// daemon: a detached container's only companion is its monitor process
// (monitor.hpp), and the state is the SQLite store every command shares.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/container_log.hpp"
#include "engine/container_network.hpp"
#include "engine/pods.hpp"
#include "engine/runtime_driver.hpp"
#include "engine/spec_builder.hpp"
#include "engine/state_store.hpp"
#include "engine/volumes.hpp"
#include "image/snapshot.hpp"
#include "image/store.hpp"
#include "util/fd.hpp"

namespace vitro::engine {

struct EngineOptions {
    std::string root = "/var/lib/vitro";  // images, layers, containers, vitro.db
    std::string runroot = "/run/vitro";   // runtime state, netns pins (tmpfs)
    std::string net_dir = "/etc/vitro/net.d";
    std::string cni_path = "/usr/lib/cni";
    std::string runtime;                  // empty: built in
    // The vitro binary and the vitro-monitor beside it, for a detached
    // container's monitor (empty: the monitor waits as a fork of vitro).
    std::string self_binary, monitor_binary;
    // The static vitro-pause a pod's infra container runs (beside vitro).
    std::string pause_binary;
    // The static vitro-agent a microVM boots into (beside vitro; --isolation vm).
    std::string agent_binary;
    // `vitro system repair`: open a state database that would be refused
    // (missing, empty, damaged WAL), the lost one having been set aside.
    bool rebuild_state = false;
};

// argv that runs vitro itself with these options (before a subcommand).
std::vector<std::string> engine_command(const EngineOptions& o);

enum class RestartPolicy { No, OnFailure, Always, UnlessStopped };
struct Restart {
    RestartPolicy policy = RestartPolicy::No;
    int max_retries = 0;  // on-failure:N (0: no limit)
};
// "no", "on-failure[:N]", "always", "unless-stopped". Throws Error naming the value.
Restart parse_restart(const std::string& value);

struct CreateRequest {
    std::string image;
    std::string name;     // empty: generated
    RunOptions run;       // command, env, user, limits, mounts, tty...
    std::vector<std::string> volumes;  // -v SRC:DST[:ro] (SRC a host path or a volume name)
    std::vector<std::string> tmpfs;    // --tmpfs DST[:OPTIONS]
    std::string network;  // "" (the default network), bridge, none, host, NAME
    std::vector<PortMapping> ports;
    Restart restart;
    bool auto_remove = false;
    bool interactive = false;
    std::string stop_signal = "SIGTERM";
    int stop_timeout = 10;
    std::vector<std::string> security_opts;  // seccomp=FILE|unconfined, no-new-privileges
    std::string pod;      // a pod's name or id: share its namespaces
    LogLimits log;        // --log-opt max-size/max-file: how much output ctr.log keeps
    std::string isolation;  // "" or "namespaces" (the default), "vm" (a microVM, engine/vm_driver.hpp)
    EtcOptions etc;       // --add-host, --dns, --dns-search, --dns-option
    std::map<std::string, std::string> labels;  // --label (over the image's labels)
    // `run`: the creating command starts it next. A container whose creating
    // command dies before that (or, for `create`, before its bundle is
    // complete) is removed by the next repair.
    bool started_by_creator = false;
};

// What a container is made from: an image's config and unpacked layers
// (base first), or, for a pod's infra, the pause rootfs.
struct ImageSource {
    std::string image, digest;
    ImageConfig config;
    std::vector<std::string> layers;
};

struct StartOptions {
    bool attach = false;       // stay, copy the output here, return the exit code
    bool interactive = false;  // with attach: our stdin goes to the container
    bool sig_proxy = true;     // with attach: our signals go to the container (podman's --sig-proxy)
};

struct ExecOptions {
    ExecRequest req;
    std::string user;  // --user, resolved in the container's rootfs
};

// The checks of a request that need no state (name, --stop-signal, --memory
// floor), so that a command can refuse bad flags before it pulls or makes
// anything; Engine::create makes them again.
void validate_request(const CreateRequest& req);

// A container's root file system open for `cp` and `export`: the overlay a
// running container uses (a stop meanwhile detaches it; this fd keeps it
// alive), or a stopped one's mounted for the purpose, held under the
// container's lock (no start meanwhile) and unmounted when this goes.
class ContainerRootfs {
public:
    ContainerRootfs(ContainerRecord c, UniqueFd root, UniqueFd lock, std::optional<image::Snapshot> mounted)
        : c_(std::move(c)), root_(std::move(root)), lock_(std::move(lock)), mounted_(std::move(mounted)) {}
    ContainerRootfs(ContainerRootfs&&) = default;
    ContainerRootfs& operator=(ContainerRootfs&&) = delete;
    ~ContainerRootfs();

    // O_RDONLY|O_DIRECTORY fd of the rootfs: resolve paths in it with
    // os::open_in_root (linux/mounts.hpp), never by joining strings.
    int fd() const { return root_.get(); }
    const ContainerRecord& container() const { return c_; }

private:
    ContainerRecord c_;
    UniqueFd root_, lock_;
    std::optional<image::Snapshot> mounted_;
};

class Engine {
public:
    explicit Engine(EngineOptions opts);
    ~Engine();

    const EngineOptions& options() const { return opts_; }
    // Opened on first use (again after start() closed it across its fork).
    StateStore& state();
    const image::Store& images() const { return images_; }

    // Records the container, prepares its rootfs and bundle. On failure
    // nothing is left (row, snapshot, bundle).
    ContainerRecord create(const CreateRequest& req);
    // Starts a created or exited container under a new monitor. With attach,
    // returns the container's exit code once it is gone (and removed, --rm).
    int start(const std::string& ref, const StartOptions& opts);
    // Signal, wait `timeout` seconds, then SIGKILL; returns once it has exited.
    ContainerRecord stop(const std::string& ref, std::optional<int> timeout);
    void kill(const std::string& ref, int signal);
    // stop() when running (paused too), then start(); a --rm container is
    // kept for the start (restart_pending), and removed by the next repair
    // when this process dies in between.
    void restart(const std::string& ref, std::optional<int> timeout);
    // Freezes a running container's processes (the runtime's pause: the
    // cgroup freezer), or thaws a paused one. ConflictError in any other state.
    void pause(const std::string& ref);
    void unpause(const std::string& ref);
    // Gives the container a new name, checked as `run --name`'s (ConflictError
    // when taken); a pod's infra keeps its name.
    ContainerRecord rename(const std::string& ref, const std::string& name);
    // Stops (force) and removes everything of the container.
    void remove(const std::string& ref, bool force);
    // Waits for the container to exit; returns its code.
    int wait(const std::string& ref);
    int exec(const std::string& ref, const ExecOptions& opts);
    // Every container, after repairing what crashed processes left.
    std::vector<ContainerRecord> list();
    ContainerRecord get(const std::string& ref);
    std::vector<pid_t> pids(const std::string& ref);
    // The container's root file system (see ContainerRootfs).
    ContainerRootfs open_rootfs(const std::string& ref);
    // A running container's cgroup counters (RuntimeDriver::stats).
    nlohmann::json stats(const std::string& ref);
    // --- pods (engine/pods.cpp; see pods.hpp)
    // Records the pod and creates its infra container (not started, as
    // podman). Checks the network and the ports first; on failure nothing is
    // left (row, infra, rootfs).
    PodRecord pod_create(const PodCreateRequest& req);
    // Starts the infra, then every member not running.
    void pod_start(const std::string& ref);
    // Stops the members, then the infra.
    void pod_stop(const std::string& ref, std::optional<int> timeout);
    void pod_kill(const std::string& ref, int signal);
    // A pod with running containers: ConflictError unless force (then they
    // are stopped); removes every container and the pod.
    void pod_remove(const std::string& ref, bool force);
    PodInfo pod_get(const std::string& ref);
    std::vector<PodInfo> pod_list();
    // The pod a container belongs to (none for most).
    std::optional<PodRecord> pod_of(const ContainerRecord& c);
    // Stops the running members of a pod other than its infra (after the
    // infra died, before it is stopped).
    void stop_pod_members(const std::string& pod_id, std::optional<int> timeout);

    // --- named volumes (engine/volumes.cpp; see volumes.hpp)
    // Returns the new (or, --ignore, existing) volume's name.
    std::string volume_create(const VolumeCreateRequest& req);
    // Every volume with the containers using it.
    std::vector<VolumeInfo> volume_list();
    VolumeInfo volume_inspect(const std::string& name);
    // NotFoundError when missing; VolumeInUseError while a container uses
    // it, unless force (then those containers are removed first).
    void volume_remove(const std::string& name, bool force);
    // Removes every volume no container uses (and `selected` accepts, when
    // given); returns their names.
    std::vector<std::string> volume_prune(const std::function<bool(const VolumeInfo&)>& selected = {});

    // Fixes records of containers whose processes died (kill -9), finishes
    // interrupted removals, and gives a running container whose monitor died
    // a new one (adopt). Runs at the start of every command that reads state.
    void repair();

    // Containers whose record files (kContainerRecordFile) the database does
    // not know: what a damaged or replaced database lost.
    std::vector<ContainerRecord> unknown_containers();
    // `vitro system repair`: puts every unknown container back in the
    // database (then repair() adopts the running ones); returns them.
    std::vector<ContainerRecord> restore_unknown_containers();
    // Writes the container's record file (best effort: a warning on failure).
    void save_record(const ContainerRecord& c) const;

    std::string log_path(const ContainerRecord& c) const { return c.bundle + "/ctr.log"; }
    NetworkPaths network_paths() const;
    std::unique_ptr<RuntimeDriver> driver_for(const ContainerRecord& c) const;

    // After the container's process has exited (the monitor), or when removing
    // or repairing: the runtime's record, the network and the rootfs mount go;
    // the row and the container dir stay. Idempotent, never throws.
    void release_resources(const ContainerRecord& c);

private:
    // start() of a container found.
    int start_container(ContainerRecord c, const StartOptions& opts);
    void wait_exited(const std::string& id, int timeout_ms);
    // create() once the image is known; `pod` for a member or (infra) the
    // pod's infra.
    ContainerRecord create_from(const CreateRequest& req, const ImageSource& src, const PodRecord* pod, bool infra);
    // Marks the stop as asked for (no restart) and sends the stop signal.
    void send_stop_signal(const ContainerRecord& c);
    // A paused container's processes thawed (a stop's or kill's signal then
    // reaches them) and the record says so; a failure is a warning.
    void thaw(const ContainerRecord& c);
    bool removed_by_its_monitor(const std::string& id);
    // remove() without the check that keeps a pod's infra.
    void remove_container(ContainerRecord c, bool force);
    // A member about to start: the infra running, the spec pointed at its namespaces.
    void prepare_pod_member(const ContainerRecord& c);
    // One joining another's network namespace (--network container:X, `mode`)
    // about to start: X running, else an error naming X.
    void require_net_owner_running(const ContainerRecord& c, const std::string& mode);
    // <root>/pause/rootfs with the current vitro-pause: the infra's only layer.
    std::string ensure_pause_layer();
    // A running container whose monitor died while its init lives on: a new
    // vitro-monitor takes it over (traces the init for its exit code).
    void adopt(const ContainerRecord& c);
    // Refuses (StateLostError) while containers' records are unknown to the database.
    void check_nothing_lost();

    EngineOptions opts_;
    image::Store images_;
    std::unique_ptr<StateStore> state_;
};

// Is this container a pod's infra (removed only with its pod)?
inline bool is_infra(const ContainerRecord& c) { return c.config.value("infra", false); }
// The name of the pod a container belongs to ("" for none): with
// ContainerRecord::pod_id, what ps, inspect and the metrics exporter label it with.
inline std::string pod_name(const ContainerRecord& c) { return c.config.value("pod", ""); }

// A running container's record holds its monitor as `pid` (the monitor owns
// the container's life: a dead monitor means a container to repair) and the
// container's init in config "init_pid"/"init_start_time".
// True when the record says running and its monitor, or (a monitor killed,
// the container not adopted yet) its init, is still there.
bool is_running(const ContainerRecord& c);
// Running, with its processes frozen (`vitro pause`).
inline bool is_paused(const ContainerRecord& c) {
    return c.state == ContainerState::Running && c.config.value("paused", false);
}
// The init is alive (pid and start time match).
bool init_alive(const ContainerRecord& c);
// A `vitro restart` of this container is under way (the process that marked
// it, config "restart_pending", lives): its exit is for the start that
// follows, not for --rm.
bool restart_pending(const ContainerRecord& c);
pid_t init_pid(const ContainerRecord& c);

}  // namespace vitro::engine
