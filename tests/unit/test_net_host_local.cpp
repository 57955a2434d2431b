// host-local IPAM in-process (net/host_local_ipam): configuration as the
// binary reads it, and the allocation state on disk in a temp dir (no root:
// no interface is touched). The same state against the real binary, and the
// built-in bridge around it, are in tests/integration/test_net_builtin.cpp.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "net/builtin_bridge.hpp"
#include "net/host_local_ipam.hpp"
#include "util/file.hpp"
#include "util/ip_address.hpp"
#include "testutil.hpp"

using namespace vitro;
using namespace vitro::net;
using nlohmann::json;
namespace fs = std::filesystem;
using vitro::test::error_of;
using vitro::test::TempDir;

namespace {

json host_local_conf(const fs::path& data_dir, json ranges, json extra = json::object()) {
    json ipam = {{"type", "host-local"}, {"ranges", std::move(ranges)}, {"dataDir", data_dir.string()}};
    ipam.update(extra);
    return {{"cniVersion", "1.0.0"}, {"name", "hl"}, {"type", "bridge"}, {"ipam", ipam}};
}

// The address files of the network, name -> content.
std::map<std::string, std::string> allocations(const fs::path& dir) {
    std::map<std::string, std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) {
        std::string name = e.path().filename();
        if (IpAddress::parse(name)) out[name] = read_file(e.path());
    }
    return out;
}

}  // namespace

TEST(IpAddress, ParsePrintStep) {
    auto a = IpAddress::parse("10.88.255.255");
    ASSERT_TRUE(a);
    EXPECT_EQ(next_address(*a).str(), "10.89.0.0");
    EXPECT_EQ(next_address(*IpAddress::parse("fd00::ffff")).str(), "fd00::1:0");
    EXPECT_FALSE(IpAddress::parse("10.0.0"));
    EXPECT_FALSE(IpAddress::parse("lock"));
    auto p = IpPrefix::parse("10.88.1.7/16");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->network().str(), "10.88.0.0");
    EXPECT_EQ(p->last().str(), "10.88.255.255");
    EXPECT_TRUE(p->contains(*IpAddress::parse("10.88.200.1")));
    EXPECT_FALSE(p->contains(*IpAddress::parse("10.89.0.1")));
    EXPECT_FALSE(p->contains(*IpAddress::parse("::1")));
    EXPECT_FALSE(IpPrefix::parse("10.0.0.0/33"));
    EXPECT_FALSE(IpPrefix::parse("10.0.0.0/"));
    EXPECT_FALSE(IpPrefix::parse("10.0.0.0/8x"));
    EXPECT_EQ(IpPrefix::parse("fd00::/64")->last().str(), "fd00::ffff:ffff:ffff:ffff");
}

TEST(HostLocalConfig, DefaultsAsTheBinary) {
    TempDir t("hl");
    auto cfg = parse_host_local(host_local_conf(t.path, json::array({json::array({{{"subnet", "10.7.0.0/24"}}})}),
                                                {{"routes", json::array({{{"dst", "0.0.0.0/0"}}})}}));
    EXPECT_EQ(cfg.dir, t.path / "hl");
    ASSERT_EQ(cfg.range_sets.size(), 1u);
    const IpamRange& r = cfg.range_sets[0][0];
    EXPECT_EQ(r.gateway.str(), "10.7.0.1");
    EXPECT_EQ(r.start.str(), "10.7.0.1");
    EXPECT_EQ(r.end.str(), "10.7.0.254");  // the broadcast address is never handed out
    ASSERT_EQ(cfg.routes.size(), 1u);
    EXPECT_EQ(cfg.routes[0].dst.str(), "0.0.0.0/0");
    // The old single-range form, and the default data dir.
    json old = {{"name", "n"}, {"ipam", {{"type", "host-local"}, {"subnet", "fd00:1::/64"}, {"rangeEnd", "fd00:1::9"}}}};
    cfg = parse_host_local(old);
    EXPECT_EQ(cfg.dir, fs::path("/var/lib/cni/networks/n"));
    EXPECT_EQ(cfg.range_sets[0][0].end.str(), "fd00:1::9");
}

