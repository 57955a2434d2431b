#include "net/builtin_bridge.hpp"

#include <fcntl.h>
#include <linux/ip.h>
#include <linux/magic.h>
#include <net/if.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <functional>
#include <set>

#include "linux/netdev.hpp"
#include "net/host_local_ipam.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace vitro::net {

using nlohmann::json;

namespace {

// The bridge plugin's own settings, read from its stdin config.
struct BridgeConf {
    std::string cni_version;
    std::string bridge = "cni0";  // the binary's default
    bool is_gateway = false;
    bool is_default_gateway = false;
    bool force_address = false;
    bool hairpin = false;
    bool promisc = false;
    int mtu = 0;
    json dns;  // null: not set
    HostLocalConfig ipam;
};

[[noreturn]] void bridge_bad(const std::string& key, const std::string& expected) {
    throw Error(EINVAL, "bridge config: " + key + ": " + expected);
}

bool bridge_flag(const json& conf, const char* key) {
    auto it = conf.find(key);
    if (it == conf.end() || it->is_null()) return false;
    if (!it->is_boolean()) bridge_bad(key, "expected true or false");
    return it->get<bool>();
}

BridgeConf parse_bridge_conf(const json& conf) {
    BridgeConf c;
    c.cni_version = conf.value("cniVersion", "");
    if (auto b = conf.find("bridge"); b != conf.end() && !b->is_null()) {
        if (!b->is_string() || b->get<std::string>().empty() || b->get<std::string>().size() >= IFNAMSIZ)
            bridge_bad("bridge", "expected an interface name of at most 15 characters");
        c.bridge = b->get<std::string>();
    }
    c.is_default_gateway = bridge_flag(conf, "isDefaultGateway");
    c.is_gateway = bridge_flag(conf, "isGateway") || c.is_default_gateway;
    c.force_address = bridge_flag(conf, "forceAddress");
    c.hairpin = bridge_flag(conf, "hairpinMode");
    c.promisc = bridge_flag(conf, "promiscMode");
    if (c.hairpin && c.promisc) throw Error(EINVAL, "cannot set hairpin mode and promiscuous mode at the same time");
    if (auto m = conf.find("mtu"); m != conf.end() && !m->is_null()) {
        if (!m->is_number_integer() || m->get<long>() < 0 || m->get<long>() > 65535) bridge_bad("mtu", "expected 0..65535");
        c.mtu = m->get<int>();
    }
    if (auto d = conf.find("dns"); d != conf.end() && d->is_object()) {
        json dns = json::object();
        for (const char* key : {"nameservers", "domain", "search", "options"})
            if (auto v = d->find(key); v != d->end() && !v->is_null() && !v->empty()) dns[key] = *v;
        c.dns = dns;
    }
    c.ipam = parse_host_local(conf);
    return c;
}

// Steps to undo if ADD fails part-way, run in reverse; dismissed on success.
class BridgeAddUndo {
public:
    BridgeAddUndo() = default;
    BridgeAddUndo(const BridgeAddUndo&) = delete;
    BridgeAddUndo& operator=(const BridgeAddUndo&) = delete;
    ~BridgeAddUndo() {
        for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) {
            try {
                (*it)();
            } catch (const std::exception&) {
                // Best effort: the caller's DEL of the failed plugin tries again.
            }
        }
    }
    void add(std::function<void()> step) { steps_.push_back(std::move(step)); }
    void dismiss() { steps_.clear(); }

private:
    std::vector<std::function<void()>> steps_;
};

// Writes a /proc/sys knob of this thread's network namespace.
bool bridge_sysctl(const std::string& path, std::string_view value) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    return fd && try_write_all(fd.get(), value);
}

// IP forwarding on in the host's namespace, as the binary does for a gateway.
void bridge_enable_forwarding(bool v6) {
    const std::string path = v6 ? "/proc/sys/net/ipv6/conf/all/forwarding" : "/proc/sys/net/ipv4/ip_forward";
    try {
        if (trim(read_file(path)) == "1") return;
    } catch (const Error&) {
        // Unreadable: the write below says whether forwarding can be enabled
    }
    if (!bridge_sysctl(path, "1")) throw_errno("failed to enable forwarding: write 1 to", path);
}

