// Detector rules on synthetic Event sequences (no containers, no store).
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include <gtest/gtest.h>

#include "introspect/detect/detector.hpp"
#include "testutil.hpp"
#include "util/error.hpp"

using namespace vitro::introspect;
using nlohmann::json;

namespace {

constexpr const char* kBb = "sha256:bb";
constexpr pid_t kNoPid = 999999999;  // no such process: no /proc lookups succeed
constexpr pid_t kHttpd = 999999998;

Baseline httpd_baseline() {
    BaselineLearner l({.container_id = "c1", .container_name = "web", .image = "localhost/busybox",
                       .image_digest = "sha256:img"});
    l.add_process({{"pid", 10}, {"comm", "httpd"}, {"exe", "/bin/busybox"}, {"exe_sha256", kBb},
                   {"cmdline", {"httpd", "-f"}}},
                  "runtime");
    // httpd forks a worker per request; a health check runs wget under a shell.
    l.on_event({"process.fork", "c1", 1, {{"pid", 11}, {"ppid", 10}}, 1});
    l.on_event({"process.exec", "c1", 2,
                {{"pid", 20}, {"ppid", kNoPid}, {"comm", "sh"}, {"exe", "/bin/busybox"}, {"exe_sha256", kBb},
                 {"cmdline", {"sh", "-c", "wget -q -O- http://127.0.0.1/"}}}, 2});
    l.on_event({"process.exec", "c1", 3,
                {{"pid", 21}, {"ppid", 20}, {"comm", "wget"}, {"exe", "/bin/busybox"}, {"exe_sha256", kBb},
                 {"cmdline", {"wget", "-q", "-O-", "http://127.0.0.1/"}}}, 3});
    l.on_event({"net.listen", "c1", 4, {{"local_addr", "0.0.0.0"}, {"local_port", 80}}, 4});
    l.on_event({"net.connect", "c1", 5,
                {{"local_addr", "10.0.0.2"}, {"local_port", 41000}, {"peer_addr", "10.0.0.53"}, {"peer_port", 53}}, 5});
    // wget to its own service on loopback: not an outbound endpoint either.
    l.on_event({"net.connect", "c1", 5,
                {{"local_addr", "127.0.0.1"}, {"local_port", 41001}, {"peer_addr", "127.0.0.1"}, {"peer_port", 80}}, 5});
    // The accepted side: inbound, not an outbound endpoint.
    l.on_event({"net.connect", "c1", 6,
                {{"local_addr", "127.0.0.1"}, {"local_port", 80}, {"peer_addr", "127.0.0.1"}, {"peer_port", 41000}}, 6});
    l.on_event({"file.write", "c1", 7, {{"path", "/var/log/httpd.log"}, {"type", "file"}}, 7});
    // 0.1 core for 2 s.
    for (int i = 0; i <= 8; ++i)
        l.on_sample(int64_t{i} * 250000000, uint64_t(i) * 25000000, 4 << 20, 2);
    return l.result();
}

struct Fixture {
    Detector d{{}};
    std::vector<Alert> seen;
    explicit Fixture(Baseline b = httpd_baseline()) {
        d.watch({"c1", "web", kNoPid, "", ""}, std::move(b), "localhost/busybox", "sha256:img");
        d.on_alert([this](const Alert& a) { seen.push_back(a); });
        exec(kHttpd, kNoPid, "httpd", "/bin/busybox", kBb, {"httpd", "-f"}, 1);
    }
    void exec(pid_t pid, pid_t ppid, const std::string& comm, const std::string& exe, const std::string& hash,
              json cmdline, uint64_t seq) {
        d.on_event({"process.exec", "c1", 0,
                    {{"pid", pid}, {"ppid", ppid}, {"comm", comm}, {"exe", exe}, {"exe_sha256", hash},
                     {"cmdline", std::move(cmdline)}}, seq});
    }
    std::vector<std::string> rules() const {
        std::vector<std::string> r;
        for (const auto& a : seen) r.push_back(a.rule);
        return r;
    }
};

}  // namespace

