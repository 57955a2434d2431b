// engine/ state store: CRUD, name uniqueness, ID prefix lookup, schema,
// transactions, two processes writing at once, a writer SIGKILLed mid
// transaction, repair of what a kill -9 leaves behind, and a database that
// is lost, emptied, damaged or foreign (refused, never started afresh). Temp dirs only.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <set>

#include "engine/state_store.hpp"
#include "linux/procfs.hpp"
#include "testutil.hpp"
#include "util/error.hpp"
#include "util/file.hpp"

using namespace vitro;
using namespace vitro::engine;
namespace fs = std::filesystem;

namespace {

using vitro::test::error_of;

// The state store lives in <tmp>/state/vitro.db.
struct StateDir : vitro::test::TempDir {
    StateDir() : TempDir("engine-unit") {}
    std::string db() const { return (path / "state" / "vitro.db").string(); }
};

// A 64-hex ID starting with `prefix`.
std::string make_id(const std::string& prefix, int n = 0) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%08x", n);
    std::string id = prefix + buf;
    id.resize(64, '0');
    return id;
}

ContainerRecord make_container(const std::string& id, const std::string& name) {
    ContainerRecord c;
    c.id = id;
    c.name = name;
    c.image = "docker.io/library/busybox:latest";
    c.image_digest = "sha256:" + std::string(64, 'a');
    c.bundle = "/run/vitro/" + id;
    c.config = {{"args", {"sh", "-c", "true"}}, {"env", {"A=1"}}};
    return c;
}

// A pid that certainly belongs to no live process: a child, exited and reaped.
std::pair<pid_t, uint64_t> dead_process() {
    int p[2];
    EXPECT_EQ(::pipe(p), 0);
    pid_t pid = ::fork();
    if (pid == 0) {
        ::close(p[1]);
        char c;
        (void)::read(p[0], &c, 1);
        ::_exit(0);
    }
    uint64_t start = vitro::os::read_proc_stat(pid)->start_time;
    ::close(p[0]);
    ::close(p[1]);
    int st;
    ::waitpid(pid, &st, 0);
    return {pid, start};
}

int wait_exit(pid_t pid) {
    int st = 0;
    if (::waitpid(pid, &st, 0) != pid) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

}  // namespace

TEST(EngineState, OpenSetsWalSchemaAndMode) {
    StateDir t;
    {
        StateStore s(t.db());
        EXPECT_EQ(s.schema_version(), StateStore::latest_schema_version());
        EXPECT_EQ(s.path(), t.db());
    }
    struct stat st {};
    ASSERT_EQ(::stat(t.db().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    // Reopening migrates nothing and keeps the data.
    {
        StateStore s(t.db());
        s.add_network({"podman", "/etc/vitro/net.d/podman.conflist"});
    }
    StateStore s(t.db());
    EXPECT_EQ(s.schema_version(), StateStore::latest_schema_version());
    EXPECT_EQ(s.list_networks().size(), 1u);
    EXPECT_TRUE(fs::exists(t.db() + "-wal"));  // WAL mode
}

TEST(EngineState, ContainerCrud) {
    StateDir t;
    StateStore s(t.db());
    auto c = make_container(make_id("c0ffee"), "web");
    s.add_container(c);

    auto got = s.get_container(c.id);
    EXPECT_EQ(got.name, "web");
    EXPECT_EQ(got.state, ContainerState::Created);
    EXPECT_EQ(got.image_digest, c.image_digest);
    EXPECT_EQ(got.bundle, c.bundle);
    EXPECT_EQ(got.config, c.config);
    EXPECT_FALSE(got.created_at.empty());
    EXPECT_FALSE(got.exit_code);
    EXPECT_FALSE(got.pod_id);
    EXPECT_EQ(s.get_container("web").id, c.id);

    auto r = s.set_running(c.id, 4242, 777);
    EXPECT_EQ(r.state, ContainerState::Running);
    got = s.get_container("web");
    EXPECT_EQ(got.state, ContainerState::Running);
    EXPECT_EQ(got.pid, 4242);
    EXPECT_EQ(got.pid_start_time, 777u);
    EXPECT_TRUE(got.started_at);

    s.set_exited(c.id, 3);
    got = s.get_container(c.id);
    EXPECT_EQ(got.state, ContainerState::Exited);
    EXPECT_EQ(got.pid, 0);
    EXPECT_EQ(got.exit_code, 3);
    EXPECT_TRUE(got.finished_at);

    s.update_container(c.id, [](ContainerRecord& x) { x.name = "web2"; });
    EXPECT_EQ(s.get_container("web2").id, c.id);
    EXPECT_FALSE(s.find_container("web"));

    s.add_container(make_container(make_id("beef"), "db"));
    auto all = s.list_containers();
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0].name, "web2");
    EXPECT_EQ(all[1].name, "db");

    EXPECT_TRUE(s.remove_container(c.id));
    EXPECT_FALSE(s.remove_container(c.id));
    EXPECT_FALSE(s.find_container(c.id));
    EXPECT_EQ(s.list_containers().size(), 1u);
    EXPECT_THROW(s.get_container(c.id), NotFoundError);
    EXPECT_THROW(s.update_container(c.id, [](ContainerRecord&) {}), NotFoundError);
}

