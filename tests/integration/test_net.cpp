// net/ against the real CNI plugins (containernetworking-plugins in /usr/lib/cni):
// bridge + host-local + portmap + firewall + tuning. Root only.
//
// The whole binary runs in a private network and mount namespace of its own
// (see main): that namespace plays the host, so the machine's real bridges,
// iptables rules and /run stay untouched, and every address used lives inside it.
#include <gtest/gtest.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "net/cni.hpp"
#include "net/netns.hpp"
#include "net/networks.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/subprocess.hpp"

extern char** environ;

using namespace vitro;
using namespace vitro::net;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string g_setup_error;  // why the private "host" namespace could not be made

const char* kPluginDir = "/usr/lib/cni";

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

std::vector<std::string> env_now() {
    std::vector<std::string> v;
    for (char** e = environ; *e; ++e) v.emplace_back(*e);
    return v;
}

// Runs a command; returns exit code (or -1), stdout in *out.
int sh(const std::string& cmd, std::string* out = nullptr) {
    auto r = run_program_capture("/bin/sh", {"sh", "-c", cmd}, env_now(), "", 30);
    if (out) *out = r.stdout_data;
    if (r.timed_out || !WIFEXITED(r.status)) return -1;
    return WEXITSTATUS(r.status);
}

std::string ip_of(const json& result) {
    std::string a = result.at("ips").at(0).at("address");
    return a.substr(0, a.find('/'));
}