TEST(DetectBaseline, LearnsWhatItSaw) {
    Baseline b = httpd_baseline();
    EXPECT_TRUE(b.executables.count({"/bin/busybox", kBb}));
    EXPECT_TRUE(b.lineage.count({"runtime", "httpd"}));
    EXPECT_TRUE(b.lineage.count({"sh", "wget"}));
    EXPECT_EQ(b.listen, std::set<int>{80});
    EXPECT_EQ(b.outbound, std::set<std::string>{"10.0.0.53:53"});
    EXPECT_TRUE(b.written.count("/var/log/httpd.log"));
    EXPECT_NEAR(b.cpu_max_cores, 0.1, 1e-6);
    EXPECT_EQ(b.memory_max_bytes, 4u << 20);
    EXPECT_EQ(b.pids_max, 2u);
    // JSON round trip.
    Baseline c = Baseline::from_json(b.to_json());
    EXPECT_EQ(c.to_json(), b.to_json());
    EXPECT_THROW(Baseline::from_json(json{{"image", 1}}), vitro::Error);
}

TEST(DetectRules, PristineReplayRaisesNothing) {
    Fixture f;
    f.d.on_event({"process.fork", "c1", 0, {{"pid", 12}, {"ppid", kHttpd}}, 1});
    f.exec(22, kNoPid, "wget", "/bin/busybox", kBb, {"wget", "http://127.0.0.1/"}, 2);
    f.d.on_event({"net.listen", "c1", 0, {{"local_addr", "0.0.0.0"}, {"local_port", 80}}, 3});
    f.d.on_event({"net.connect", "c1", 0,
                  {{"local_port", 80}, {"peer_addr", "10.0.0.9"}, {"peer_port", 5555}}, 4});  // inbound
    f.d.on_event({"net.connect", "c1", 0, {{"local_port", 42000}, {"peer_addr", "127.0.0.1"}, {"peer_port", 80}}, 5});
    f.d.on_event({"net.connect", "c1", 0, {{"local_port", 42001}, {"peer_addr", "10.0.0.53"}, {"peer_port", 53}}, 6});
    for (int i = 0; i <= 20; ++i) f.d.on_cpu("c1", int64_t{i} * 250000000, uint64_t(i) * 30000000);  // 0.12 core
    EXPECT_TRUE(f.seen.empty()) << f.seen.size() << " alerts, first " << (f.seen.empty() ? "" : f.seen[0].rule);
}

TEST(DetectRules, ExecNotInBaselineAndDropAndExecute) {
    Fixture f;
    f.exec(30, kHttpd, "curl", "/usr/bin/curl", "sha256:cc", {"curl"}, 7);
    ASSERT_EQ(f.rules(), std::vector<std::string>{"exec-not-in-baseline"});
    EXPECT_EQ(f.seen[0].trigger_seq, 7u);
    EXPECT_EQ(f.seen[0].severity, "high");
    // Same path + hash again: not raised twice.
    f.exec(31, kHttpd, "curl", "/usr/bin/curl", "sha256:cc", {"curl"}, 8);
    EXPECT_EQ(f.seen.size(), 1u);
    // A file written in the upper dir, then executed.
    f.d.on_event({"file.create", "c1", 0, {{"path", "/tmp/x"}, {"type", "file"}}, 9});
    f.exec(32, kHttpd, "x", "/tmp/x", kBb, {"/tmp/x", "sleep", "3"}, 10);
    ASSERT_EQ(f.seen.size(), 2u);
    EXPECT_EQ(f.seen[1].rule, "drop-and-execute");
    EXPECT_EQ(f.seen[1].severity, "critical");
}

TEST(DetectRules, UnexpectedShellOnlyFromParentsThatNeverSpawnedOne) {
    Fixture f;
    // The baseline's only shell parent is whatever spawned the health-check sh
    // (no such process: "?"); httpd never spawned one.
    f.d.on_event({"process.fork", "c1", 0, {{"pid", 40}, {"ppid", kHttpd}}, 1});
    f.exec(40, kHttpd, "sh", "/bin/busybox", kBb, {"sh", "-c", "id"}, 2);
    ASSERT_EQ(f.rules(), std::vector<std::string>{"unexpected-shell"});
    f.seen.clear();
    f.exec(41, kNoPid, "sh", "/bin/busybox", kBb, {"sh", "-c", "wget -q -O- http://127.0.0.1/"}, 3);
    EXPECT_TRUE(f.seen.empty());
}