// An open network namespace file; an empty fd when it does not exist (or is
// no longer a namespace: its pin was removed), which DEL takes as gone.
UniqueFd bridge_open_netns(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT) return fd;
        throw_errno("failed to open netns", path);
    }
    struct statfs sfs {};
    if (::fstatfs(fd.get(), &sfs) == 0 && sfs.f_type != NSFS_MAGIC && sfs.f_type != PROC_SUPER_MAGIC) fd.reset();
    return fd;
}

UniqueFd bridge_require_netns(const std::string& path) {
    UniqueFd fd = bridge_open_netns(path);
    if (!fd) throw Error(ENOENT, "failed to open netns \"" + path + "\": no such network namespace");
    return fd;
}

// The bridge, made if missing (mtu, up, promiscuous when asked), as the binary finds or makes it.
os::LinkInfo bridge_ensure(os::Rtnl& host, const BridgeConf& c) {
    const unsigned want = IFF_UP | (c.promisc ? static_cast<unsigned>(IFF_PROMISC) : 0u);
    auto br = os::find_link(host, c.bridge);
    if (!br) {
        try {
            os::create_bridge(host, c.bridge, c.mtu, want);
        } catch (const Error& e) {
            if (e.code() != EEXIST) throw e.wrap("failed to create bridge \"" + c.bridge + "\"");  // else: made meanwhile
        }
        br = os::find_link(host, c.bridge);
        if (!br) throw Error(ENODEV, "bridge \"" + c.bridge + "\": gone right after it was made");
    }
    if (br->kind != "bridge") throw Error(EEXIST, "\"" + c.bridge + "\" already exists but is not a bridge");
    // Its routes are ours: no router advertisements (the binary's setting; IPv6 may be off).
    bridge_sysctl("/proc/sys/net/ipv6/conf/" + c.bridge + "/accept_ra", "0");
    if ((br->flags & want) != want) {
        os::set_link_flags(host, br->index, want, want, c.bridge);
        br->flags |= want;
    }
    return *br;
}

