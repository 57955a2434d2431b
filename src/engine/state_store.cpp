#include "engine/state_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

#include "linux/procfs.hpp"
#include "util/fd.hpp"
#include "util/log.hpp"
#include "util/time.hpp"

namespace vitro::engine {

namespace fs = std::filesystem;

namespace {

// Migration i takes the schema from version i to i + 1. Append only: never edit
// a migration that has shipped.
const char* const kMigrations[] = {
    // 1: the initial schema.
    R"sql(
CREATE TABLE pods (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE,
    netns       TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL
);
CREATE TABLE containers (
    id                TEXT PRIMARY KEY NOT NULL,
    name              TEXT NOT NULL UNIQUE,
    image             TEXT NOT NULL,
    image_digest      TEXT NOT NULL DEFAULT '',
    bundle            TEXT NOT NULL DEFAULT '',
    state             TEXT NOT NULL CHECK (state IN ('created', 'running', 'exited', 'removing')),
    pid               INTEGER NOT NULL DEFAULT 0,
    pid_start_time    INTEGER NOT NULL DEFAULT 0,
    exit_code         INTEGER,
    created_at        TEXT NOT NULL,
    started_at        TEXT,
    finished_at       TEXT,
    config            TEXT NOT NULL DEFAULT '{}',
    pod_id            TEXT REFERENCES pods(id),
    owner_pid         INTEGER NOT NULL DEFAULT 0,
    owner_start_time  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX containers_by_pod ON containers(pod_id);
CREATE INDEX containers_by_state ON containers(state);
CREATE TABLE networks (
    name      TEXT PRIMARY KEY NOT NULL,
    conflist  TEXT NOT NULL
);
)sql",
    // 2: a pod's own settings (labels, hostname, shared namespaces, infra ID).
    R"sql(
ALTER TABLE pods ADD COLUMN config TEXT NOT NULL DEFAULT '{}';
)sql",
};
constexpr int kLatest = static_cast<int>(sizeof kMigrations / sizeof kMigrations[0]);

constexpr const char* kContainerCols =
    "id, name, image, image_digest, bundle, state, pid, pid_start_time, exit_code, created_at, "
    "started_at, finished_at, config, pod_id, owner_pid, owner_start_time";
constexpr const char* kPodCols = "id, name, netns, created_at, config";

ContainerRecord container_from_row(const sql::Stmt& s, const std::string& db_path) {
    ContainerRecord c;
    c.id = s.text(0);
    c.name = s.text(1);
    c.image = s.text(2);
    c.image_digest = s.text(3);
    c.bundle = s.text(4);
    c.state = parse_container_state(s.text(5));
    c.pid = static_cast<pid_t>(s.int64(6));
    c.pid_start_time = static_cast<uint64_t>(s.int64(7));
    if (auto e = s.opt_int64(8)) c.exit_code = static_cast<int>(*e);
    c.created_at = s.text(9);
    c.started_at = s.opt_text(10);
    c.finished_at = s.opt_text(11);
    try {
        c.config = nlohmann::json::parse(s.text(12));
    } catch (const nlohmann::json::exception& e) {
        throw Error("container " + c.id + " in " + db_path + ": config is not JSON: " + e.what());
    }
    c.pod_id = s.opt_text(13);
    c.owner_pid = static_cast<pid_t>(s.int64(14));
    c.owner_start_time = static_cast<uint64_t>(s.int64(15));
    return c;
}

PodRecord pod_from_row(const sql::Stmt& s) {
    PodRecord p{s.text(0), s.text(1), s.text(2), s.text(3), nlohmann::json::object()};
    try {
        p.config = nlohmann::json::parse(s.text(4));
        if (p.config.is_null()) p.config = nlohmann::json::object();
    } catch (const nlohmann::json::exception& e) {
        throw Error("pod " + p.id + ": config is not JSON: " + e.what());
    }
    return p;
}

// This process, as a remover: pid and start time.
std::pair<pid_t, uint64_t> self_identity() {
    pid_t pid = ::getpid();
    auto st = os::read_proc_stat(pid);
    return {pid, st ? st->start_time : 0};
}

// Exact ID, exact name, then unique ID prefix. `kind` is "container" or "pod".
template <typename Record, typename FromRow>
std::optional<Record> lookup(sql::Db& db, const char* table, const char* cols, const char* kind,
                             std::string_view ref, FromRow from_row) {
    if (ref.empty()) return std::nullopt;
    std::string base = std::string("SELECT ") + cols + " FROM " + table;
    for (const char* where : {" WHERE id = ?1", " WHERE name = ?1"}) {
        sql::Stmt s(db, base + where);
        s.bind(1, ref);
        if (s.step()) return from_row(s);
    }
    sql::Stmt s(db, base + " WHERE substr(id, 1, length(?1)) = ?1 ORDER BY id LIMIT 6");
    s.bind(1, ref);
    std::vector<Record> found;
    while (s.step()) found.push_back(from_row(s));
    if (found.empty()) return std::nullopt;
    if (found.size() == 1) return found.front();
    std::string ids;
    for (size_t i = 0; i < found.size() && i < 5; ++i) ids += (i ? ", " : "") + found[i].id.substr(0, 12);
    if (found.size() > 5) ids += ", ...";
    throw ConflictError("the " + std::string(kind) + " ID prefix \"" + std::string(ref) +
                        "\" is ambiguous: it matches more than one " + kind + " (" + ids + ")");
}

}  // namespace

