// The built-in bridge + host-local (net/builtin_bridge, net/host_local_ipam)
// beside the real binaries in /usr/lib/cni, on the real kernel: the same
// result, the same interfaces and addresses, the same files on disk, taking
// turns on one network, and nothing left behind after DEL or a failed ADD.
// Root only; runs in the private "host" namespace of net_test_main.cpp.
#include <fcntl.h>

#include <regex>
#include <set>
#include <thread>

#include "net_test_util.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

using namespace vitro;
using namespace vitro::net;
using namespace vitro::nettest;

namespace {

// A plugin directory with every binary but bridge and host-local: a chain
// that works with it ran those two in-process.
fs::path plugins_without_bridge(const fs::path& root) {
    fs::path dir = root / "plugins-no-bridge";
    fs::create_directories(dir);
    for (const auto& e : fs::directory_iterator(kPluginDir)) {
        std::string name = e.path().filename();
        if (name != "bridge" && name != "host-local") fs::create_symlink(e.path(), dir / name);
    }
    return dir;
}

// Every string that is a MAC address becomes "MAC" (they differ from run to run).
void blank_macs(json& j) {
    static const std::regex mac("[0-9a-f]{2}(:[0-9a-f]{2}){5}");
    if (j.is_string() && std::regex_match(j.get<std::string>(), mac)) j = "MAC";
    else if (j.is_structured())
        for (auto& v : j) blank_macs(v);
}

// Selected keys of each object in an `ip -j` array, optionally only those matching `keep`.
json pick(const json& arr, std::initializer_list<const char*> keys, const std::function<bool(const json&)>& keep = {}) {
    json out = json::array();
    if (!arr.is_array()) return out;
    for (const auto& o : arr) {
        if (keep && !keep(o)) continue;
        json p = json::object();
        for (const char* k : keys)
            if (o.contains(k)) p[k] = o[k];
        out.push_back(p);
    }
    return out;
}

bool has_flag(const json& link, const char* flag) {
    for (const auto& f : link.value("flags", json::array()))
        if (f == flag) return true;
    return false;
}

// What an attachment looks like from outside: the result, the bridge, the
// host end, the container's interface with its addresses and routes, the
// sysctls the plugin sets. Network-specific names and addresses are replaced
// so that two attachments made the same way compare equal.
json attachment_facts(const json& result, const std::string& bridge, const std::string& netns,
                      const std::string& net_prefix) {
    const std::string in = "nsenter --net=" + netns + " ";
    const std::string veth = result.at("interfaces").at(1).at("name");
    json br = sh_json("ip -j -d link show dev " + bridge)[0];
    json vh = sh_json("ip -j -d link show dev " + veth)[0];
    json ct = sh_json(in + "ip -j -d link show dev eth0")[0];
    auto addrs = [](const json& ip_addr) {
        return pick(ip_addr.is_array() && !ip_addr.empty() ? ip_addr[0].value("addr_info", json::array()) : json::array(),
                    {"family", "local", "prefixlen", "broadcast", "scope"},
                    [](const json& a) { return a.value("scope", "") != "link"; });
    };
    json f;
    f["result"] = result;
    f["bridge"] = {{"kind", br["linkinfo"]["info_kind"]},
                   {"mtu", br["mtu"]},
                   {"up", has_flag(br, "UP")},
                   {"promiscuity", br["promiscuity"]},
                   {"mac is the result's", br["address"] == result["interfaces"][0]["mac"]},
                   {"addr_assign_type", trim(read_file("/sys/class/net/" + bridge + "/addr_assign_type"))},
                   {"addresses", addrs(sh_json("ip -j addr show dev " + bridge))}};
    f["host veth"] = {{"name is vethXXXXXXXX", std::regex_match(veth, std::regex("veth[0-9a-f]{8}"))},
                      {"kind", vh["linkinfo"]["info_kind"]},
                      {"mtu", vh["mtu"]},
                      {"up", has_flag(vh, "UP")},
                      {"master", vh["master"]},
                      {"hairpin", vh["linkinfo"]["info_slave_data"]["hairpin"]},
                      {"mac is the result's", vh["address"] == result["interfaces"][1]["mac"]}};
    f["container"] = {{"kind", ct["linkinfo"]["info_kind"]},
                      {"mtu", ct["mtu"]},
                      {"up", has_flag(ct, "UP")},
                      {"mac is the result's", ct["address"] == result["interfaces"][2]["mac"]},
                      {"addresses", addrs(sh_json(in + "ip -j addr show dev eth0"))},
                      {"routes", pick(sh_json(in + "ip -j route show table main"),
                                      {"dst", "gateway", "dev", "protocol", "scope", "prefsrc"})},
                      {"routes6", pick(sh_json(in + "ip -6 -j route show table main"), {"dst", "gateway", "dev"},
                                       [](const json& r) { return !r.value("dst", "").starts_with("fe80"); })}};
    std::string arp_notify;
    sh(in + "cat /proc/sys/net/ipv4/conf/eth0/arp_notify", &arp_notify);
    f["container"]["arp_notify"] = trim(arp_notify);
    f["ip_forward"] = trim(read_file("/proc/sys/net/ipv4/ip_forward"));
    blank_macs(f);
    std::string text = f.dump();
    for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
             {netns, "NETNS"}, {veth, "VETH"}, {"\"" + bridge + "\"", "\"BRIDGE\""}, {net_prefix, "NET"}}) {
        for (size_t at; (at = text.find(from)) != std::string::npos;) text.replace(at, from.size(), to);
    }
    return json::parse(text);
}

