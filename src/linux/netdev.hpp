// Network devices, their addresses and routes over rtnetlink (rtnetlink.hpp):
// what `ip link`, `ip addr` and `ip route` do, for the calls vitro makes. Each
// call acts in the namespace of the Rtnl socket it is given. Failures throw
// Error with the kernel's errno and a message naming the device.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "linux/rtnetlink.hpp"
#include "util/ip_address.hpp"

namespace vitro::os {

struct LinkInfo {
    int index = 0;
    std::string name;
    std::string kind;  // IFLA_INFO_KIND: "bridge", "veth", ... ("" for none, e.g. lo)
    unsigned flags = 0;  // IFF_*
    int mtu = 0;
    int master = 0;  // the bridge it is a port of (ifindex); 0: none
    int link = 0;    // IFLA_LINK: for a veth, its peer's ifindex (in the peer's namespace)
    std::vector<uint8_t> mac;

    std::string mac_text() const;  // "aa:bb:cc:dd:ee:ff"
    bool up() const;
};

// The device named `name` / with index `index`; nullopt when there is none.
std::optional<LinkInfo> find_link(Rtnl& nl, std::string_view name);
std::optional<LinkInfo> find_link(Rtnl& nl, int index);

// Creates a bridge with `flags` (IFF_UP, IFF_PROMISC) set; mtu 0: the kernel's.
// A name already taken is Error(EEXIST).
void create_bridge(Rtnl& nl, const std::string& name, int mtu, unsigned flags);

// One end of a veth pair being created.
struct VethEnd {
    std::string name;
    int mtu = 0;     // 0: the kernel's
    bool up = false;  // only `here`: the kernel cannot bring a veth end up before its pair exists
    int master = 0;   // a bridge (ifindex, in the creating socket's namespace) to attach it to
};
// Creates `here` in the socket's namespace and its peer in the namespace
// `peer_netns_fd` refers to, in one request: nothing is left of the pair when
// it fails. Either name taken is Error(EEXIST).
void create_veth(Rtnl& nl, const VethEnd& here, const VethEnd& peer, int peer_netns_fd);

// Sets the IFF_* bits of `mask` to their value in `flags`.
void set_link_flags(Rtnl& nl, int index, unsigned flags, unsigned mask, std::string_view name);
void set_link_mac(Rtnl& nl, int index, const std::vector<uint8_t>& mac, std::string_view name);
// Hairpin mode of a bridge port (frames may leave by the port they came in on).
void set_bridge_port_hairpin(Rtnl& nl, int index, bool on, std::string_view name);
// An IPv4 per-device setting (net.ipv4.conf.DEV.*): `id` is an IPV4_DEVCONF_* of <linux/ip.h>.
void set_ipv4_devconf(Rtnl& nl, int index, int id, uint32_t value, std::string_view name);
// Deletes a device (a veth takes its peer with it); false when it was already gone.
bool delete_link(Rtnl& nl, int index, std::string_view name);

// The addresses of one family on a device.
std::vector<IpPrefix> link_addresses(Rtnl& nl, int index, int family);
// Adds ADDRESS/PREFIX (IPv4: with the subnet's broadcast, as `ip addr add ... brd +`);
// nodad: an IPv6 address usable at once, without duplicate address detection.
void add_address(Rtnl& nl, int index, const IpPrefix& address, bool nodad, std::string_view name);
void delete_address(Rtnl& nl, int index, const IpPrefix& address, std::string_view name);

struct Route {
    IpPrefix dst;
    std::optional<IpAddress> gateway;
    int oif = 0;  // the output device (ifindex)
};
// Adds a route to the main table (scope link when it has no gateway).
void add_route(Rtnl& nl, const Route& route, std::string_view name);
// The main table's routes of one family.
std::vector<Route> main_routes(Rtnl& nl, int family);

}  // namespace vitro::os
