// Network conflist files: spec validation, the generated chain, and the
// store (create / list / inspect / remove / default) under a temp dir.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "net/host_rules.hpp"
#include "net/networks.hpp"
#include "util/error.hpp"
#include "testutil.hpp"

using namespace vitro;
using namespace vitro::net;
namespace fs = std::filesystem;

namespace {

using vitro::test::TempDir;
using vitro::test::error_of;
}  // namespace

TEST(NetNetworks, Cidr) {
    Cidr a = parse_cidr("10.88.0.0/16", "subnet");
    EXPECT_EQ(a.prefix, 16);
    EXPECT_FALSE(a.v6);
    EXPECT_TRUE(cidrs_overlap(a, parse_cidr("10.88.5.0/24", "subnet")));
    EXPECT_FALSE(cidrs_overlap(a, parse_cidr("10.89.0.0/24", "subnet")));
    EXPECT_TRUE(parse_cidr("fd00:1::/64", "subnet").v6);
    EXPECT_NE(error_of([] { parse_cidr("10.88.0.0", "subnet"); }).find("network subnet: \"10.88.0.0\": expected ADDRESS/PREFIX"), std::string::npos);
    EXPECT_NE(error_of([] { parse_cidr("10.88.1.0/16", "subnet"); }).find("host bits set"), std::string::npos);
    EXPECT_NE(error_of([] { parse_cidr("10.88.0.0/33", "subnet"); }).find("prefix length"), std::string::npos);
    EXPECT_NE(error_of([] { parse_cidr("banana/8", "subnet"); }).find("not an IP address"), std::string::npos);
}

TEST(NetNetworks, Conflist) {
    auto doc = make_conflist({.name = "n1", .bridge = "br-n1", .subnet = "10.90.0.0/24", .ipam_data_dir = "/tmp/ipam"});
    EXPECT_EQ(doc["cniVersion"], "1.0.0");
    EXPECT_EQ(doc["name"], "n1");
    auto& p = doc["plugins"];
    ASSERT_EQ(p.size(), 3u);
    EXPECT_EQ(p[0]["type"], "bridge");
    EXPECT_EQ(p[0]["bridge"], "br-n1");
    EXPECT_EQ(p[0]["isGateway"], true);
    EXPECT_EQ(p[0]["ipam"]["type"], "host-local");
    EXPECT_EQ(p[0]["ipam"]["ranges"][0][0]["subnet"], "10.90.0.0/24");
    EXPECT_EQ(p[0]["ipam"]["ranges"][0][0]["gateway"], "10.90.0.1");
    EXPECT_EQ(p[0]["ipam"]["dataDir"], "/tmp/ipam");
    EXPECT_EQ(p[1]["type"], "portmap");
    EXPECT_EQ(p[1]["capabilities"]["portMappings"], true);
    EXPECT_EQ(p[2]["type"], "tuning");
    // Masquerading and forwarding: the network's host rules, not the plugins'.
    EXPECT_EQ(p[0]["ipMasq"], false);
    EXPECT_EQ(doc["vitro"]["hostRules"], true);
    EXPECT_EQ(doc["vitro"]["ipMasq"], true);
    EXPECT_NE(error_of([] { make_conflist({.name = "-x", .subnet = "10.0.0.0/8"}); }).find("network name"), std::string::npos);
    EXPECT_NE(error_of([] { make_conflist({.name = "x", .bridge = "a-very-long-bridge-name", .subnet = "10.0.0.0/8"}); }).find("network bridge"), std::string::npos);
    EXPECT_NE(error_of([] { make_conflist({.name = "x", .subnet = "10.0.0.0/8", .gateway = "11.0.0.1"}); }).find("outside"), std::string::npos);
}