TEST(DetectRules, ShellClassification) {
    EXPECT_TRUE(is_shell("sh", json::array()));
    EXPECT_TRUE(is_shell("bash", json::array()));
    EXPECT_TRUE(is_shell("x", json{"/bin/dash"}));
    EXPECT_TRUE(is_shell("busybox", json{"busybox", "sh", "-c", "id"}));
    EXPECT_TRUE(is_shell("x", json{"-ash"}));
    EXPECT_FALSE(is_shell("httpd", json{"httpd", "-f"}));
    EXPECT_FALSE(is_shell("busybox", json{"busybox", "wget"}));
}

TEST(DetectRules, ReverseShellWhenStdioIsASocket) {
    // This process with a socket on fd 0 plays the shell (its /proc/PID/fd/0 is read).
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int saved = ::dup(0);
    ASSERT_GE(::dup2(sv[0], 0), 0);
    Fixture f;
    f.exec(::getpid(), kNoPid, "sh", "/bin/busybox", kBb, {"sh"}, 5);
    ::dup2(saved, 0);
    ::close(saved);
    ::close(sv[0]);
    ::close(sv[1]);
    bool rev = false;
    for (const auto& a : f.seen) rev |= a.rule == "reverse-shell";
    EXPECT_TRUE(rev);
    // The same shell with ordinary stdio: no reverse-shell.
    Fixture g;
    g.exec(::getpid(), kNoPid, "sh", "/bin/busybox", kBb, {"sh"}, 6);
    for (const auto& a : g.seen) EXPECT_NE(a.rule, "reverse-shell");
}

TEST(DetectRules, MiningCommandLine) {
    EXPECT_EQ(mining_marker(json{"sh", "-c", "while :; do :; done", "stratum+tcp://pool:3333"}), "stratum+tcp://");
    EXPECT_EQ(mining_marker(json{"./XMRig", "-o", "x"}), "xmrig");
    EXPECT_EQ(mining_marker(json{"m", "--donate-level=1"}), "--donate-level");
    EXPECT_EQ(mining_marker(json{"httpd", "-f", "-p", "80"}), "");
    Fixture f;
    f.exec(50, kNoPid, "sh", "/bin/busybox", kBb, {"sh", "-c", "while :; do :; done", "stratum+tcp://pool:3333"}, 9);
    bool mining = false;
    for (const auto& a : f.seen) mining |= a.rule == "mining-command-line" && a.trigger_seq == 9;
    EXPECT_TRUE(mining);
}

TEST(DetectRules, NetworkRules) {
    Fixture f;
    f.d.on_event({"net.listen", "c1", 0, {{"local_addr", "0.0.0.0"}, {"local_port", 4444}}, 1});
    f.d.on_event({"net.connect", "c1", 0, {{"local_port", 4444}, {"peer_addr", "127.0.0.1"}, {"peer_port", 50000}}, 2});
    f.d.on_event({"net.connect", "c1", 0, {{"local_port", 50000}, {"peer_addr", "127.0.0.1"}, {"peer_port", 4444}}, 3});
    EXPECT_EQ(f.rules(), (std::vector<std::string>{"unseen-listen", "unseen-outbound"}));
    EXPECT_EQ(f.seen[1].trigger_seq, 3u);
    EXPECT_NE(f.seen[1].details.find("127.0.0.1:4444"), std::string::npos);
}

TEST(DetectRules, CpuAboveEnvelopeSustainedOneSecond) {
    Fixture f;  // baseline max 0.1 core: the limit is 0.6
    // 0.3 core: under the limit.
    for (int i = 0; i <= 8; ++i) f.d.on_cpu("c1", int64_t{i} * 250000000, uint64_t(i) * 75000000);
    EXPECT_TRUE(f.seen.empty());
    // Then 1 core: alerted once it has been above 0.6 for 1 s, not before.
    uint64_t cpu = 8 * 75000000;
    int64_t t = 8 * 250000000;
    int raised_at = -1;
    for (int i = 1; i <= 12; ++i) {
        t += 250000000;
        cpu += 250000000;
        f.d.on_cpu("c1", t, cpu);
        if (!f.seen.empty() && raised_at < 0) raised_at = i;
    }
    ASSERT_EQ(f.seen.size(), 1u);  // one per episode
    // A single spike (one 250 ms interval at 2 cores) is not sustained.
    Fixture g;
    uint64_t c = 0;
    for (int i = 0; i <= 12; ++i) {
        c += i == 6 ? 500000000 : 25000000;
        g.d.on_cpu("c1", int64_t{i} * 250000000, c);
    }
    EXPECT_TRUE(g.seen.empty());
    EXPECT_EQ(f.seen[0].rule, "cpu-above-envelope");
    EXPECT_EQ(raised_at, 4);  // four 250 ms intervals above: 1 s sustained
}

