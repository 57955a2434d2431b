#include "net/networks.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "linux/netdev.hpp"
#include "net/host_rules.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/log.hpp"

namespace vitro::net {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

[[noreturn]] void bad(const std::string& field, const std::string& msg) {
    throw Error(EINVAL, "network " + field + ": " + msg);
}

bool valid_name(const std::string& s) {
    if (s.empty() || s.size() > 200) return false;
    if (!std::isalnum(static_cast<unsigned char>(s[0]))) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    });
}

bool valid_ifname(const std::string& s) {
    if (s.empty() || s.size() >= 16 || s == "." || s == "..") return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    });
}

std::string address_text(const Cidr& c, const unsigned char* bytes) {
    char buf[INET6_ADDRSTRLEN] = "";
    ::inet_ntop(c.v6 ? AF_INET6 : AF_INET, bytes, buf, sizeof buf);
    return buf;
}

}  // namespace

Cidr parse_cidr(const std::string& text, const std::string& field) {
    auto slash = text.find('/');
    if (slash == std::string::npos) bad(field, "\"" + text + "\": expected ADDRESS/PREFIX, e.g. 10.89.0.0/24");
    Cidr c;
    c.address = text.substr(0, slash);
    std::string len = text.substr(slash + 1);
    if (::inet_pton(AF_INET, c.address.c_str(), c.bytes) == 1) c.v6 = false;
    else if (::inet_pton(AF_INET6, c.address.c_str(), c.bytes) == 1) c.v6 = true;
    else bad(field, "\"" + text + "\": \"" + c.address + "\" is not an IP address");
    int max = c.v6 ? 128 : 32;
    if (len.empty() || len.size() > 3 || !std::all_of(len.begin(), len.end(), ::isdigit) || std::stoi(len) > max)
        bad(field, "\"" + text + "\": prefix length must be 0.." + std::to_string(max));
    c.prefix = std::stoi(len);
    // Host bits must be zero: 10.88.1.0/16 is a typo more often than not.
    int nbytes = c.v6 ? 16 : 4;
    for (int bit = c.prefix; bit < nbytes * 8; ++bit)
        if (c.bytes[bit / 8] & (0x80 >> (bit % 8)))
            bad(field, "\"" + text + "\": host bits set (the network address of /" + len + " is expected)");
    if (c.prefix > max - 2) bad(field, "\"" + text + "\": too small for a gateway and a container");
    return c;
}

bool cidrs_overlap(const Cidr& a, const Cidr& b) {
    if (a.v6 != b.v6) return false;
    int p = std::min(a.prefix, b.prefix);
    for (int bit = 0; bit < p; ++bit) {
        unsigned m = 0x80u >> (bit % 8);
        if ((a.bytes[bit / 8] & m) != (b.bytes[bit / 8] & m)) return false;
    }
    return true;
}

void validate(const NetworkSpec& spec) {
    if (!valid_name(spec.name)) bad("name", "\"" + spec.name + "\": expected letters, digits, '-', '_' or '.', starting with a letter or digit");
    if (!spec.bridge.empty() && !valid_ifname(spec.bridge)) bad("bridge", "\"" + spec.bridge + "\": expected an interface name of at most 15 characters");
    Cidr c = parse_cidr(spec.subnet, "subnet");
    if (!spec.gateway.empty()) {
        unsigned char gw[16] = {};
        if (::inet_pton(c.v6 ? AF_INET6 : AF_INET, spec.gateway.c_str(), gw) != 1) bad("gateway", "\"" + spec.gateway + "\": not an address of the subnet's family");
        Cidr g = c;
        std::copy(gw, gw + 16, g.bytes);
        if (!cidrs_overlap(c, g)) bad("gateway", spec.gateway + " is outside " + spec.subnet);
    }
    if (spec.mtu < 0 || spec.mtu > 65535) bad("mtu", std::to_string(spec.mtu) + ": expected 0..65535");
    if (!spec.ipam_data_dir.empty() && spec.ipam_data_dir[0] != '/') bad("ipam data dir", "\"" + spec.ipam_data_dir + "\": expected an absolute path");
}