// The network's host-local files: address file names (network part replaced) -> content.
json ipam_state(const fs::path& dir, const std::string& net_prefix) {
    json out = json::object();
    for (const auto& name : files_in(dir)) {
        std::string content = name == "lock" ? "" : read_file((dir / name).string());
        auto blank = [&](std::string s) {
            for (size_t at; (at = s.find(net_prefix)) != std::string::npos;) s.replace(at, net_prefix.size(), "NET");
            return s;
        };
        out[blank(name)] = blank(content);
    }
    return out;
}

// Waits (up to ~10 s) for the kernel to finish tearing down a namespace's devices.
void wait_for_no_veth(const std::function<int()>& count) {
    for (int i = 0; i < 200 && count() != 0; ++i) ::usleep(50 * 1000);
}

class NetBuiltin : public NetReal {
protected:
    fs::path no_bridge_dir;
    void SetUp() override {
        NetReal::SetUp();
        if (!root.empty()) no_bridge_dir = plugins_without_bridge(root);
    }
    // bridge + host-local run in-process (no binary of theirs in the plugin dir).
    Cni builtin() {
        return Cni({.plugin_dirs = {no_bridge_dir}, .cache_dir = root / "cache", .timeout_s = 30,
                    .builtin_plugins = true});
    }
    Cni binary() { return cni(false); }
};

}  // namespace

TEST_F(NetBuiltin, SameResultInterfacesAddressesAndFilesAsTheBinary) {
    // Twin networks, mtu 1400, hairpin on (as vitro makes them); one container each.
    auto nb = network("nb", "vtb0", "10.201.0.0/24", 1400);
    auto nr = network("nr", "vtr0", "10.202.0.0/24", 1400);
    NetNs b = NetNs::create(root / "netns", "b");
    NetNs r = NetNs::create(root / "netns", "r");
    RuntimeConf rb{.container_id = "ctr", .netns = b.path().string()};
    RuntimeConf rr{.container_id = "ctr", .netns = r.path().string()};
    json res_b = builtin().add(nb, rb);
    json res_r = binary().add(nr, rr);

    json facts_b = attachment_facts(res_b, "vtb0", b.path(), "10.201.0.");
    json facts_r = attachment_facts(res_r, "vtr0", r.path(), "10.202.0.");
    EXPECT_EQ(facts_b.dump(2), facts_r.dump(2));
    // And what they are, so that "equal" is not "equally empty".
    EXPECT_EQ(facts_b["result"]["ips"], json::parse(R"([{"interface":2,"address":"NET2/24","gateway":"NET1"}])"));
    EXPECT_EQ(facts_b["result"]["routes"], json::parse(R"([{"dst":"0.0.0.0/0"}])"));
    EXPECT_EQ(facts_b["result"]["interfaces"][2]["sandbox"], "NETNS");
    EXPECT_EQ(facts_b["host veth"]["hairpin"], true);
    EXPECT_EQ(facts_b["host veth"]["master"], "BRIDGE");
    EXPECT_EQ(facts_b["container"]["mtu"], 1400);
    EXPECT_EQ(facts_b["bridge"]["addresses"][0]["local"], "NET1");
    EXPECT_EQ(facts_b["bridge"]["addr_assign_type"], "3");  // the MAC pinned, as the binary does
    EXPECT_EQ(facts_b["container"]["routes"][0], json::parse(R"({"dst":"default","gateway":"NET1","dev":"eth0"})"));

    json ipam_b = ipam_state(root / "ipam" / "nb", "10.201.0."), ipam_r = ipam_state(root / "ipam" / "nr", "10.202.0.");
    EXPECT_EQ(ipam_b, ipam_r);
    EXPECT_EQ(ipam_b, json::parse(R"({"NET2":"ctr\r\neth0","last_reserved_ip.0":"NET2","lock":""})"));

    // CHECK passes, each way round: the binary checks what the built-in made.
    EXPECT_NO_THROW(builtin().check(nb, rb));
    EXPECT_NO_THROW(binary().check(nb, rb));
    EXPECT_NO_THROW(builtin().check(nr, rr));

    builtin().del(nb, rb);
    binary().del(nr, rr);
    EXPECT_EQ(veth_count(), 0);
    EXPECT_TRUE(ipam_allocations("nb").empty());
    EXPECT_TRUE(ipam_allocations("nr").empty());
    EXPECT_TRUE(files_in(root / "cache").empty());
    std::string out;
    EXPECT_EQ(sh("nsenter --net=" + b.path().string() + " ip -o link", &out), 0);
    EXPECT_EQ(out.find("eth0"), std::string::npos) << out;
    // DEL again: nothing to do, no error.
    EXPECT_NO_THROW(builtin().del(nb, rb));
}

