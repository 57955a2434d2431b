#include "engine/container_network.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>

#include "engine/state_store.hpp"
#include "net/cni.hpp"
#include "net/host_rules.hpp"
#include "net/netns.hpp"
#include "net/networks.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/ip_address.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace vitro::engine {

namespace fs = std::filesystem;
using nlohmann::json;

PortMapping parse_port_mapping(const std::string& value) {
    auto bad = [&](const std::string& why) {
        return Error(EINVAL, "invalid port mapping \"" + value + "\": " + why);
    };
    PortMapping p;
    std::string spec = value;
    if (auto slash = spec.rfind('/'); slash != std::string::npos) {
        p.protocol = spec.substr(slash + 1);
        spec.resize(slash);
        if (p.protocol != "tcp" && p.protocol != "udp" && p.protocol != "sctp")
            throw bad("protocol must be tcp, udp or sctp");
    }
    std::vector<std::string> parts = split(spec, ':');
    if (parts.size() == 3) {
        p.host_ip = parts[0];
        in_addr a{};
        if (!p.host_ip.empty() && ::inet_pton(AF_INET, p.host_ip.c_str(), &a) != 1)
            throw bad("host address \"" + p.host_ip + "\" is not an IPv4 address");
        parts.erase(parts.begin());
    }
    if (parts.size() != 2) throw bad("expected [HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTOCOL]");
    auto port = [&](const std::string& s, const char* which) {
        uint64_t v = 0;
        if (!parse_u64(s, v) || v == 0 || v > 65535) throw bad(std::string(which) + " port \"" + s + "\" is not in 1-65535");
        return static_cast<uint16_t>(v);
    };
    p.host_port = port(parts[0], "host");
    p.container_port = port(parts[1], "container");
    return p;
}

json to_json(const PortMapping& p) {
    return {{"hostIP", p.host_ip}, {"hostPort", p.host_port}, {"containerPort", p.container_port},
            {"protocol", p.protocol}};
}

static PortMapping port_from_json(const json& j) {
    PortMapping p;
    p.host_ip = j.value("hostIP", "");
    p.host_port = j.value("hostPort", uint16_t{0});
    p.container_port = j.value("containerPort", uint16_t{0});
    p.protocol = j.value("protocol", "tcp");
    return p;
}

std::string normalize_network_mode(const std::string& value) {
    if (value.empty() || value == "bridge" || value == "default") return net::kDefaultNetwork;
    return value;
}
bool is_joined_mode(const std::string& mode) { return mode.rfind("container:", 0) == 0; }
bool is_cni_mode(const std::string& mode) { return mode != "none" && mode != "host" && !is_joined_mode(mode); }
std::string cni_network_of(const std::string& mode) { return mode == "none" ? "" : mode; }

std::vector<PortMapping> ports_of(const json& config) {
    std::vector<PortMapping> out;
    for (const auto& p : config.value("ports", json::array())) out.push_back(port_from_json(p));
    return out;
}

std::string netns_path(const NetworkPaths& paths, const std::string& id) { return paths.runroot + "/netns/" + id; }

namespace {
net::Cni make_cni(const NetworkPaths& paths) {
    net::CniOptions o;
    o.plugin_dirs = {paths.cni_path};
    o.cache_dir = paths.cni_cache;
    return net::Cni(o);
}

net::NetworkConfigList load_network(const NetworkPaths& paths, const std::string& network) {
    net::NetworkStore store(paths.net_dir);
    if (network == net::kDefaultNetwork) return store.ensure_default();
    if (!store.exists(network))
        throw Error(ENOENT, "network \"" + network + "\" not found (create it with `vitro network create " + network + "`)");
    return store.inspect(network);
}

net::RuntimeConf runtime_conf(const std::string& id, const std::string& netns, const std::vector<PortMapping>& ports) {
    net::RuntimeConf rt;
    rt.container_id = id;
    rt.netns = netns;
    rt.args = {{"IgnoreUnknown", "1"}, {"K8S_POD_NAME", id.substr(0, 12)}};
    if (!ports.empty()) {
        json pm = json::array();
        for (const auto& p : ports) pm.push_back(to_json(p));
        rt.capability_args["portMappings"] = pm;
    }
    return rt;
}

// Binds (without listening) the host side of a published port, so that the
// port is reported as taken now, not after the container has started.
UniqueFd hold_port(const PortMapping& p) {
    int type = p.protocol == "udp" ? SOCK_DGRAM : SOCK_STREAM;
    UniqueFd s(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
    if (!s) throw_errno("socket");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(p.host_port);
    if (!p.host_ip.empty()) ::inet_pton(AF_INET, p.host_ip.c_str(), &a.sin_addr);
    if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) {
        int err = errno;
        throw Error(err, "port " + std::to_string(p.host_port) + "/" + p.protocol + " is already in use on the host" +
                             (err == EADDRINUSE ? "" : std::string(": ") + std::strerror(err)));
    }
    return s;
}
}  // namespace