// "veth" and 8 random hex digits, as the binary names the host end.
std::string bridge_veth_name() {
    unsigned char r[4];
    if (::getrandom(r, sizeof r, 0) != static_cast<ssize_t>(sizeof r)) throw_errno("getrandom");
    char name[IFNAMSIZ];
    std::snprintf(name, sizeof name, "veth%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
    return name;
}

// The gateway address on the bridge: nothing when it is there; another IPv4
// address (or an overlapping IPv6 one) is an error unless forceAddress.
void bridge_ensure_gateway(os::Rtnl& host, const os::LinkInfo& br, const IpPrefix& gw, bool force) {
    for (const auto& a : os::link_addresses(host, br.index, gw.address.family())) {
        if (a == gw) return;
        if (!gw.address.v6 || a.contains(gw.address) || gw.contains(a.address)) {
            if (!force)
                throw Error(EEXIST, "\"" + br.name + "\" already has an IP address different from " + gw.str());
            os::delete_address(host, br.index, a, br.name);
        }
    }
    try {
        os::add_address(host, br.index, gw, false, br.name);
    } catch (const Error& e) {
        if (e.code() != EEXIST) throw;  // added meanwhile by another ADD on this bridge
    }
    // The bridge keeps this MAC from now on, instead of taking the lowest of
    // its ports' as they come and go.
    os::set_link_mac(host, br.index, br.mac, br.name);
}

json bridge_interface(const os::LinkInfo& l) { return {{"name", l.name}, {"mac", l.mac_text()}}; }

// The result as the binary prints it in cniVersion `version`: 1.0.0, or the
// 0.3.x/0.4.0 shape (each IP with its "version").
json bridge_result(const BridgeConf& c, const os::LinkInfo& br, const os::LinkInfo& host_veth,
                   const os::LinkInfo& cont, const RuntimeConf& rt, const std::vector<IpamLease>& leases,
                   const std::vector<IpamRoute>& routes) {
    const bool v1 = c.cni_version.starts_with("1.");
    json ifaces = json::array({bridge_interface(br), bridge_interface(host_veth), bridge_interface(cont)});
    ifaces[2]["sandbox"] = rt.netns;
    json ips = json::array();
    for (const auto& l : leases) {
        json ip = {{"interface", 2}, {"address", l.address.str()}, {"gateway", l.gateway.str()}};
        if (!v1) ip["version"] = l.address.address.v6 ? "6" : "4";
        ips.push_back(ip);
    }
    json result = {{"cniVersion", c.cni_version}, {"interfaces", ifaces}, {"ips", ips}};
    if (!routes.empty()) {
        json rs = json::array();
        for (const auto& r : routes) {
            json j = {{"dst", r.dst.str()}};
            if (r.gw) j["gw"] = r.gw->str();
            rs.push_back(j);
        }
        result["routes"] = rs;
    }
    result["dns"] = c.dns.is_null() ? json::object() : c.dns;
    return result;
}

// The routes the result lists: host-local's, plus with isDefaultGateway a
// default route per family via its gateway (unless one with a gateway is there).
std::vector<IpamRoute> bridge_routes(const BridgeConf& c, const std::vector<IpamLease>& leases) {
    std::vector<IpamRoute> routes = c.ipam.routes;
    if (!c.is_default_gateway) return routes;
    for (const auto& l : leases) {
        IpPrefix any{IpAddress{l.address.address.v6, {}}, 0};
        bool found = false;
        for (const auto& r : routes) found = found || (r.gw && r.dst.prefix == 0 && r.dst.address.v6 == any.address.v6);
        if (!found) routes.push_back({any, l.gateway});
    }
    return routes;
}

// The first gateway of a family among the leases: where a route without one goes.
std::optional<IpAddress> bridge_gateway_for(const std::vector<IpamLease>& leases, bool v6) {
    for (const auto& l : leases)
        if (l.gateway.v6 == v6) return l.gateway;
    return std::nullopt;
}

// The container's side: arp_notify, the addresses, the routes (as the binary's ipam.ConfigureIface).
void bridge_configure_container(os::Rtnl& cont, const os::LinkInfo& ifc, const std::vector<IpamLease>& leases,
                                const std::vector<IpamRoute>& routes) {
    try {  // best effort, as the binary's sysctl: announce the address when the link comes up
        os::set_ipv4_devconf(cont, ifc.index, IPV4_DEVCONF_ARP_NOTIFY, 1, ifc.name);
    } catch (const Error&) {
        // Best effort, as the binary's sysctl: arp_notify only speeds up neighbours learning the address
    }
    os::set_link_flags(cont, ifc.index, IFF_UP, IFF_UP, ifc.name);
    // IPv6 without duplicate address detection (the binary sets accept_dad=0): usable at once.
    for (const auto& l : leases) os::add_address(cont, ifc.index, l.address, true, ifc.name);
    for (const auto& r : routes) {
        os::Route route{r.dst, r.gw ? r.gw : bridge_gateway_for(leases, r.dst.address.v6), ifc.index};
        os::add_route(cont, route, ifc.name);
    }
}

// The host end of the pair named in a cached result (the interface that is
// neither the bridge nor in a sandbox), if it is still a port of the bridge.
std::optional<os::LinkInfo> bridge_host_veth_of(os::Rtnl& host, const json& prev, const std::string& bridge) {
    if (!prev.is_object() || !prev.contains("interfaces") || !prev["interfaces"].is_array()) return std::nullopt;
    auto br = os::find_link(host, bridge);
    if (!br) return std::nullopt;
    for (const auto& i : prev["interfaces"]) {
        if (!i.is_object() || i.contains("sandbox") || !i.contains("name") || !i["name"].is_string()) continue;
        std::string name = i["name"];
        if (name == bridge) continue;
        auto l = os::find_link(host, name);
        if (l && l->kind == "veth" && l->master == br->index) return l;
    }
    return std::nullopt;
}

// The keys of a bridge config the built-in reads (or, for ipMasq, vlan,
// macspoofchk and enabledad, accepts when off); any other sends it to the binary.
const std::set<std::string> kBridgeKnownKeys = {
    "type", "name", "cniVersion", "bridge", "isGateway", "isDefaultGateway", "forceAddress", "mtu",
    "hairpinMode", "promiscMode", "ipam", "dns", "capabilities", "prevResult", "preserveDefaultVlan",
    "ipMasq", "vlan", "macspoofchk", "enabledad"};

}  // namespace