TEST(DetectRules, RefusesABaselineOfAnotherImage) {
    Detector d{{}};
    try {
        d.watch({"c1", "web", 1, "", ""}, httpd_baseline(), "localhost/other", "sha256:other");
        FAIL() << "no error";
    } catch (const vitro::Error& e) {
        std::string m = e.what();
        EXPECT_NE(m.find("sha256:img"), std::string::npos) << m;
        EXPECT_NE(m.find("sha256:other"), std::string::npos) << m;
    }
}

TEST(DetectMetrics, AlertsTotal) {
    Fixture f;
    f.exec(30, kHttpd, "curl", "/usr/bin/curl", "sha256:cc", {"curl"}, 7);
    Exposition e;
    f.d.add_metrics(e);
    EXPECT_NE(e.text().find("vitro_alerts_total{container=\"web\",rule=\"exec-not-in-baseline\"} 1"), std::string::npos)
        << e.text();
}

TEST(DetectRules, ABaselineReplacedOrRemovedTakesEffect) {
    Fixture f;
    f.exec(30, kHttpd, "curl", "/usr/bin/curl", "sha256:cc", {"curl"}, 7);
    ASSERT_EQ(f.rules(), std::vector<std::string>{"exec-not-in-baseline"});
    // A baseline that has curl: curl is no longer news, but a shell from httpd still is.
    Baseline b = httpd_baseline();
    b.executables.insert({"/usr/bin/curl", "sha256:cc"});
    f.d.watch({"c1", "web", kNoPid, "", ""}, b, "localhost/busybox", "sha256:img");
    f.exec(31, kHttpd, "curl", "/usr/bin/curl", "sha256:cc", {"curl"}, 8);
    f.exec(32, kHttpd, "sh", "/bin/busybox", kBb, {"sh"}, 9);
    EXPECT_EQ(f.rules(), (std::vector<std::string>{"exec-not-in-baseline", "unexpected-shell"}));
    // httpd's name, seen before the replacement, is still known: the parent is named.
    EXPECT_NE(f.seen.back().details.find("spawned by httpd"), std::string::npos) << f.seen.back().details;
    EXPECT_TRUE(f.d.unwatch("c1"));
    EXPECT_FALSE(f.d.unwatch("c1"));
    f.exec(33, kHttpd, "wget", "/usr/bin/wget", "sha256:dd", {"wget"}, 10);
    EXPECT_EQ(f.seen.size(), 2u);
}

// The same baseline applied again (its file rewritten or touched, or the
// same learned anew) raises nothing again: not an executable already
// reported, not a CPU episode already under way. Before, each re-application
// raised (and stored) them again.
TEST(DetectRules, TheSameBaselineAppliedAgainKeepsWhatWasRaised) {
    Fixture f;
    f.exec(30, kHttpd, "curl", "/usr/bin/curl", "sha256:cc", {"curl"}, 7);
    uint64_t cpu = 0;
    int64_t t = 0;
    for (int i = 0; i <= 8; ++i) f.d.on_cpu("c1", t += 250000000, cpu += 250000000);  // 1 core, limit 0.6
    ASSERT_EQ(f.rules(), (std::vector<std::string>{"exec-not-in-baseline", "cpu-above-envelope"}));
    Baseline again = httpd_baseline();
    again.learned_at_ns = 42;  // learned anew, to the same content
    f.d.watch({"c1", "web", kNoPid, "", ""}, again, "localhost/busybox", "sha256:img");
    f.exec(31, kHttpd, "curl", "/usr/bin/curl", "sha256:cc", {"curl"}, 8);
    for (int i = 0; i <= 8; ++i) f.d.on_cpu("c1", t += 250000000, cpu += 250000000);
    EXPECT_EQ(f.seen.size(), 2u) << "raised again: " << f.seen.back().rule;
    // A baseline that differs judges anew.
    Baseline other = httpd_baseline();
    other.listen.insert(8080);
    f.d.watch({"c1", "web", kNoPid, "", ""}, other, "localhost/busybox", "sha256:img");
    f.exec(32, kHttpd, "curl", "/usr/bin/curl", "sha256:cc", {"curl"}, 9);
    EXPECT_EQ(f.seen.size(), 3u);
}

