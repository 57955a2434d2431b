// host-local IPAM, in-process: the configuration and the state on disk of the
// containernetworking-plugins `host-local` binary, so that the two can take
// turns on one network. The state: <dataDir>/<network>/ (dataDir default
// /var/lib/cni/networks), one file per allocated address, named by it and
// holding "<container id>\r\n<ifname>"; last_reserved_ip.<range set index>
// (allocation goes round-robin from the address after it); and `lock`,
// flock()ed around every change.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/ip_address.hpp"

namespace vitro::net {

// One range of a range set: addresses start..end (inclusive) of `subnet`,
// `gateway` never handed out.
struct IpamRange {
    IpPrefix subnet;  // as configured: its address may have host bits set
    IpAddress start, end, gateway;

    bool contains(const IpAddress& a) const;
    std::string str() const { return start.str() + "-" + end.str(); }
};
// A range set yields one address per attachment; a second set, a second address
// (e.g. one IPv4, one IPv6).
using IpamRangeSet = std::vector<IpamRange>;

struct IpamRoute {
    IpPrefix dst;
    std::optional<IpAddress> gw;
};

struct HostLocalConfig {
    std::string network;        // the conflist's name
    std::filesystem::path dir;  // <dataDir>/<network>
    std::vector<IpamRangeSet> range_sets;
    std::vector<IpamRoute> routes;  // handed back in the result as configured
};

// Whether `ipam` uses only what this implementation does (else the binary runs):
// type host-local; subnet, rangeStart, rangeEnd, gateway, ranges, routes, dataDir.
bool host_local_supported(const nlohmann::json& ipam);

// From a plugin's stdin config (its name and its ipam object). Errors say what
// the binary says ("invalid range set 0: 10.1.0.0/31 too small to allocate from").
HostLocalConfig parse_host_local(const nlohmann::json& conf);

// An allocated address with its subnet's prefix length, and its range's gateway.
struct IpamLease {
    IpPrefix address;
    IpAddress gateway;
};

// One address from each range set for (container_id, ifname), under the lock.
// Refuses a second allocation for the same pair in a range set, as the binary
// does; when a later range set fails, the addresses already taken are released.
std::vector<IpamLease> host_local_allocate(const HostLocalConfig& cfg, const std::string& container_id,
                                           const std::string& ifname);
// Releases every address recorded for (container_id, ifname) (or, as the
// binary does for files of its older versions, for container_id alone).
// Nothing recorded is not an error.
void host_local_release(const HostLocalConfig& cfg, const std::string& container_id, const std::string& ifname);
// Whether an address is recorded for (container_id, ifname): CHECK.
bool host_local_holds(const HostLocalConfig& cfg, const std::string& container_id, const std::string& ifname);

}  // namespace vitro::net