TEST_F(NetBuiltin, DualStackAsTheBinary) {
    // One IPv4 and one IPv6 range set; the two networks take turns on one bridge.
    json doc = network("db", "vtd0", "10.205.0.0/24").raw;
    doc["plugins"][0]["ipam"]["ranges"] =
        json::array({json::array({{{"subnet", "10.205.0.0/24"}}}), json::array({{{"subnet", "fd00:205::/64"}}})});
    doc["plugins"][0]["ipam"]["routes"] = json::array({{{"dst", "0.0.0.0/0"}}, {{"dst", "::/0"}}});
    auto nb = parse_conflist(doc.dump(), "db");
    doc["name"] = "dr";
    auto nr = parse_conflist(doc.dump(), "dr");
    NetNs b = NetNs::create(root / "netns", "b");
    RuntimeConf rb{.container_id = "ctr", .netns = b.path().string()};
    json res_b = builtin().add(nb, rb);
    json facts_b = attachment_facts(res_b, "vtd0", b.path(), "10.205.0.");
    // The built-in's IPv6 address is usable at once (no duplicate address detection).
    std::string out;
    EXPECT_EQ(sh("nsenter --net=" + b.path().string() + " ip -6 -o addr show dev eth0 tentative", &out), 0);
    EXPECT_EQ(out.find("fd00:205::2"), std::string::npos) << out;
    builtin().del(nb, rb);
    NetNs r = NetNs::create(root / "netns", "r");
    RuntimeConf rr{.container_id = "ctr", .netns = r.path().string()};
    json res_r = binary().add(nr, rr);
    json facts_r = attachment_facts(res_r, "vtd0", r.path(), "10.205.0.");
    EXPECT_EQ(facts_b.dump(2), facts_r.dump(2));
    EXPECT_EQ(res_b["ips"][1]["address"], "fd00:205::2/64");
    EXPECT_EQ(facts_b["container"]["routes6"].size(), 2u) << facts_b["container"]["routes6"];  // the subnet and ::/0
    binary().del(nr, rr);
    EXPECT_EQ(veth_count(), 0);
    EXPECT_TRUE(ipam_allocations("db").empty());
    EXPECT_TRUE(ipam_allocations("dr").empty());
}

TEST_F(NetBuiltin, TwoContainersOnABuiltInBridgePingEachOther) {
    auto list = network("pp", "vtp0", "10.206.0.0/24");
    Cni c = builtin();
    NetNs a = NetNs::create(root / "netns", "a");
    NetNs b = NetNs::create(root / "netns", "b");
    RuntimeConf ra{.container_id = "a", .netns = a.path().string()};
    RuntimeConf rb{.container_id = "b", .netns = b.path().string()};
    std::string ip_a = ip_of(c.add(list, ra)), ip_b = ip_of(c.add(list, rb));
    EXPECT_NE(ip_a, ip_b);
    EXPECT_EQ(sh("nsenter --net=" + a.path().string() + " busybox ping -c1 -W2 " + ip_b), 0);
    EXPECT_EQ(sh("nsenter --net=" + b.path().string() + " busybox ping -c1 -W2 " + ip_a), 0);
    EXPECT_EQ(sh("nsenter --net=" + a.path().string() + " busybox ping -c1 -W2 10.206.0.1"), 0);
    EXPECT_NE(sh("nsenter --net=" + a.path().string() + " busybox ping -c1 -W1 10.206.0.250"), 0);
    c.del(list, rb);
    c.del(list, ra);
    EXPECT_EQ(veth_count(), 0);
    EXPECT_TRUE(ipam_allocations("pp").empty());
    EXPECT_TRUE(files_in(root / "cache").empty());
}