void check_network(const NetworkPaths& paths, const std::string& network) {
    if (network.empty() || network == net::kDefaultNetwork) return;
    (void)load_network(paths, network);
}

void check_ports_available(const std::vector<PortMapping>& ports) {
    std::vector<UniqueFd> held;
    for (size_t i = 0; i < ports.size(); ++i) {
        for (size_t j = 0; j < i; ++j)
            if (ports[j].host_port == ports[i].host_port && ports[j].protocol == ports[i].protocol &&
                (ports[j].host_ip.empty() || ports[i].host_ip.empty() || ports[j].host_ip == ports[i].host_ip))
                throw Error(EINVAL, "port " + std::to_string(ports[i].host_port) + "/" + ports[i].protocol +
                                        " is published twice");
        held.push_back(hold_port(ports[i]));
    }
}

NetworkAttachment attach_network(const NetworkPaths& paths, const std::string& id, const std::string& network,
                                 const std::vector<PortMapping>& ports) {
    NetworkAttachment att;
    for (const auto& p : ports) att.port_holds.push_back(hold_port(p));
    make_dirs(paths.runroot + "/netns", 0755);
    std::string path = netns_path(paths, id);
    if (fs::exists(path)) net::remove_netns(path);  // a leftover from a crashed run
    net::NetNs ns = net::NetNs::create(paths.runroot + "/netns", id);
    if (network.empty()) {  // no network: the namespace alone, lo up
        att.netns = ns.release().string();
        return att;
    }
    net::NetworkConfigList list = load_network(paths, network);
    if (auto rules = net::host_rules_of(list)) net::ensure_host_rules(*rules, net::host_rules_dir(paths.runroot));
    net::Cni cni = make_cni(paths);
    json result;
    try {
        result = cni.add(list, runtime_conf(id, ns.path(), ports));
    } catch (const Error& e) {
        throw e.wrap("network \"" + network + "\"");
    }
    bool v6 = false;
    for (const auto& ip : result.value("ips", json::array()))
        if (ip.contains("address")) {
            att.ips.push_back(ip["address"].get<std::string>());
            if (ip.contains("gateway")) att.gateways.push_back(ip["gateway"].get<std::string>());
            v6 = v6 || att.ips.back().find(':') != std::string::npos;
        }
    // An interface given no IPv6 address keeps none (Docker's fix for
    // CVE-2024-32473): else it takes a link-local one and the router
    // advertisements anyone on the bridge sends, so one container could
    // route its neighbours' IPv6; and it solicits routers on the bridge for
    // its first hour, moving every other container's counters each time.
    if (!v6)
        for (const auto& i : result.value("interfaces", json::array()))
            if (!i.value("sandbox", "").empty()) try {
                net::disable_ipv6(ns.path(), i.value("name", ""));
            } catch (const Error& e) {
                log::warn("container " + id + ": " + e.what());
            }
    att.netns = ns.release().string();
    return att;
}

void detach_network(const NetworkPaths& paths, const std::string& id, const std::string& network,
                    const std::vector<PortMapping>& ports) {
    std::string path = netns_path(paths, id);
    if (!network.empty()) try {
        net::NetworkConfigList list = load_network(paths, network);
        net::Cni cni = make_cni(paths);
        net::RuntimeConf rt = runtime_conf(id, fs::exists(path) ? path : "", ports);
        // Nothing was added (or it is already gone): nothing to delete.
        if (cni.cached_result(list.name, rt) || fs::exists(path)) cni.del(list, rt);
    } catch (const std::exception& e) {
        log::warn(std::string("container ") + id + ": network teardown: " + e.what());
    }
    try {
        net::remove_netns(path);
    } catch (const std::exception& e) {
        log::warn(std::string("container ") + id + ": " + e.what());
    }
}