TEST(NetNetworks, Store) {
    TempDir tmp{"netd-unit"};
    NetworkStore store(tmp.path / "net.d");
    EXPECT_TRUE(store.list().empty());
    auto def = store.ensure_default("10.88.0.0/16");
    EXPECT_EQ(def.name, "vitro");
    EXPECT_EQ(bridge_of(def), "vitro0");
    EXPECT_EQ(store.ensure_default().name, "vitro");  // idempotent
    auto n2 = store.create({.name = "backend", .subnet = "10.89.0.0/24"});
    EXPECT_EQ(bridge_of(n2), "vitro1");  // picked: vitro0 is taken
    EXPECT_TRUE(fs::exists(tmp.path / "net.d" / "backend.conflist"));

    auto all = store.list();
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0].name, "backend");
    EXPECT_EQ(all[1].name, "vitro");
    EXPECT_EQ(subnets_of(store.inspect("backend")), std::vector<std::string>{"10.89.0.0/24"});

    EXPECT_NE(error_of([&] { store.create({.name = "backend", .subnet = "10.91.0.0/24"}); }).find("already exists"), std::string::npos);
    EXPECT_NE(error_of([&] { store.create({.name = "other", .subnet = "10.88.4.0/24"}); }).find("overlaps 10.88.0.0/16 of network vitro"), std::string::npos);
    EXPECT_NE(error_of([&] { store.create({.name = "other", .bridge = "vitro1", .subnet = "10.92.0.0/24"}); }).find("bridge vitro1 is used"), std::string::npos);

    store.remove("backend");
    EXPECT_FALSE(store.exists("backend"));
    EXPECT_NE(error_of([&] { store.remove("backend"); }).find("no such network"), std::string::npos);
    EXPECT_NE(error_of([&] { store.inspect("backend"); }).find("no such network"), std::string::npos);

    // A malformed file is reported by name.
    std::ofstream(tmp.path / "net.d" / "broken.conflist") << R"({"name":"broken","plugins":[]})";
    std::string e = error_of([&] { store.list(); });
    EXPECT_NE(e.find("broken.conflist: cniVersion"), std::string::npos) << e;
    // Only the network's own file-name stem is accepted.
    EXPECT_NE(error_of([&] { store.inspect("../etc/passwd"); }).find("invalid"), std::string::npos);
}

TEST(NetHostRules, FromTheConflistOnePerSubnetTagged) {
    auto list = parse_conflist(make_conflist({.name = "n1", .bridge = "br-n1", .subnet = "10.90.0.0/24"}).dump(), "n1");
    auto r = host_rules_of(list);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->network, "n1");
    EXPECT_EQ(r->subnets, std::vector<std::string>({"10.90.0.0/24"}));
    auto rules = r->rules();
    ASSERT_EQ(rules.size(), 3u);
    EXPECT_EQ(rules[0].binary, "iptables");
    EXPECT_EQ(rules[0].table, "nat");
    EXPECT_EQ(rules[0].chain, "POSTROUTING");
    EXPECT_EQ(rules[0].args, std::vector<std::string>({"-s", "10.90.0.0/24", "!", "-d", "10.90.0.0/24", "-j", "MASQUERADE",
                                                       "-m", "comment", "--comment", "vitro network n1"}));
    EXPECT_EQ(rules[1].chain, "FORWARD");
    EXPECT_EQ(rules[2].args[3], "conntrack");

    // --internal: forwarding only; IPv6: ip6tables.
    r = host_rules_of(parse_conflist(make_conflist({.name = "v6", .bridge = "br-v6", .subnet = "fd00:1::/64", .ip_masq = false}).dump(), "v6"));
    ASSERT_TRUE(r.has_value());
    rules = r->rules();
    ASSERT_EQ(rules.size(), 2u);
    EXPECT_EQ(rules[0].binary, "ip6tables");
    EXPECT_EQ(rules[0].chain, "FORWARD");

    // A conflist of someone else's (the plugins masquerade): no host rules.
    EXPECT_FALSE(host_rules_of(parse_conflist(R"({"cniVersion":"1.0.0","name":"x","plugins":[{"type":"bridge"}]})", "x")));
}