json make_conflist(const NetworkSpec& spec) {
    validate(spec);
    Cidr c = parse_cidr(spec.subnet, "subnet");
    std::string gateway = spec.gateway;
    if (gateway.empty()) {
        unsigned char gw[16];
        std::copy(c.bytes, c.bytes + 16, gw);
        gw[c.v6 ? 15 : 3] |= 1;
        gateway = address_text(c, gw);
    }
    json ipam = {{"type", "host-local"},
                 {"ranges", json::array({json::array({{{"subnet", spec.subnet}, {"gateway", gateway}}})})},
                 {"routes", json::array({{{"dst", c.v6 ? "::/0" : "0.0.0.0/0"}}})}};
    if (!spec.ipam_data_dir.empty()) ipam["dataDir"] = spec.ipam_data_dir;
    // Masquerading and forwarding are the network's host rules (host_rules.hpp),
    // made once, not the bridge's ipMasq and the firewall plugin's per-container
    // iptables runs.
    json bridge = {{"type", "bridge"}, {"bridge", spec.bridge}, {"isGateway", true},
                   {"ipMasq", false},  {"hairpinMode", true},   {"ipam", ipam}};
    if (spec.mtu > 0) bridge["mtu"] = spec.mtu;
    return {{"cniVersion", "1.0.0"},
            {"name", spec.name},
            {"vitro", {{"hostRules", true}, {"ipMasq", spec.ip_masq}}},
            {"plugins", json::array({bridge,
                                     {{"type", "portmap"}, {"capabilities", {{"portMappings", true}}}},
                                     {{"type", "tuning"}}})}};
}

std::string bridge_of(const NetworkConfigList& list) {
    for (const auto& p : list.plugins)
        if (p.value("type", "") == "bridge") return p.value("bridge", std::string("cni0"));
    return {};
}

std::vector<std::string> subnets_of(const NetworkConfigList& list) {
    std::vector<std::string> out;
    for (const auto& p : list.plugins) {
        auto ipam = p.find("ipam");
        if (ipam == p.end() || !ipam->is_object()) continue;
        if (auto s = ipam->find("subnet"); s != ipam->end() && s->is_string()) out.push_back(*s);
        if (auto r = ipam->find("ranges"); r != ipam->end() && r->is_array())
            for (const auto& set : *r)
                if (set.is_array())
                    for (const auto& range : set)
                        if (range.is_object() && range.contains("subnet") && range["subnet"].is_string())
                            out.push_back(range["subnet"]);
    }
    return out;
}

NetworkStore::NetworkStore(fs::path dir) : dir_(std::move(dir)) {}

fs::path NetworkStore::file_of(const std::string& name) const {
    if (!valid_name(name)) bad("name", "\"" + name + "\": invalid");
    return dir_ / (name + ".conflist");
}

bool NetworkStore::exists(const std::string& name) const { return path_exists(file_of(name).string()); }