std::string_view to_string(ContainerState s) {
    switch (s) {
        case ContainerState::Created: return "created";
        case ContainerState::Running: return "running";
        case ContainerState::Exited: return "exited";
        case ContainerState::Removing: return "removing";
    }
    return "unknown";
}

ContainerState parse_container_state(std::string_view s) {
    if (s == "created") return ContainerState::Created;
    if (s == "running") return ContainerState::Running;
    if (s == "exited") return ContainerState::Exited;
    if (s == "removing") return ContainerState::Removing;
    throw Error("unknown container state \"" + std::string(s) + "\"");
}

bool default_is_alive(pid_t pid, uint64_t start_time) { return os::process_alive(pid, start_time); }

nlohmann::json to_json(const ContainerRecord& c) {
    nlohmann::json j = {{"id", c.id},
                        {"name", c.name},
                        {"image", c.image},
                        {"image_digest", c.image_digest},
                        {"bundle", c.bundle},
                        {"state", to_string(c.state)},
                        {"pid", c.pid},
                        {"pid_start_time", c.pid_start_time},
                        {"created_at", c.created_at},
                        {"config", c.config}};
    if (c.exit_code) j["exit_code"] = *c.exit_code;
    if (c.started_at) j["started_at"] = *c.started_at;
    if (c.finished_at) j["finished_at"] = *c.finished_at;
    if (c.pod_id) j["pod_id"] = *c.pod_id;
    return j;
}

ContainerRecord container_from_json(const nlohmann::json& j) {
    try {
        ContainerRecord c;
        c.id = j.at("id").get<std::string>();
        c.name = j.at("name").get<std::string>();
        c.image = j.value("image", "");
        c.image_digest = j.value("image_digest", "");
        c.bundle = j.value("bundle", "");
        c.state = parse_container_state(j.value("state", "exited"));
        c.pid = j.value("pid", 0);
        c.pid_start_time = j.value("pid_start_time", uint64_t{0});
        if (j.contains("exit_code")) c.exit_code = j["exit_code"].get<int>();
        c.created_at = j.value("created_at", "");
        if (j.contains("started_at")) c.started_at = j["started_at"].get<std::string>();
        if (j.contains("finished_at")) c.finished_at = j["finished_at"].get<std::string>();
        c.config = j.value("config", nlohmann::json::object());
        if (j.contains("pod_id")) c.pod_id = j["pod_id"].get<std::string>();
        if (c.id.size() != 64 || c.name.empty()) throw Error("no valid id and name");
        return c;
    } catch (const nlohmann::json::exception& e) {
        throw Error(std::string("container record: ") + e.what());
    }
}