TEST(EngineState, ContainerNameUniqueness) {
    StateDir t;
    StateStore s(t.db());
    auto a = make_container(make_id("aaaa"), "web");
    s.add_container(a);
    auto b = make_container(make_id("bbbb"), "web");
    std::string err = error_of([&] { s.add_container(b); });
    EXPECT_NE(err.find("the container name \"web\" is already in use by " + a.id), std::string::npos) << err;
    EXPECT_THROW(s.add_container(b), ConflictError);
    EXPECT_FALSE(s.find_container(b.id));
    // Same ID twice.
    EXPECT_THROW(s.add_container(make_container(a.id, "other")), ConflictError);
    // A rename onto a taken name.
    s.add_container(make_container(make_id("cccc"), "db"));
    err = error_of([&] { s.update_container(make_id("cccc"), [](ContainerRecord& x) { x.name = "web"; }); });
    EXPECT_NE(err.find("already in use by " + a.id), std::string::npos) << err;
    EXPECT_EQ(s.get_container("db").id, make_id("cccc"));
}

TEST(EngineState, PrefixLookup) {
    StateDir t;
    StateStore s(t.db());
    std::string a = make_id("abc1"), b = make_id("abd2"), c = make_id("9f");
    s.add_container(make_container(a, "one"));
    s.add_container(make_container(b, "two"));
    s.add_container(make_container(c, "ab"));  // a name that is also a prefix of two IDs

    EXPECT_EQ(s.get_container("abc").id, a);
    EXPECT_EQ(s.get_container("abd2").id, b);
    EXPECT_EQ(s.get_container(a).id, a);
    EXPECT_EQ(s.get_container("ab").id, c);  // exact name beats prefix
    EXPECT_EQ(s.get_container("9").id, c);

    s.remove_container(c);
    std::string err = error_of([&] { s.get_container("ab"); });
    EXPECT_NE(err.find("ambiguous"), std::string::npos) << err;
    EXPECT_NE(err.find("\"ab\""), std::string::npos) << err;
    EXPECT_THROW(s.get_container("a"), ConflictError);

    err = error_of([&] { s.get_container("zz"); });
    EXPECT_NE(err.find("no container with name or ID \"zz\""), std::string::npos) << err;
    EXPECT_THROW(s.get_container("zz"), NotFoundError);
    EXPECT_THROW(s.get_container(""), NotFoundError);
    // Wildcards are plain characters.
    EXPECT_THROW(s.get_container("%"), NotFoundError);
    EXPECT_THROW(s.get_container("_"), NotFoundError);
}

// A database made by schema 1 (pods without config) opens migrated: its pods
// read with an empty config, and a config written then is kept.
TEST(EngineState, MigratesPodsOfSchema1) {
    StateDir t;
    fs::create_directories(fs::path(t.db()).parent_path());
    {
        auto db = vitro::sql::Db::open(t.db());
        db.exec("CREATE TABLE schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);"
                "INSERT INTO schema_version (id, version) VALUES (1, 1);"
                "CREATE TABLE pods (id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL UNIQUE,"
                " netns TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL);"
                "CREATE TABLE containers (id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL UNIQUE, image TEXT NOT NULL,"
                " image_digest TEXT NOT NULL DEFAULT '', bundle TEXT NOT NULL DEFAULT '', state TEXT NOT NULL,"
                " pid INTEGER NOT NULL DEFAULT 0, pid_start_time INTEGER NOT NULL DEFAULT 0, exit_code INTEGER,"
                " created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT, config TEXT NOT NULL DEFAULT '{}',"
                " pod_id TEXT REFERENCES pods(id), owner_pid INTEGER NOT NULL DEFAULT 0,"
                " owner_start_time INTEGER NOT NULL DEFAULT 0);"
                "CREATE TABLE networks (name TEXT PRIMARY KEY NOT NULL, conflist TEXT NOT NULL);"
                "INSERT INTO pods (id, name, created_at) VALUES ('" + make_id("01d") + "', 'old', '2026-01-01T00:00:00Z');");
    }
    StateStore s(t.db());
    EXPECT_EQ(s.schema_version(), StateStore::latest_schema_version());
    EXPECT_EQ(s.get_pod("old").config, nlohmann::json::object());
    s.update_pod(make_id("01d"), [](PodRecord& p) { p.config["hostname"] = "old"; });
    EXPECT_EQ(s.get_pod("old").config["hostname"], "old");
}

