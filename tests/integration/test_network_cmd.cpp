// `vitro network create|ls|rm|inspect` through the built vitro binary (or
// $VITRO_BIN), each test in its own --network-config-dir and --root. No
// network is touched: these commands only write CNI conflists (and read the
// state database), so this runs without root.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/state_store.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string vitro_path() {
    const char* env = std::getenv("VITRO_BIN");
    return env && *env ? env : VITRO_BIN_PATH;
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

struct Result {
    int code = -1;
    std::string cmd, out, err;
    std::string describe() const {
        return "$ " + cmd + "\nexit status " + std::to_string(code) + "\nstdout:\n" + out + "\nstderr:\n" + err;
    }
};

class NetworkCmd : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(fs::exists(vitro_path())) << "no vitro binary at " << vitro_path();
        char tmpl[] = "/tmp/vitro-netcmd-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr) << std::strerror(errno);
        tmp_ = tmpl;
        net_dir_ = tmp_ / "net.d";
        root_ = tmp_ / "root";
    }
    void TearDown() override {
        std::error_code ec;
        if (!tmp_.empty()) fs::remove_all(tmp_, ec);
    }

    // vitro --network-config-dir DIR --root DIR network ARGS...
    Result network(const std::vector<std::string>& args) { return wait_for(start(args)); }

    // A started command: its pid and where its output goes.
    struct Started {
        pid_t pid = -1;
        std::string base;
        Result r;
    };
    Started start(const std::vector<std::string>& args) {
        std::vector<std::string> argv = {vitro_path(), "--network-config-dir", net_dir_.string(), "--root",
                                         root_.string(), "network"};
        argv.insert(argv.end(), args.begin(), args.end());
        Started s;
        for (const auto& a : argv) s.r.cmd += (s.r.cmd.empty() ? "" : " ") + a;
        s.base = (tmp_ / ("cmd" + std::to_string(++counter_))).string();
        s.pid = ::fork();
        if (s.pid == 0) {
            int in = ::open("/dev/null", O_RDONLY);
            int out = ::open((s.base + ".out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            int err = ::open((s.base + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (in < 0 || out < 0 || err < 0) ::_exit(120);
            ::dup2(in, 0);
            ::dup2(out, 1);
            ::dup2(err, 2);
            std::vector<char*> cargv;
            for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
            cargv.push_back(nullptr);
            ::alarm(60);  // a hang guard
            ::execv(cargv[0], cargv.data());
            ::_exit(127);
        }
        return s;
    }
    Result wait_for(Started s) {
        if (s.pid < 0) return s.r;
        int status = 0;
        while (::waitpid(s.pid, &status, 0) < 0 && errno == EINTR) {
        }
        s.r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        s.r.out = read_file(s.base + ".out");
        s.r.err = read_file(s.base + ".err");
        return s.r;
    }

    // Runs a command expected to fail with exit 125 and "Error: ..." naming each of `needles`.
    void expect_error(const std::vector<std::string>& args, const std::vector<std::string>& needles) {
        auto r = network(args);
        EXPECT_EQ(r.code, 125) << r.describe();
        EXPECT_EQ(r.err.rfind("Error: ", 0), 0u) << r.describe();
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line expected\n" << r.describe();
        for (const auto& n : needles) EXPECT_NE(r.err.find(n), std::string::npos) << "'" << n << "' missing\n" << r.describe();
    }

    std::vector<std::string> ls_names() {
        auto r = network({"ls", "-q"});
        EXPECT_EQ(r.code, 0) << r.describe();
        std::vector<std::string> out;
        std::istringstream in(r.out);
        for (std::string line; std::getline(in, line);)
            if (!line.empty()) out.push_back(line);
        return out;
    }

    json inspect_one(const std::string& name) {
        auto r = network({"inspect", name});
        EXPECT_EQ(r.code, 0) << r.describe();
        json j = json::parse(r.out, nullptr, false);
        EXPECT_TRUE(j.is_array() && j.size() == 1) << r.describe();
        return j.is_array() && j.size() == 1 ? j[0] : json();
    }

    fs::path tmp_, net_dir_, root_;
    int counter_ = 0;
};

const json& bridge_of(const json& conflist) {
    static const json none;
    for (const auto& p : conflist["plugins"])
        if (p["type"] == "bridge") return p;
    return none;
}

TEST_F(NetworkCmd, CreateLsInspectRm) {
    // The default network appears on first use.
    EXPECT_EQ(ls_names(), std::vector<std::string>({"vitro"}));
    EXPECT_TRUE(fs::exists(net_dir_ / "vitro.conflist"));

    auto r = network({"create", "front"});
    ASSERT_EQ(r.code, 0) << r.describe();
    EXPECT_EQ(r.out, "front\n");
    EXPECT_TRUE(fs::exists(net_dir_ / "front.conflist"));
    EXPECT_EQ(ls_names(), std::vector<std::string>({"front", "vitro"}));

    // A network created without --subnet gets a free /24 of 10.87.0.0/16.
    json front = inspect_one("front");
    EXPECT_EQ(front["name"], "front");
    EXPECT_EQ(bridge_of(front)["ipam"]["ranges"][0][0]["subnet"], "10.87.0.0/24");
    ASSERT_EQ(network({"create", "back"}).code, 0);
    EXPECT_EQ(bridge_of(inspect_one("back"))["ipam"]["ranges"][0][0]["subnet"], "10.87.1.0/24");

    r = network({"ls"});
    ASSERT_EQ(r.code, 0) << r.describe();
    EXPECT_EQ(r.out.rfind("NAME", 0), 0u) << r.describe();
    EXPECT_NE(r.out.find("DRIVER"), std::string::npos);
    EXPECT_NE(r.out.find("SUBNET"), std::string::npos);
    EXPECT_NE(r.out.find("10.86.0.0/16"), std::string::npos) << r.describe();
    EXPECT_NE(r.out.find("10.87.0.0/24"), std::string::npos) << r.describe();

    r = network({"ls", "--format", "json"});
    ASSERT_EQ(r.code, 0) << r.describe();
    json ls = json::parse(r.out, nullptr, false);
    ASSERT_TRUE(ls.is_array()) << r.describe();
    ASSERT_EQ(ls.size(), 3u);
    EXPECT_EQ(ls[0]["name"], "back");
    EXPECT_EQ(ls[0]["driver"], "bridge");
    EXPECT_EQ(ls[2]["name"], "vitro");
    EXPECT_EQ(ls[2]["subnets"][0]["subnet"], "10.86.0.0/16");

    r = network({"inspect", "front", "back"});
    ASSERT_EQ(r.code, 0) << r.describe();
    json both = json::parse(r.out, nullptr, false);
    ASSERT_TRUE(both.is_array() && both.size() == 2) << r.describe();
    EXPECT_EQ(both[1]["name"], "back");

    r = network({"rm", "front", "back"});
    ASSERT_EQ(r.code, 0) << r.describe();
    EXPECT_EQ(r.out, "front\nback\n");
    EXPECT_FALSE(fs::exists(net_dir_ / "front.conflist"));
    EXPECT_EQ(ls_names(), std::vector<std::string>({"vitro"}));
}

// Parallel creates without --subnet, as a script starting a stack does: each
// gets its own subnet and bridge (they once shared subnets, pairwise).
TEST_F(NetworkCmd, ParallelCreatesGetDistinctSubnets) {
    ASSERT_EQ(network({"ls", "-q"}).code, 0);  // the default network exists first, as after any use
    constexpr int kCreates = 12;
    std::vector<Started> started;
    for (int i = 0; i < kCreates; ++i) started.push_back(start({"create", "par" + std::to_string(i)}));
    for (auto& s : started) {
        Result r = wait_for(s);
        EXPECT_EQ(r.code, 0) << r.describe();
    }
    std::set<std::string> subnets, bridges;
    for (int i = 0; i < kCreates; ++i) {
        json b = bridge_of(inspect_one("par" + std::to_string(i)));
        subnets.insert(b["ipam"]["ranges"][0][0]["subnet"].get<std::string>());
        bridges.insert(b["bridge"].get<std::string>());
    }
    EXPECT_EQ(subnets.size(), static_cast<size_t>(kCreates)) << ::testing::PrintToString(subnets);
    EXPECT_EQ(bridges.size(), static_cast<size_t>(kCreates)) << ::testing::PrintToString(bridges);
    for (const auto& s : subnets) EXPECT_EQ(s.rfind("10.87.", 0), 0u) << s;
    // No leftovers of the writes (temporary files) beside the conflists and the lock.
    for (const auto& e : fs::directory_iterator(net_dir_)) {
        std::string n = e.path().filename().string();
        EXPECT_TRUE(e.path().extension() == ".conflist" || n == "networks.lock") << n;
    }
}

TEST_F(NetworkCmd, CreateFlags) {
    auto r = network({"create", "--subnet", "10.90.0.0/24", "--gateway", "10.90.0.254", "--interface-name", "br-test",
                      "--internal", "--disable-dns", "--opt", "mtu=1400", "inner"});
    ASSERT_EQ(r.code, 0) << r.describe();
    const json b = bridge_of(inspect_one("inner"));
    EXPECT_EQ(b["bridge"], "br-test");
    EXPECT_EQ(b["ipMasq"], false);
    EXPECT_EQ(inspect_one("inner")["vitro"]["ipMasq"], false);  // --internal: no masquerade rule
    EXPECT_EQ(b["mtu"], 1400);
    EXPECT_EQ(b["ipam"]["ranges"][0][0]["subnet"], "10.90.0.0/24");
    EXPECT_EQ(b["ipam"]["ranges"][0][0]["gateway"], "10.90.0.254");
}

TEST_F(NetworkCmd, BadSubnet) {
    expect_error({"create", "--subnet", "10.90.0.0/33", "n1"}, {"10.90.0.0/33"});
    expect_error({"create", "--subnet", "10.90.0.1/24", "n1"}, {"10.90.0.1/24", "host bits"});
    expect_error({"create", "--subnet", "banana", "n1"}, {"banana"});
    expect_error({"create", "--subnet", "10.90.0.0/24", "--gateway", "10.91.0.1", "n1"}, {"10.91.0.1"});
    expect_error({"create", "--gateway", "10.91.0.1", "n1"}, {"--gateway", "--subnet"});
    EXPECT_FALSE(fs::exists(net_dir_ / "n1.conflist"));
}

TEST_F(NetworkCmd, BadNameAndOptions) {
    expect_error({"create", "has space"}, {"has space"});
    expect_error({"create", "--opt", "color=red", "n2"}, {"color=red"});
    expect_error({"create", "--opt", "mtu=big", "n2"}, {"mtu=big"});
    expect_error({"create", "--driver", "macvlan", "n2"}, {"macvlan"});
    expect_error({"ls", "--format", "yaml"}, {"yaml"});
}

TEST_F(NetworkCmd, DuplicateName) {
    ASSERT_EQ(network({"create", "dup"}).code, 0);
    expect_error({"create", "dup"}, {"dup", "already exists"});
    expect_error({"create", "vitro"}, {"vitro", "default"});
}

TEST_F(NetworkCmd, OverlappingSubnet) {
    ASSERT_EQ(network({"create", "--subnet", "10.90.0.0/24", "first"}).code, 0);
    expect_error({"create", "--subnet", "10.90.0.128/25", "second"}, {"10.90.0.128/25", "overlaps", "first"});
    expect_error({"create", "--subnet", "10.90.0.0/16", "third"}, {"10.90.0.0/16", "overlaps"});
    // The default network's subnet is taken too, even before it was first used.
    expect_error({"create", "--subnet", "10.86.5.0/24", "fourth"}, {"10.86.5.0/24", "overlaps", "vitro"});
    EXPECT_EQ(ls_names(), std::vector<std::string>({"first", "vitro"}));
}

TEST_F(NetworkCmd, RmRefusals) {
    expect_error({"rm", "vitro"}, {"vitro", "default network"});
    expect_error({"rm", "nothere"}, {"nothere", "no such network"});
    expect_error({"inspect", "nothere"}, {"nothere", "no such network"});
    // Nothing is removed when one of the names is refused.
    ASSERT_EQ(network({"create", "keep"}).code, 0);
    expect_error({"rm", "keep", "nothere"}, {"nothere"});
    EXPECT_TRUE(fs::exists(net_dir_ / "keep.conflist"));
}

TEST_F(NetworkCmd, RmRefusedWhileAContainerUsesIt) {
    ASSERT_EQ(network({"create", "busy"}).code, 0);
    {
        vitro::engine::StateStore store((root_ / "vitro.db").string());
        vitro::engine::ContainerRecord c;
        c.id = std::string(64, 'a');
        c.name = "web";
        c.image = "busybox";
        c.bundle = (tmp_ / "bundle").string();
        c.config = {{"network", "busy"}};
        store.add_container(c);
    }
    expect_error({"rm", "busy"}, {"busy", "web"});
    EXPECT_TRUE(fs::exists(net_dir_ / "busy.conflist"));
    auto r = network({"rm", "-f", "busy"});
    EXPECT_EQ(r.code, 0) << r.describe();
    EXPECT_FALSE(fs::exists(net_dir_ / "busy.conflist"));
}

TEST_F(NetworkCmd, HelpForEveryCommand) {
    auto r = network({"--help"});
    EXPECT_EQ(r.code, 0) << r.describe();
    for (const char* sub : {"create", "ls", "rm", "inspect"}) EXPECT_NE(r.out.find(sub), std::string::npos) << sub;
    EXPECT_NE(r.out.find("VITRO_CNI_BUILTIN=0"), std::string::npos) << r.out;  // the switch back to the binaries
    r = network({"create", "--help"});
    EXPECT_EQ(r.code, 0) << r.describe();
    for (const char* flag : {"--subnet", "--gateway", "--interface-name", "--internal", "--disable-dns", "--opt"})
        EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
    r = network({"ls", "--help"});
    for (const char* flag : {"--format", "--quiet"}) EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
    r = network({"rm", "--help"});
    EXPECT_NE(r.out.find("--force"), std::string::npos);
    EXPECT_EQ(network({"inspect", "--help"}).code, 0);
}

}  // namespace
