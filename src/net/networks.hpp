// Networks as standard CNI conflist files under a config directory
// (default /etc/vitro/net.d): bridge + host-local IPAM + portmap + tuning, one
// file "<name>.conflist" per network, with masquerading and forwarding as
// per-network host rules (host_rules.hpp).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "net/cni.hpp"
#include "util/fd.hpp"

namespace vitro::net {

inline constexpr const char* kDefaultNetDir = "/etc/vitro/net.d";
inline constexpr const char* kDefaultNetwork = "vitro";
inline constexpr const char* kDefaultBridge = "vitro0";
// Neither podman's (10.88.0.0/16, its pool 10.89.0.0/16 and up), CRI-O's
// (10.85.0.0/16), docker's (172.17-31.0.0/16, 192.168.0.0/16) nor
// Kubernetes' usual ones (10.42-43/16, 10.96.0.0/12, 10.244.0.0/16).
inline constexpr const char* kDefaultSubnet = "10.86.0.0/16";
// Networks created without a subnet get the first free /24 of this pool (one
// that no other network and no route of the host has).
inline constexpr const char* kSubnetPool = "10.87.0.0/16";

struct NetworkSpec {
    std::string name;
    std::string bridge;                 // empty: "vitro" + a free number
    std::string subnet;                 // CIDR, e.g. "10.87.0.0/24"; IPv4 or IPv6 (create: empty = a free /24 of kSubnetPool)
    std::string gateway;                // empty: the subnet's first address
    bool ip_masq = true;
    int mtu = 0;                        // 0: the plugin's default
    std::string ipam_data_dir;          // empty: host-local's default (/var/lib/cni/networks)
};

// A parsed CIDR: the network address text and its prefix length.
struct Cidr {
    std::string address;  // as given, e.g. "10.86.0.0"
    int prefix = 0;
    bool v6 = false;
    unsigned char bytes[16] = {};
};
// Throws Error naming `field` when `text` is not "ADDR/PREFIX" with ADDR the network address.
Cidr parse_cidr(const std::string& text, const std::string& field);
bool cidrs_overlap(const Cidr& a, const Cidr& b);

// Checks the spec (name, bridge, subnet, gateway); throws an Error naming the field.
void validate(const NetworkSpec& spec);
// The conflist document for a spec (validated first; gateway filled in).
nlohmann::json make_conflist(const NetworkSpec& spec);

class NetworkStore {
public:
    explicit NetworkStore(std::filesystem::path dir = kDefaultNetDir);

    // Writes <dir>/<name>.conflist; throws if the name, bridge or an
    // overlapping subnet is already used by another network, or a route of
    // this network namespace (other than one through the network's own
    // bridge) covers part of the subnet: podman's "already used on the host".
    // An empty subnet or bridge is allocated (the first free /24 of
    // kSubnetPool, "vitroN"). Under lock(), as netavark locks its config dir,
    // so that parallel creates never pick the same subnet or bridge.
    NetworkConfigList create(const NetworkSpec& spec);
    // The flock on <dir>/networks.lock: exclusive for what changes the set of
    // networks (create, rm, prune), shared for a container's creation, which
    // checks that its network exists and records its state root (roots_dir)
    // in one step that a removal cannot split. Not to be taken twice.
    UniqueFd lock(bool shared = false) const;
    // Every network in the directory, sorted by name. A malformed file is an error
    // naming it.
    std::vector<NetworkConfigList> list() const;
    NetworkConfigList inspect(const std::string& name) const;
    bool exists(const std::string& name) const;
    void remove(const std::string& name);
    // The default network "vitro" (bridge vitro0, `subnet`), created if
    // missing; where a host route covers `subnet`, with the first free /24 of
    // kSubnetPool instead, and a warning naming both and the route.
    NetworkConfigList ensure_default(const std::string& subnet = kDefaultSubnet,
                                     const std::string& ipam_data_dir = {});

    std::filesystem::path file_of(const std::string& name) const;
    const std::filesystem::path& dir() const { return dir_; }

private:
    NetworkConfigList create(const NetworkSpec& spec, bool pool_when_routed);
    std::filesystem::path dir_;
};

// Removes network `name` of `store`: its host rules (and their markers: every
// one of `rules_dirs`, one per runroot), its bridge in this network namespace
// (when that is a bridge), then its file. Call it under store.lock().
void remove_network(NetworkStore& store, const std::string& name, const std::vector<std::string>& rules_dirs);

// The bridge and subnet a conflist made by make_conflist uses (empty when absent).
std::string bridge_of(const NetworkConfigList& list);
std::vector<std::string> subnets_of(const NetworkConfigList& list);

}  // namespace vitro::net