TEST(EngineState, PodsAndNetworks) {
    StateDir t;
    StateStore s(t.db());
    PodRecord p{make_id("p0d"), "frontend", "/run/vitro/netns/frontend", "", {{"labels", {{"app", "web"}}}}};
    s.add_pod(p);
    EXPECT_EQ(s.get_pod("frontend").id, p.id);
    EXPECT_EQ(s.get_pod("p0d").netns, p.netns);
    EXPECT_FALSE(s.get_pod(p.id).created_at.empty());
    std::string err = error_of([&] { s.add_pod({make_id("p1d"), "frontend", "", "", {}}); });
    EXPECT_NE(err.find("the pod name \"frontend\" is already in use by " + p.id), std::string::npos) << err;
    s.add_pod({make_id("p1d"), "backend", "", "", {}});
    EXPECT_EQ(s.get_pod("frontend").config["labels"]["app"], "web");
    EXPECT_TRUE(s.get_pod("backend").config.is_object());
    EXPECT_THROW(s.get_pod("p"), ConflictError);
    EXPECT_EQ(s.list_pods().size(), 2u);
    s.update_pod(p.id, [](PodRecord& x) {
        x.netns = "/run/vitro/netns/x";
        x.config["infra_id"] = "abc";
    });
    EXPECT_EQ(s.get_pod(p.id).netns, "/run/vitro/netns/x");
    EXPECT_EQ(s.get_pod(p.id).config["infra_id"], "abc");
    EXPECT_EQ(s.get_pod(p.id).config["labels"]["app"], "web");

    auto c = make_container(make_id("c1"), "in-pod");
    c.pod_id = p.id;
    s.add_container(c);
    auto orphan = make_container(make_id("c2"), "orphan");
    orphan.pod_id = make_id("ffff");
    EXPECT_THROW(s.add_container(orphan), NotFoundError);
    EXPECT_EQ(s.list_containers(p.id).size(), 1u);
    EXPECT_EQ(s.get_container("in-pod").pod_id, p.id);

    EXPECT_THROW(s.remove_pod(p.id), ConflictError);
    s.remove_container(c.id);
    EXPECT_TRUE(s.remove_pod(p.id));
    EXPECT_FALSE(s.remove_pod(p.id));
    EXPECT_THROW(s.get_pod("frontend"), NotFoundError);

    s.add_network({"bridge0", "/etc/vitro/net.d/bridge0.conflist"});
    EXPECT_THROW(s.add_network({"bridge0", "x"}), ConflictError);
    EXPECT_EQ(s.find_network("bridge0")->conflist, "/etc/vitro/net.d/bridge0.conflist");
    EXPECT_TRUE(s.remove_network("bridge0"));
    EXPECT_FALSE(s.find_network("bridge0"));
}

TEST(EngineState, TransactionRollsBackOnThrow) {
    StateDir t;
    StateStore s(t.db());
    EXPECT_THROW(s.with_transaction([&] {
        s.add_container(make_container(make_id("aa"), "a"));
        s.add_container(make_container(make_id("bb"), "b"));  // nested: joins
        throw Error("boom");
    }),
                 Error);
    EXPECT_TRUE(s.list_containers().empty());
    s.with_transaction([&] {
        s.add_container(make_container(make_id("aa"), "a"));
        s.add_container(make_container(make_id("bb"), "b"));
    });
    EXPECT_EQ(s.list_containers().size(), 2u);
}

