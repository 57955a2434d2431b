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
// Losing the database: the file carries vitro's application_id (and the
// schema version as user_version), and a database that is missing or empty
// beside state it must have held (a WAL, containers' own record files), whose
// WAL header is damaged, or that is some other program's, is refused with
// StateLostError instead of being started afresh; `vitro system repair`
// rebuilds it from the containers' records (engine/engine.hpp).
//
// A full file system: a reserve file beside the database (kReserveBytes) is
// given up when a write fails with SQLITE_FULL, and the write retried, so that
// the records a stop or a removal needs can still be written.
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

#include "util/error.hpp"
#include "util/sqlite.hpp"

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
// The database is missing, empty, damaged or not vitro's while the root shows
// that it held state: refused, never started afresh.
class StateLostError : public Error {
public:
    using Error::Error;
};

// "VITR": the application_id of vitro's state database.
inline constexpr int32_t kStateApplicationId = 0x56495452;
// The file in a container's directory that keeps its record outside SQLite.
inline constexpr const char* kContainerRecordFile = "container.json";
// Bytes kept free beside the database for the writes a stop or rm needs.
inline constexpr int64_t kReserveBytes = 1 << 20;
// WAL pages after which a commit checkpoints into the database file.
inline constexpr int kAutoCheckpointPages = 64;

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

// Is this `running` row's container alive although its monitor is gone (a
// container whose waiter died: it keeps running, to be adopted)?
using KeepRunningFn = std::function<bool(const ContainerRecord& c)>;

struct RepairReport {
    // Were `running`, process gone: now `exited` (exit_code kept if one was
    // recorded, else null: unknown), pid 0, finished_at set.
    std::vector<ContainerRecord> exited;
    // Were `removing` with a dead remover, or `created` with a dead owner (a
    // `run --rm` killed before it started them): now `removing`, claimed by
    // this process (owner = us), still in the table. The caller cleans their resources up (idempotently)
    // and then calls remove_container(id); a crash before that leaves them for
    // the next repair.
    std::vector<ContainerRecord> removing;
};

// A container record as JSON (the record file), and back (throws Error).
nlohmann::json to_json(const ContainerRecord& c);
ContainerRecord container_from_json(const nlohmann::json& j);

// The state files as found on disk, before SQLite opens them (it would delete
// the WAL of an empty database file, and ignore a WAL whose header is damaged).
struct StateFiles {
    bool db_exists = false;
    int64_t db_size = 0;
    int64_t wal_size = 0;
    bool wal_damaged = false;  // a WAL of a header's size or more without SQLite's magic
    // <dir of the database>/containers/<id>/container.json files (listed
    // unless Records::IfDbEmpty was asked and the database has content).
    std::vector<std::string> container_records;
    // Why the database cannot be trusted to hold the state ("" when it can:
    // a present database, or a fresh root with nothing in it).
    std::string problem(const std::string& db_path) const;
};
// Every command opens the store: it lists the containers' records (a stat
// per container) only where problem() needs them, unless asked for them all.
enum class Records { All, IfDbEmpty };
StateFiles probe_state_files(const std::string& db_path, Records records = Records::All);

class StateStore {
public:
    // Normal: refuse a lost database (StateLostError). Rebuild (`vitro system
    // repair`): open whatever is there, the caller having set a lost one aside.
    enum class Open { Normal, Rebuild };
    // Opens (creating it and its parent directory when missing) the database,
    // sets WAL, busy_timeout and foreign keys, and migrates the schema.
    explicit StateStore(std::string path = kDefaultStatePath,
                        int busy_timeout_ms = 5000, Open mode = Open::Normal);
    // SQLite's WAL hook holds `this`: never copied or moved.
    StateStore(const StateStore&) = delete;
    StateStore& operator=(const StateStore&) = delete;

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
    // IDs of every container row (for the check against the record files).
    std::vector<std::string> container_ids();

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
    RepairReport repair(const IsAliveFn& is_alive = default_is_alive, const KeepRunningFn& keep_running = nullptr);

    // Called with every container row written (added, updated, repaired),
    // just before its transaction commits (under the write lock; not for a
    // transaction rolled back): the engine keeps each container's record
    // outside SQLite too (kContainerRecordFile).
    void on_container_written(std::function<void(const ContainerRecord&)> hook) { hook_ = std::move(hook); }

    // Is the reserve file there (see kReserveBytes)?
    bool has_reserve() const;

private:
    void open_and_migrate(int busy_timeout_ms);
    // Refuses a database that is some other program's (StateLostError); false
    // when it is not marked as vitro's yet (new, or from before the mark).
    bool check_identity();
    // with_transaction without the retry on a full file system.
    void run_transaction(const std::function<void()>& fn);
    // Creates the reserve file when missing and the file system has room.
    void ensure_reserve();
    // Deletes the reserve file; false when there was none.
    bool release_reserve();
    std::optional<ContainerRecord> container_by_id(std::string_view id);
    std::optional<PodRecord> pod_by_id(std::string_view id);
    void write_container(const ContainerRecord& c);  // UPDATE of every column

    static int checkpoint_hook(void* self, sqlite3* db, const char* name, int frames);
    void written(const ContainerRecord& c) {
        if (hook_) pending_.push_back(c);
    }

    sql::Db db_;
    int tx_depth_ = 0;
    int busy_timeout_ms_ = 5000;
    Open open_mode_ = Open::Normal;
    std::function<void(const ContainerRecord&)> hook_;
    std::vector<ContainerRecord> pending_;  // written in the open transaction
};

}  // namespace vitro::engine
