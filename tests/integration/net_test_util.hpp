// What the net/ integration tests share (test_net.cpp against the real CNI
// plugins, test_net_builtin.cpp for the built-in bridge beside them): the
// private "host" namespace main() makes (net_test_main.cpp), shell helpers,
// and a fixture with a temp root, networks in it and counts of what is left.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "net/cni.hpp"
#include "net/netns.hpp"
#include "net/networks.hpp"
#include "util/error.hpp"
#include "util/subprocess.hpp"
#include "../unit/testutil.hpp"  // error_of

extern char** environ;

namespace vitro::nettest {

namespace fs = std::filesystem;
using nlohmann::json;

// Why the private "host" namespace could not be made (empty: it was).
inline std::string g_setup_error;

inline const char* kPluginDir = "/usr/lib/cni";

using vitro::test::error_of;

inline std::vector<std::string> env_now() {
    std::vector<std::string> v;
    for (char** e = environ; *e; ++e) v.emplace_back(*e);
    return v;
}

// Runs a command; returns exit code (or -1), stdout in *out.
inline int sh(const std::string& cmd, std::string* out = nullptr) {
    auto r = run_program_capture("/bin/sh", {"sh", "-c", cmd}, env_now(), "", 30);
    if (out) *out = r.stdout_data;
    if (r.timed_out || !WIFEXITED(r.status)) return -1;
    return WEXITSTATUS(r.status);
}

// A command's stdout parsed as JSON (`ip -j ...`); null when it failed.
inline json sh_json(const std::string& cmd) {
    std::string out;
    if (sh(cmd, &out) != 0) return nullptr;
    return json::parse(out, nullptr, false);
}

inline std::string ip_of(const json& result) {
    std::string a = result.at("ips").at(0).at("address");
    return a.substr(0, a.find('/'));
}

// Files in a directory (none if it does not exist).
inline std::vector<std::string> files_in(const fs::path& dir) {
    std::vector<std::string> out;
    std::error_code ec;
    if (!fs::exists(dir, ec)) return out;
    for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename());
    return out;
}

class NetReal : public ::testing::Test {
protected:
    fs::path root;
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root";
        if (!g_setup_error.empty()) GTEST_SKIP() << g_setup_error;
        if (::access((std::string(kPluginDir) + "/bridge").c_str(), X_OK) != 0)
            GTEST_SKIP() << "no CNI plugins in /usr/lib/cni (scripts/setup.sh test installs containernetworking-plugins)";
        char tmpl[] = "/tmp/vitro-net-it-XXXXXX";
        root = ::mkdtemp(tmpl);
    }
    void TearDown() override {
        if (root.empty()) return;
        std::error_code ec;
        fs::remove_all(root, ec);
    }
    // builtin: bridge + host-local in-process; false: every plugin exec'd.
    net::Cni cni(bool builtin = net::builtin_plugins_from_env()) {
        return net::Cni({.plugin_dirs = {kPluginDir}, .cache_dir = root / "cache", .timeout_s = 30,
                         .builtin_plugins = builtin});
    }
    net::NetworkConfigList network(const std::string& name, const std::string& bridge, const std::string& subnet,
                                   int mtu = 0) {
        net::NetworkStore store(root / "net.d");
        return store.create({.name = name, .bridge = bridge, .subnet = subnet, .mtu = mtu,
                             .ipam_data_dir = (root / "ipam").string()});
    }
    int veth_count() {
        std::string out;
        sh("ip -o link show type veth", &out);
        return static_cast<int>(std::count(out.begin(), out.end(), '\n'));
    }
    // host-local keeps one file per allocated address, named by it.
    std::vector<std::string> ipam_allocations(const std::string& net) {
        std::vector<std::string> out;
        for (const auto& f : files_in(root / "ipam" / net))
            if (f != "lock" && !f.starts_with("last_reserved_ip")) out.push_back(f);
        return out;
    }
};

}  // namespace vitro::nettest
