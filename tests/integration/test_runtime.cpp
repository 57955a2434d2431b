// End-to-end tests of vitro-runtime: real containers from a busybox bundle, one
// test per config feature, each checked from INSIDE the container by
// vitro-checker (copied into the rootfs as /checker), as youki's contest does.
//
// The runtime under test is the one this build made, or $VITRO_RUNTIME (e.g.
// /usr/sbin/runc, to tell a test's bug from a runtime's). Needs root.
//
// Every test has its own temporary directory (bundle, --root state dir, the
// files the runtime's stdout and stderr go to). TearDown always runs
// `delete --force`, then checks that nothing is left behind — no state dir,
// no cgroup named after the id, no mount under the temporary directory, no
// process in such a cgroup — and only then removes what it made.
#include <fcntl.h>
#include <signal.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/statvfs.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// ---- small helpers ---------------------------------------------------------------

std::string runtime_path() {
    const char* env = std::getenv("VITRO_RUNTIME");
    return env && *env ? env : VITRO_RUNTIME_PATH;
}

std::string checker_path() {
    const char* env = std::getenv("VITRO_CHECKER");
    return env && *env ? env : VITRO_CHECKER_PATH;
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void write_file(const fs::path& p, const std::string& text) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + p.string());
}

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

std::vector<std::string> lines_of(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    std::string line;
    while (std::getline(in, line))
        if (!line.empty()) out.push_back(line);
    return out;
}

// Polls COND every 50 ms until it holds or LIMIT passes (a generous guard
// against hangs, not a timing assertion).
bool wait_for(const std::function<bool()>& cond, std::chrono::seconds limit = 60s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        if (cond()) return true;
        std::this_thread::sleep_for(50ms);
    }
    return cond();
}

uint64_t inode_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) < 0) return 0;
    return st.st_ino;
}

uint64_t host_ns(const std::string& type) { return inode_of("/proc/self/ns/" + type); }

bool process_alive(int pid) { return pid > 0 && ::kill(pid, 0) == 0; }

// A field of /proc/PID/status, e.g. "Uid".
std::string proc_status_field(int pid, const std::string& key) {
    for (const auto& line : lines_of(read_file("/proc/" + std::to_string(pid) + "/status")))
        if (line.rfind(key + ":", 0) == 0) return line.substr(key.size() + 1);
    return "";
}

// PID's cgroup path for CONTROLLER (v1), else its unified (v2) path, seen from
// the host, with the hierarchy's mount directory: {"/sys/fs/cgroup/memory", "/vitro/x"}.
std::pair<std::string, std::string> cgroup_of(int pid, const std::string& controller) {
    std::string unified;
    for (const auto& line : lines_of(read_file("/proc/" + std::to_string(pid) + "/cgroup"))) {
        auto c1 = line.find(':'), c2 = line.find(':', c1 + 1);
        if (c1 == std::string::npos || c2 == std::string::npos) continue;
        std::string ctrls = line.substr(c1 + 1, c2 - c1 - 1), path = line.substr(c2 + 1);
        if (ctrls.empty()) unified = path;
        std::istringstream in(ctrls);
        std::string c;
        while (std::getline(in, c, ','))
            if (c == controller) return {"/sys/fs/cgroup/" + ctrls, path};
    }
    // Pure v2: the unified hierarchy is mounted at /sys/fs/cgroup itself.
    if (fs::exists("/sys/fs/cgroup/cgroup.controllers")) return {"/sys/fs/cgroup", unified};
    return {"", ""};
}

// A knob of PID's cgroup read from the host: the v1 file of CONTROLLER, or the v2 file.
std::string host_cgroup_knob(int pid, const std::string& controller, const std::string& v1_file,
                             const std::string& v2_file) {
    auto [mount, path] = cgroup_of(pid, controller);
    if (mount.empty()) return "(no " + controller + " cgroup for pid " + std::to_string(pid) + ")";
    bool v1 = mount != "/sys/fs/cgroup";
    return trim(read_file(mount + path + "/" + (v1 ? v1_file : v2_file)));
}

// ---- running a command -----------------------------------------------------------

struct Result {
    int code = -1;  // exit status; 128+N when killed by signal N; -1 when it hung
    bool hung = false;
    std::string cmd, out, err;
    fs::path out_path, err_path;  // a detached container may write on after the runtime returned

    std::string describe() const {
        std::string s = "$ " + cmd + "\n";
        s += hung ? "(killed: still running after the hang guard)\n" : "exit status " + std::to_string(code) + "\n";
        s += "stdout:\n" + out + (out.empty() || out.back() == '\n' ? "" : "\n");
        s += "stderr:\n" + err + (err.empty() || err.back() == '\n' ? "" : "\n");
        return s;
    }
};

struct SpawnOptions {
    int fd3 = -1;      // becomes fd 3 of the child (for --preserve-fds)
    int leak_fd = -1;  // stays open in the child under its own number, not close-on-exec
    std::chrono::seconds hang_guard = 120s;  // far beyond any healthy command here
};

// Runs ARGV with stdin from /dev/null and stdout/stderr into files under
// IO_DIR (files, not pipes: a detached container keeps them open). Every fd
// beyond those named in OPTS is closed in the child.
Result spawn(const std::vector<std::string>& argv, const fs::path& io_dir, const SpawnOptions& opts = {}) {
    static int counter = 0;
    Result r;
    for (const auto& a : argv) r.cmd += (r.cmd.empty() ? "" : " ") + a;
    std::string base = (io_dir / std::to_string(++counter)).string();
    int nullfd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    int outfd = ::open((base + ".out").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int errfd = ::open((base + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (nullfd < 0 || outfd < 0 || errfd < 0) {
        r.err = "spawn: cannot open stdio files under " + io_dir.string() + ": " + std::strerror(errno);
        return r;
    }
    std::vector<char*> cargv;
    for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);

    pid_t pid = ::fork();
    if (pid == 0) {
        // Move everything we keep above the stdio range first, then place it.
        int keep3 = opts.fd3 >= 0 ? ::fcntl(opts.fd3, F_DUPFD_CLOEXEC, 100) : -1;
        ::dup2(nullfd, 0);
        ::dup2(outfd, 1);
        ::dup2(errfd, 2);
        unsigned first_closed = 3;
        if (keep3 >= 0) {
            ::dup2(keep3, 3);
            first_closed = 4;
        }
        if (opts.leak_fd >= static_cast<int>(first_closed)) {
            ::fcntl(opts.leak_fd, F_SETFD, 0);
            if (static_cast<unsigned>(opts.leak_fd) > first_closed)
                ::close_range(first_closed, static_cast<unsigned>(opts.leak_fd) - 1, 0);
            ::close_range(static_cast<unsigned>(opts.leak_fd) + 1, ~0U, 0);
        } else {
            ::close_range(first_closed, ~0U, 0);
        }
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        ::execvp(cargv[0], cargv.data());
        std::fprintf(stderr, "exec %s: %s\n", cargv[0], std::strerror(errno));
        ::_exit(127);
    }
    ::close(nullfd);
    ::close(outfd);
    ::close(errfd);
    if (pid < 0) {
        r.err = std::string("fork: ") + std::strerror(errno);
        return r;
    }
    int status = 0;
    auto deadline = std::chrono::steady_clock::now() + opts.hang_guard;
    for (;;) {
        pid_t w = ::waitpid(pid, &status, WNOHANG);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) break;
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            r.hung = true;
            break;
        }
        std::this_thread::sleep_for(5ms);
    }
    if (!r.hung) {
        if (WIFEXITED(status)) r.code = WEXITSTATUS(status);
        else if (WIFSIGNALED(status)) r.code = 128 + WTERMSIG(status);
    }
    r.out_path = base + ".out";
    r.err_path = base + ".err";
    r.out = read_file(r.out_path);
    r.err = read_file(r.err_path);
    return r;
}

// ---- the fixture -----------------------------------------------------------------

class RuntimeTest : public ::testing::Test {
protected:
    fs::path tmp_, bundle_, rootfs_, root_, io_;
    std::string id_;
    json config_;
    std::vector<std::string> ids_;                 // every id this test may have created
    std::vector<std::function<void()>> cleanups_;  // extra host objects (netns, ...)

    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "integration tests need root (namespaces, mounts, cgroups)";
        ASSERT_TRUE(fs::exists(runtime_path())) << "no runtime at " << runtime_path() << " (set VITRO_RUNTIME)";
        ASSERT_TRUE(fs::exists(checker_path())) << "no checker at " << checker_path() << " (set VITRO_CHECKER)";
        char tmpl[] = "/tmp/vitro-it-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr) << std::strerror(errno);
        tmp_ = tmpl;
        // Searchable by the container's users (a user namespace maps root elsewhere).
        fs::permissions(tmp_, fs::perms(0755));
        bundle_ = tmp_ / "bundle";
        rootfs_ = bundle_ / "rootfs";
        root_ = tmp_ / "state";
        io_ = tmp_ / "io";
        fs::create_directories(io_);
        fs::create_directories(root_);
        id_ = make_id();
        ids_.push_back(id_);