TEST(EngineState, ErrorsNameOperationAndPath) {
    StateDir t;
    fs::create_directories(t.path / "dir.db");
    std::string err = error_of([&] { StateStore s((t.path / "dir.db").string()); });
    EXPECT_NE(err.find((t.path / "dir.db").string()), std::string::npos) << err;
    EXPECT_NE(err.find("sqlite"), std::string::npos) << err;
}

// Two processes, each adding 200 containers to the same (fresh) database at
// once: all 400 land, none fails with SQLITE_BUSY.
TEST(EngineState, ConcurrentProcesses) {
    StateDir t;
    const std::string db = t.db();
    constexpr int kPer = 200;
    pid_t kids[2];
    for (int k = 0; k < 2; ++k) {
        kids[k] = ::fork();
        ASSERT_GE(kids[k], 0);
        if (kids[k] == 0) {
            int rc = 0;
            try {
                StateStore s(db);
                for (int i = 0; i < kPer; ++i) {
                    std::string id = make_id(k ? "bb" : "aa", i);
                    s.add_container(make_container(id, "c" + std::to_string(k) + "-" + std::to_string(i)));
                    if (i % 20 == 0) s.list_containers();  // readers in the mix
                }
            } catch (const std::exception& e) {
                std::fprintf(stderr, "child %d: %s\n", k, e.what());
                rc = 1;
            }
            ::_exit(rc);
        }
    }
    EXPECT_EQ(wait_exit(kids[0]), 0);
    EXPECT_EQ(wait_exit(kids[1]), 0);
    StateStore s(db);
    auto all = s.list_containers();
    EXPECT_EQ(all.size(), 2u * kPer);
    std::set<std::string> names;
    for (auto& c : all) names.insert(c.name);
    EXPECT_EQ(names.size(), 2u * kPer);
}

// A writer SIGKILLed inside a transaction: no partial row, and the next
// process can write at once.
TEST(EngineState, KillMidTransactionLeavesNoPartialRow) {
    StateDir t;
    const std::string db = t.db();
    { StateStore s(db); s.add_container(make_container(make_id("01"), "before")); }
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        try {
            StateStore s(db);
            s.with_transaction([&] {
                s.add_container(make_container(make_id("02"), "partial"));
                s.update_container(make_id("01"), [](ContainerRecord& c) { c.name = "renamed"; });
                (void)::write(p[1], "x", 1);
                for (;;) ::pause();
            });
        } catch (...) {
        }
        ::_exit(1);
    }
    ::close(p[1]);
    char c;
    ASSERT_EQ(::read(p[0], &c, 1), 1);
    ::close(p[0]);
    ::kill(pid, SIGKILL);
    EXPECT_EQ(wait_exit(pid), 128 + SIGKILL);

    StateStore s(db);
    EXPECT_FALSE(s.find_container("partial"));
    EXPECT_FALSE(s.find_container(make_id("02")));
    EXPECT_EQ(s.get_container("before").id, make_id("01"));
    EXPECT_EQ(s.list_containers().size(), 1u);
    s.add_container(make_container(make_id("03"), "after"));
    s.set_running(make_id("03"), 1, 0);
    EXPECT_EQ(s.list_containers().size(), 2u);
}

TEST(EngineState, RepairDeadRunningContainer) {
    StateDir t;
    StateStore s(t.db());
    // Injected liveness: pid 1001 is dead, 1002 alive.
    s.add_container(make_container(make_id("d1"), "dead"));
    s.add_container(make_container(make_id("a1"), "alive"));
    s.set_running(make_id("d1"), 1001, 5);
    s.set_running(make_id("a1"), 1002, 5);
    auto rep = s.repair([](pid_t pid, uint64_t) { return pid == 1002; });
    ASSERT_EQ(rep.exited.size(), 1u);
    EXPECT_EQ(rep.exited[0].id, make_id("d1"));
    EXPECT_TRUE(rep.removing.empty());
    auto d = s.get_container("dead");
    EXPECT_EQ(d.state, ContainerState::Exited);
    EXPECT_EQ(d.pid, 0);
    EXPECT_TRUE(d.finished_at);
    EXPECT_EQ(s.get_container("alive").state, ContainerState::Running);

    // The default check against /proc: a reaped child is dead; this process, with
    // its start time, is alive; this process with a wrong start time (a reused
    // pid) is dead.
    auto [dpid, dstart] = dead_process();
    uint64_t self_start = vitro::os::read_proc_stat(::getpid())->start_time;
    s.add_container(make_container(make_id("r1"), "reaped"));
    s.add_container(make_container(make_id("s1"), "self"));
    s.add_container(make_container(make_id("w1"), "reused"));
    s.set_running(make_id("r1"), dpid, dstart);
    s.set_running(make_id("s1"), ::getpid(), self_start);
    s.set_running(make_id("w1"), ::getpid(), self_start + 1);
    s.remove_container(make_id("a1"));
    rep = s.repair();
    std::set<std::string> exited;
    for (auto& c : rep.exited) exited.insert(c.name);
    EXPECT_EQ(exited, (std::set<std::string>{"reaped", "reused"}));
    EXPECT_EQ(s.get_container("self").state, ContainerState::Running);
    EXPECT_EQ(s.get_container("reaped").state, ContainerState::Exited);
    EXPECT_TRUE(s.repair().exited.empty());  // idempotent
}

