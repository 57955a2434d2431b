// The engine's state: containers, pods and networks in one SQLite database
// (/var/lib/vitro/vitro.db by default), WAL mode.
//
// Concurrency: any number of vitro processes may open the same database. Every
// write runs in a BEGIN IMMEDIATE transaction (the write lock is taken up front,
// so a writer waits on the busy timeout instead of failing with SQLITE_BUSY on a
// read-to-write upgrade). Readers never block writers (WAL).
//
// Crash safety: a process killed at any point leaves either the whole of a
// transaction or none of it. What a kill -9 can leave behind is a container
// recorded as `running` whose process is gone, or one stuck in `removing`
// whose remover died: repair() finds both.
//
// A StateStore (like the sqlite3 connection it owns) belongs to one thread,
// and must not be used across fork(): a child opens its own.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/sqlite.hpp"
#include "util/error.hpp"

namespace vitro::engine {

inline constexpr const char* kDefaultStatePath = "/var/lib/vitro/vitro.db";

// No container/pod/network matches the reference given.
class NotFoundError : public Error {
public:
    using Error::Error;
};
// A name already in use, an ambiguous ID prefix, a removal already under way.
class ConflictError : public Error {
public:
    using Error::Error;
};

enum class ContainerState { Created, Running, Exited, Removing };
std::string_view to_string(ContainerState s);
ContainerState parse_container_state(std::string_view s);  // throws Error

struct ContainerRecord {
    std::string id;    // 64 hex, chosen by the engine
    std::string name;  // unique among containers
    std::string image;
    std::string image_digest;
    std::string bundle;
    ContainerState state = ContainerState::Created;
    pid_t pid = 0;                // the container's init (or its monitor), 0 when none
    uint64_t pid_start_time = 0;  // /proc/<pid>/stat field 22, to tell a reused pid apart
    std::optional<int> exit_code;
    std::string created_at;  // RFC 3339; filled by add_container when empty
    std::optional<std::string> started_at;
    std::optional<std::string> finished_at;
    nlohmann::json config = nlohmann::json::object();
    std::optional<std::string> pod_id;
    // The process removing this container while state == Removing.
    pid_t owner_pid = 0;
    uint64_t owner_start_time = 0;
};

struct PodRecord {
    std::string id;
    std::string name;   // unique among pods
    std::string netns;  // path of the pod's network namespace ("" when none yet)
    std::string created_at;
    // The pod's settings (engine/pods.hpp): labels, hostname, shared
    // namespaces, the infra container's ID.
    nlohmann::json config = nlohmann::json::object();
};

struct NetworkRecord {
    std::string name;
    std::string conflist;  // path of the conflist file
};

// Is `pid` still the process that started at `start_time` (0: unknown)?
using IsAliveFn = std::function<bool(pid_t pid, uint64_t start_time)>;
// The default: /proc/<pid>/stat exists, is no zombie, and its start time matches.
bool default_is_alive(pid_t pid, uint64_t start_time);

struct RepairReport {
    // Were `running`, process gone: now `exited` (exit_code kept if one was
    // recorded, else null: unknown), pid 0, finished_at set.
    std::vector<ContainerRecord> exited;
    // Were `removing` with a dead remover: now claimed by this process (owner =
    // us), still in the table. The caller cleans their resources up (idempotently)
    // and then calls remove_container(id); a crash before that leaves them for
    // the next repair.
    std::vector<ContainerRecord> removing;
};

class StateStore {
public:
    // Opens (creating it and its parent directory when missing) the database,
    // sets WAL, busy_timeout and foreign keys, and migrates the schema.
    explicit StateStore(std::string path = kDefaultStatePath,
                        int busy_timeout_ms = 5000);

    const std::string& path() const noexcept { return db_.path(); }
    int schema_version();
    static int latest_schema_version();

    // Runs fn inside BEGIN IMMEDIATE … COMMIT; ROLLBACK when fn throws (the
    // exception goes on). A call made inside fn joins the outer transaction.
    void with_transaction(const std::function<void()>& fn);

    // --- containers
    // created_at is set when empty. Name taken: ConflictError
    // "the container name \"x\" is already in use by <id>".
    void add_container(const ContainerRecord& c);
    // By exact ID, then exact name, then unique ID prefix. NotFoundError /
    // ConflictError (ambiguous prefix).
    ContainerRecord get_container(std::string_view ref);
    std::optional<ContainerRecord> find_container(std::string_view ref);
    // All containers (or those of one pod), oldest first.
    std::vector<ContainerRecord> list_containers(const std::optional<std::string>& pod_id = std::nullopt);
    // Read-modify-write of one row (by full ID) in one transaction; returns the
    // row as written. The id cannot be changed; a name change is checked for
    // uniqueness like add_container.
    ContainerRecord update_container(const std::string& id, const std::function<void(ContainerRecord&)>& fn);
    ContainerRecord set_running(const std::string& id, pid_t pid, uint64_t pid_start_time);
    ContainerRecord set_exited(const std::string& id, std::optional<int> exit_code);
    // Moves to `removing`, owned by this process. ConflictError when another
    // live process is already removing it (a dead remover is taken over).
    ContainerRecord begin_remove(const std::string& id);
    // Deletes the row; false when there was none.
    bool remove_container(const std::string& id);

    // --- pods
    void add_pod(const PodRecord& p);  // "the pod name \"x\" is already in use by <id>"
    PodRecord get_pod(std::string_view ref);
    std::optional<PodRecord> find_pod(std::string_view ref);
    std::vector<PodRecord> list_pods();
    PodRecord update_pod(const std::string& id, const std::function<void(PodRecord&)>& fn);
    // ConflictError while containers still belong to it; false when there was none.
    bool remove_pod(const std::string& id);

    // --- networks
    void add_network(const NetworkRecord& n);  // ConflictError when the name exists
    std::optional<NetworkRecord> find_network(std::string_view name);
    std::vector<NetworkRecord> list_networks();
    bool remove_network(std::string_view name);

    // --- crash repair: see RepairReport. One transaction.
    RepairReport repair(const IsAliveFn& is_alive = default_is_alive);

private:
    void open_and_migrate(int busy_timeout_ms);
    std::optional<ContainerRecord> container_by_id(std::string_view id);
    std::optional<PodRecord> pod_by_id(std::string_view id);
    void write_container(const ContainerRecord& c);  // UPDATE of every column

    sql::Db db_;
    int tx_depth_ = 0;
};

}  // namespace vitro::engine