        auto r = spawn({"bash", VITRO_MAKE_BUNDLE, bundle_.string()}, io_);
        ASSERT_EQ(r.code, 0) << r.describe();
        fs::copy_file(checker_path(), rootfs_ / "checker", fs::copy_options::overwrite_existing);
        fs::permissions(rootfs_ / "checker", fs::perms(0755));
        config_ = json::parse(read_file(bundle_ / "config.json"));
    }

    void TearDown() override {
        if (tmp_.empty()) return;
        for (const auto& id : ids_) rt({"delete", "--force", id});
        for (const auto& id : ids_) expect_nothing_left(id, "after delete --force");
        for (auto it = cleanups_.rbegin(); it != cleanups_.rend(); ++it) (*it)();
        force_cleanup();
    }

    // An id unique to this test and this process: "it-<test>-<pid>".
    std::string make_id(const std::string& suffix = "") const {
        std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
        std::string id = "it-";
        for (char c : name) {
            if (std::isupper(static_cast<unsigned char>(c)) && id.size() > 3) id += '-';
            id += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        if (id.size() > 40) id.resize(40);
        return id + suffix + "-" + std::to_string(::getpid());
    }

    // ---- config.json ----

    json& process() { return config_["process"]; }
    json& linux_() { return config_["linux"]; }

    // process.args = ["/checker", ARGS...]; several checks join with "+".
    void checker(const std::vector<std::string>& args) {
        json a = json::array({"/checker"});
        for (const auto& x : args) a.push_back(x);
        process()["args"] = a;
    }

    void remove_namespace(const std::string& type) {
        auto& ns = linux_()["namespaces"];
        ns.erase(std::remove_if(ns.begin(), ns.end(), [&](const json& n) { return n["type"] == type; }), ns.end());
    }

    void set_caps(const std::vector<std::string>& caps, bool with_inheritable_and_ambient = false) {
        json c = {{"bounding", caps}, {"effective", caps}, {"permitted", caps}};
        if (with_inheritable_and_ambient) {
            c["inheritable"] = caps;
            c["ambient"] = caps;
        }
        process()["capabilities"] = c;
    }

    void write_config() { write_file(bundle_ / "config.json", config_.dump(2)); }

    // ---- the runtime ----

    Result rt(std::vector<std::string> args, const SpawnOptions& opts = {}) {
        std::vector<std::string> argv = {runtime_path(), "--root", root_.string()};
        argv.insert(argv.end(), args.begin(), args.end());
        return spawn(argv, io_, opts);
    }

    // `run` in the foreground: the container's own output lands in the result.
    Result run_container(const std::vector<std::string>& extra = {}, const SpawnOptions& opts = {}) {
        write_config();
        std::vector<std::string> args = {"run", "--bundle", bundle_.string()};
        args.insert(args.end(), extra.begin(), extra.end());
        args.push_back(id_);
        return rt(args, opts);
    }

    Result run_detached(const std::string& id) {
        write_config();
        return rt({"run", "--detach", "--bundle", bundle_.string(), id});
    }

    Result create(const std::string& id) {
        write_config();
        return rt({"create", "--bundle", bundle_.string(), id});
    }

    // The parsed `state`, or null when the command fails.
    json state(const std::string& id) {
        auto r = rt({"state", id});
        if (r.code != 0) return nullptr;
        try {
            return json::parse(r.out);
        } catch (const json::exception&) {
            return nullptr;
        }
    }

    std::string status_of(const std::string& id) {
        json s = state(id);
        return s.is_object() && s.contains("status") && s["status"].is_string() ? s["status"].get<std::string>()
                                                                               : "(no state)";
    }

    // Waits (generously) for the container to reach STATUS; says what it saw last.
    ::testing::AssertionResult reaches(const std::string& id, const std::string& status) {
        std::string last;
        if (wait_for([&] { return (last = status_of(id)) == status; }))
            return ::testing::AssertionSuccess();
        return ::testing::AssertionFailure() << "container " << id << " never reached status '" << status
                                             << "'; last status: " << last;
    }

    int pid_of(const std::string& id) {
        json s = state(id);
        return s.is_object() && s.contains("pid") && s["pid"].is_number_integer() ? s["pid"].get<int>() : 0;
    }

    // ---- nothing left behind ----

    // Directories named ID in any cgroup hierarchy (depth-limited walk).
    static std::vector<std::string> cgroup_dirs_named(const std::string& id) {
        std::vector<std::string> found;
        std::error_code ec;
        for (const auto& hier : fs::directory_iterator("/sys/fs/cgroup", ec)) {
            if (!hier.is_directory()) continue;
            fs::recursive_directory_iterator it(hier.path(), fs::directory_options::skip_permission_denied, ec), end;
            for (; it != end; it.increment(ec)) {
                if (ec) break;
                if (it.depth() > 4) {
                    it.disable_recursion_pending();
                    continue;
                }
                if (!it->is_directory(ec) || it->is_symlink(ec)) {
                    continue;
                }
                if (it->path().filename() == id) {
                    found.push_back(it->path().string());
                    it.disable_recursion_pending();
                }
            }
        }
        return found;
    }

    // Processes whose cgroup path (any hierarchy) has a component named ID.
    static std::vector<int> processes_in_cgroup_named(const std::string& id) {
        std::vector<int> pids;
        std::error_code ec;
        for (const auto& e : fs::directory_iterator("/proc", ec)) {
            std::string name = e.path().filename();
            if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
            for (const auto& line : lines_of(read_file(e.path() / "cgroup"))) {
                auto path = line.substr(line.find(':', line.find(':') + 1) + 1) + "/";
                if (path.find("/" + id + "/") != std::string::npos) {
                    pids.push_back(std::stoi(name));
                    break;
                }
            }
        }
        return pids;
    }

    // Mount points in our mount namespace under the test's temporary directory.
    std::vector<std::string> mounts_under_tmp() const {
        std::vector<std::string> found;
        std::string prefix = tmp_.string() + "/";
        for (const auto& line : lines_of(read_file("/proc/self/mountinfo"))) {
            std::istringstream f(line);
            std::string a, b, c, d, mp;
            f >> a >> b >> c >> d >> mp;
            if (mp.rfind(prefix, 0) == 0 || mp == tmp_.string()) found.push_back(mp);
        }
        return found;
    }

    // Adds a failure for anything of container ID still on the host.
    void expect_nothing_left(const std::string& id, const std::string& when) {
        if (tmp_.empty()) return;
        EXPECT_FALSE(fs::exists(root_ / id)) << when << ": state dir " << (root_ / id) << " is left behind";
        std::vector<int> procs;
        wait_for([&] { return (procs = processes_in_cgroup_named(id)).empty(); }, 20s);
        for (int p : procs)
            ADD_FAILURE() << when << ": process " << p << " (" << trim(read_file("/proc/" + std::to_string(p) + "/comm"))
                          << ") is left in a cgroup named " << id;
        std::vector<std::string> cgs;
        wait_for([&] { return (cgs = cgroup_dirs_named(id)).empty(); }, 20s);
        for (const auto& c : cgs) ADD_FAILURE() << when << ": cgroup " << c << " is left behind";
        for (const auto& m : mounts_under_tmp()) ADD_FAILURE() << when << ": mount " << m << " is left behind";
    }

    // Undo whatever a faulty runtime left, so that one bug does not spill into
    // the next test or the host, then remove the temporary directory.
    void force_cleanup() {
        for (const auto& id : ids_) {
            for (int p : processes_in_cgroup_named(id)) ::kill(p, SIGKILL);
            wait_for([&] { return processes_in_cgroup_named(id).empty(); }, 10s);
            auto dirs = cgroup_dirs_named(id);
            for (const auto& d : dirs) {
                // Children first.
                std::vector<fs::path> sub;
                std::error_code ec;
                for (auto it = fs::recursive_directory_iterator(d, ec); !ec && it != fs::recursive_directory_iterator();
                     it.increment(ec))
                    if (it->is_directory(ec)) sub.push_back(it->path());
                std::sort(sub.begin(), sub.end(), [](auto& a, auto& b) { return a.string().size() > b.string().size(); });
                for (const auto& s : sub) ::rmdir(s.c_str());
                ::rmdir(d.c_str());
            }
        }
        auto mounts = mounts_under_tmp();
        std::sort(mounts.begin(), mounts.end(), [](auto& a, auto& b) { return a.size() > b.size(); });
        for (const auto& m : mounts) ::umount2(m.c_str(), MNT_DETACH);
        if (!mounts_under_tmp().empty()) {
            // Never recurse into a mount: it may lead back into the host's files.
            ADD_FAILURE() << "could not unmount everything under " << tmp_ << "; leaving it in place";
            return;
        }
        std::error_code ec;
        fs::remove_all(tmp_, ec);
    }
};