namespace {

// What a BaselineWatch reported, waited for without a time limit of its own
// (ctest's timeout ends a hang).
struct Reports {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::string> ids;
    void add(const std::string& id) {
        std::lock_guard lk(mu);
        ids.push_back(id);
        cv.notify_all();
    }
    // Everything reported up to `id`, once it is.
    std::vector<std::string> wait_for(const std::string& id) {
        std::unique_lock lk(mu);
        cv.wait(lk, [&] { return std::find(ids.begin(), ids.end(), id) != ids.end(); });
        return std::exchange(ids, {});
    }
};

}  // namespace

TEST(DetectBaselineWatch, ReportsBaselinesWrittenReplacedAndRemoved) {
    vitro::test::TempDir t{"baseline-watch"};
    const std::string root = t.path.string();
    Reports r;
    BaselineWatch w(root, [&](const std::string& id) { r.add(id); });
    EXPECT_TRUE(std::filesystem::is_directory(root + "/baselines")) << "made when missing";
    std::jthread th = w.start();
    httpd_baseline().save(default_baseline_path(root, "c1"));  // tmp + rename, as baseline learn writes it
    r.wait_for("c1");
    httpd_baseline().save(default_baseline_path(root, "c1"));
    r.wait_for("c1");
    std::ofstream(root + "/baselines/c2.json.tmp.1") << "{";  // not a baseline
    std::ofstream(root + "/baselines/c3.json") << "{}";       // written in place
    EXPECT_EQ(r.wait_for("c3"), std::vector<std::string>{"c3"});  // events come in order: nothing for c2
    std::filesystem::remove(root + "/baselines/c1.json");
    r.wait_for("c1");
    // The directory itself removed: everything may have changed, and it is followed again.
    std::filesystem::remove_all(root + "/baselines");
    r.wait_for("");
    httpd_baseline().save(default_baseline_path(root, "c4"));
    r.wait_for("c4");
    th.request_stop();
    th.join();  // stop wakes it at once
}

// inotify used up (here the process's fds, EMFILE, as with the instances
// limit): no watch and a warning, not an error that stops the service.
TEST(DetectBaselineWatch, NoneWhereInotifyIsUsedUp) {
    vitro::test::TempDir t{"baseline-watch-emfile"};
    const std::string root = t.path.string();
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        // UBSan's vptr check needs a pipe the first time it meets a type:
        // let it meet Error while fds are free (else a false report, exit 1).
        try {
            throw vitro::Error(EMFILE, "warm up");
        } catch (const vitro::Error& e) {
            if (e.code() != EMFILE) ::_exit(2);
        }
        int lowest = ::dup(0);  // the lowest free fd: none from here on
        ::close(lowest);
        rlimit lim{};
        ::getrlimit(RLIMIT_NOFILE, &lim);
        lim.rlim_cur = static_cast<rlim_t>(lowest);
        if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) ::_exit(3);
        try {
            ::_exit(BaselineWatch::unless_exhausted(root, [](const std::string&) {}) ? 1 : 0);
        } catch (...) {
            ::_exit(2);
        }
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "1: a watch with no fd to spare; 2: it threw; 3: setrlimit";
    // With fds to spare, the watch is there.
    EXPECT_NE(BaselineWatch::unless_exhausted(root, [](const std::string&) {}), nullptr);
}

// A baseline written and the directory moved away in one batch of events:
// "" (any may have changed) is reported once, and not each id beside it.
TEST(DetectBaselineWatch, EverythingChangedIsReportedAlone) {
    vitro::test::TempDir t{"baseline-watch-all"};
    const std::string root = t.path.string();
    Reports r;
    BaselineWatch w(root, [&](const std::string& id) { r.add(id); });
    httpd_baseline().save(default_baseline_path(root, "c5"));
    std::filesystem::rename(root + "/baselines", root + "/baselines.old");
    std::jthread th = w.start();  // reads both events at once
    std::vector<std::string> all = r.wait_for("");
    httpd_baseline().save(default_baseline_path(root, "c6"));  // in the new directory
    for (auto& id : r.wait_for("c6")) all.push_back(id);
    EXPECT_EQ(all, (std::vector<std::string>{"", "c6"})) << "c5 reported beside \"\"";
}