StateFiles probe_state_files(const std::string& db_path, Records records) {
    StateFiles f;
    struct stat st {};
    if (::stat(db_path.c_str(), &st) == 0) {
        f.db_exists = true;
        f.db_size = st.st_size;
    }
    UniqueFd wal(::open((db_path + "-wal").c_str(), O_RDONLY | O_CLOEXEC));
    if (wal && ::fstat(wal.get(), &st) == 0) {
        f.wal_size = st.st_size;
        // A WAL header (32 bytes) starts with 0x377f0682 or 0x377f0683, big-endian.
        unsigned char magic[4] = {};
        if (f.wal_size >= 32) {
            bool ok = ::pread(wal.get(), magic, 4, 0) == 4;
            uint32_t m = (uint32_t{magic[0]} << 24) | (uint32_t{magic[1]} << 16) | (uint32_t{magic[2]} << 8) | magic[3];
            f.wal_damaged = !ok || (m != 0x377f0682 && m != 0x377f0683);
        }
    }
    if (records == Records::IfDbEmpty && f.db_exists && f.db_size > 0) return f;
    std::error_code ec;
    fs::path dir = fs::path(db_path).parent_path() / "containers";
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        fs::path rec = e.path() / kContainerRecordFile;
        if (fs::exists(rec, ec)) f.container_records.push_back(rec.string());
    }
    std::sort(f.container_records.begin(), f.container_records.end());
    return f;
}

std::string StateFiles::problem(const std::string& db_path) const {
    if (wal_damaged)
        return "its write-ahead log " + db_path + "-wal (" + std::to_string(wal_size) +
               " bytes) is damaged: its header is not SQLite's, so the commits in it would be lost";
    if (db_exists && db_size > 0) return "";
    if (wal_size == 0 && container_records.empty()) return "";  // a fresh root
    std::string what = db_exists ? "is empty" : "is missing";
    std::string held;
    if (wal_size > 0) held = "a write-ahead log of " + std::to_string(wal_size) + " bytes";
    if (!container_records.empty())
        held += (held.empty() ? "" : " and ") + std::string("the records of ") +
                std::to_string(container_records.size()) + " container(s) in " +
                fs::path(db_path).parent_path().string() + "/containers";
    return what + ", but beside it are " + held;
}

StateStore::StateStore(std::string path, int busy_timeout_ms, Open mode) : open_mode_(mode) {
    fs::path p(path);
    std::error_code ec;
    if (p.has_parent_path()) {
        fs::create_directories(p.parent_path(), ec);
        if (ec) throw Error(ec.value(), "create state directory " + p.parent_path().string() + ": " + ec.message());
    }
    // SQLite would take an empty database file for a new one (and delete its
    // WAL), and skip a WAL whose header is damaged: look first.
    StateFiles files = probe_state_files(path, Records::IfDbEmpty);
    if (mode == Open::Normal) {
        if (std::string why = files.problem(path); !why.empty())
            throw StateLostError("state database " + path + " " + why +
                                 ". vitro does not start afresh over that state: `vitro system check` shows what "
                                 "is there, `vitro system repair` rebuilds the database from the containers' records");
    }
    db_ = sql::Db::open(path);
    // Engine state holds container configs (environment, secrets): owner only.
    // SQLite gives the -wal and -shm files the mode of the database file.
    if (!files.db_exists) ::chmod(path.c_str(), 0600);
    try {
        open_and_migrate(busy_timeout_ms);
    } catch (const sql::SqliteError& e) {
        if (e.primary_code() != SQLITE_NOTADB) throw;
        throw StateLostError("state database " + path + " is not an SQLite database (" + e.what() +
                             "): vitro does not start afresh over it; `vitro system repair` sets it aside and "
                             "rebuilds the database from the containers' records");
    }
    ensure_reserve();
}

bool StateStore::has_reserve() const { return ::access((path() + "-reserve").c_str(), F_OK) == 0; }