TEST(EngineState, RepairStuckRemoving) {
    StateDir t;
    StateStore s(t.db());
    auto [dpid, dstart] = dead_process();
    s.add_container(make_container(make_id("e1"), "stuck"));
    s.update_container(make_id("e1"), [&, dpid = dpid, dstart = dstart](ContainerRecord& c) {
        c.state = ContainerState::Removing;
        c.owner_pid = dpid;
        c.owner_start_time = dstart;
    });
    // One this process is removing right now: not touched.
    s.add_container(make_container(make_id("e2"), "mine"));
    s.begin_remove(make_id("e2"));
    // One a live process (pid 1) is removing: not touched, and not takeable.
    s.add_container(make_container(make_id("e3"), "theirs"));
    s.update_container(make_id("e3"), [](ContainerRecord& c) {
        c.state = ContainerState::Removing;
        c.owner_pid = 1;
        c.owner_start_time = vitro::os::read_proc_stat(1)->start_time;
    });
    EXPECT_THROW(s.begin_remove(make_id("e3")), ConflictError);

    auto rep = s.repair();
    ASSERT_EQ(rep.removing.size(), 1u);
    EXPECT_EQ(rep.removing[0].id, make_id("e1"));
    EXPECT_EQ(rep.removing[0].owner_pid, ::getpid());
    EXPECT_TRUE(rep.exited.empty());
    // Claimed by us: a second repair leaves it to us.
    EXPECT_TRUE(s.repair().removing.empty());
    EXPECT_EQ(s.get_container("stuck").state, ContainerState::Removing);
    // The engine cleans up, then finishes the removal.
    EXPECT_TRUE(s.remove_container(rep.removing[0].id));
    EXPECT_TRUE(s.remove_container(make_id("e2")));
    EXPECT_EQ(s.list_containers().size(), 1u);
    EXPECT_EQ(s.get_container("theirs").owner_pid, 1);

    // With an injected liveness check, a dead remover is taken over.
    auto rep2 = s.repair([](pid_t pid, uint64_t) { return pid != 1; });
    ASSERT_EQ(rep2.removing.size(), 1u);
    EXPECT_EQ(rep2.removing[0].name, "theirs");
}

// ---------------------------------------------------------------- losing the database

namespace {
int64_t file_size(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 ? st.st_size : -1;
}

// Overwrites `len` bytes of `path` at `offset` with a pattern no SQLite file has.
void scribble(const std::string& path, off_t offset, size_t len) {
    int fd = ::open(path.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0) << path;
    std::string junk(len, '\0');
    for (size_t i = 0; i < len; ++i) junk[i] = static_cast<char>(0x5a ^ (i * 31));
    ASSERT_EQ(::pwrite(fd, junk.data(), len, offset), static_cast<ssize_t>(len));
    ::close(fd);
}

// 33 commands' worth of state, each from its own connection as the vitro
// commands do.
void add_many(const std::string& db, int n) {
    for (int i = 0; i < n; ++i) {
        StateStore s(db);
        s.add_container(make_container(make_id("c0", i), "ctr" + std::to_string(i)));
    }
}

int64_t pragma(const std::string& db, const char* q) {
    sql::Db d = sql::Db::open(db, false);
    sql::Stmt s(d, q);
    return s.step() ? s.int64(0) : -1;
}
}  // namespace

