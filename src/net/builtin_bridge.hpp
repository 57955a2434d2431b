// The CNI `bridge` plugin with `host-local` IPAM, run in-process instead of
// as the containernetworking-plugins binaries (two Go programs exec'd on ADD
// and again on DEL, ~20 ms apiece here). It takes the same stdin config
// (plugin_stdin) and gives the same result, so the plugins chained after it
// (portmap, tuning, firewall: still programs) see the prevResult they would,
// and the binary can take over an attachment the built-in made, and back.
//
// ADD, as the binary does it: the bridge (made if missing: the conflist's
// mtu, up), a veth pair (the host end vethXXXXXXXX on the bridge, hairpin
// mode when asked, up; the peer made directly in the container's namespace
// under the requested name, up), an address from host-local, the address and
// routes in the container, and, with isGateway, the gateway address on the
// bridge and IP forwarding on. A failure removes the veth and releases the
// address. DEL removes the container's interface (taking the host end with
// it; when the namespace is gone, the host end named in the cached result)
// and releases the address; anything already gone is fine. CHECK looks for
// the bridge, both ends, the addresses and the routes.
#pragma once

#include <nlohmann/json.hpp>

#include "net/cni.hpp"

namespace vitro::net {

// Whether the built-in runs this plugin config exactly as the binaries would:
// type bridge with ipam type host-local, cniVersion 0.3.0 to 1.0.0, and only
// what the built-in does (not ipMasq, vlan, macspoofchk, enabledad, a MAC or
// IP asked for through args or runtimeConfig, host-local's resolvConf). Any
// other config runs the binary.
bool builtin_bridge_handles(const nlohmann::json& conf, const RuntimeConf& rt);

// The plugin's three commands; `conf` is the stdin config plugin_stdin makes.
// Errors are Error with one line saying what failed on which interface.
nlohmann::json builtin_bridge_add(const nlohmann::json& conf, const RuntimeConf& rt);
void builtin_bridge_del(const nlohmann::json& conf, const RuntimeConf& rt);
void builtin_bridge_check(const nlohmann::json& conf, const RuntimeConf& rt);

}  // namespace vitro::net