namespace {
std::string roots_dir(const NetworkPaths& paths) { return paths.net_dir + "/roots"; }
// A root as other roots find it (given relative to this command's directory).
StateRoot own_root(const NetworkPaths& paths) {
    return {fs::absolute(paths.root).lexically_normal().string(), fs::absolute(paths.runroot).lexically_normal().string()};
}

// The record's file name: a hash of the root's path (FNV-1a, 64 bits).
std::string root_record(const NetworkPaths& paths, const std::string& root) {
    uint64_t h = 14695981039346656037ull;
    for (unsigned char ch : root) h = (h ^ ch) * 1099511628211ull;
    char name[17];
    std::snprintf(name, sizeof name, "%016llx", static_cast<unsigned long long>(h));
    return roots_dir(paths) + "/" + name;
}

// The networks container config `cfg` names ("" is the default network's old name).
std::vector<std::string> networks_of(const json& cfg) {
    std::vector<std::string> out;
    if (!cfg.is_object()) return out;
    if (auto it = cfg.find("network"); it != cfg.end() && it->is_string())
        out.push_back(it->get<std::string>().empty() ? net::kDefaultNetwork : it->get<std::string>());
    if (auto it = cfg.find("networks"); it != cfg.end() && it->is_array())
        for (const auto& n : *it)
            if (n.is_string()) out.push_back(n.get<std::string>());
    return out;
}
}  // namespace

void record_root(const NetworkPaths& paths) {
    const StateRoot self = own_root(paths);
    const std::string file = root_record(paths, self.root);
    const std::string text = json{{"root", self.root}, {"runroot", self.runroot}}.dump() + "\n";
    try {
        if (read_file(file) == text) return;
    } catch (const Error&) {
        // No record yet, or unreadable: it is (re)written below
    }
    make_dirs(roots_dir(paths), 0755);
    write_file_atomic(file, text, 0644);
}

std::vector<StateRoot> roots_sharing(const NetworkPaths& paths) {
    std::vector<StateRoot> out = {own_root(paths)};
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(roots_dir(paths), ec)) {
        if (!e.is_regular_file() || e.path().filename().string().find('.') != std::string::npos) continue;
        StateRoot r;
        try {
            json j = json::parse(read_file(e.path().string()));
            r = {j.at("root").get<std::string>(), j.at("runroot").get<std::string>()};
        } catch (const std::exception& ex) {
            log::warn("network roots: ignoring " + e.path().string() + ": " + ex.what());
            continue;
        }
        if (r.root == out[0].root) continue;
        if (!path_exists(r.root + "/vitro.db")) {  // that root is gone: so are its containers
            ::unlink(e.path().c_str());
            continue;
        }
        out.push_back(std::move(r));
    }
    return out;
}

std::map<std::string, std::vector<std::string>> network_users(const std::vector<StateRoot>& roots) {
    std::map<std::string, std::vector<std::string>> out;
    for (size_t i = 0; i < roots.size(); ++i) {
        const std::string db = roots[i].root + "/vitro.db";
        if (!path_exists(db)) continue;  // no engine state yet: no containers
        const std::string where = i == 0 ? "" : " (root " + roots[i].root + ")";
        std::vector<ContainerRecord> containers;
        try {
            containers = StateStore(db).list_containers();
        } catch (const Error& e) {
            throw e.wrap("the containers of state root " + roots[i].root + " (it shares the network config dir)");
        }
        for (const auto& c : containers)
            for (const auto& n : networks_of(c.config))
                out[n].push_back((c.name.empty() ? c.id.substr(0, 12) : c.name) + where);
    }
    return out;
}