TEST(EngineState, DatabaseCarriesVitrosMark) {
    StateDir t;
    { StateStore s(t.db()); }
    EXPECT_EQ(pragma(t.db(), "PRAGMA application_id"), kStateApplicationId);
    EXPECT_EQ(pragma(t.db(), "PRAGMA user_version"), StateStore::latest_schema_version());
    // A database vitro made before the mark is vitro's: marked on open, data kept.
    {
        StateStore s(t.db());
        s.add_container(make_container(make_id("01"), "old"));
    }
    { sql::Db d = sql::Db::open(t.db(), false); d.exec("PRAGMA application_id = 0"); }
    StateStore s(t.db());
    EXPECT_EQ(s.get_container("old").id, make_id("01"));
    EXPECT_EQ(pragma(t.db(), "PRAGMA application_id"), kStateApplicationId);
}

TEST(EngineState, ForeignDatabaseIsRefusedUntouched) {
    StateDir t;
    fs::create_directories(fs::path(t.db()).parent_path());
    { sql::Db d = sql::Db::open(t.db()); d.exec("CREATE TABLE accounts (id INTEGER); INSERT INTO accounts VALUES (7);"); }
    std::string err = error_of([&] { StateStore s(t.db()); });
    EXPECT_NE(err.find("is not vitro's"), std::string::npos) << err;
    EXPECT_NE(err.find("vitro system repair"), std::string::npos) << err;
    EXPECT_THROW(StateStore s(t.db()), StateLostError);
    EXPECT_EQ(pragma(t.db(), "SELECT count(*) FROM sqlite_master WHERE name = 'containers'"), 0);
    EXPECT_EQ(pragma(t.db(), "SELECT id FROM accounts"), 7);
}

TEST(EngineState, GarbageDatabaseIsRefused) {
    StateDir t;
    add_many(t.db(), 2);
    // The file alone (a WAL, when there is one, holds a newer first page).
    { sql::Db d = sql::Db::open(t.db(), false); d.exec("PRAGMA wal_checkpoint(TRUNCATE)"); }
    scribble(t.db(), 0, 4096);
    std::string err = error_of([&] { StateStore s(t.db()); });
    EXPECT_NE(err.find("is not an SQLite database"), std::string::npos) << err;
}

// The issue: after 33 commands the database file was 4 KB and the WAL 3.2 MB;
// truncating the file made the next open start afresh (SQLite deleted the WAL).
TEST(EngineState, EmptyDatabaseBesideItsWalIsRefused) {
    StateDir t;
    add_many(t.db(), 33);
    ASSERT_GT(file_size(t.db() + "-wal"), 0);
    ASSERT_EQ(::truncate(t.db().c_str(), 0), 0);
    std::string err = error_of([&] { StateStore s(t.db()); });
    EXPECT_NE(err.find("is empty, but beside it are a write-ahead log"), std::string::npos) << err;
    EXPECT_GT(file_size(t.db() + "-wal"), 0) << "the WAL must be left for repair";
    // Missing altogether: the same.
    ASSERT_EQ(::unlink(t.db().c_str()), 0);
    EXPECT_THROW(StateStore s(t.db()), StateLostError);
    // Rebuild (system repair, after setting it aside) opens whatever is there.
    fs::rename(t.db() + "-wal", t.db() + "-wal.lost");
    StateStore s(t.db(), 5000, StateStore::Open::Rebuild);
    EXPECT_TRUE(s.list_containers().empty());
}

TEST(EngineState, MissingDatabaseBesideContainerRecordsIsRefused) {
    StateDir t;
    fs::path root = fs::path(t.db()).parent_path();
    fs::create_directories(root / "containers" / make_id("0a"));
    // A container dir without a record (a create under way) is no evidence...
    { StateStore s(t.db()); }
    fs::remove(t.db());
    fs::remove(t.db() + "-wal");
    fs::remove(t.db() + "-shm");
    { StateStore s(t.db()); }
    fs::remove(t.db());
    fs::remove(t.db() + "-wal");
    fs::remove(t.db() + "-shm");
    // ...one with its record is.
    vitro::write_file_atomic((root / "containers" / make_id("0a") / kContainerRecordFile).string(),
                             to_json(make_container(make_id("0a"), "kept")).dump());
    std::string err = error_of([&] { StateStore s(t.db()); });
    EXPECT_NE(err.find("is missing, but beside it are the records of 1 container(s)"), std::string::npos) << err;
    EXPECT_FALSE(fs::exists(t.db()));
}