bool builtin_bridge_handles(const json& conf, const RuntimeConf& rt) {
    if (!conf.is_object() || conf.value("type", "") != "bridge") return false;
    if (!host_local_supported(conf.value("ipam", json()))) return false;
    static const std::set<std::string> versions = {"0.3.0", "0.3.1", "0.4.0", "1.0.0"};
    if (!versions.count(conf.value("cniVersion", ""))) return false;
    for (const auto& [key, value] : conf.items()) {
        if (!kBridgeKnownKeys.count(key)) return false;  // runtimeConfig, args, vlanTrunk, ... : the binary's
        // Set to what the built-in does not do: the binary's, too.
        if ((key == "ipMasq" || key == "macspoofchk" || key == "enabledad") && value != false && !value.is_null()) return false;
        if (key == "vlan" && value != 0 && !value.is_null()) return false;
    }
    for (const auto& [k, v] : rt.args)
        if (k == "IP" || k == "MAC") return false;
    return true;
}

json builtin_bridge_add(const json& conf, const RuntimeConf& rt) {
    const BridgeConf c = parse_bridge_conf(conf);  // a bad config changes nothing
    os::Rtnl host;
    os::LinkInfo br = bridge_ensure(host, c);

    UniqueFd ns = bridge_require_netns(rt.netns);
    os::Rtnl cont(ns.get());
    if (os::find_link(cont, rt.ifname))
        throw Error(EEXIST, "interface " + rt.ifname + " already exists in network namespace " + rt.netns);

    BridgeAddUndo undo;
    // The pair in one request: the host end up on the bridge, the peer in the
    // container (brought up below: a veth end cannot come up before its pair exists).
    std::string veth;
    for (int attempt = 1;; ++attempt) {
        veth = bridge_veth_name();
        try {
            os::create_veth(host, {.name = veth, .mtu = c.mtu, .up = true, .master = br.index},
                            {.name = rt.ifname, .mtu = c.mtu}, ns.get());
            break;
        } catch (const Error& e) {
            // EEXIST: the random host name was taken (the container's was free just now).
            if (e.code() != EEXIST || attempt == 10) throw;
        }
    }
    auto host_veth = os::find_link(host, veth);
    if (!host_veth) throw Error(ENODEV, "veth " + veth + ": gone right after it was made");
    undo.add([&host, index = host_veth->index, veth] { os::delete_link(host, index, veth); });
    if (c.hairpin) os::set_bridge_port_hairpin(host, host_veth->index, true, veth);

    std::vector<IpamLease> leases;
    try {
        leases = host_local_allocate(c.ipam, rt.container_id, rt.ifname);
    } catch (const Error& e) {
        throw e.wrap("host-local");
    }
    undo.add([&] { host_local_release(c.ipam, rt.container_id, rt.ifname); });
    if (leases.empty()) throw Error(EINVAL, "IPAM plugin returned missing IP config");

    auto ifc = os::find_link(cont, rt.ifname);
    if (!ifc) throw Error(ENODEV, "interface " + rt.ifname + ": gone from " + rt.netns + " right after it was made");
    std::vector<IpamRoute> routes = bridge_routes(c, leases);
    bridge_configure_container(cont, *ifc, leases, routes);

    if (c.is_gateway) {
        bool v4 = false, v6 = false;
        for (const auto& l : leases) {
            bridge_ensure_gateway(host, br, {l.gateway, l.address.prefix}, c.force_address);
            (l.gateway.v6 ? v6 : v4) = true;
        }
        if (v4) bridge_enable_forwarding(false);
        if (v6) bridge_enable_forwarding(true);
    }

    // The MACs as they are now: the bridge's may have changed with its first
    // port or its address.
    auto br_now = os::find_link(host, br.index);
    auto veth_now = os::find_link(host, host_veth->index);
    json result = bridge_result(c, br_now ? *br_now : br, veth_now ? *veth_now : *host_veth, *ifc, rt, leases, routes);
    undo.dismiss();
    return result;
}