TEST_F(NetBuiltin, TakesTurnsWithTheBinaryOnOneNetwork) {
    auto list = network("ti", "vti0", "10.207.0.0/24");
    NetNs n1 = NetNs::create(root / "netns", "one");
    NetNs n2 = NetNs::create(root / "netns", "two");
    NetNs n3 = NetNs::create(root / "netns", "three");
    RuntimeConf r1{.container_id = "one", .netns = n1.path().string()};
    RuntimeConf r2{.container_id = "two", .netns = n2.path().string()};
    RuntimeConf r3{.container_id = "three", .netns = n3.path().string()};
    // The binary takes .2; the built-in skips it and goes on from the binary's
    // last reservation; the binary goes on from the built-in's.
    EXPECT_EQ(ip_of(binary().add(list, r1)), "10.207.0.2");
    EXPECT_EQ(ip_of(builtin().add(list, r2)), "10.207.0.3");
    EXPECT_EQ(ip_of(binary().add(list, r3)), "10.207.0.4");
    EXPECT_EQ(read_file((root / "ipam" / "ti" / "10.207.0.3").string()), "two\r\neth0");
    // One bridge, reachable both ways across the two.
    EXPECT_EQ(sh("nsenter --net=" + n1.path().string() + " busybox ping -c1 -W2 10.207.0.3"), 0);
    EXPECT_EQ(sh("nsenter --net=" + n2.path().string() + " busybox ping -c1 -W2 10.207.0.2"), 0);
    // Each removes what the other made.
    builtin().del(list, r1);
    binary().del(list, r2);
    EXPECT_EQ(veth_count(), 1);
    EXPECT_EQ(ipam_allocations("ti"), std::vector<std::string>{"10.207.0.4"});
    builtin().del(list, r3);
    EXPECT_NO_THROW(builtin().del(list, r3));  // twice
    EXPECT_NO_THROW(binary().del(list, r2));
    EXPECT_EQ(veth_count(), 0);
    EXPECT_TRUE(ipam_allocations("ti").empty());
    EXPECT_TRUE(files_in(root / "cache").empty());
}

TEST_F(NetBuiltin, AFailedAddLeavesNoVethAndNoAddress) {
    NetNs ns = NetNs::create(root / "netns", "f");
    RuntimeConf rt{.container_id = "f", .netns = ns.path().string()};
    const std::string in = "nsenter --net=" + ns.path().string() + " ";

    // The interface name is taken in the container: refused before anything is made.
    ASSERT_EQ(sh(in + "ip link add eth0 type veth peer name eth0-peer"), 0);
    auto taken = network("ft", "vtf0", "10.208.0.0/24");
    std::string e = error_of([&] { builtin().add(taken, rt); });
    EXPECT_NE(e.find("CNI plugin bridge (network ft, ADD): interface eth0 already exists in network namespace " +
                     ns.path().string() + " [built in]"),
              std::string::npos)
        << e;
    EXPECT_EQ(veth_count(), 0);
    EXPECT_TRUE(ipam_allocations("ft").empty());
    EXPECT_TRUE(files_in(root / "cache").empty());
    sh(in + "ip link del eth0");

    // The range is exhausted: the failure comes after the veth pair is made.
    auto one = network("fx", "vtx0", "10.209.0.0/24");
    json doc = one.raw;
    doc["plugins"][0]["ipam"]["ranges"][0][0]["rangeStart"] = "10.209.0.10";
    doc["plugins"][0]["ipam"]["ranges"][0][0]["rangeEnd"] = "10.209.0.10";
    auto list = parse_conflist(doc.dump(), "fx");
    NetNs other = NetNs::create(root / "netns", "g");
    RuntimeConf ro{.container_id = "g", .netns = other.path().string()};
    builtin().add(list, ro);
    e = error_of([&] { builtin().add(list, rt); });
    EXPECT_NE(e.find("host-local: failed to allocate for range 0: no IP addresses available in range set: "
                     "10.209.0.10-10.209.0.10"),
              std::string::npos)
        << e;
    EXPECT_EQ(veth_count(), 1);  // g's
    EXPECT_EQ(ipam_allocations("fx"), std::vector<std::string>{"10.209.0.10"});
    std::string out;
    sh(in + "ip -o link", &out);
    EXPECT_EQ(out.find("eth0"), std::string::npos) << out;

    // The bridge already has another address: the failure comes after the
    // veth and the address; both are given back.
    ASSERT_EQ(sh("ip link add vtg0 type bridge && ip addr add 10.210.0.254/24 dev vtg0"), 0);
    auto clash = network("fg", "vtg0", "10.210.0.0/24");
    e = error_of([&] { builtin().add(clash, rt); });
    EXPECT_NE(e.find("\"vtg0\" already has an IP address different from 10.210.0.1/24"), std::string::npos) << e;
    EXPECT_EQ(veth_count(), 1);
    EXPECT_TRUE(ipam_allocations("fg").empty());
    // The binary fails alike there.
    e = error_of([&] { binary().add(clash, rt); });
    EXPECT_NE(e.find("already has an IP address different from 10.210.0.1/24"), std::string::npos) << e;
    EXPECT_TRUE(ipam_allocations("fg").empty());
    EXPECT_EQ(files_in(root / "cache").size(), 1u);  // g's only

    builtin().del(list, ro);
    EXPECT_EQ(veth_count(), 0);
}