TEST(HostLocalConfig, BadConfigsSayWhatTheBinarySays) {
    auto err = [](json ranges, json extra = json::object()) {
        return error_of([&] { parse_host_local(host_local_conf("/nonexistent", ranges, extra)); });
    };
    auto one = [](json range) { return json::array({json::array({range})}); };
    EXPECT_NE(err(one({{"subnet", "not-a-subnet"}})).find("invalid CIDR address: not-a-subnet"), std::string::npos);
    EXPECT_NE(err(one({{"subnet", "10.0.0.0/31"}})).find("invalid range set 0: Network 10.0.0.0/31 too small"),
              std::string::npos);
    EXPECT_NE(err(one({{"subnet", "10.0.0.0/24"}, {"gateway", "10.0.1.1"}})).find("gateway 10.0.1.1 not in network 10.0.0.0/24"),
              std::string::npos);
    EXPECT_NE(err(one({{"subnet", "10.0.0.0/24"}, {"rangeStart", "10.0.0.9"}, {"rangeEnd", "10.0.0.5"}}))
                  .find("10.0.0.5 is in network 10.0.0.0/24 but before start 10.0.0.9"),
              std::string::npos);
    EXPECT_NE(err(json::array({json::array({{{"subnet", "10.0.0.0/24"}}}), json::array({{{"subnet", "10.0.0.0/25"}}})}))
                  .find("range set 0 overlaps with 1"),
              std::string::npos);
    EXPECT_NE(err(json::array()).find("no IP ranges specified"), std::string::npos);
    EXPECT_NE(err(one({{"subnet", 7}})).find("ipam.ranges[0][0].subnet: expected a string"), std::string::npos);
}

TEST(HostLocalConfig, OnlyWhatTheBuiltInDoesRunsBuiltIn) {
    RuntimeConf rt{.container_id = "c", .netns = "/x"};
    json conf = host_local_conf("/d", json::array({json::array({{{"subnet", "10.7.0.0/24"}}})}));
    conf["bridge"] = "br0";
    conf["isGateway"] = true;
    conf["ipMasq"] = false;
    conf["hairpinMode"] = true;
    EXPECT_TRUE(builtin_bridge_handles(conf, rt));
    auto with = [&](const char* key, json v) {
        json c = conf;
        c[key] = v;
        return builtin_bridge_handles(c, rt);
    };
    EXPECT_FALSE(with("ipMasq", true));     // per-container iptables: the binary's
    EXPECT_FALSE(with("vlan", 7));
    EXPECT_FALSE(with("runtimeConfig", {{"mac", "02:00:00:00:00:01"}}));
    EXPECT_FALSE(with("cniVersion", "0.2.0"));
    EXPECT_FALSE(with("type", "macvlan"));
    json resolv = conf;
    resolv["ipam"]["resolvConf"] = "/etc/resolv.conf";
    EXPECT_FALSE(builtin_bridge_handles(resolv, rt));
    json dhcp = conf;
    dhcp["ipam"] = {{"type", "dhcp"}};
    EXPECT_FALSE(builtin_bridge_handles(dhcp, rt));
    RuntimeConf wants_ip = rt;
    wants_ip.args = {{"IgnoreUnknown", "1"}, {"IP", "10.7.0.9"}};
    EXPECT_FALSE(builtin_bridge_handles(conf, wants_ip));
}