TEST(EngineState, DamagedWalIsRefused) {
    StateDir t;
    add_many(t.db(), 5);
    ASSERT_GE(file_size(t.db() + "-wal"), 32);
    scribble(t.db() + "-wal", 0, 4096);
    std::string err = error_of([&] { StateStore s(t.db()); });
    EXPECT_NE(err.find("write-ahead log"), std::string::npos) << err;
    EXPECT_NE(err.find("is damaged"), std::string::npos) << err;
}

// The database file holds the state, not only the WAL: what was committed
// before the last checkpoint survives without the WAL at all.
TEST(EngineState, CheckpointsKeepTheStateInTheDatabaseFile) {
    StateDir t;
    add_many(t.db(), 100);
    EXPECT_LE(file_size(t.db() + "-wal"), (kAutoCheckpointPages + 16) * 4096);
    StateDir copy;
    fs::create_directories(fs::path(copy.db()).parent_path());
    fs::copy_file(t.db(), copy.db());
    int64_t in_file = pragma(copy.db(), "SELECT count(*) FROM containers");
    EXPECT_GE(in_file, 60) << "of 100 containers, only " << in_file << " are in the database file";
}

TEST(EngineState, ContainerRecordJsonRoundTrip) {
    ContainerRecord c = make_container(make_id("3f"), "rt");
    c.state = ContainerState::Running;
    c.pid = 42;
    c.pid_start_time = 9;
    c.exit_code = 3;
    c.started_at = "2026-01-01T00:00:00Z";
    c.pod_id = make_id("90");
    ContainerRecord b = container_from_json(nlohmann::json::parse(to_json(c).dump()));
    EXPECT_EQ(to_json(b), to_json(c));
    EXPECT_THROW(container_from_json(nlohmann::json{{"id", "short"}, {"name", "x"}}), Error);
}

TEST(EngineState, WrittenRowsReachTheHookAfterCommitOnly) {
    StateDir t;
    StateStore s(t.db());
    std::vector<std::string> seen;
    s.on_container_written([&](const ContainerRecord& c) { seen.push_back(c.name + ":" + std::string(to_string(c.state))); });
    s.add_container(make_container(make_id("01"), "a"));
    s.set_running(make_id("01"), 1, 0);
    EXPECT_THROW(s.with_transaction([&] {
        s.add_container(make_container(make_id("02"), "b"));
        throw Error("rolled back");
    }),
                 Error);
    EXPECT_EQ(seen, (std::vector<std::string>{"a:created", "a:running"}));
}

// A `run --rm` killed between create and start: the next repair removes what
// it created; a creator still alive, or a plain `create`, keeps it.
TEST(EngineState, RepairClaimsCreatedContainersOfDeadCreators) {
    StateDir t;
    StateStore s(t.db());
    auto [dpid, dstart] = dead_process();
    ContainerRecord dead = make_container(make_id("c1"), "abandoned");
    dead.owner_pid = dpid;
    dead.owner_start_time = dstart;
    s.add_container(dead);
    ContainerRecord live = make_container(make_id("c2"), "starting");
    live.owner_pid = 1;
    live.owner_start_time = vitro::os::read_proc_stat(1)->start_time;
    s.add_container(live);
    s.add_container(make_container(make_id("c3"), "plain"));
    auto rep = s.repair();
    ASSERT_EQ(rep.removing.size(), 1u);
    EXPECT_EQ(rep.removing[0].name, "abandoned");
    EXPECT_EQ(s.get_container("abandoned").state, ContainerState::Removing);
    EXPECT_EQ(s.get_container("starting").state, ContainerState::Created);
    EXPECT_EQ(s.get_container("plain").state, ContainerState::Created);
}

// A container whose monitor died but whose init lives stays running.
TEST(EngineState, RepairKeepsWhatTheEngineSaysStillRuns) {
    StateDir t;
    StateStore s(t.db());
    s.add_container(make_container(make_id("d1"), "orphan"));
    s.add_container(make_container(make_id("d2"), "gone"));
    s.set_running(make_id("d1"), 1001, 5);
    s.set_running(make_id("d2"), 1002, 5);
    auto rep = s.repair([](pid_t, uint64_t) { return false; },
                        [](const ContainerRecord& c) { return c.name == "orphan"; });
    ASSERT_EQ(rep.exited.size(), 1u);
    EXPECT_EQ(rep.exited[0].name, "gone");
    EXPECT_EQ(s.get_container("orphan").state, ContainerState::Running);
}