TEST_F(NetBuiltin, DelWhenTheNamespaceIsGone) {
    auto list = network("dg", "vtn0", "10.211.0.0/24");
    // The pin is removed while the namespace lives on (we hold it open): DEL
    // cannot enter it, and removes the host end named in the cached result.
    NetNs held = NetNs::create(root / "netns", "held");
    RuntimeConf rh{.container_id = "held", .netns = held.path().string()};
    builtin().add(list, rh);
    UniqueFd keep(::open(held.path().c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(keep);
    held.remove();
    builtin().del(list, rh);
    EXPECT_EQ(veth_count(), 0);
    EXPECT_TRUE(ipam_allocations("dg").empty());
    EXPECT_TRUE(files_in(root / "cache").empty());

    // The namespace itself gone: the kernel removes the pair; DEL releases the address.
    NetNs gone = NetNs::create(root / "netns", "gone");
    RuntimeConf rg{.container_id = "gone", .netns = gone.path().string()};
    builtin().add(list, rg);
    gone.remove();
    EXPECT_NO_THROW(builtin().del(list, rg));
    EXPECT_NO_THROW(builtin().del(list, {.container_id = "gone", .netns = ""}));
    wait_for_no_veth([&] { return veth_count(); });
    EXPECT_EQ(veth_count(), 0);
    EXPECT_TRUE(ipam_allocations("dg").empty());
}

TEST_F(NetBuiltin, CheckFindsWhatIsMissing) {
    auto list = network("ck", "vtc0", "10.212.0.0/24");
    NetNs ns = NetNs::create(root / "netns", "c");
    RuntimeConf rt{.container_id = "c", .netns = ns.path().string()};
    Cni c = builtin();
    c.add(list, rt);
    EXPECT_NO_THROW(c.check(list, rt));
    ASSERT_EQ(sh("nsenter --net=" + ns.path().string() + " ip addr del 10.212.0.2/24 dev eth0"), 0);
    std::string e = error_of([&] { c.check(list, rt); });
    EXPECT_NE(e.find("CNI plugin bridge (network ck, CHECK): Failed to match addr 10.212.0.2/24 on interface eth0"),
              std::string::npos)
        << e;
    c.del(list, rt);
    e = error_of([&] { c.check(list, rt); });
    EXPECT_NE(e.find("no cached result"), std::string::npos) << e;
    EXPECT_EQ(veth_count(), 0);
}

TEST_F(NetBuiltin, ConcurrentAddsOnABridgeNotYetMade) {
    // Each ADD finds no bridge and no gateway address; one makes them, the others use them.
    auto list = network("cc", "vtq0", "10.213.0.0/24");
    std::vector<NetNs> nss;
    for (int i = 0; i < 4; ++i) nss.push_back(NetNs::create(root / "netns", "q" + std::to_string(i)));
    std::vector<std::string> ips(nss.size()), errors(nss.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < nss.size(); ++i)
        threads.emplace_back([&, i] {
            errors[i] = error_of([&] {
                ips[i] = ip_of(builtin().add(list, {.container_id = "q" + std::to_string(i), .netns = nss[i].path().string()}));
            });
        });
    for (auto& t : threads) t.join();
    for (const auto& e : errors) EXPECT_EQ(e, "(no error)");
    EXPECT_EQ(std::set<std::string>(ips.begin(), ips.end()).size(), nss.size());
    EXPECT_EQ(veth_count(), 4);
    std::string out;
    sh("ip -o -4 addr show dev vtq0", &out);
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
    for (size_t i = 0; i < nss.size(); ++i)
        builtin().del(list, {.container_id = "q" + std::to_string(i), .netns = nss[i].path().string()});
    EXPECT_EQ(veth_count(), 0);
    EXPECT_TRUE(ipam_allocations("cc").empty());
}
