#include "linux/netdev.hpp"

#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>

#include "util/error.hpp"

namespace vitro::os {

std::string LinkInfo::mac_text() const {
    std::string out;
    char byte[4];
    for (uint8_t b : mac) {
        std::snprintf(byte, sizeof byte, "%02x", b);
        if (!out.empty()) out += ':';
        out += byte;
    }
    return out;
}

bool LinkInfo::up() const { return flags & IFF_UP; }

namespace {

ifinfomsg netdev_ifinfo(int index, unsigned flags = 0, unsigned change = 0, unsigned char family = AF_UNSPEC) {
    ifinfomsg m{};
    m.ifi_family = family;
    m.ifi_index = index;
    m.ifi_flags = flags;
    m.ifi_change = change;
    return m;
}

LinkInfo netdev_parse_link(const nlmsghdr& h) {
    auto ifi = family_header<ifinfomsg>(h);
    NlAttrs a = NlAttrs::of(h, sizeof(ifinfomsg));
    LinkInfo l;
    l.index = ifi.ifi_index;
    l.flags = ifi.ifi_flags;
    l.name = std::string(a.str(IFLA_IFNAME));
    l.mtu = static_cast<int>(a.u32(IFLA_MTU).value_or(0));
    l.master = static_cast<int>(a.u32(IFLA_MASTER).value_or(0));
    l.link = static_cast<int>(a.u32(IFLA_LINK).value_or(0));
    auto mac = a.bytes(IFLA_ADDRESS);
    l.mac.assign(mac.begin(), mac.end());
    l.kind = std::string(a.nested(IFLA_LINKINFO).str(IFLA_INFO_KIND));
    return l;
}

std::optional<LinkInfo> netdev_get_link(Rtnl& nl, NlRequest& req, std::string_view what) {
    std::vector<char> reply;
    std::string detail;
    int rc = nl.get(req, reply, &detail);
    if (rc == -ENODEV) return std::nullopt;
    if (rc < 0) throw Error(-rc, describe_netlink_error(what, -rc, detail));
    return netdev_parse_link(*reinterpret_cast<const nlmsghdr*>(reply.data()));
}

// The device's name in messages: "link eth0", or "link #7" when the caller has none.
std::string netdev_label(std::string_view name, int index) {
    return name.empty() ? "link #" + std::to_string(index) : "link " + std::string(name);
}

}  // namespace

std::optional<LinkInfo> find_link(Rtnl& nl, std::string_view name) {
    NlRequest req(RTM_GETLINK, 0, netdev_ifinfo(0));
    req.put_string(IFLA_IFNAME, name);
    return netdev_get_link(nl, req, "look up " + netdev_label(name, 0));
}

std::optional<LinkInfo> find_link(Rtnl& nl, int index) {
    NlRequest req(RTM_GETLINK, 0, netdev_ifinfo(index));
    return netdev_get_link(nl, req, "look up " + netdev_label({}, index));
}

void create_bridge(Rtnl& nl, const std::string& name, int mtu, unsigned flags) {
    NlRequest req(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, netdev_ifinfo(0, flags, flags));
    req.put_string(IFLA_IFNAME, name);
    if (mtu > 0) req.put_u32(IFLA_MTU, static_cast<uint32_t>(mtu));
    size_t info = req.begin_nest(IFLA_LINKINFO);
    req.put_string(IFLA_INFO_KIND, "bridge");
    req.end_nest(info);
    nl.request(req, "create bridge " + name);
}

void create_veth(Rtnl& nl, const VethEnd& here, const VethEnd& peer, int peer_netns_fd) {
    auto end_attrs = [](NlRequest& req, const VethEnd& end) {
        req.put_string(IFLA_IFNAME, end.name);
        if (end.mtu > 0) req.put_u32(IFLA_MTU, static_cast<uint32_t>(end.mtu));
        if (end.master > 0) req.put_u32(IFLA_MASTER, static_cast<uint32_t>(end.master));
    };
    unsigned here_flags = here.up ? IFF_UP : 0;
    NlRequest req(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, netdev_ifinfo(0, here_flags, IFF_UP));
    end_attrs(req, here);
    size_t info = req.begin_nest(IFLA_LINKINFO);
    req.put_string(IFLA_INFO_KIND, "veth");
    size_t data = req.begin_nest(IFLA_INFO_DATA);
    size_t peer_at = req.begin_nest(VETH_INFO_PEER, false);  // read as an ifinfomsg, then attributes
    req.put_struct(netdev_ifinfo(0));  // no flags: veth_open() fails (ENOTCONN) until the pair is linked
    end_attrs(req, peer);
    if (peer_netns_fd >= 0) req.put_u32(IFLA_NET_NS_FD, static_cast<uint32_t>(peer_netns_fd));
    req.end_nest(peer_at);
    req.end_nest(data);
    req.end_nest(info);
    nl.request(req, "create veth pair " + here.name + " / " + peer.name);
}

void set_link_flags(Rtnl& nl, int index, unsigned flags, unsigned mask, std::string_view name) {
    NlRequest req(RTM_SETLINK, 0, netdev_ifinfo(index, flags & mask, mask));
    nl.request(req, "set flags of " + netdev_label(name, index));
}

void set_link_mac(Rtnl& nl, int index, const std::vector<uint8_t>& mac, std::string_view name) {
    NlRequest req(RTM_SETLINK, 0, netdev_ifinfo(index));
    req.put(IFLA_ADDRESS, mac.data(), mac.size());
    nl.request(req, "set the MAC address of " + netdev_label(name, index));
}

void set_bridge_port_hairpin(Rtnl& nl, int index, bool on, std::string_view name) {
    NlRequest req(RTM_SETLINK, 0, netdev_ifinfo(index, 0, 0, AF_BRIDGE));
    size_t protinfo = req.begin_nest(IFLA_PROTINFO);  // nested: the bridge reads IFLA_BRPORT_*
    req.put_u8(IFLA_BRPORT_MODE, on ? 1 : 0);
    req.end_nest(protinfo);
    nl.request(req, std::string("set hairpin mode ") + (on ? "on" : "off") + " on bridge port " + std::string(name));
}

void set_ipv4_devconf(Rtnl& nl, int index, int id, uint32_t value, std::string_view name) {
    NlRequest req(RTM_SETLINK, 0, netdev_ifinfo(index));
    size_t spec = req.begin_nest(IFLA_AF_SPEC);
    size_t inet = req.begin_nest(AF_INET);
    size_t conf = req.begin_nest(IFLA_INET_CONF);
    req.put_u32(static_cast<uint16_t>(id), value);
    req.end_nest(conf);
    req.end_nest(inet);
    req.end_nest(spec);
    nl.request(req, "set IPv4 setting " + std::to_string(id) + " of " + netdev_label(name, index));
}

bool delete_link(Rtnl& nl, int index, std::string_view name) {
    NlRequest req(RTM_DELLINK, 0, netdev_ifinfo(index));
    std::string detail;
    int rc = nl.call(req, &detail);
    if (rc == -ENODEV) return false;
    if (rc < 0) throw Error(-rc, describe_netlink_error("delete " + netdev_label(name, index), -rc, detail));
    return true;
}

namespace {
ifaddrmsg netdev_ifaddr(int index, const IpPrefix& p, unsigned char flags = 0) {
    ifaddrmsg m{};
    m.ifa_family = static_cast<unsigned char>(p.address.family());
    m.ifa_prefixlen = static_cast<unsigned char>(p.prefix);
    m.ifa_flags = flags;
    m.ifa_scope = RT_SCOPE_UNIVERSE;
    m.ifa_index = static_cast<unsigned>(index);
    return m;
}
}  // namespace

std::vector<IpPrefix> link_addresses(Rtnl& nl, int index, int family) {
    ifaddrmsg m{};
    m.ifa_family = static_cast<unsigned char>(family);
    m.ifa_index = static_cast<unsigned>(index);
    NlRequest req(RTM_GETADDR, 0, m);
    std::vector<IpPrefix> out;
    nl.dump(req, "list the addresses of " + netdev_label({}, index), [&](const nlmsghdr& h) {
        if (h.nlmsg_type != RTM_NEWADDR) return;
        auto ifa = family_header<ifaddrmsg>(h);
        if (static_cast<int>(ifa.ifa_index) != index || ifa.ifa_family != family) return;
        NlAttrs a = NlAttrs::of(h, sizeof(ifaddrmsg));
        // IFA_LOCAL is the address of an IPv4 point-to-point link's own end; IFA_ADDRESS otherwise.
        auto bytes = a.bytes(a.has(IFA_LOCAL) ? IFA_LOCAL : IFA_ADDRESS);
        if (bytes.size() != (family == AF_INET6 ? 16u : 4u)) return;
        out.push_back({IpAddress::from_bytes(family, bytes.data()), ifa.ifa_prefixlen});
    });
    return out;
}

void add_address(Rtnl& nl, int index, const IpPrefix& p, bool nodad, std::string_view name) {
    NlRequest req(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL,
                  netdev_ifaddr(index, p, nodad && p.address.v6 ? IFA_F_NODAD : 0));
    req.put(IFA_LOCAL, p.address.bytes.data(), p.address.size());
    req.put(IFA_ADDRESS, p.address.bytes.data(), p.address.size());
    if (!p.address.v6 && p.prefix < 31) {
        IpAddress brd = p.last();
        req.put(IFA_BROADCAST, brd.bytes.data(), brd.size());
    }
    nl.request(req, "add address " + p.str() + " to " + netdev_label(name, index));
}

void delete_address(Rtnl& nl, int index, const IpPrefix& p, std::string_view name) {
    NlRequest req(RTM_DELADDR, 0, netdev_ifaddr(index, p));
    req.put(IFA_LOCAL, p.address.bytes.data(), p.address.size());
    nl.request(req, "delete address " + p.str() + " from " + netdev_label(name, index));
}

void add_route(Rtnl& nl, const Route& r, std::string_view name) {
    rtmsg m{};
    m.rtm_family = static_cast<unsigned char>(r.dst.address.family());
    m.rtm_dst_len = static_cast<unsigned char>(r.dst.prefix);
    m.rtm_table = RT_TABLE_MAIN;
    m.rtm_protocol = RTPROT_BOOT;  // what `ip route add` uses
    m.rtm_scope = r.gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
    m.rtm_type = RTN_UNICAST;
    NlRequest req(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, m);
    IpAddress dst = r.dst.network();
    req.put(RTA_DST, dst.bytes.data(), dst.size());
    if (r.gateway) req.put(RTA_GATEWAY, r.gateway->bytes.data(), r.gateway->size());
    if (r.oif > 0) req.put_u32(RTA_OIF, static_cast<uint32_t>(r.oif));
    nl.request(req, "add route " + r.dst.str() + (r.gateway ? " via " + r.gateway->str() : std::string()) + " dev " +
                        std::string(name));
}

std::vector<Route> main_routes(Rtnl& nl, int family) {
    rtmsg m{};
    m.rtm_family = static_cast<unsigned char>(family);
    NlRequest req(RTM_GETROUTE, 0, m);
    std::vector<Route> out;
    nl.dump(req, "list routes", [&](const nlmsghdr& h) {
        if (h.nlmsg_type != RTM_NEWROUTE) return;
        auto rt = family_header<rtmsg>(h);
        NlAttrs a = NlAttrs::of(h, sizeof(rtmsg));
        if (a.u32(RTA_TABLE).value_or(rt.rtm_table) != RT_TABLE_MAIN || rt.rtm_family != family) return;
        Route r;
        r.dst.address.v6 = family == AF_INET6;
        r.dst.prefix = rt.rtm_dst_len;
        if (auto d = a.bytes(RTA_DST); d.size() == r.dst.address.size()) r.dst.address = IpAddress::from_bytes(family, d.data());
        if (auto g = a.bytes(RTA_GATEWAY); g.size() == r.dst.address.size()) r.gateway = IpAddress::from_bytes(family, g.data());
        r.oif = static_cast<int>(a.u32(RTA_OIF).value_or(0));
        out.push_back(r);
    });
    return out;
}

}  // namespace vitro::os
