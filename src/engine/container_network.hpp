// A container's network: none (a fresh namespace with only lo, made by the
// runtime), host (the host's), or a CNI network (a pinned namespace under
// <runroot>/netns/<id>, the conflist chain run on it, published ports reserved
// on the host). Also the /etc/hosts, /etc/resolv.conf and /etc/hostname the
// container gets.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/fd.hpp"

namespace vitro::engine {

struct PortMapping {
    std::string host_ip;  // empty: every address
    uint16_t host_port = 0;
    uint16_t container_port = 0;
    std::string protocol = "tcp";
};
// "8080:80", "127.0.0.1:8080:80", "8080:80/udp". Throws Error naming the value.
PortMapping parse_port_mapping(const std::string& value);
nlohmann::json to_json(const PortMapping& p);

struct NetworkPaths {
    std::string runroot;   // netns pins under <runroot>/netns
    std::string net_dir;   // conflists
    std::string cni_path;  // plugin binaries
    std::string cni_cache; // cached ADD results
    std::string root;      // the state root (its vitro.db): recorded in <net_dir>/roots
};

// The network mode of a `--network` value: "none", "host", or a CNI network
// name ("bridge" and "" mean the default network "vitro").
std::string normalize_network_mode(const std::string& value);
// False for "none", "host" and "container:<id>" (a pod member in its infra's namespace).
bool is_cni_mode(const std::string& mode);
// "container:<id>": the network namespace of container <id> (a pod's infra).
bool is_joined_mode(const std::string& mode);
// The CNI network a mode attaches to: "" for "none" (a namespace, no network).
std::string cni_network_of(const std::string& mode);
// The published ports recorded in a container's config ("ports").
std::vector<PortMapping> ports_of(const nlohmann::json& config);

// The attachment made by attach_network: the IPs the container got and the
// host sockets that hold its published ports (kept open by the monitor, so
// nothing else can take a port while the container has it).
struct NetworkAttachment {
    std::string netns;               // path of the pinned namespace
    std::vector<std::string> ips;    // "10.88.0.5/16"
    std::vector<std::string> gateways;  // the networks' gateways: the host's address on them
    std::vector<UniqueFd> port_holds;
};

// Throws ENOENT naming `network` when no such CNI network is configured (the
// default network is always there: it is made on first use).
void check_network(const NetworkPaths& paths, const std::string& network);
// Throws naming the port when a published port is taken on the host or given
// twice; binds nothing lasting.
void check_ports_available(const std::vector<PortMapping>& ports);

// The pinned namespace path of container `id` (whether or not it exists).
std::string netns_path(const NetworkPaths& paths, const std::string& id);

// Reserves the ports, pins a namespace and runs the CNI chain (`network`
// empty: the namespace alone, only lo, up). On failure
// nothing is left (namespace, CNI state, reserved ports).
NetworkAttachment attach_network(const NetworkPaths& paths, const std::string& id, const std::string& network,
                                 const std::vector<PortMapping>& ports);
// Runs the chain's DEL and removes the namespace; idempotent, best effort
// (errors are logged, not thrown: a removal must always finish).
void detach_network(const NetworkPaths& paths, const std::string& id, const std::string& network,
                    const std::vector<PortMapping>& ports);

// State roots share a network config dir; the state root is each one's own.
// A root that creates a container on a network is recorded in
// <net_dir>/roots/ (one file per root: its root and runroot), so that a
// network's removal from any root (network rm, system prune) sees every
// root's containers and every runroot's host-rule markers.
struct StateRoot {
    std::string root, runroot;
};
// Records `paths`' root (once). Under the network store's lock (shared is enough).
void record_root(const NetworkPaths& paths);
// Every recorded root whose state database is still there, `paths`' own
// first (recorded or not); a record whose database is gone is dropped.
// Under the network store's exclusive lock.
std::vector<StateRoot> roots_sharing(const NetworkPaths& paths);
// Network name -> the containers of `roots` that use it: "NAME" for the
// first root's, "NAME (root ROOT)" for another's. A root whose database
// cannot be read is an Error naming it (nothing is known unused then).
std::map<std::string, std::vector<std::string>> network_users(const std::vector<StateRoot>& roots);

// --add-host HOST:IP (IPv4 or IPv6, "[::1]" too): {HOST, IP}. Throws Error naming the value.
std::pair<std::string, std::string> parse_add_host(const std::string& value);
// --dns IP: the address as written ("none" passes). Throws Error naming the value.
void check_dns_server(const std::string& value);

// What a container's /etc/hosts and /etc/resolv.conf hold beyond the defaults
// (run's --add-host, --dns, --dns-search, --dns-option), kept in its record.
struct EtcOptions {
    std::vector<std::string> add_hosts;  // "HOST:IP", checked (parse_add_host)
    std::vector<std::string> dns_servers, dns_search, dns_options;
};
nlohmann::json to_json(const EtcOptions& o);
EtcOptions etc_options_of(const nlohmann::json& config);
// --dns none: the image's own /etc/resolv.conf, not one of vitro's (podman's).
inline bool keeps_image_resolv_conf(const EtcOptions& o) {
    return o.dns_servers.size() == 1 && o.dns_servers[0] == "none";
}

struct EtcFiles {
    std::string hostname, name;   // the container's host name and its name
    std::vector<std::string> ips; // its addresses, "10.88.0.5/16"
    std::string host_gateway;     // host.containers.internal: the host on the network ("": none)
    bool host_network = false;    // the host's /etc/hosts and resolv.conf, then the options
    EtcOptions options;
};
// Writes <dir>/hosts, <dir>/resolv.conf and <dir>/hostname for the container,
// as podman writes them: --add-host entries first (the first match wins),
// localhost, the container's addresses with its host name and name,
// host.containers.internal; the host's resolv.conf (loopback servers
// dropped) with --dns, --dns-search, --dns-option replacing their lines.
void write_etc_files(const std::string& dir, const EtcFiles& f);

}  // namespace vitro::engine