// A command's exit status, with the whole transcript when it is not the one
// expected. (A function, so that the command runs exactly once.)
::testing::AssertionResult exit_status_is(const Result& r, int status) {
    if (r.code == status) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "expected exit status " << status << "\n" << r.describe();
}
// A command that must fail: it ran to its end and exited non-zero.
::testing::AssertionResult failed(const Result& r) {
    if (!r.hung && r.code > 0) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "expected a non-zero exit status\n" << r.describe();
}

#define EXPECT_EXIT_STATUS(command, status) EXPECT_TRUE(exit_status_is((command), (status)))
#define ASSERT_EXIT_STATUS(command, status) ASSERT_TRUE(exit_status_is((command), (status)))

::testing::AssertionResult contains(const std::string& haystack, const std::string& needle) {
    if (haystack.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "'" << needle << "' not found in:\n" << haystack;
}

// ---- process settings ------------------------------------------------------------

TEST_F(RuntimeTest, HostnameAndDomainname) {
    config_["hostname"] = "it-host";
    config_["domainname"] = "it.example";
    checker({"hostname", "it-host", "+", "domainname", "it.example"});
    EXPECT_EXIT_STATUS(run_container(), 0);
}

TEST_F(RuntimeTest, UserUidGidAdditionalGidsUmask) {
    process()["user"] = {{"uid", 1000}, {"gid", 1001}, {"additionalGids", {10, 2000}}, {"umask", 027}};
    checker({"uid-gid", "1000", "1001", "10", "2000", "+", "umask", "0027"});
    EXPECT_EXIT_STATUS(run_container(), 0);
}

TEST_F(RuntimeTest, DefaultUserIsRootWithNoExtraGroupsAndUmask0022) {
    checker({"uid-gid", "0", "0", "+", "umask", "0022"});
    EXPECT_EXIT_STATUS(run_container(), 0);
}

TEST_F(RuntimeTest, CapabilitiesPresentAndAbsent) {
    set_caps({"CAP_CHOWN", "CAP_NET_RAW", "CAP_SYS_CHROOT"});
    // CHOWN = bit 0, NET_RAW = 13, SYS_CHROOT = 18.
    checker({"caps", "42001", "+", "caps-set", "bnd", "42001", "+", "caps-set", "prm", "42001", "+",
             "cap-has", "CAP_NET_RAW", "+", "cap-lacks", "CAP_KILL", "+", "cap-lacks", "CAP_SYS_ADMIN", "+",
             "cap-lacks", "CAP_SYS_ADMIN", "bnd", "+", "caps-set", "amb", "0"});
    EXPECT_EXIT_STATUS(run_container(), 0);
}

TEST_F(RuntimeTest, AmbientCapabilitiesReachNonRootUser) {
    process()["user"] = {{"uid", 1000}, {"gid", 1000}};
    set_caps({"CAP_NET_BIND_SERVICE", "CAP_NET_RAW"}, true);
    // NET_BIND_SERVICE = bit 10, NET_RAW = 13.
    checker({"uid-gid", "1000", "1000", "+", "caps", "2400", "+", "caps-set", "amb", "2400", "+", "cap-lacks",
             "CAP_CHOWN", "bnd"});
    EXPECT_EXIT_STATUS(run_container(), 0);
}

TEST_F(RuntimeTest, Rlimits) {
    process()["rlimits"] = json::array({
        {{"type", "RLIMIT_NOFILE"}, {"soft", 512}, {"hard", 1024}},
        {{"type", "RLIMIT_NPROC"}, {"soft", 100}, {"hard", 200}},
        {{"type", "RLIMIT_CORE"}, {"soft", 0}, {"hard", 4096}},
    });
    checker({"rlimit", "RLIMIT_NOFILE", "512", "1024", "+", "rlimit", "RLIMIT_NPROC", "100", "200", "+", "rlimit",
             "RLIMIT_CORE", "0", "4096"});
    EXPECT_EXIT_STATUS(run_container(), 0);
}

TEST_F(RuntimeTest, NoNewPrivilegesSet) {
    process()["noNewPrivileges"] = true;
    checker({"nnp", "1"});
    EXPECT_EXIT_STATUS(run_container(), 0);
}

TEST_F(RuntimeTest, NoNewPrivilegesUnset) {
    process()["noNewPrivileges"] = false;
    checker({"nnp", "0"});
    EXPECT_EXIT_STATUS(run_container(), 0);
}

TEST_F(RuntimeTest, EnvAndCwd) {
    process()["env"].push_back("VITRO_IT=a value with spaces=and equals");
    process()["env"].push_back("EMPTY=");
    process()["cwd"] = "/var/www";
    checker({"env", "VITRO_IT=a value with spaces=and equals", "+", "env", "EMPTY=", "+", "env",
             "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "+", "env", "TERM=xterm", "+",
             "cwd", "/var/www"});
    EXPECT_EXIT_STATUS(run_container(), 0);
}

TEST_F(RuntimeTest, OomScoreAdj) {
    process()["oomScoreAdj"] = 500;
    checker({"oom-score-adj", "500"});
    EXPECT_EXIT_STATUS(run_container(), 0);
}

TEST_F(RuntimeTest, ExitCodePropagates) {
    process()["args"] = {"sh", "-c", "exit 7"};
    EXPECT_EXIT_STATUS(run_container(), 7);
}

TEST_F(RuntimeTest, ExitBySignalGives128PlusSignal) {
    // Outside a pid namespace sh is not an init, so it can kill itself.
    remove_namespace("pid");
    process()["args"] = {"sh", "-c", "kill -KILL $$"};
    EXPECT_EXIT_STATUS(run_container(), 128 + SIGKILL);
}

TEST_F(RuntimeTest, MissingExecutableFailsCleanly) {
    process()["args"] = {"/no-such-binary"};
    auto r = run_container();
    EXPECT_TRUE(failed(r));
    EXPECT_TRUE(contains(r.err, "/no-such-binary"));
    expect_nothing_left(id_, "after a failed run");
}

// ---- filesystem -------------------------------------------------------------------

TEST_F(RuntimeTest, ReadonlyRootfs) {
    config_["root"]["readonly"] = true;
    checker({"mount-ro", "/", "+", "readonly", "/", "+", "readonly", "/etc", "+", "readonly", "/etc/passwd", "+",
             "writable", "/tmp"});
    EXPECT_EXIT_STATUS(run_container(), 0);
}

TEST_F(RuntimeTest, ReadWriteRootfs) {
    config_["root"]["readonly"] = false;
    checker({"mount-rw", "/", "+", "writable", "/etc", "+", "writable", "/"});
    EXPECT_EXIT_STATUS(run_container(), 0);
}

TEST_F(RuntimeTest, MaskedAndReadonlyPaths) {
    config_["root"]["readonly"] = false;
    fs::create_directories(rootfs_ / "masked-dir");
    write_file(rootfs_ / "masked-dir" / "secret", "secret\n");
    write_file(rootfs_ / "masked-file", "secret\n");
    fs::create_directories(rootfs_ / "ro-dir");
    write_file(rootfs_ / "ro-dir" / "file", "content\n");
    linux_()["maskedPaths"].push_back("/masked-dir");
    linux_()["maskedPaths"].push_back("/masked-file");
    linux_()["maskedPaths"].push_back("/no-such-masked-path");  // absent: ignored
    linux_()["readonlyPaths"].push_back("/ro-dir");
    checker({"masked", "/proc/keys", "+", "masked", "/proc/timer_list", "+", "masked", "/sys/firmware", "+", "masked",
             "/masked-dir", "+", "masked", "/masked-file", "+", "not-exists", "/no-such-masked-path", "+", "readonly",
             "/proc/sys", "+", "readonly", "/proc/sys/kernel/domainname", "+", "readonly", "/proc/bus", "+",
             "readonly", "/ro-dir", "+", "readonly", "/ro-dir/file", "+", "file-content", "/ro-dir/file", "content",
             "+", "writable", "/etc", "+", "cannot-remount", "/proc/sys", "+", "cannot-remount", "/ro-dir"});
    EXPECT_EXIT_STATUS(run_container(), 0);
    // Masking happens in the container's view only.
    EXPECT_EQ(read_file(rootfs_ / "masked-file"), "secret\n");
    EXPECT_TRUE(fs::exists(rootfs_ / "masked-dir" / "secret"));
}

TEST_F(RuntimeTest, Mounts) {
    write_file(tmp_ / "host-file", "from host\n");
    fs::create_directories(tmp_ / "host-ro");
    write_file(tmp_ / "host-ro" / "inside", "ro content\n");
    fs::create_directories(tmp_ / "host-rw");
    auto& m = config_["mounts"];
    m.push_back({{"destination", "/etc/bound-file"}, {"type", "bind"}, {"source", (tmp_ / "host-file").string()},
                 {"options", {"bind"}}});
    m.push_back({{"destination", "/mnt/ro"}, {"type", "bind"}, {"source", (tmp_ / "host-ro").string()},
                 {"options", {"rbind", "ro"}}});
    m.push_back({{"destination", "/mnt/rw"}, {"type", "bind"}, {"source", (tmp_ / "host-rw").string()},
                 {"options", {"rbind", "rw"}}});
    m.push_back({{"destination", "/mnt/tmpfs"}, {"type", "tmpfs"}, {"source", "tmpfs"},
                 {"options", {"nosuid", "nodev", "noexec", "size=1m", "mode=700"}}});
    checker({"file-content", "/etc/bound-file", "from host", "+", "mount-ro", "/mnt/ro", "+", "readonly", "/mnt/ro",
             "+", "file-content", "/mnt/ro/inside", "ro content", "+", "mount-rw", "/mnt/rw", "+", "write-file",
             "/mnt/rw/out", "from container", "+", "mount-info", "/mnt/tmpfs", "tmpfs", "nosuid", "nodev", "noexec",
             "size=1024k", "mode=700", "+", "writable", "/mnt/tmpfs", "+", "mount-ro", "/"});
    EXPECT_EXIT_STATUS(run_container(), 0);
    EXPECT_EQ(read_file(tmp_ / "host-rw" / "out"), "from container\n");
    EXPECT_EQ(read_file(tmp_ / "host-file"), "from host\n");
    // The runtime made the missing mount points inside the rootfs, not elsewhere.
    EXPECT_TRUE(fs::exists(rootfs_ / "mnt" / "tmpfs"));
}

TEST_F(RuntimeTest, CustomDevicesAndDeviceCgroup) {
    linux_()["devices"] = json::array({
        {{"path", "/dev/vitro-null"}, {"type", "c"}, {"major", 1}, {"minor", 3}, {"fileMode", 0640}, {"uid", 0},
         {"gid", 0}},
        {{"path", "/dev/vitro-kmsg"}, {"type", "c"}, {"major", 1}, {"minor", 11}, {"fileMode", 0600}, {"uid", 0},
         {"gid", 0}},
    });
    // Deny all (the default config's first rule), then allow 1:3 only.
    linux_()["resources"]["devices"].push_back(
        {{"allow", true}, {"type", "c"}, {"major", 1}, {"minor", 3}, {"access", "rwm"}});
    checker({"device", "/dev/vitro-null", "c", "1", "3", "0640", "0", "0", "+", "dev-rw", "/dev/vitro-null", "+",
             "device", "/dev/vitro-kmsg", "c", "1", "11", "0600", "+", "dev-denied", "/dev/vitro-kmsg"});
    EXPECT_EXIT_STATUS(run_container(), 0);
}

TEST_F(RuntimeTest, DevFdSymlinksAndDefaultDevices) {
    checker({"symlink", "/dev/fd", "/proc/self/fd", "+", "symlink", "/dev/stdin", "/proc/self/fd/0", "+", "symlink",
             "/dev/stdout", "/proc/self/fd/1", "+", "symlink", "/dev/stderr", "/proc/self/fd/2", "+", "symlink",
             "/dev/ptmx", "pts/ptmx", "+", "device", "/dev/null", "c", "1", "3", "0666", "+", "device", "/dev/zero",
             "c", "1", "5", "0666", "+", "device", "/dev/full", "c", "1", "7", "0666", "+", "device", "/dev/random",
             "c", "1", "8", "0666", "+", "device", "/dev/urandom", "c", "1", "9", "0666", "+", "device", "/dev/tty",
             "c", "5", "0", "0666", "+", "dev-rw", "/dev/null", "+", "dev-rw", "/dev/zero", "+", "dev-rw",
             "/dev/full", "+", "dev-rw", "/dev/urandom", "+", "mount-info", "/dev", "tmpfs", "nosuid", "mode=755",
             "+", "mount-info", "/dev/pts", "devpts", "+", "mount-info", "/dev/shm", "tmpfs", "nodev", "+",
             "mount-info", "/dev/mqueue", "mqueue", "+", "mount-info", "/proc", "proc", "+", "mount-info", "/sys",
             "sysfs", "ro"});
    EXPECT_EXIT_STATUS(run_container(), 0);
}

// ---- kernel settings ---------------------------------------------------------------

TEST_F(RuntimeTest, SysctlInNewNamespaces) {
    std::string host_forward = trim(read_file("/proc/sys/net/ipv4/ip_forward"));
    std::string want = host_forward == "1" ? "0" : "1";
    linux_()["sysctl"] = {{"net.ipv4.ip_forward", want}, {"kernel.shm_rmid_forced", "1"}};
    checker({"sysctl", "net.ipv4.ip_forward", want, "+", "sysctl", "kernel.shm_rmid_forced", "1"});
    EXPECT_EXIT_STATUS(run_container(), 0);
    EXPECT_EQ(trim(read_file("/proc/sys/net/ipv4/ip_forward")), host_forward) << "the host's sysctl changed";
}

// A sysctl outside the container's own namespaces would be written on the
// host (kernel.core_pattern runs a program as root there): refused before
// anything is made, the key named, and the host's value never moves.
TEST_F(RuntimeTest, SysctlOutsideTheContainersNamespacesIsRefused) {
    struct Case {
        std::string key, value, drop_ns;  // drop_ns: a namespace taken out of the config first
    };
    const std::vector<Case> cases = {
        {"kernel.core_uses_pid", "", ""},     {"vm.overcommit_memory", "", ""},
        {"kernel.core_pattern", "|/bin/false", ""}, {"net.ipv4.ip_forward", "", "network"},
        {"kernel.shm_rmid_forced", "", "ipc"}, {"fs.mqueue.msg_max", "", "ipc"},
        {"kernel.domainname", "evil", "uts"},
    };
    const json pristine = config_;
    for (const auto& c : cases) {
        config_ = pristine;
        if (!c.drop_ns.empty()) remove_namespace(c.drop_ns);
        if (c.drop_ns == "uts") config_.erase("hostname");
        std::string proc = "/proc/sys/" + c.key;
        std::replace(proc.begin(), proc.end(), '.', '/');
        std::string before = trim(read_file(proc));
        // A value the host does not have, so that a write would show.
        std::string value = c.value.empty() ? (before == "1" ? "0" : "1") : c.value;
        linux_()["sysctl"] = {{c.key, value}};
        process()["args"] = {"true"};
        auto r = run_container();
        EXPECT_TRUE(failed(r)) << c.key << "\n" << r.describe();
        EXPECT_TRUE(contains(r.err, "linux.sysctl: " + c.key)) << r.describe();
        EXPECT_EQ(trim(read_file(proc)), before) << "the host's " << c.key << " changed";
        expect_nothing_left(id_, "after a refused sysctl");
    }
}

// A network namespace joined by path that is the host's own is no namespace
// of the container's: net.* is refused there too.
TEST_F(RuntimeTest, NetSysctlInTheHostsNetworkNamespaceIsRefused) {
    std::string before = trim(read_file("/proc/sys/net/ipv4/ip_forward"));
    for (auto& ns : linux_()["namespaces"])
        if (ns["type"] == "network") ns["path"] = "/proc/" + std::to_string(::getpid()) + "/ns/net";
    linux_()["sysctl"] = {{"net.ipv4.ip_forward", before == "1" ? "0" : "1"}};
    process()["args"] = {"true"};
    auto r = run_container();
    EXPECT_TRUE(failed(r)) << r.describe();
    EXPECT_TRUE(contains(r.err, "host's own")) << r.describe();
    EXPECT_EQ(trim(read_file("/proc/sys/net/ipv4/ip_forward")), before) << "the host's ip_forward changed";
    expect_nothing_left(id_, "after a refused sysctl");
}

// root.path through a symlink (here one out of the bundle, to a copy of the
// rootfs elsewhere) is refused, as runc refuses it.
TEST_F(RuntimeTest, RootfsThroughASymlinkIsRefused) {
    fs::path elsewhere = tmp_ / "elsewhere";
    fs::rename(rootfs_, elsewhere);
    fs::create_directory_symlink(elsewhere, rootfs_);
    checker({"pid1"});
    auto r = run_container();
    EXPECT_TRUE(failed(r)) << r.describe();
    EXPECT_TRUE(contains(r.err, "root.path: rootfs goes through a symlink")) << r.describe();
    expect_nothing_left(id_, "after a refused rootfs");
    fs::remove(rootfs_);
    fs::rename(elsewhere, rootfs_);
}

// A create killed after it made the cgroup and before it wrote the state
// leaves a directory with the copied config.json: delete --force clears the
// cgroup it names too (what the engine's chaos runs found left behind).
TEST_F(RuntimeTest, DeleteForceClearsWhatADeadCreateLeft) {
    write_config();
    fs::create_directories(root_ / id_);
    fs::copy_file(bundle_ / "config.json", root_ / id_ / "config.json");
    std::vector<fs::path> made;
    for (const char* hier : {"memory", "pids", "unified", ""})  // "": a pure v2 host
        if (fs::exists(fs::path("/sys/fs/cgroup") / hier / "cgroup.procs")) {
            fs::path d = fs::path("/sys/fs/cgroup") / hier / "vitro" / id_;
            fs::create_directories(d);
            made.push_back(d);
        }
    ASSERT_FALSE(made.empty()) << "no cgroup hierarchy found to make the dead create's cgroup in";
    auto r = rt({"delete", "--force", id_});
    EXPECT_EQ(r.code, 0) << r.describe();
    for (const auto& d : made) EXPECT_FALSE(fs::exists(d)) << d << " left behind";
    EXPECT_FALSE(fs::exists(root_ / id_));
}

// Oversized fields are named by the parser, not found deep in the setup.
TEST_F(RuntimeTest, OversizedHostnameIsNamed) {
    config_["hostname"] = std::string(10 << 20, 'h');
    auto r = run_container();
    EXPECT_TRUE(failed(r)) << r.cmd;
    EXPECT_TRUE(contains(r.err, "hostname: 10485760 bytes long, at most 64")) << r.err.substr(0, 500);
    expect_nothing_left(id_, "after an oversized hostname");
}

TEST_F(RuntimeTest, SeccompErrnoRules) {
    linux_()["seccomp"] = {
        {"defaultAction", "SCMP_ACT_ALLOW"},
        {"architectures", {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}},
        {"syscalls",
         {{{"names", {"getcwd"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", EXDEV}},
          {{"names", {"getppid"}}, {"action", "SCMP_ACT_ERRNO"}}}},
    };
    checker({"seccomp-mode", "2", "+", "seccomp-errno", "getcwd", "EXDEV", "+", "seccomp-errno", "getppid", "EPERM"});
    EXPECT_EXIT_STATUS(run_container(), 0);
}

TEST_F(RuntimeTest, MemoryLimitReadableInContainer) {
    linux_()["resources"]["memory"] = {{"limit", 64 << 20}};
    checker({"cgroup-mem-limit", std::to_string(64 << 20)});
    EXPECT_EXIT_STATUS(run_container(), 0);
}

// ---- namespaces -------------------------------------------------------------------

TEST_F(RuntimeTest, PidNamespaceMakesProcessPid1) {
    checker({"pid1"});
    EXPECT_EXIT_STATUS(run_container(), 0);
}

TEST_F(RuntimeTest, NamespacesDifferFromHost) {
    std::vector<std::string> args;
    for (const char* ns : {"pid", "net", "ipc", "uts", "mnt", "cgroup"}) {
        if (!args.empty()) args.push_back("+");
        args.insert(args.end(), {"ns-differs", ns, std::to_string(host_ns(ns))});
    }
    // Not asked for: shared with the host.
    args.insert(args.end(), {"+", "ns-same", "user", std::to_string(host_ns("user"))});
    checker(args);
    EXPECT_EXIT_STATUS(run_container(), 0);
}

TEST_F(RuntimeTest, NamespacesNotRequestedAreShared) {
    remove_namespace("ipc");
    remove_namespace("uts");
    config_.erase("hostname");
    checker({"ns-same", "ipc", std::to_string(host_ns("ipc")), "+", "ns-same", "uts", std::to_string(host_ns("uts")),
             "+", "ns-differs", "net", std::to_string(host_ns("net"))});
    EXPECT_EXIT_STATUS(run_container(), 0);
}

TEST_F(RuntimeTest, JoinsNetworkNamespaceByPath) {
    std::string name = "vitro-" + std::to_string(::getpid());
    auto add = spawn({"ip", "netns", "add", name}, io_);
    ASSERT_EXIT_STATUS(add, 0);
    cleanups_.push_back([this, name] { spawn({"ip", "netns", "del", name}, io_); });
    std::string path = "/run/netns/" + name;
    uint64_t ino = inode_of(path);
    ASSERT_NE(ino, 0u);
    ASSERT_NE(ino, host_ns("net"));
    for (auto& n : linux_()["namespaces"])
        if (n["type"] == "network") n["path"] = path;
    checker({"ns-same", "net", std::to_string(ino), "+", "ns-differs", "uts", std::to_string(host_ns("uts"))});
    EXPECT_EXIT_STATUS(run_container(), 0);
    // The runtime joined it; it must not have torn it down.
    EXPECT_EQ(inode_of(path), ino) << path << " is gone or replaced after the container";
}

TEST_F(RuntimeTest, UserNamespaceWithMappings) {
    linux_()["namespaces"].push_back({{"type", "user"}});
    linux_()["uidMappings"] = json::array({{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}});
    linux_()["gidMappings"] = json::array({{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}});
    checker({"uid-map", "0", "100000", "65536", "+", "gid-map", "0", "100000", "65536", "+", "uid-gid", "0", "0",
             "+", "ns-differs", "user", std::to_string(host_ns("user")), "+", "sleep", "600"});
    auto r = run_detached(id_);
    ASSERT_EXIT_STATUS(r, 0);
    int pid = pid_of(id_);
    ASSERT_GT(pid, 0);
    // Seen from the host, the container's root is uid 100000.
    std::string uid_line;
    bool mapped = wait_for([&] {
        uid_line = proc_status_field(pid, "Uid");
        return uid_line == "\t100000\t100000\t100000\t100000" || !process_alive(pid);
    });
    EXPECT_TRUE(mapped && process_alive(pid))
        << "host view of the container's uids: '" << uid_line << "'; container output:\n"
        << read_file(r.out_path) << read_file(r.err_path);
    EXPECT_EQ(uid_line, "\t100000\t100000\t100000\t100000");
    EXPECT_EQ(status_of(id_), "running") << "the in-container checks failed? container output:\n"
                                         << read_file(r.out_path) << read_file(r.err_path);
}

// ---- file descriptors -------------------------------------------------------------

class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

TEST_F(RuntimeTest, NoExtraFdsReachTheContainer) {
    // An fd the caller forgot to close (not close-on-exec): it must stay outside.
    write_file(tmp_ / "leaked", "leaked\n");
    Fd file(::open((tmp_ / "leaked").c_str(), O_RDONLY));
    Fd leak(::fcntl(file.get(), F_DUPFD, 20));
    ASSERT_GE(leak.get(), 20);
    checker({"no-extra-fds", "3"});
    SpawnOptions opts;
    opts.leak_fd = leak.get();
    EXPECT_EXIT_STATUS(run_container({}, opts), 0);
}

TEST_F(RuntimeTest, PreserveFdsPassesFd3) {
    write_file(tmp_ / "preserved", "preserved\n");
    Fd file(::open((tmp_ / "preserved").c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_GE(file.get(), 0);
    write_file(tmp_ / "leaked", "leaked\n");
    Fd other(::open((tmp_ / "leaked").c_str(), O_RDONLY));
    Fd leak(::fcntl(other.get(), F_DUPFD, 20));
    checker({"no-extra-fds", "4", "+", "fd-content", "3", "preserved"});
    SpawnOptions opts;
    opts.fd3 = file.get();
    opts.leak_fd = leak.get();
    EXPECT_EXIT_STATUS(run_container({"--preserve-fds", "1"}, opts), 0);
}

// ---- hooks --------------------------------------------------------------------------

TEST_F(RuntimeTest, HooksRunInOrderWithState) {
    fs::path out = tmp_ / "hooks";
    fs::create_directories(out);
    fs::permissions(out, fs::perms(0777));
    // Each hook saves its stdin and appends its name to OUT/order. All but
    // startContainer see the host's paths (createContainer runs in the
    // container's mount namespace, but before pivot_root); startContainer runs
    // after it, where OUT is bound at /hooks.
    config_["mounts"].push_back(
        {{"destination", "/hooks"}, {"type", "bind"}, {"source", out.string()}, {"options", {"rbind", "rw"}}});
    auto hook = [](const std::string& dir, const std::string& name) {
        return json{{"path", "/bin/sh"},
                    {"args", {"sh", "-c", "cat > " + dir + "/" + name + ".json; echo " + name + " >> " + dir + "/order"}},
                    {"env", {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}}};
    };
    config_["hooks"] = {
        {"prestart", {hook(out.string(), "prestart")}},
        {"createRuntime", {hook(out.string(), "createRuntime")}},
        {"createContainer", {hook(out.string(), "createContainer")}},
        {"startContainer", {hook("/hooks", "startContainer")}},
        {"poststart", {hook(out.string(), "poststart")}},
        {"poststop", {hook(out.string(), "poststop")}},
    };
    checker({"exists", "/hooks/startContainer.json"});
    EXPECT_EXIT_STATUS(run_container(), 0);

    auto order = lines_of(read_file(out / "order"));
    auto pos = [&](const std::string& n) {
        return std::find(order.begin(), order.end(), n) - order.begin();
    };
    std::string seen;
    for (auto& o : order) seen += o + " ";
    for (const char* n : {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"})
        EXPECT_EQ(std::count(order.begin(), order.end(), n), 1) << n << " ran not once; order: " << seen;
    // prestart runs when `start` is called, before the process (runtime-spec
    // 1.0.0's lifecycle, which the runtime-tools conformance suite checks:
    // its prestart test fails a runtime that runs prestart during create).
    EXPECT_LT(pos("createRuntime"), pos("createContainer")) << seen;
    EXPECT_LT(pos("createContainer"), pos("prestart")) << seen;
    EXPECT_LT(pos("prestart"), pos("startContainer")) << seen;
    EXPECT_LT(pos("createContainer"), pos("startContainer")) << seen;
    EXPECT_LT(pos("startContainer"), pos("poststart")) << seen;
    EXPECT_LT(pos("poststart"), pos("poststop")) << seen;

    for (const char* n : {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}) {
        std::string text = read_file(out / (std::string(n) + ".json"));
        json s;
        try {
            s = json::parse(text);
        } catch (const json::exception& e) {
            ADD_FAILURE() << n << " hook's stdin is not state JSON: " << e.what() << "\n" << text;
            continue;
        }
        EXPECT_EQ(s.value("id", ""), id_) << n << ": " << text;
        EXPECT_EQ(s.value("bundle", ""), bundle_.string()) << n << ": " << text;
        EXPECT_FALSE(s.value("ociVersion", "").empty()) << n << ": " << text;
        EXPECT_TRUE(s.contains("status")) << n << ": " << text;
        if (std::string(n) != "poststop") {
            EXPECT_GT(s.value("pid", 0), 0) << n << ": " << text;
        }
    }
}

TEST_F(RuntimeTest, FailingPrestartHookAbortsAndCleansUp) {
    config_["hooks"] = {{"prestart", {{{"path", "/bin/sh"}, {"args", {"sh", "-c", "exit 3"}}}}}};
    checker({"sleep", "600"});
    auto r = run_container();
    EXPECT_TRUE(failed(r));
    EXPECT_NE(status_of(id_), "running");
    expect_nothing_left(id_, "after a failing prestart hook");
}

// ---- lifecycle -------------------------------------------------------------------

TEST_F(RuntimeTest, LifecycleCreateStartKillDelete) {
    fs::create_directories(tmp_ / "out");
    config_["mounts"].push_back({{"destination", "/out"}, {"type", "bind"}, {"source", (tmp_ / "out").string()},
                                 {"options", {"rbind", "rw"}}});
    checker({"write-file", "/out/started", "yes", "+", "sleep", "600"});

    auto c = create(id_);
    ASSERT_EXIT_STATUS(c, 0);
    json s = state(id_);
    ASSERT_TRUE(s.is_object()) << rt({"state", id_}).describe();
    EXPECT_EQ(s.value("status", ""), "created") << s.dump();
    EXPECT_EQ(s.value("id", ""), id_) << s.dump();
    EXPECT_EQ(s.value("bundle", ""), bundle_.string()) << s.dump();
    int pid = s.value("pid", 0);
    EXPECT_GT(pid, 0) << s.dump();
    EXPECT_TRUE(process_alive(pid)) << "init pid " << pid << " of a created container is not alive";
    EXPECT_FALSE(fs::exists(tmp_ / "out" / "started")) << "the user process ran before start";
    EXPECT_TRUE(fs::exists(root_ / id_)) << "no state dir under --root";

    auto st = rt({"start", id_});
    ASSERT_EXIT_STATUS(st, 0);
    EXPECT_TRUE(reaches(id_, "running"));
    EXPECT_TRUE(wait_for([&] { return fs::exists(tmp_ / "out" / "started"); })) << "the user process never ran";
    EXPECT_EQ(pid_of(id_), pid);

    auto k = rt({"kill", id_, "KILL"});
    EXPECT_EXIT_STATUS(k, 0);
    EXPECT_TRUE(reaches(id_, "stopped"));
    EXPECT_TRUE(wait_for([&] { return !process_alive(pid); }));

    auto d = rt({"delete", id_});
    EXPECT_EXIT_STATUS(d, 0);
    auto gone = rt({"state", id_});
    EXPECT_TRUE(failed(gone));
    EXPECT_TRUE(contains(gone.err, "does not exist"));
    EXPECT_TRUE(contains(gone.err, id_));
    expect_nothing_left(id_, "after delete");
}

TEST_F(RuntimeTest, KillDefaultsToSigterm) {
    checker({"sleep", "600"});  // exits 143 on SIGTERM
    ASSERT_EXIT_STATUS(run_detached(id_), 0);
    ASSERT_TRUE(reaches(id_, "running"));
    EXPECT_EXIT_STATUS(rt({"kill", id_}), 0);
    EXPECT_TRUE(reaches(id_, "stopped"));
    EXPECT_EXIT_STATUS(rt({"delete", id_}), 0);
    expect_nothing_left(id_, "after delete");
}

TEST_F(RuntimeTest, DeleteRunningWithoutForceFails) {
    checker({"sleep", "600"});
    ASSERT_EXIT_STATUS(run_detached(id_), 0);
    ASSERT_TRUE(reaches(id_, "running"));
    int pid = pid_of(id_);
    auto d = rt({"delete", id_});
    EXPECT_TRUE(failed(d));
    EXPECT_TRUE(contains(d.err, id_));
    EXPECT_EQ(status_of(id_), "running");
    EXPECT_TRUE(process_alive(pid));
    EXPECT_TRUE(fs::exists(root_ / id_));
    // --force does it.
    EXPECT_EXIT_STATUS(rt({"delete", "--force", id_}), 0);
    EXPECT_TRUE(wait_for([&] { return !process_alive(pid); }));
    expect_nothing_left(id_, "after delete --force");
}

TEST_F(RuntimeTest, ExecReturnsExitCodeAndJoinsNamespaces) {
    checker({"sleep", "600"});
    ASSERT_EXIT_STATUS(run_detached(id_), 0);
    ASSERT_TRUE(reaches(id_, "running"));
    int pid = pid_of(id_);
    ASSERT_GT(pid, 0);

    EXPECT_EXIT_STATUS(rt({"exec", id_, "sh", "-c", "exit 5"}), 5);

    std::vector<std::string> args = {"exec", id_, "/checker"};
    for (const char* ns : {"pid", "net", "ipc", "uts", "mnt", "cgroup"}) {
        if (args.size() > 3) args.push_back("+");
        args.insert(args.end(), {"ns-same", ns, std::to_string(inode_of("/proc/" + std::to_string(pid) + "/ns/" + ns))});
    }
    args.insert(args.end(), {"+", "hostname", config_["hostname"].get<std::string>(), "+", "cwd", "/", "+", "nnp",
                             "1", "+", "no-extra-fds", "3", "+", "cap-lacks", "CAP_SYS_ADMIN"});
    EXPECT_EXIT_STATUS(rt(args), 0);
    EXPECT_EQ(status_of(id_), "running");
}

// CVE-2019-5736: the container's init (and every runtime process that enters
// the container) runs the runtime from a copy nothing can write: a detached
// read-only mount (EROFS) or a sealed memfd. Checked on a created container,
// whose init is still the runtime, and through a shebang to /proc/self/exe.
TEST_F(RuntimeTest, RuntimeBinaryCannotBeWrittenFromTheContainer) {
    checker({"sleep", "600"});
    ASSERT_EXIT_STATUS(create(id_), 0);
    int pid = pid_of(id_);
    ASSERT_GT(pid, 0);
    std::string exe = "/proc/" + std::to_string(pid) + "/exe";
    int fd = ::open(exe.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << "open " << exe << ": " << strerror(errno);
    struct statvfs sv {};
    ASSERT_EQ(::fstatvfs(fd, &sv), 0);
    int seals = ::fcntl(fd, F_GET_SEALS);
    bool sealed_memfd = seals >= 0 && (seals & F_SEAL_WRITE);
    EXPECT_TRUE((sv.f_flag & ST_RDONLY) || sealed_memfd)
        << exe << " is neither on a read-only mount nor a sealed memfd";
    ::close(fd);
    // Even by reopening through an fd, as the exploit did, no write access.
    int w = ::open(exe.c_str(), O_WRONLY | O_CLOEXEC);
    EXPECT_LT(w, 0) << exe << " opened for writing";
    if (w >= 0) ::close(w);

    // A program inside whose interpreter is /proc/self/exe runs the runtime
    // binary inside the container; it must find that binary read-only.
    std::ofstream(rootfs_ / "evil") << "#!/proc/self/exe\n";
    fs::permissions(rootfs_ / "evil", fs::perms::owner_all);
    ASSERT_EXIT_STATUS(rt({"start", id_}), 0);
    auto e = rt({"exec", id_, "/evil"});
    EXPECT_NE(e.code, 0) << "the runtime binary ran as a container program and succeeded";
    std::string runtime = runtime_path();
    int again = ::open(runtime.c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(again, 0);
    if (again >= 0) ::close(again);
}

TEST_F(RuntimeTest, FeaturesAndSpec) {
    auto f = rt({"features"});
    ASSERT_EXIT_STATUS(f, 0);
    json features = json::parse(f.out, nullptr, false);
    ASSERT_TRUE(features.is_object()) << f.out;
    EXPECT_FALSE(features.value("ociVersionMax", "").empty()) << f.out;
    auto ns = features["linux"]["namespaces"];
    EXPECT_NE(std::find(ns.begin(), ns.end(), "time"), ns.end()) << f.out;

    fs::path dir = tmp_ / "spec";
    fs::create_directories(dir);
    ASSERT_EXIT_STATUS(rt({"spec", "--bundle", dir.string()}), 0);
    json spec = json::parse(read_file(dir / "config.json"), nullptr, false);
    ASSERT_TRUE(spec.is_object());
    EXPECT_EQ(spec["root"]["path"], "rootfs");
    EXPECT_FALSE(spec["process"]["args"].empty());
    auto again = rt({"spec", "--bundle", dir.string()});
    EXPECT_NE(again.code, 0);
    EXPECT_TRUE(contains(again.err, "already exists"));

    fs::path rootless = tmp_ / "rootless";
    fs::create_directories(rootless);
    ASSERT_EXIT_STATUS(rt({"spec", "--rootless", "--bundle", rootless.string()}), 0);
    EXPECT_TRUE(contains(read_file(rootless / "config.json"), "\"uidMappings\""));
}

TEST_F(RuntimeTest, EventsStatsReportTheCgroup) {
    checker({"sleep", "600"});
    ASSERT_EXIT_STATUS(run_detached(id_), 0);
    ASSERT_TRUE(reaches(id_, "running"));
    auto e = rt({"events", "--stats", id_});
    ASSERT_EXIT_STATUS(e, 0);
    json ev = json::parse(e.out, nullptr, false);
    ASSERT_TRUE(ev.is_object()) << e.out;
    EXPECT_EQ(ev.value("type", ""), "stats");
    EXPECT_EQ(ev.value("id", ""), id_);
    EXPECT_EQ(ev["data"]["memory"]["usage"].value("limit", uint64_t{0}), 268435456u) << e.out;
    EXPECT_GE(ev["data"]["pids"].value("current", 0), 1) << e.out;
    EXPECT_GT(ev["data"]["memory"]["usage"].value("usage", uint64_t{0}), 0u) << e.out;
}

TEST_F(RuntimeTest, NoPivotMovesTheRootfs) {
    process()["args"] = {"sh", "-c", "test \"$(cat /etc/hostname)\" = 'vitro busybox' && test ! -e /work && echo moved"};
    auto r = run_container({"--no-pivot"});
    EXPECT_EXIT_STATUS(r, 0);
    EXPECT_TRUE(contains(r.out, "moved"));
}

TEST_F(RuntimeTest, TimeNamespaceOffsets) {
    linux_()["namespaces"].push_back({{"type", "time"}});
    linux_()["timeOffsets"] = {{"boottime", {{"secs", 31536000}, {"nanosecs", 0}}}};
    process()["args"] = {"sh", "-c", "cut -d. -f1 /proc/uptime"};
    auto r = run_container();
    ASSERT_EXIT_STATUS(r, 0);
    long uptime = std::atol(r.out.c_str());
    EXPECT_GE(uptime, 31536000L) << "uptime in the container: " << r.out;
}

TEST_F(RuntimeTest, SchedulerNiceAndIoPriority) {
    process()["scheduler"] = {{"policy", "SCHED_BATCH"}, {"nice", 5}};
    process()["ioPriority"] = {{"class", "IOPRIO_CLASS_BE"}, {"priority", 6}};
    // /proc/self/stat: field 19 is nice, 41 the scheduling policy (3 = SCHED_BATCH).
    process()["args"] = {"sh", "-c", "awk '{print \"policy\", $41, \"nice\", $19}' /proc/self/stat; ionice -p $$"};
    auto r = run_container();
    ASSERT_EXIT_STATUS(r, 0);
    EXPECT_TRUE(contains(r.out, "policy 3 nice 5"));
    EXPECT_TRUE(contains(r.out, "prio 6"));
}

TEST_F(RuntimeTest, TmpfsWithCopyUpKeepsTheImageContent) {
    config_["root"]["readonly"] = true;
    config_["mounts"].push_back({{"destination", "/etc"}, {"type", "tmpfs"}, {"source", "tmpfs"},
                                 {"options", {"rw", "nosuid", "nodev", "tmpcopyup"}}});
    process()["args"] = {"sh", "-c", "cat /etc/hostname && touch /etc/new && echo writable"};
    auto r = run_container();
    EXPECT_EXIT_STATUS(r, 0);
    EXPECT_TRUE(contains(r.out, "vitro busybox"));
    EXPECT_TRUE(contains(r.out, "writable"));
    EXPECT_FALSE(fs::exists(rootfs_ / "etc" / "new")) << "the write reached the image";
}

TEST_F(RuntimeTest, SystemdCgroupIsRefusedClearly) {
    checker({"pid1"});
    write_config();
    auto r = rt({"--systemd-cgroup", "run", "--bundle", bundle_.string(), id_});
    EXPECT_NE(r.code, 0);
    EXPECT_TRUE(contains(r.err, "--systemd-cgroup"));
    expect_nothing_left(id_, "after a refused --systemd-cgroup");
}

TEST_F(RuntimeTest, PauseAndResume) {
    // A ticker: it bumps /out/tick ten times a second while it runs.
    fs::create_directories(tmp_ / "out");
    config_["mounts"].push_back({{"destination", "/out"}, {"type", "bind"}, {"source", (tmp_ / "out").string()},
                                 {"options", {"rbind", "rw"}}});
    process()["args"] = {"sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /out/tick; usleep 100000; done"};
    ASSERT_EXIT_STATUS(run_detached(id_), 0);
    ASSERT_TRUE(reaches(id_, "running"));
    int pid = pid_of(id_);
    ASSERT_GT(pid, 0);
    auto freezer = [&] { return host_cgroup_knob(pid, "freezer", "freezer.state", "cgroup.freeze"); };

    EXPECT_EXIT_STATUS(rt({"pause", id_}), 0);
    EXPECT_TRUE(reaches(id_, "paused"));
    std::string seen;
    EXPECT_TRUE(wait_for([&] { seen = freezer(); return seen == "FROZEN" || seen == "1"; }))
        << "the container's freezer says '" << seen << "' while paused";

    EXPECT_EXIT_STATUS(rt({"resume", id_}), 0);
    EXPECT_TRUE(reaches(id_, "running"));
    EXPECT_TRUE(wait_for([&] { seen = freezer(); return seen == "THAWED" || seen == "0"; }))
        << "the container's freezer says '" << seen << "' after resume";
    // It runs again: the ticker moves on.
    std::string tick = read_file(tmp_ / "out" / "tick");
    EXPECT_TRUE(wait_for([&] { return read_file(tmp_ / "out" / "tick") != tick; }))
        << "the container did not run after resume (tick stuck at " << trim(tick) << ")";
}

TEST_F(RuntimeTest, PsJsonListsInitPid) {
    checker({"sleep", "600"});
    ASSERT_EXIT_STATUS(run_detached(id_), 0);
    ASSERT_TRUE(reaches(id_, "running"));
    int pid = pid_of(id_);
    auto r = rt({"ps", "--format", "json", id_});
    ASSERT_EXIT_STATUS(r, 0);
    json pids;
    ASSERT_NO_THROW(pids = json::parse(r.out)) << r.describe();
    ASSERT_TRUE(pids.is_array()) << r.out;
    EXPECT_NE(std::find(pids.begin(), pids.end(), json(pid)), pids.end()) << "init pid " << pid << " not in " << r.out;
}

TEST_F(RuntimeTest, ListShowsContainer) {
    checker({"sleep", "600"});
    ASSERT_EXIT_STATUS(run_detached(id_), 0);
    auto q = rt({"list", "-q"});
    ASSERT_EXIT_STATUS(q, 0);
    auto ids = lines_of(q.out);
    EXPECT_NE(std::find(ids.begin(), ids.end(), id_), ids.end()) << q.describe();
    auto j = rt({"list", "--format", "json"});
    ASSERT_EXIT_STATUS(j, 0);
    json arr;
    ASSERT_NO_THROW(arr = json::parse(j.out)) << j.describe();
    bool found = false;
    for (const auto& c : arr) {
        if (c.value("id", "") == id_) found = c.value("status", "") == "running";
    }
    EXPECT_TRUE(found) << "no running " << id_ << " in " << j.out;
}

TEST_F(RuntimeTest, UpdateMemoryLimit) {
    checker({"sleep", "600"});
    ASSERT_EXIT_STATUS(run_detached(id_), 0);
    ASSERT_TRUE(reaches(id_, "running"));
    int pid = pid_of(id_);
    auto host_limit = [&] { return host_cgroup_knob(pid, "memory", "memory.limit_in_bytes", "memory.max"); };
    EXPECT_EQ(host_limit(), std::to_string(256 << 20)) << "the config's limit, seen from the host";
    EXPECT_EXIT_STATUS(rt({"exec", id_, "/checker", "cgroup-mem-limit", std::to_string(256 << 20)}), 0);
    EXPECT_EXIT_STATUS(rt({"update", "--memory", "128m", id_}), 0);
    EXPECT_EQ(host_limit(), std::to_string(128 << 20)) << "the updated limit, seen from the host";
    EXPECT_EXIT_STATUS(rt({"exec", id_, "/checker", "cgroup-mem-limit", std::to_string(128 << 20)}), 0);
    EXPECT_EQ(status_of(id_), "running");
}

TEST_F(RuntimeTest, ExecWithProcessJson) {
    checker({"sleep", "600"});
    ASSERT_EXIT_STATUS(run_detached(id_), 0);
    ASSERT_TRUE(reaches(id_, "running"));
    int pid = pid_of(id_);
    ASSERT_GT(pid, 0);
    auto ns = [&](const char* type) { return std::to_string(inode_of("/proc/" + std::to_string(pid) + "/ns/" + type)); };
    json p = {
        {"terminal", false},
        {"user", {{"uid", 1000}, {"gid", 1000}, {"additionalGids", {20}}}},
        {"args", {"/checker", "uid-gid", "1000", "1000", "20", "+", "cwd", "/tmp", "+", "env", "EXEC_VAR=yes", "+",
                  "ns-same", "pid", ns("pid"), "+", "ns-same", "mnt", ns("mnt"), "+", "ns-same", "net", ns("net"), "+",
                  "no-extra-fds", "3", "+", "nnp", "1", "+", "cap-lacks", "CAP_SYS_ADMIN"}},
        {"env", {"PATH=/bin", "EXEC_VAR=yes"}},
        {"cwd", "/tmp"},
        {"noNewPrivileges", true},
    };
    write_file(tmp_ / "process.json", p.dump());
    EXPECT_EXIT_STATUS(rt({"exec", "--process", (tmp_ / "process.json").string(), id_}), 0);
    p["args"] = {"sh", "-c", "exit 6"};
    write_file(tmp_ / "process.json", p.dump());
    EXPECT_EXIT_STATUS(rt({"exec", "--process", (tmp_ / "process.json").string(), id_}), 6);
    EXPECT_EQ(status_of(id_), "running");
}

TEST_F(RuntimeTest, CgroupsPathIsHonoured) {
    std::string parent = "vitro-it-" + std::to_string(::getpid());
    std::string path = "/" + parent + "/" + id_;
    linux_()["cgroupsPath"] = path;
    cleanups_.push_back([parent] {
        std::error_code ec;
        for (const auto& h : fs::directory_iterator("/sys/fs/cgroup", ec)) ::rmdir((h.path() / parent).c_str());
    });
    checker({"sleep", "600"});
    ASSERT_EXIT_STATUS(run_detached(id_), 0);
    int pid = pid_of(id_);
    ASSERT_GT(pid, 0);
    for (const char* c : {"memory", "pids", "cpu", "devices", "freezer"}) {
        auto [mount, p] = cgroup_of(pid, c);
        EXPECT_EQ(p, path) << "the " << c << " cgroup of the container's init (" << mount << ")";
    }
    EXPECT_EXIT_STATUS(rt({"delete", "--force", id_}), 0);
    expect_nothing_left(id_, "after delete --force");
}

TEST_F(RuntimeTest, Personality) {
    linux_()["personality"] = {{"domain", "LINUX32"}};
    checker({"personality", "LINUX32"});
    EXPECT_EXIT_STATUS(run_container(), 0);
}

// process.terminal with --console-socket (how containerd runs `ctr run -t`): the
// runtime sends the pty master over the socket; the process sees a tty.
TEST_F(RuntimeTest, TerminalThroughConsoleSocket) {
    std::string sock_path = (tmp_ / "console.sock").string();
    Fd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_GE(listener.get(), 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    ASSERT_LT(sock_path.size(), sizeof addr.sun_path);
    std::strcpy(addr.sun_path, sock_path.c_str());
    ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
    ASSERT_EQ(::listen(listener.get(), 1), 0);

    process()["terminal"] = true;
    process()["args"] = {"sh", "-c", "/checker tty + symlink /dev/stdout /proc/self/fd/1 && echo TTY-$((6*7))"};
    write_config();
    // The connection waits in the backlog: create can send before we accept.
    ASSERT_EXIT_STATUS(rt({"create", "--console-socket", sock_path, "--bundle", bundle_.string(), id_}), 0);

    pollfd pfd{listener.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&pfd, 1, 60000), 1) << "the runtime never connected to --console-socket";
    Fd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_GE(conn.get(), 0);
    char data[256];
    iovec iov{data, sizeof data};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ASSERT_GT(::recvmsg(conn.get(), &msg, MSG_CMSG_CLOEXEC), 0) << std::strerror(errno);
    cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    ASSERT_TRUE(cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) << "no fd on the console socket";
    int master_fd;
    std::memcpy(&master_fd, CMSG_DATA(cm), sizeof master_fd);
    Fd master(master_fd);

    ASSERT_EXIT_STATUS(rt({"start", id_}), 0);
    std::string out;
    wait_for([&] {
        pollfd m{master.get(), POLLIN, 0};
        if (::poll(&m, 1, 100) == 1 && (m.revents & POLLIN)) {
            char buf[512];
            ssize_t n = ::read(master.get(), buf, sizeof buf);
            if (n > 0) out.append(buf, static_cast<size_t>(n));
        }
        return out.find("TTY-42") != std::string::npos;
    });
    EXPECT_TRUE(contains(out, "TTY-42")) << "(read from the pty master)";
}

// ---- bad input: a clear error, a non-zero exit, nothing left behind ---------------------

TEST_F(RuntimeTest, MalformedConfigJson) {
    write_file(bundle_ / "config.json", "{ \"ociVersion\": \"1.0.2\", \"process\": ");
    auto r = rt({"create", "--bundle", bundle_.string(), id_});
    EXPECT_TRUE(failed(r));
    EXPECT_TRUE(contains(r.err, "config.json"));
    expect_nothing_left(id_, "after a malformed config.json");
}

TEST_F(RuntimeTest, MissingConfigJson) {
    fs::remove(bundle_ / "config.json");
    auto r = rt({"create", "--bundle", bundle_.string(), id_});
    EXPECT_TRUE(failed(r));
    EXPECT_TRUE(contains(r.err, "config.json"));
    expect_nothing_left(id_, "after a missing config.json");
}

TEST_F(RuntimeTest, MissingRootfs) {
    config_["root"]["path"] = "no-such-rootfs";
    auto r = create(id_);
    EXPECT_TRUE(failed(r));
    EXPECT_TRUE(contains(r.err, "no-such-rootfs"));
    expect_nothing_left(id_, "after a missing rootfs");
}

TEST_F(RuntimeTest, UnknownCapability) {
    process()["capabilities"]["bounding"].push_back("CAP_BOGUS");
    process()["capabilities"]["effective"].push_back("CAP_BOGUS");
    process()["capabilities"]["permitted"].push_back("CAP_BOGUS");
    auto r = create(id_);
    EXPECT_TRUE(failed(r));
    EXPECT_TRUE(contains(r.err, "CAP_BOGUS"));
    expect_nothing_left(id_, "after an unknown capability");
}

TEST_F(RuntimeTest, DuplicateIdIsRefusedAndFirstSurvives) {
    checker({"sleep", "600"});
    ASSERT_EXIT_STATUS(create(id_), 0);
    int pid = pid_of(id_);
    ASSERT_GT(pid, 0);
    auto again = create(id_);
    EXPECT_TRUE(failed(again));
    EXPECT_TRUE(contains(again.err, id_));
    // The first container is untouched and still works.
    EXPECT_EQ(status_of(id_), "created");
    EXPECT_EQ(pid_of(id_), pid);
    EXPECT_TRUE(process_alive(pid));
    EXPECT_EXIT_STATUS(rt({"start", id_}), 0);
    EXPECT_TRUE(reaches(id_, "running"));
}

TEST_F(RuntimeTest, NonexistentIdIsAnErrorForEveryCommand) {
    std::string ghost = make_id("-ghost");
    ids_.push_back(ghost);
    for (std::vector<std::string> cmd : std::vector<std::vector<std::string>>{
             {"state", ghost}, {"start", ghost}, {"delete", ghost}, {"kill", ghost, "KILL"}, {"pause", ghost},
             {"resume", ghost}, {"exec", ghost, "true"}, {"ps", ghost}, {"update", "--memory", "64m", ghost}}) {
        auto r = rt(cmd);
        EXPECT_TRUE(failed(r));
        EXPECT_TRUE(contains(r.err, ghost)) << "for `" << cmd[0] << "`";
        EXPECT_TRUE(contains(r.err, "does not exist")) << "for `" << cmd[0] << "`";
    }
    expect_nothing_left(ghost, "after commands on a nonexistent id");
}

TEST_F(RuntimeTest, InvalidIdIsRefused) {
    for (std::string bad : {"../escape", "a/b", ".", ""}) {
        auto r = create(bad);
        EXPECT_TRUE(failed(r));
    }
    EXPECT_FALSE(fs::exists(tmp_ / "escape")) << "an id of ../escape wrote outside --root";
    EXPECT_TRUE(fs::is_empty(root_)) << "--root is not empty after invalid ids";
    EXPECT_TRUE(mounts_under_tmp().empty());
}

}  // namespace