void builtin_bridge_del(const json& conf, const RuntimeConf& rt) {
    const BridgeConf c = parse_bridge_conf(conf);
    bool removed_in_container = false;
    if (!rt.netns.empty()) {
        if (UniqueFd ns = bridge_open_netns(rt.netns)) {
            os::Rtnl cont(ns.get());
            if (auto l = os::find_link(cont, rt.ifname)) os::delete_link(cont, l->index, rt.ifname);
            removed_in_container = true;
        }
    }
    if (!removed_in_container) {
        // The namespace is gone, and with it usually the pair; a host end left
        // over is found by the name the result recorded.
        os::Rtnl host;
        if (auto l = bridge_host_veth_of(host, conf.value("prevResult", json()), c.bridge))
            os::delete_link(host, l->index, l->name);
    }
    host_local_release(c.ipam, rt.container_id, rt.ifname);
}

void builtin_bridge_check(const json& conf, const RuntimeConf& rt) {
    const BridgeConf c = parse_bridge_conf(conf);
    if (!host_local_holds(c.ipam, rt.container_id, rt.ifname))
        throw Error(ENOENT, "host-local: Failed to find address added by container " + rt.container_id);
    json prev = conf.value("prevResult", json());
    if (!prev.is_object()) throw Error(EINVAL, "Required prevResult missing");

    os::Rtnl host;
    auto br = os::find_link(host, c.bridge);
    if (!br || br->kind != "bridge")
        throw Error(ENOENT, "CNI created bridge " + c.bridge + " in host namespace was not found");
    UniqueFd ns = bridge_require_netns(rt.netns);
    os::Rtnl cont(ns.get());
    auto ifc = os::find_link(cont, rt.ifname);
    if (!ifc || ifc->kind != "veth")
        throw Error(ENOENT, "CNI created interface in container " + rt.ifname + " not found");

    int cont_at = -1;  // its place in prevResult's interfaces
    bool veth_found = false;
    const json ifaces = prev.value("interfaces", json::array());
    for (size_t i = 0; i < ifaces.size(); ++i) {
        std::string name = ifaces[i].value("name", ""), sandbox = ifaces[i].value("sandbox", "");
        if (name == rt.ifname && !sandbox.empty()) {
            if (sandbox != rt.netns)
                throw Error(EINVAL, "Sandbox in prevResult " + sandbox + " doesn't match configured netns: " + rt.netns);
            cont_at = static_cast<int>(i);
        } else if (sandbox.empty() && name != c.bridge) {
            auto l = os::find_link(host, name);
            veth_found = veth_found || (l && l->kind == "veth" && l->master == br->index && l->index == ifc->link);
        }
    }
    if (!veth_found) throw Error(ENOENT, "CNI veth created for bridge " + c.bridge + " was not found");

    for (const auto& ip : prev.value("ips", json::array())) {
        if (ip.value("interface", -1) != cont_at) continue;
        auto want = IpPrefix::parse(ip.value("address", ""));
        if (!want) throw Error(EINVAL, "prevResult: bad address " + ip.dump());
        bool ok = false;
        for (const auto& a : os::link_addresses(cont, ifc->index, want->address.family()))
            ok = ok || a == *want;
        if (!ok) throw Error(ENOENT, "Failed to match addr " + want->str() + " on interface " + rt.ifname);
    }
    for (const auto& r : prev.value("routes", json::array())) {
        auto dst = IpPrefix::parse(r.value("dst", ""));
        if (!dst) throw Error(EINVAL, "prevResult: bad route " + r.dump());
        auto gw = IpAddress::parse(r.value("gw", ""));
        bool ok = false;
        for (const auto& have : os::main_routes(cont, dst->address.family()))
            ok = ok || (have.dst.prefix == dst->prefix && have.dst.network() == dst->network() &&
                        (!gw || have.gateway == gw));
        if (!ok) throw Error(ENOENT, "Failed to match route " + dst->str() + " in network namespace " + rt.netns);
    }
}

}  // namespace vitro::net