TEST(HostLocalAllocate, RoundRobinSkipsGatewayAndTakenAndKeepsTheBinarysFiles) {
    TempDir t("hl");
    auto cfg = parse_host_local(host_local_conf(
        t.path, json::array({json::array({{{"subnet", "10.7.0.0/24"}, {"rangeStart", "10.7.0.1"}, {"rangeEnd", "10.7.0.4"}}})})));
    // 10.7.0.2 is taken by someone else (e.g. the binary).
    fs::create_directories(cfg.dir);
    std::ofstream(cfg.dir / "10.7.0.2") << "other\r\neth0";
    auto a = host_local_allocate(cfg, "ctr-a", "eth0");
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].address.str(), "10.7.0.3/24");  // .1 is the gateway, .2 taken
    EXPECT_EQ(a[0].gateway.str(), "10.7.0.1");
    EXPECT_EQ(read_file(cfg.dir / "10.7.0.3"), "ctr-a\r\neth0");
    EXPECT_EQ(read_file(cfg.dir / "last_reserved_ip.0"), "10.7.0.3");
    EXPECT_TRUE(fs::exists(cfg.dir / "lock"));
    EXPECT_EQ(host_local_allocate(cfg, "ctr-b", "eth0")[0].address.str(), "10.7.0.4/24");
    // The same container and interface twice: refused, as the binary does.
    EXPECT_NE(error_of([&] { host_local_allocate(cfg, "ctr-a", "eth0"); }).find("duplicate allocation is not allowed"),
              std::string::npos);
    // Full (.1 gateway, .2 other, .3 a, .4 b): the binary's words, the range named.
    std::string e = error_of([&] { host_local_allocate(cfg, "ctr-c", "eth0"); });
    EXPECT_NE(e.find("failed to allocate for range 0: no IP addresses available in range set: 10.7.0.1-10.7.0.4"),
              std::string::npos)
        << e;
    // Round robin: after releasing a, the next goes on from the last reserved (.4), wraps, and finds .3.
    host_local_release(cfg, "ctr-a", "eth0");
    EXPECT_FALSE(fs::exists(cfg.dir / "10.7.0.3"));
    EXPECT_EQ(host_local_allocate(cfg, "ctr-c", "eth0")[0].address.str(), "10.7.0.3/24");
    EXPECT_TRUE(host_local_holds(cfg, "ctr-b", "eth0"));
    EXPECT_FALSE(host_local_holds(cfg, "ctr-b", "eth1"));
    // Release by id + ifname only; an older host-local's file (id alone) is released too; twice is fine.
    std::ofstream(cfg.dir / "10.7.0.1") << "old-ctr\n";
    host_local_release(cfg, "ctr-b", "eth1");
    EXPECT_TRUE(fs::exists(cfg.dir / "10.7.0.4"));
    host_local_release(cfg, "ctr-b", "eth0");
    host_local_release(cfg, "ctr-b", "eth0");
    host_local_release(cfg, "old-ctr", "eth0");
    auto left = allocations(cfg.dir);
    EXPECT_EQ(left, (std::map<std::string, std::string>{{"10.7.0.2", "other\r\neth0"}, {"10.7.0.3", "ctr-c\r\neth0"}}));
}

TEST(HostLocalAllocate, OneAddressPerRangeSetAndNothingLeftWhenOneFails) {
    TempDir t("hl");
    json sets = json::array({json::array({{{"subnet", "10.8.0.0/24"}}}),
                             json::array({{{"subnet", "fd00:8::/64"}, {"rangeEnd", "fd00:8::2"}}})});
    auto cfg = parse_host_local(host_local_conf(t.path, sets));
    auto a = host_local_allocate(cfg, "a", "eth0");
    ASSERT_EQ(a.size(), 2u);
    EXPECT_EQ(a[0].address.str(), "10.8.0.2/24");
    EXPECT_EQ(a[1].address.str(), "fd00:8::2/64");
    EXPECT_EQ(read_file(cfg.dir / "last_reserved_ip.1"), "fd00:8::2");
    // The IPv6 set is full now: b's IPv4 address is given back.
    std::string e = error_of([&] { host_local_allocate(cfg, "b", "eth0"); });
    EXPECT_NE(e.find("failed to allocate for range 1"), std::string::npos) << e;
    EXPECT_EQ(allocations(cfg.dir).size(), 2u);
    EXPECT_FALSE(host_local_holds(cfg, "b", "eth0"));
}