// Files in a directory (none if it does not exist).
std::vector<std::string> files_in(const fs::path& dir) {
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
    Cni cni() { return Cni({.plugin_dirs = {kPluginDir}, .cache_dir = root / "cache", .timeout_s = 30}); }
    NetworkConfigList network(const std::string& name, const std::string& bridge, const std::string& subnet) {
        NetworkStore store(root / "net.d");
        return store.create({.name = name, .bridge = bridge, .subnet = subnet, .ipam_data_dir = (root / "ipam").string()});
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

}  // namespace

TEST_F(NetReal, TwoContainersOnABridgeReachEachOtherAndLeaveNothing) {
    auto list = network("itest", "vtbr0", "10.199.0.0/24");
    Cni c = cni();
    fs::path a_path, b_path;
    {
        NetNs a = NetNs::create(root / "netns", "ctr-a");
        NetNs b = NetNs::create(root / "netns", "ctr-b");
        a_path = a.path();
        b_path = b.path();
        RuntimeConf ra{.container_id = "ctr-a", .netns = a.path().string()};
        RuntimeConf rb{.container_id = "ctr-b", .netns = b.path().string()};
        ra.capability_args = {{"portMappings", json::array({{{"hostPort", 18080}, {"containerPort", 80}, {"protocol", "tcp"}}})}};

        json res_a = c.add(list, ra);
        json res_b = c.add(list, rb);
        std::string ip_a = ip_of(res_a), ip_b = ip_of(res_b);
        EXPECT_NE(ip_a, ip_b);
        EXPECT_TRUE(ip_a.starts_with("10.199.0.")) << res_a.dump();
        EXPECT_TRUE(ip_b.starts_with("10.199.0.")) << res_b.dump();
        EXPECT_EQ(res_a.value("cniVersion", ""), "1.0.0");
        c.check(list, rb);
        // portmap 1.1.1 (Debian 12) fails CHECK of an IPv4-only container with port
        // mappings whenever ip6tables exists (containernetworking/plugins#819, fixed
        // upstream later): accept exactly that failure, which also shows that CHECK
        // reaches portmap with the cached prevResult and the runtimeConfig.
        std::string check_a = error_of([&] { c.check(list, ra); });
        if (check_a != "(no error)") {
            EXPECT_NE(check_a.find("CNI plugin portmap (network itest, CHECK): could not check ipv6 dnat"), std::string::npos)
                << check_a;
        }

        EXPECT_EQ(veth_count(), 2);
        EXPECT_EQ(ipam_allocations("itest").size(), 2u);
        EXPECT_EQ(files_in(root / "cache").size(), 2u);
        // The container side: eth0 with its address.
        std::string out;
        EXPECT_EQ(sh("nsenter --net=" + a.path().string() + " ip -o -4 addr show dev eth0", &out), 0);
        EXPECT_NE(out.find(ip_a + "/24"), std::string::npos) << out;

        // a -> b, b -> a, a -> gateway.
        EXPECT_EQ(sh("nsenter --net=" + a.path().string() + " busybox ping -c1 -W2 " + ip_b), 0);
        EXPECT_EQ(sh("nsenter --net=" + b.path().string() + " busybox ping -c1 -W2 " + ip_a), 0);
        EXPECT_EQ(sh("nsenter --net=" + a.path().string() + " busybox ping -c1 -W2 10.199.0.1"), 0);
        // And not a false positive: an address nobody holds does not answer.
        EXPECT_NE(sh("nsenter --net=" + a.path().string() + " busybox ping -c1 -W1 10.199.0.250"), 0);
        // portmap put a DNAT for 18080 -> a:80 into the (private) host's nat table,
        // and it carries traffic: an httpd in a answers on the host's 10.199.0.1:18080.
        EXPECT_EQ(sh("iptables-save -t nat", &out), 0);
        EXPECT_NE(out.find("18080"), std::string::npos) << out;
        fs::create_directories(root / "www");
        std::ofstream(root / "www" / "index.html") << "hello from a\n";
        std::string pid;
        ASSERT_EQ(sh("nsenter --net=" + a.path().string() + " busybox httpd -f -p 80 -h " + (root / "www").string() +
                         " </dev/null >/dev/null 2>&1 & echo $!",
                     &pid),
                  0);
        std::string page;
        for (int i = 0; i < 50 && page.find("hello from a") == std::string::npos; ++i) {
            sh("timeout 5 busybox wget -q -O - http://10.199.0.1:18080/", &page);
            if (page.find("hello from a") == std::string::npos) ::usleep(100 * 1000);
        }
        ::kill(std::stoi(pid), SIGKILL);
        EXPECT_NE(page.find("hello from a"), std::string::npos);

        // DEL in reverse order of ADD, from a fresh Cni (a later process would do the same).
        cni().del(list, rb);
        cni().del(list, ra);
        EXPECT_EQ(veth_count(), 0);
        EXPECT_TRUE(ipam_allocations("itest").empty());
        EXPECT_TRUE(files_in(root / "cache").empty());
        EXPECT_EQ(sh("iptables-save", &out), 0);
        EXPECT_EQ(out.find(ip_a), std::string::npos) << out;
        EXPECT_EQ(out.find(ip_b), std::string::npos) << out;
        EXPECT_EQ(out.find("18080"), std::string::npos) << out;
        EXPECT_TRUE(fs::exists(a_path));
    }
    // The NetNs owners went out of scope: files unmounted and gone.
    EXPECT_FALSE(fs::exists(a_path));
    EXPECT_FALSE(fs::exists(b_path));
    std::string mounts = read_file("/proc/self/mountinfo");
    EXPECT_EQ(mounts.find(root.string() + "/netns"), std::string::npos);
}

TEST_F(NetReal, DuplicateAddIsRefusedAndDelOfUnknownIsTolerated) {
    auto list = network("dup", "vtbr1", "10.198.0.0/24");
    Cni c = cni();
    NetNs a = NetNs::create(root / "netns", "ctr-dup");
    RuntimeConf ra{.container_id = "ctr-dup", .netns = a.path().string()};
    c.add(list, ra);
    std::string e = error_of([&] { c.add(list, ra); });
    EXPECT_NE(e.find("already attached"), std::string::npos) << e;
    EXPECT_EQ(veth_count(), 1);
    EXPECT_EQ(ipam_allocations("dup").size(), 1u);
    c.check(list, ra);  // the first attachment is intact
    c.del(list, ra);
    EXPECT_EQ(veth_count(), 0);
    EXPECT_TRUE(ipam_allocations("dup").empty());

    // Never added: an existing netns, then one that does not exist at all.
    NetNs never = NetNs::create(root / "netns", "ctr-never");
    EXPECT_NO_THROW(c.del(list, {.container_id = "ctr-never", .netns = never.path().string()}));
    EXPECT_NO_THROW(c.del(list, {.container_id = "ctr-gone", .netns = (root / "netns" / "gone").string()}));
    EXPECT_TRUE(files_in(root / "cache").empty());
}

TEST_F(NetReal, BadInputLeavesNothingBehind) {
    Cni c = cni();
    NetNs a = NetNs::create(root / "netns", "ctr-bad");
    RuntimeConf ra{.container_id = "ctr-bad", .netns = a.path().string()};

    // Unknown plugin type after a bridge that succeeded: the bridge ADD is undone.
    auto good = network("bad", "vtbr2", "10.197.0.0/24");
    json doc = good.raw;
    doc["plugins"].push_back({{"type", "no-such-plugin"}});
    auto list = parse_conflist(doc.dump(), "bad");
    std::string e = error_of([&] { c.add(list, ra); });
    EXPECT_NE(e.find("CNI plugin no-such-plugin (network bad, ADD)"), std::string::npos) << e;
    EXPECT_NE(e.find("not found in /usr/lib/cni"), std::string::npos) << e;
    EXPECT_EQ(veth_count(), 0);
    EXPECT_TRUE(ipam_allocations("bad").empty());
    EXPECT_TRUE(files_in(root / "cache").empty());

    // A plugin's own error result: host-local with a nonsense subnet.
    json bad_ipam = good.raw;
    bad_ipam["plugins"][0]["ipam"]["ranges"][0][0]["subnet"] = "not-a-subnet";
    auto list2 = parse_conflist(bad_ipam.dump(), "bad2");
    e = error_of([&] { c.add(list2, ra); });
    EXPECT_NE(e.find("CNI plugin bridge (network bad, ADD)"), std::string::npos) << e;
    EXPECT_EQ(veth_count(), 0);
    EXPECT_TRUE(files_in(root / "cache").empty());

    // Malformed conflist files name the file and field.
    fs::path f = root / "broken.conflist";
    std::ofstream(f) << R"({"cniVersion":"1.0.0","name":"x","plugins":[{"bridge":"b"}]})";
    e = error_of([&] { load_conflist(f); });
    EXPECT_NE(e.find(f.string() + ": plugins[0].type"), std::string::npos) << e;
    std::ofstream(f) << "{ truncated";
    e = error_of([&] { load_conflist(f); });
    EXPECT_NE(e.find(f.string() + ": not valid JSON"), std::string::npos) << e;
}

TEST_F(NetReal, NetNsIsRemovedOnEveryPath) {
    fs::path p;
    {
        NetNs ns = NetNs::create(root / "netns", "x");
        p = ns.path();
        EXPECT_TRUE(fs::exists(p));
        // Its own namespace, with lo up.
        std::string out;
        EXPECT_EQ(sh("nsenter --net=" + p.string() + " ip -o link show lo", &out), 0);
        EXPECT_NE(out.find("UP"), std::string::npos) << out;
        EXPECT_EQ(sh("nsenter --net=" + p.string() + " ip -o link", &out), 0);
        EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
        // The same name twice is refused, and the first is left alone.
        EXPECT_NE(error_of([&] { NetNs::create(root / "netns", "x"); }).find("File exists"), std::string::npos);
        EXPECT_TRUE(fs::exists(p));
    }
    EXPECT_FALSE(fs::exists(p));
    NetNs moved = NetNs::create(root / "netns", "y");
    NetNs to = std::move(moved);
    EXPECT_FALSE(moved);
    to.remove();
    EXPECT_FALSE(fs::exists(root / "netns" / "y"));
}

// Runs every test inside a private network + mount namespace: the "host" here.
int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    if (::geteuid() == 0) {
        if (::unshare(CLONE_NEWNET | CLONE_NEWNS) < 0) {
            g_setup_error = std::string("unshare(CLONE_NEWNET|CLONE_NEWNS): ") + strerror(errno);
        } else if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) {
            g_setup_error = std::string("make / private: ") + strerror(errno);
        } else {
            // sysfs shows the namespace of whoever mounted it: remount it for ours
            // (cgroups under it vanish, which these tests do not need).
            ::umount2("/sys", MNT_DETACH);
            ::mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
            int s = ::socket(AF_INET, SOCK_DGRAM, 0);
            ifreq ifr{};
            std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
            if (s >= 0 && ::ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
                ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
                ::ioctl(s, SIOCSIFFLAGS, &ifr);
            }
            if (s >= 0) ::close(s);
        }
    }
    return RUN_ALL_TESTS();
}