std::vector<NetworkConfigList> NetworkStore::list() const {
    std::vector<NetworkConfigList> out;
    std::error_code ec;
    if (!fs::exists(dir_, ec)) return out;
    for (const auto& e : fs::directory_iterator(dir_)) {
        if (e.path().extension() != ".conflist" || !e.is_regular_file()) continue;
        out.push_back(load_conflist(e.path()));
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return out;
}

NetworkConfigList NetworkStore::inspect(const std::string& name) const {
    fs::path f = file_of(name);
    if (!path_exists(f.string())) throw Error(ENOENT, "network " + name + ": no such network (" + f.string() + ")");
    return load_conflist(f);
}

namespace {
// The first /24 of kSubnetPool that overlaps none of `used`.
std::string free_subnet(const std::vector<Cidr>& used) {
    Cidr pool = parse_cidr(kSubnetPool, "subnet");
    for (int i = 0; i < 256; ++i) {
        std::string text = std::to_string(pool.bytes[0]) + "." + std::to_string(pool.bytes[1]) + "." +
                           std::to_string(i) + ".0/24";
        Cidr c = parse_cidr(text, "subnet");
        if (std::none_of(used.begin(), used.end(), [&](const Cidr& u) { return cidrs_overlap(c, u); })) return text;
    }
    throw Error(ENOSPC, std::string("network subnet: no free /24 left in ") + kSubnetPool + "; give one with --subnet");
}

Cidr cidr_of(const IpPrefix& p) {
    Cidr c;
    c.v6 = p.address.v6;
    c.prefix = p.prefix;
    c.address = p.address.str();
    std::copy(p.address.bytes.begin(), p.address.bytes.end(), c.bytes);
    return c;
}

// A route of this network namespace's main table, as podman reads them.
struct HostRoute {
    Cidr dst;
    std::string dev;   // its device ("" when it has none)
    std::string text;  // "10.191.0.0/24 dev cni-podman1"
};

// The main table's IPv4 and IPv6 routes, but for the default routes (every
// subnet is "behind" those). A kernel without IPv6 has IPv4's only.
std::vector<HostRoute> host_routes() {
    std::vector<HostRoute> out;
    os::Rtnl nl;
    for (int family : {AF_INET, AF_INET6}) {
        std::vector<os::Route> routes;
        try {
            routes = os::main_routes(nl, family);
        } catch (const Error& e) {
            if (family == AF_INET6 && (e.code() == EAFNOSUPPORT || e.code() == EOPNOTSUPP)) continue;
            throw e.wrap("read the host's routes");
        }
        for (const auto& r : routes) {
            if (r.dst.prefix == 0) continue;
            HostRoute h{cidr_of(r.dst), {}, r.dst.str()};
            if (r.oif > 0)
                if (auto link = os::find_link(nl, r.oif)) h.dev = link->name;
            if (!h.dev.empty()) h.text += " dev " + h.dev;
            out.push_back(std::move(h));
        }
    }
    return out;
}
}  // namespace

UniqueFd NetworkStore::lock(bool shared) const {
    make_dirs(dir_.string(), 0755);
    return lock_file((dir_ / "networks.lock").string(), shared);
}

NetworkConfigList NetworkStore::create(const NetworkSpec& spec) { return create(spec, false); }

NetworkConfigList NetworkStore::create(const NetworkSpec& spec_in, bool pool_when_routed) {
    NetworkSpec spec = spec_in;
    if (spec.subnet.empty() && !spec.gateway.empty()) bad("gateway", spec.gateway + ": needs a subnet");
    NetworkSpec checked = spec;  // a subnet still to pick is checked as the pool it comes from
    if (checked.subnet.empty()) checked.subnet = kSubnetPool;
    validate(checked);
    // From the check of what others use to the new file: one create at a time.
    UniqueFd held = lock();
    std::vector<Cidr> used;
    std::vector<std::string> used_text;  // used[i] as an error names it
    std::set<std::string> bridges;
    for (const auto& other : list()) {
        if (other.name == spec.name) throw Error(EEXIST, "network " + spec.name + ": already exists (" + other.source + ")");
        bridges.insert(bridge_of(other));
        for (const auto& s : subnets_of(other)) {
            try {
                used.push_back(parse_cidr(s, "subnet"));
                used_text.push_back(s + " of network " + other.name);
            } catch (const Error&) {
                // not ours to judge
            }
        }
    }
    if (spec.bridge.empty()) {
        for (int i = 1; spec.bridge.empty(); ++i)
            if (!bridges.count("vitro" + std::to_string(i))) spec.bridge = "vitro" + std::to_string(i);
    } else if (bridges.count(spec.bridge)) {
        throw Error(EEXIST, "network " + spec.name + ": bridge " + spec.bridge + " is used by another network");
    }
    // The host's routes, but those through the network's own bridge (made by
    // an earlier container of this network, or of this network in another
    // config dir of the same namespace).
    std::vector<HostRoute> routes = host_routes();
    std::erase_if(routes, [&](const HostRoute& r) { return r.dev == spec.bridge; });
    std::vector<Cidr> taken = used;
    for (const auto& r : routes) taken.push_back(r.dst);
    if (spec.subnet.empty()) spec.subnet = free_subnet(taken);
    Cidr mine = parse_cidr(spec.subnet, "subnet");
    for (size_t i = 0; i < used.size(); ++i)
        if (cidrs_overlap(mine, used[i]))
            throw Error(EEXIST, "network " + spec.name + ": subnet " + spec.subnet + " overlaps " + used_text[i]);
    for (const auto& r : routes) {
        if (!cidrs_overlap(mine, r.dst)) continue;
        if (!pool_when_routed)
            throw Error(EEXIST, "network " + spec.name + ": subnet " + spec.subnet +
                                    " is already used on the host or by another config (route " + r.text + ")");
        std::string instead = free_subnet(taken);
        log::warn("network " + spec.name + ": subnet " + spec.subnet + " is already used on the host (route " + r.text +
                  "): it gets " + instead + " instead");
        spec.subnet = instead;
        break;
    }
    json doc = make_conflist(spec);
    std::string text = doc.dump(2) + "\n";
    fs::path f = file_of(spec.name);
    // Write a temporary file, then link it in: the name appears complete, or not at all.
    fs::path tmp = dir_ / ("." + spec.name + ".tmp" + std::to_string(::getpid()));
    write_file_atomic(tmp.string(), text, 0644);
    int rc = ::link(tmp.c_str(), f.c_str());
    int err = errno;
    ::unlink(tmp.c_str());
    if (rc < 0) {
        if (err == EEXIST) throw Error(EEXIST, "network " + spec.name + ": already exists (" + f.string() + ")");
        throw_errno(err, "create", f.string());
    }
    return parse_conflist(text, f.string());
}

void NetworkStore::remove(const std::string& name) {
    fs::path f = file_of(name);
    if (::unlink(f.c_str()) < 0) {
        if (errno == ENOENT) throw Error(ENOENT, "network " + name + ": no such network (" + f.string() + ")");
        throw_errno("remove network file", f.string());
    }
}

NetworkConfigList NetworkStore::ensure_default(const std::string& subnet, const std::string& ipam_data_dir) {
    if (exists(kDefaultNetwork)) return inspect(kDefaultNetwork);
    try {
        return create({.name = kDefaultNetwork, .bridge = kDefaultBridge, .subnet = subnet, .ipam_data_dir = ipam_data_dir},
                      true);
    } catch (const Error& e) {
        if (e.code() == EEXIST && exists(kDefaultNetwork)) return inspect(kDefaultNetwork);  // a concurrent create won
        throw;
    }
}

void remove_network(NetworkStore& store, const std::string& name, const std::vector<std::string>& rules_dirs) {
    NetworkConfigList list = store.inspect(name);
    if (auto rules = host_rules_of(list)) {
        for (size_t i = 0; i < rules_dirs.size(); ++i) {
            if (i == 0) remove_host_rules(*rules, rules_dirs[i]);
            else forget_host_rules(name, rules_dirs[i]);
        }
    }
    // The bridge goes when it is this network's: a bridge with an address in
    // its subnets (a bridge of the same name that another config dir's
    // network uses in this namespace has that network's address, and stays).
    if (std::string bridge = bridge_of(list); !bridge.empty()) try {
        std::vector<Cidr> subnets;
        for (const auto& s : subnets_of(list)) try {
            subnets.push_back(parse_cidr(s, "subnet"));
        } catch (const Error&) {
            // A subnet the config cannot name is not this network's address
        }
        os::Rtnl nl;
        auto link = os::find_link(nl, bridge);
        bool ours = false;
        if (link && link->kind == "bridge")
            for (const auto& subnet : subnets)
                for (const auto& a : os::link_addresses(nl, link->index, subnet.v6 ? AF_INET6 : AF_INET))
                    ours = ours || cidrs_overlap(subnet, cidr_of(a));
        if (ours) os::delete_link(nl, link->index, bridge);
    } catch (const Error& e) {
        throw e.wrap("network " + name + ": remove bridge " + bridge);
    }
    store.remove(name);
}

}  // namespace vitro::net
