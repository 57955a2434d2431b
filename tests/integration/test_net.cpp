// net/ against the real CNI plugins (containernetworking-plugins in /usr/lib/cni):
// bridge + host-local + portmap + firewall + tuning. Root only.
//
// The whole binary runs in a private network and mount namespace of its own
// (net_test_main.cpp). Cni() runs bridge + host-local built in unless
// VITRO_CNI_BUILTIN=0; test_net_builtin.cpp compares the two.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "net_test_util.hpp"
#include "util/file.hpp"

using namespace vitro;
using namespace vitro::net;
using namespace vitro::nettest;

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