void StateStore::ensure_reserve() {
    std::string r = path() + "-reserve";
    if (::access(r.c_str(), F_OK) == 0) return;
    // Not the file system's last room: that is for the records it protects.
    struct statvfs vfs {};
    std::string dir = fs::path(path()).parent_path().string();
    if (::statvfs(dir.empty() ? "." : dir.c_str(), &vfs) != 0 ||
        static_cast<int64_t>(vfs.f_bavail) * static_cast<int64_t>(vfs.f_frsize) < 4 * kReserveBytes)
        return;
    UniqueFd fd(::open(r.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd) return;
    if (::posix_fallocate(fd.get(), 0, kReserveBytes) != 0) ::unlink(r.c_str());
}

bool StateStore::release_reserve() { return ::unlink((path() + "-reserve").c_str()) == 0; }

void StateStore::open_and_migrate(int busy_timeout_ms) {
    int rc = sqlite3_busy_timeout(db_.get(), busy_timeout_ms);
    if (rc != SQLITE_OK) db_.fail("busy_timeout", "", rc);

    // Switching to WAL takes an exclusive lock: when another process is opening
    // the same fresh database at the same moment, retry within the busy timeout.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(busy_timeout_ms);
    std::string mode;
    for (;;) {
        try {
            sql::Stmt s(db_, "PRAGMA journal_mode = WAL");
            if (s.step()) mode = s.text(0);
            break;
        } catch (const sql::SqliteError& e) {
            if ((e.primary_code() != SQLITE_BUSY && e.primary_code() != SQLITE_LOCKED) ||
                std::chrono::steady_clock::now() > deadline)
                throw;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    if (mode != "wal") throw Error("sqlite journal_mode (" + path() + "): WAL not available, got \"" + mode + "\"");
    bool marked = check_identity();
    // In WAL mode NORMAL keeps every commit atomic and the database consistent
    // across process crashes (kill -9); only an OS crash or power loss may lose
    // the last commits, never corrupt the file.
    db_.exec("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;");
    // No checkpoint when the last connection closes: every vitro command is
    // a short-lived process, usually the only one with the database open, so
    // each one's exit copied the WAL into the database and synced both
    // files (two fdatasyncs, 1-2 ms apiece here; a `vitro run --rm` has
    // four such exits). The WAL is checkpointed when it reaches
    // wal_autocheckpoint's 1000 pages instead, with the same syncs.
    rc = sqlite3_db_config(db_.get(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
    if (rc != SQLITE_OK) db_.fail("db_config(NO_CKPT_ON_CLOSE)", "", rc);
    // ...but the WAL must not hold the state for long: a database file that
    // lags the WAL by megabytes loses everything to a damaged WAL, and every
    // command's first open re-reads the whole WAL to rebuild its index (while
    // a second opener sleeps in the busy handler). See checkpoint_hook.
    busy_timeout_ms_ = busy_timeout_ms;
    sqlite3_wal_hook(db_.get(), &StateStore::checkpoint_hook, this);

    // The common case, an up-to-date database, needs no write transaction.
    try {
        if (marked && schema_version() == kLatest) return;
    } catch (const sql::SqliteError&) {
        // no schema_version table yet
    }
    with_transaction([&] {
        db_.exec(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);"
            "INSERT OR IGNORE INTO schema_version (id, version) VALUES (1, 0);");
        int version = schema_version();
        if (version > kLatest)
            throw Error("state database " + path() + " has schema version " + std::to_string(version) +
                        ", newer than this vitro knows (" + std::to_string(kLatest) + "): upgrade vitro");
        for (int v = version; v < kLatest; ++v) {
            try {
                db_.exec(kMigrations[v]);
            } catch (const Error& e) {
                throw e.wrap("migrate " + path() + " to schema version " + std::to_string(v + 1));
            }
        }
        if (version != kLatest) {
            sql::Stmt s(db_, "UPDATE schema_version SET version = ?1 WHERE id = 1");
            s.bind(1, kLatest).run();
        }
        db_.exec("PRAGMA application_id = " + std::to_string(kStateApplicationId) +
                 "; PRAGMA user_version = " + std::to_string(kLatest) + ";");
    });
}

// A commit that takes the WAL past kAutoCheckpointPages copies it into the
// database file and truncates it, without waiting: with another connection
// reading, the copy goes as far as it can (PASSIVE) and the truncation waits
// for a later commit. (SQLite's own autocheckpoint never truncates, and a
// command that opens the database alone rebuilds the WAL index as if nothing
// had been copied, so a WAL of many short-lived connections only grows.)
// Cost: one copy of at most a few hundred KiB and two fdatasyncs every
// kAutoCheckpointPages pages written, about every tenth `vitro run --rm`.
int StateStore::checkpoint_hook(void* self, sqlite3* db, const char*, int frames) {
    if (frames < kAutoCheckpointPages) return SQLITE_OK;
    auto* store = static_cast<StateStore*>(self);
    sqlite3_busy_timeout(db, 0);
    int rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
    sqlite3_busy_timeout(db, store->busy_timeout_ms_);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        log::warn("state database " + store->path() + ": checkpoint: " + sqlite3_errstr(rc));
    return SQLITE_OK;
}

namespace {
int64_t pragma_int(sql::Db& db, const char* sql) {
    sql::Stmt s(db, sql);
    return s.step() ? s.int64(0) : 0;
}
}  // namespace

bool StateStore::check_identity() {
    int64_t app = pragma_int(db_, "PRAGMA application_id");
    if (app == kStateApplicationId) return true;
    int64_t tables = pragma_int(db_, "SELECT count(*) FROM sqlite_master WHERE type = 'table'");
    int64_t ours = pragma_int(db_, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'");
    // Unmarked: a new database, or one vitro made before the mark (it has
    // vitro's schema_version table); the migration marks both.
    if (app == 0 && ours == 1) return false;
    if (app == 0 && tables == 0) {
        // New, unless containers' records lie beside it (its WAL was lost).
        StateFiles files = probe_state_files(path());
        if (open_mode_ == Open::Normal && !files.container_records.empty())
            throw StateLostError("state database " + path() + " holds no tables, but beside it are the records of " +
                                 std::to_string(files.container_records.size()) +
                                 " container(s): its write-ahead log was lost. vitro does not start afresh over that "
                                 "state: `vitro system check` shows what is there, `vitro system repair` rebuilds "
                                 "the database from the containers' records");
        return false;
    }
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%08x", static_cast<uint32_t>(app));
    throw StateLostError("state database " + path() + " is not vitro's (application_id " + hex + ", " +
                         std::to_string(tables) + " table(s), none of them vitro's schema_version): vitro does not "
                         "start afresh over it; `vitro system repair` sets it aside and rebuilds the database from "
                         "the containers' records");
}

int StateStore::schema_version() {
    sql::Stmt s(db_, "SELECT version FROM schema_version WHERE id = 1");
    return s.step() ? static_cast<int>(s.int64(0)) : 0;
}

int StateStore::latest_schema_version() { return kLatest; }

void StateStore::with_transaction(const std::function<void()>& fn) {
    if (tx_depth_ > 0) {
        run_transaction(fn);
        return;
    }
    pending_.clear();
    try {
        run_transaction(fn);
    } catch (const sql::SqliteError& e) {
        pending_.clear();
        if (e.primary_code() != SQLITE_FULL || !release_reserve()) throw;
        log::warn("state database " + path() + ": the file system is full (" + e.what() + "); gave up the " +
                  std::to_string(kReserveBytes >> 10) + " KiB reserve beside it to write this record");
        run_transaction(fn);
    } catch (...) {
        pending_.clear();
        throw;
    }
}

void StateStore::run_transaction(const std::function<void()>& fn) {
    if (tx_depth_ > 0) {
        ++tx_depth_;
        try {
            fn();
        } catch (...) {
            --tx_depth_;
            throw;
        }
        --tx_depth_;
        return;
    }
    db_.exec("BEGIN IMMEDIATE");
    tx_depth_ = 1;
    try {
        fn();
    } catch (...) {
        tx_depth_ = 0;
        if (db_.in_transaction()) sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
    // The hook runs before COMMIT, under the write lock: a remover (which
    // takes the lock) cannot delete the row and the record between our
    // commit and our record write, leaving a record of a removed container.
    try {
        std::vector<ContainerRecord> done;
        done.swap(pending_);
        for (const auto& c : done) hook_(c);
    } catch (...) {
        tx_depth_ = 0;
        if (db_.in_transaction()) sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
    tx_depth_ = 0;
    try {
        db_.exec("COMMIT");
    } catch (...) {
        if (db_.in_transaction()) sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
}

// ---------------------------------------------------------------- containers

std::optional<ContainerRecord> StateStore::container_by_id(std::string_view id) {
    sql::Stmt s(db_, std::string("SELECT ") + kContainerCols + " FROM containers WHERE id = ?1");
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return container_from_row(s, path());
}

void StateStore::add_container(const ContainerRecord& in) {
    if (in.id.empty()) throw Error("add container: empty ID");
    if (in.name.empty()) throw Error("add container " + in.id + ": empty name");
    ContainerRecord c = in;
    if (c.created_at.empty()) c.created_at = rfc3339_now();
    with_transaction([&] {
        {
            sql::Stmt s(db_, "SELECT id FROM containers WHERE name = ?1");
            s.bind(1, c.name);
            if (s.step())
                throw ConflictError("the container name \"" + c.name + "\" is already in use by " + s.text(0) +
                                    ". You have to remove that container to be able to reuse that name");
        }
        if (container_by_id(c.id)) throw ConflictError("a container with ID " + c.id + " already exists");
        if (c.pod_id && !pod_by_id(*c.pod_id)) throw NotFoundError("no pod with ID " + *c.pod_id + " found");
        sql::Stmt s(db_, std::string("INSERT INTO containers (") + kContainerCols +
                             ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)");
        s.bind(1, c.id).bind(2, c.name).bind(3, c.image).bind(4, c.image_digest).bind(5, c.bundle);
        s.bind(6, to_string(c.state)).bind(7, static_cast<int64_t>(c.pid));
        s.bind(8, static_cast<int64_t>(c.pid_start_time)).bind(9, c.exit_code).bind(10, c.created_at);
        s.bind(11, c.started_at).bind(12, c.finished_at).bind(13, c.config.dump()).bind(14, c.pod_id);
        s.bind(15, static_cast<int64_t>(c.owner_pid)).bind(16, static_cast<int64_t>(c.owner_start_time));
        s.run();
        written(c);
    });
}

void StateStore::write_container(const ContainerRecord& c) {
    sql::Stmt s(db_,
                "UPDATE containers SET name = ?2, image = ?3, image_digest = ?4, bundle = ?5, state = ?6, pid = ?7, "
                "pid_start_time = ?8, exit_code = ?9, created_at = ?10, started_at = ?11, finished_at = ?12, "
                "config = ?13, pod_id = ?14, owner_pid = ?15, owner_start_time = ?16 WHERE id = ?1");
    s.bind(1, c.id).bind(2, c.name).bind(3, c.image).bind(4, c.image_digest).bind(5, c.bundle);
    s.bind(6, to_string(c.state)).bind(7, static_cast<int64_t>(c.pid));
    s.bind(8, static_cast<int64_t>(c.pid_start_time)).bind(9, c.exit_code).bind(10, c.created_at);
    s.bind(11, c.started_at).bind(12, c.finished_at).bind(13, c.config.dump()).bind(14, c.pod_id);
    s.bind(15, static_cast<int64_t>(c.owner_pid)).bind(16, static_cast<int64_t>(c.owner_start_time));
    s.run();
    written(c);
}

std::optional<ContainerRecord> StateStore::find_container(std::string_view ref) {
    return lookup<ContainerRecord>(db_, "containers", kContainerCols, "container", ref,
                                   [&](const sql::Stmt& s) { return container_from_row(s, path()); });
}

ContainerRecord StateStore::get_container(std::string_view ref) {
    auto c = find_container(ref);
    if (!c) throw NotFoundError("no container with name or ID \"" + std::string(ref) + "\" found");
    return *c;
}

std::vector<ContainerRecord> StateStore::list_containers(const std::optional<std::string>& pod_id) {
    std::string q = std::string("SELECT ") + kContainerCols + " FROM containers";
    if (pod_id) q += " WHERE pod_id = ?1";
    q += " ORDER BY created_at, rowid";
    sql::Stmt s(db_, q);
    if (pod_id) s.bind(1, *pod_id);
    std::vector<ContainerRecord> out;
    while (s.step()) out.push_back(container_from_row(s, path()));
    return out;
}

ContainerRecord StateStore::update_container(const std::string& id,
                                             const std::function<void(ContainerRecord&)>& fn) {
    ContainerRecord c;
    with_transaction([&] {
        auto cur = container_by_id(id);
        if (!cur) throw NotFoundError("no container with ID " + id + " found");
        c = *cur;
        fn(c);
        c.id = id;
        if (c.name != cur->name) {
            sql::Stmt s(db_, "SELECT id FROM containers WHERE name = ?1");
            s.bind(1, c.name);
            if (s.step())
                throw ConflictError("the container name \"" + c.name + "\" is already in use by " + s.text(0));
        }
        write_container(c);
    });
    return c;
}

ContainerRecord StateStore::set_running(const std::string& id, pid_t pid, uint64_t pid_start_time) {
    return update_container(id, [&](ContainerRecord& c) {
        c.state = ContainerState::Running;
        c.pid = pid;
        c.pid_start_time = pid_start_time;
        c.exit_code.reset();
        c.started_at = rfc3339_now();
        c.finished_at.reset();
    });
}

ContainerRecord StateStore::set_exited(const std::string& id, std::optional<int> exit_code) {
    return update_container(id, [&](ContainerRecord& c) {
        // A container being removed stays `removing`; its exit is still recorded.
        if (c.state != ContainerState::Removing) c.state = ContainerState::Exited;
        c.pid = 0;
        c.pid_start_time = 0;
        c.exit_code = exit_code;
        c.finished_at = rfc3339_now();
    });
}

ContainerRecord StateStore::begin_remove(const std::string& id) {
    auto [self_pid, self_start] = self_identity();
    return update_container(id, [&](ContainerRecord& c) {
        if (c.state == ContainerState::Removing && c.owner_pid != self_pid && c.owner_pid > 0 &&
            default_is_alive(c.owner_pid, c.owner_start_time))
            throw ConflictError("container " + c.name + " (" + c.id.substr(0, 12) +
                                ") is already being removed by process " + std::to_string(c.owner_pid));
        c.state = ContainerState::Removing;
        c.owner_pid = self_pid;
        c.owner_start_time = self_start;
    });
}

bool StateStore::remove_container(const std::string& id) {
    bool removed = false;
    with_transaction([&] {
        sql::Stmt s(db_, "DELETE FROM containers WHERE id = ?1");
        s.bind(1, id).run();
        removed = db_.changes() > 0;
    });
    return removed;
}

std::vector<std::string> StateStore::container_ids() {
    sql::Stmt s(db_, "SELECT id FROM containers ORDER BY id");
    std::vector<std::string> out;
    while (s.step()) out.push_back(s.text(0));
    return out;
}

// ---------------------------------------------------------------- pods

std::optional<PodRecord> StateStore::pod_by_id(std::string_view id) {
    sql::Stmt s(db_, std::string("SELECT ") + kPodCols + " FROM pods WHERE id = ?1");
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return pod_from_row(s);
}

void StateStore::add_pod(const PodRecord& in) {
    if (in.id.empty()) throw Error("add pod: empty ID");
    if (in.name.empty()) throw Error("add pod " + in.id + ": empty name");
    PodRecord p = in;
    if (p.created_at.empty()) p.created_at = rfc3339_now();
    if (p.config.is_null()) p.config = nlohmann::json::object();
    with_transaction([&] {
        {
            sql::Stmt s(db_, "SELECT id FROM pods WHERE name = ?1");
            s.bind(1, p.name);
            if (s.step()) throw ConflictError("the pod name \"" + p.name + "\" is already in use by " + s.text(0));
        }
        if (pod_by_id(p.id)) throw ConflictError("a pod with ID " + p.id + " already exists");
        sql::Stmt s(db_, "INSERT INTO pods (id, name, netns, created_at, config) VALUES (?1, ?2, ?3, ?4, ?5)");
        s.bind(1, p.id).bind(2, p.name).bind(3, p.netns).bind(4, p.created_at).bind(5, p.config.dump()).run();
    });
}

std::optional<PodRecord> StateStore::find_pod(std::string_view ref) {
    return lookup<PodRecord>(db_, "pods", kPodCols, "pod", ref, pod_from_row);
}

PodRecord StateStore::get_pod(std::string_view ref) {
    auto p = find_pod(ref);
    if (!p) throw NotFoundError("no pod with name or ID \"" + std::string(ref) + "\" found");
    return *p;
}

std::vector<PodRecord> StateStore::list_pods() {
    sql::Stmt s(db_, std::string("SELECT ") + kPodCols + " FROM pods ORDER BY created_at, rowid");
    std::vector<PodRecord> out;
    while (s.step()) out.push_back(pod_from_row(s));
    return out;
}

PodRecord StateStore::update_pod(const std::string& id, const std::function<void(PodRecord&)>& fn) {
    PodRecord p;
    with_transaction([&] {
        auto cur = pod_by_id(id);
        if (!cur) throw NotFoundError("no pod with ID " + id + " found");
        p = *cur;
        fn(p);
        p.id = id;
        if (p.name != cur->name) {
            sql::Stmt s(db_, "SELECT id FROM pods WHERE name = ?1");
            s.bind(1, p.name);
            if (s.step()) throw ConflictError("the pod name \"" + p.name + "\" is already in use by " + s.text(0));
        }
        sql::Stmt s(db_, "UPDATE pods SET name = ?2, netns = ?3, created_at = ?4, config = ?5 WHERE id = ?1");
        s.bind(1, p.id).bind(2, p.name).bind(3, p.netns).bind(4, p.created_at).bind(5, p.config.dump()).run();
    });
    return p;
}

bool StateStore::remove_pod(const std::string& id) {
    bool removed = false;
    with_transaction([&] {
        sql::Stmt c(db_, "SELECT count(*) FROM containers WHERE pod_id = ?1");
        c.bind(1, id);
        int64_t n = c.step() ? c.int64(0) : 0;
        if (n > 0)
            throw ConflictError("pod " + id.substr(0, 12) + " still has " + std::to_string(n) +
                                " container(s): remove them first");
        sql::Stmt s(db_, "DELETE FROM pods WHERE id = ?1");
        s.bind(1, id).run();
        removed = db_.changes() > 0;
    });
    return removed;
}

// ---------------------------------------------------------------- networks

void StateStore::add_network(const NetworkRecord& n) {
    if (n.name.empty()) throw Error("add network: empty name");
    with_transaction([&] {
        if (find_network(n.name)) throw ConflictError("network name \"" + n.name + "\" is already used");
        sql::Stmt s(db_, "INSERT INTO networks (name, conflist) VALUES (?1, ?2)");
        s.bind(1, n.name).bind(2, n.conflist).run();
    });
}

std::optional<NetworkRecord> StateStore::find_network(std::string_view name) {
    sql::Stmt s(db_, "SELECT name, conflist FROM networks WHERE name = ?1");
    s.bind(1, name);
    if (!s.step()) return std::nullopt;
    return NetworkRecord{s.text(0), s.text(1)};
}

std::vector<NetworkRecord> StateStore::list_networks() {
    sql::Stmt s(db_, "SELECT name, conflist FROM networks ORDER BY name");
    std::vector<NetworkRecord> out;
    while (s.step()) out.push_back(NetworkRecord{s.text(0), s.text(1)});
    return out;
}

bool StateStore::remove_network(std::string_view name) {
    bool removed = false;
    with_transaction([&] {
        sql::Stmt s(db_, "DELETE FROM networks WHERE name = ?1");
        s.bind(1, name).run();
        removed = db_.changes() > 0;
    });
    return removed;
}

// ---------------------------------------------------------------- repair

RepairReport StateStore::repair(const IsAliveFn& is_alive, const KeepRunningFn& keep_running) {
    RepairReport report;
    auto [self_pid, self_start] = self_identity();
    with_transaction([&] {
        report = RepairReport{};
        std::vector<ContainerRecord> running, removing;
        {
            // `created` only with an owner: a `run --rm` whose command may have died.
            sql::Stmt s(db_, std::string("SELECT ") + kContainerCols +
                                 " FROM containers WHERE state IN ('running', 'removing') OR "
                                 "(state = 'created' AND owner_pid > 0) ORDER BY rowid");
            while (s.step()) {
                ContainerRecord c = container_from_row(s, path());
                (c.state == ContainerState::Running ? running : removing).push_back(std::move(c));
            }
        }
        std::string now = rfc3339_now();
        for (auto& c : running) {
            if (c.pid > 0 && is_alive(c.pid, c.pid_start_time)) continue;
            if (keep_running && keep_running(c)) continue;
            c.state = ContainerState::Exited;
            c.pid = 0;
            c.pid_start_time = 0;
            c.finished_at = now;
            write_container(c);
            report.exited.push_back(c);
        }
        for (auto& c : removing) {
            if (c.owner_pid == self_pid && c.owner_start_time == self_start) continue;  // ours, under way
            if (c.owner_pid > 0 && is_alive(c.owner_pid, c.owner_start_time)) continue;
            if (c.state == ContainerState::Created && c.owner_pid <= 0) continue;
            c.state = ContainerState::Removing;
            c.owner_pid = self_pid;
            c.owner_start_time = self_start;
            write_container(c);
            report.removing.push_back(c);
        }
    });
    return report;
}

}  // namespace vitro::engine