std::pair<std::string, std::string> parse_add_host(const std::string& value) {
    auto bad = [&](const std::string& why) { return Error(EINVAL, "invalid --add-host \"" + value + "\": " + why); };
    auto colon = value.find(':');
    if (colon == std::string::npos) throw bad("expected HOST:IP");
    std::string host = value.substr(0, colon), ip = value.substr(colon + 1);
    if (host.empty()) throw bad("no host name");
    for (char ch : host)
        if (std::isspace(static_cast<unsigned char>(ch)) || ch == '#' || !std::isprint(static_cast<unsigned char>(ch)))
            throw bad("the host name \"" + host + "\" has a character a hosts file cannot hold");
    if (ip.size() > 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
    if (!IpAddress::parse(ip)) throw bad("\"" + ip + "\" is not an IPv4 or IPv6 address");
    return {host, ip};
}

void check_dns_server(const std::string& value) {
    if (value != "none" && !IpAddress::parse(value))
        throw Error(EINVAL, "invalid --dns \"" + value + "\": not an IPv4 or IPv6 address (or none)");
}

json to_json(const EtcOptions& o) {
    return {{"add_hosts", o.add_hosts}, {"dns", o.dns_servers}, {"dns_search", o.dns_search},
            {"dns_options", o.dns_options}};
}

EtcOptions etc_options_of(const json& config) {
    EtcOptions o;
    const json etc = config.value("etc", json::object());
    o.add_hosts = etc.value("add_hosts", std::vector<std::string>{});
    o.dns_servers = etc.value("dns", std::vector<std::string>{});
    o.dns_search = etc.value("dns_search", std::vector<std::string>{});
    o.dns_options = etc.value("dns_options", std::vector<std::string>{});
    return o;
}

namespace {
// The host's resolv.conf for a container: loopback nameservers dropped
// (unreachable from another network namespace), public resolvers when none
// is left, as podman does; then the lines --dns, --dns-search and
// --dns-option replace (--dns-search . : no search line).
std::string resolv_conf_for_container(bool host_network, const EtcOptions& o) {
    std::string host;
    try {
        host = read_file("/etc/resolv.conf");
    } catch (const Error&) {
        // No host resolv.conf: the public resolvers below are used instead
    }
    const bool own_ns = !o.dns_servers.empty(), own_search = !o.dns_search.empty(),
               own_options = !o.dns_options.empty();
    std::ostringstream out;
    bool have_ns = false;
    std::istringstream in(host);
    for (std::string line; std::getline(in, line);) {
        std::string t = trim(line);
        auto is = [&](const char* key) {
            size_t n = std::strlen(key);
            return t.compare(0, n, key) == 0 && (t.size() == n || std::isspace(static_cast<unsigned char>(t[n])));
        };
        if (is("nameserver")) {
            if (own_ns) continue;
            std::string addr = trim(t.substr(10));
            if (!host_network && (addr.rfind("127.", 0) == 0 || addr == "::1")) continue;
            have_ns = true;
        }
        if ((own_search && (is("search") || is("domain"))) || (own_options && is("options"))) continue;
        out << line << "\n";
    }
    if (own_ns)
        for (const auto& s : o.dns_servers) out << "nameserver " << s << "\n";
    else if (!have_ns && !host_network)
        out << "nameserver 8.8.8.8\nnameserver 8.8.4.4\n";
    std::vector<std::string> search;
    for (const auto& d : o.dns_search)
        if (d != ".") search.push_back(d);
    if (!search.empty()) out << "search " << join(search, " ") << "\n";
    if (own_options) out << "options " << join(o.dns_options, " ") << "\n";
    return out.str();
}
}  // namespace

void write_etc_files(const std::string& dir, const EtcFiles& f) {
    std::ostringstream hosts;
    bool internal_given = false;
    for (const auto& h : f.options.add_hosts) {
        auto [name, ip] = parse_add_host(h);
        hosts << ip << "\t" << name << "\n";
        internal_given = internal_given || name == "host.containers.internal";
    }
    if (f.host_network) {
        hosts << read_file("/etc/hosts");
    } else {
        hosts << "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
        std::string names = f.hostname;
        if (!f.name.empty() && f.name != f.hostname) names += " " + f.name;
        for (const auto& ip : f.ips) hosts << ip.substr(0, ip.find('/')) << "\t" << names << "\n";
        if (f.ips.empty()) hosts << "127.0.1.1\t" << names << "\n";
        if (!f.host_gateway.empty() && !internal_given)
            hosts << f.host_gateway << "\thost.containers.internal\n";
    }
    write_file_atomic(dir + "/hosts", hosts.str(), 0644);
    if (!keeps_image_resolv_conf(f.options))
        write_file_atomic(dir + "/resolv.conf", resolv_conf_for_container(f.host_network, f.options), 0644);
    write_file_atomic(dir + "/hostname", f.hostname + "\n", 0644);
}

}  // namespace vitro::engine
