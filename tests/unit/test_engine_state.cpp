// engine/ state store: CRUD, name uniqueness, ID prefix lookup, schema,
// transactions, two processes writing at once, a writer SIGKILLed mid
// transaction, and repair of what a kill -9 leaves behind. Temp dirs only.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <set>

#include "engine/state_store.hpp"
#include "linux/procfs.hpp"
#include "util/error.hpp"
#include "testutil.hpp"

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
        auto db = vitro::engine::sql::Db::open(t.db());
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
