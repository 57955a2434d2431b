// The default seccomp profile (engine/seccomp_profile) in a real container:
// a busybox bundle (scripts/make-bundle.sh) whose linux.seccomp is the profile
// `vitro run` applies, run by the vitro-runtime binary this build made (or
// $VITRO_RUNTIME). Needs root.
//
// The control: `unshare -U` needs no capability, so without seccomp it works
// in the same container; with the default profile it fails with EPERM.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/seccomp_profile.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

std::string runtime_path() {
    const char* env = std::getenv("VITRO_RUNTIME");
    return env && *env ? env : VITRO_RUNTIME_PATH;
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

struct Result {
    int code = -1;  // exit status, 128+N for signal N, -1 when it hung
    std::string cmd, out, err;
    std::string describe() const {
        return "$ " + cmd + "\nexit status " + std::to_string(code) + "\nstdout:\n" + out + "\nstderr:\n" + err;
    }
};

// Runs argv with stdin /dev/null and stdout/stderr into files under dir.
Result spawn(const std::vector<std::string>& argv, const fs::path& dir) {
    static int counter = 0;
    Result r;
    for (const auto& a : argv) r.cmd += (r.cmd.empty() ? "" : " ") + a;
    const std::string base = (dir / ("cmd" + std::to_string(++counter))).string();
    pid_t pid = ::fork();
    if (pid < 0) return r;
    if (pid == 0) {
        int in = ::open("/dev/null", O_RDONLY);
        int out = ::open((base + ".out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = ::open((base + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0 || err < 0) ::_exit(120);
        ::dup2(in, 0);
        ::dup2(out, 1);
        ::dup2(err, 2);
        ::close_range(3, ~0U, 0);
        std::vector<char*> cargv;
        for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
        cargv.push_back(nullptr);
        ::execvp(cargv[0], cargv.data());
        ::_exit(127);
    }
    int status = 0;
    auto deadline = std::chrono::steady_clock::now() + 120s;  // a hang guard, not a timing check
    while (::waitpid(pid, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            r.out = read_file(base + ".out");
            r.err = read_file(base + ".err") + "\n(killed by the hang guard)";
            return r;
        }
        std::this_thread::sleep_for(20ms);
    }
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = read_file(base + ".out");
    r.err = read_file(base + ".err");
    return r;
}

class SeccompProfileIT : public ::testing::Test {
protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root";
        ASSERT_TRUE(fs::exists(runtime_path())) << "no runtime at " << runtime_path();
        char tmpl[] = "/tmp/vitro-seccomp-it-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr) << std::strerror(errno);
        tmp_ = tmpl;
        fs::permissions(tmp_, fs::perms(0755));
        bundle_ = tmp_ / "bundle";
        state_ = tmp_ / "state";
        fs::create_directories(state_);
        auto r = spawn({"bash", VITRO_MAKE_BUNDLE, bundle_.string()}, tmp_);
        ASSERT_EQ(r.code, 0) << r.describe();
        config_ = json::parse(read_file(bundle_ / "config.json"));
        id_ = "it-seccomp-" + std::to_string(::getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name();
        for (auto& c : id_) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }

    void TearDown() override {
        if (tmp_.empty()) return;
        spawn({runtime_path(), "--root", state_.string(), "delete", "--force", id_}, tmp_);
        std::error_code ec;
        fs::remove_all(tmp_, ec);
    }

    // Runs `sh -c SCRIPT` in the container, in the foreground.
    Result run_script(const std::string& script) {
        config_["process"]["args"] = {"sh", "-c", script};
        std::ofstream(bundle_ / "config.json", std::ios::trunc) << config_.dump(2);
        auto r = spawn({runtime_path(), "--root", state_.string(), "run", "--bundle", bundle_.string(), id_}, tmp_);
        spawn({runtime_path(), "--root", state_.string(), "delete", "--force", id_}, tmp_);
        return r;
    }

    std::vector<std::string> bounding() const {
        return config_["process"]["capabilities"]["bounding"].get<std::vector<std::string>>();
    }

    fs::path tmp_, bundle_, state_;
    json config_;
    std::string id_;
};

// Each probe prints NAME=ok or NAME=<its error output>.
const std::string kProbes =
    "ls / >/dev/null && echo ls=ok; "
    "if e=$(unshare -U true 2>&1); then echo unshare=ok; else echo \"unshare=$e\"; fi; "
    "if e=$(mount -t tmpfs none /tmp 2>&1); then echo mount=ok; else echo \"mount=$e\"; fi; "
    "grep '^Seccomp:' /proc/self/status";

TEST_F(SeccompProfileIT, DefaultProfileDeniesUnshareAndMountButNotLs) {
    json nnp = config_["process"]["noNewPrivileges"];
    ASSERT_EQ(nnp, true);
    json spec = config_;
    vitro::engine::apply_security_opts(spec, {});  // the default profile for this bounding set
    config_["linux"]["seccomp"] = spec["linux"]["seccomp"];
    auto r = run_script(kProbes);
    ASSERT_EQ(r.code, 0) << r.describe();
    EXPECT_NE(r.out.find("ls=ok"), std::string::npos) << r.describe();
    EXPECT_NE(r.out.find("unshare="), std::string::npos) << r.describe();
    EXPECT_EQ(r.out.find("unshare=ok"), std::string::npos) << r.describe();
    EXPECT_NE(r.out.find("Operation not permitted"), std::string::npos) << r.describe();
    EXPECT_EQ(r.out.find("mount=ok"), std::string::npos) << r.describe();
    EXPECT_NE(r.out.find("Seccomp:\t2"), std::string::npos) << r.describe();
}

TEST_F(SeccompProfileIT, UnconfinedLetsUnshareThrough) {
    json spec = config_;
    vitro::engine::apply_security_opts(spec, {"seccomp=unconfined"});
    ASSERT_FALSE(spec["linux"].contains("seccomp"));
    config_["linux"].erase("seccomp");
    auto r = run_script(kProbes);
    ASSERT_EQ(r.code, 0) << r.describe();
    EXPECT_NE(r.out.find("ls=ok"), std::string::npos) << r.describe();
    EXPECT_NE(r.out.find("unshare=ok"), std::string::npos) << r.describe();
    EXPECT_NE(r.out.find("Seccomp:\t0"), std::string::npos) << r.describe();
}

TEST_F(SeccompProfileIT, SysAdminProfileAllowsMount) {
    std::vector<std::string> caps = bounding();
    caps.push_back("CAP_SYS_ADMIN");
    config_["process"]["capabilities"] = {{"bounding", caps}, {"effective", caps}, {"permitted", caps}};
    config_["linux"]["seccomp"] = vitro::engine::default_seccomp_profile(caps);
    auto r = run_script(kProbes);
    ASSERT_EQ(r.code, 0) << r.describe();
    EXPECT_NE(r.out.find("mount=ok"), std::string::npos) << r.describe();
    EXPECT_NE(r.out.find("unshare=ok"), std::string::npos) << r.describe();
}

}  // namespace
