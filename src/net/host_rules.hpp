// A network's host firewall rules, made once per network instead of once per
// container (as netavark does). The bridge plugin's ipMasq and the firewall
// plugin each run iptables about ten times on every container's ADD and again
// on its DEL; for a network whose conflist says
//   "vitro": {"hostRules": true, "ipMasq": true|false}
// vitro makes the same rules for the whole subnet instead, tagged with the
// comment "vitro network NAME":
//   nat    POSTROUTING  -s SUBNET ! -d SUBNET -j MASQUERADE    (ipMasq only)
//   filter FORWARD      -s SUBNET -j ACCEPT
//   filter FORWARD      -d SUBNET -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
// (iptables for IPv4 subnets, ip6tables for IPv6 ones). They stay while the
// network exists and go with `vitro network rm`.
//
// A marker file per network under a state directory in the runroot (a tmpfs,
// emptied at boot like the rules themselves) holds the network namespace and
// the rules' key: a container's attach costs a stat and a read, and iptables
// runs only when the rules are not known to be there.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "net/cni.hpp"

namespace vitro::net {

struct HostRules {
    std::string network;
    std::vector<std::string> subnets;
    bool masquerade = true;

    // One iptables/ip6tables argument list per rule, after "-t TABLE -X CHAIN"
    // (X = -C, -I or -D): {binary, table, chain, rule args...}.
    struct Rule {
        std::string binary, table, chain;
        std::vector<std::string> args;
    };
    std::vector<Rule> rules() const;
};

// Where the markers live: <runroot>/network-rules.
inline std::string host_rules_dir(const std::string& runroot) { return runroot + "/network-rules"; }

// What the conflist asks for (nullopt: no "vitro.hostRules", the plugins do it).
std::optional<HostRules> host_rules_of(const NetworkConfigList& list);

// Makes the rules unless the marker under `state_dir` says they are made in
// this network namespace. Concurrent callers serialize on a lock file.
// Throws an Error naming the network and the iptables command that failed;
// a rule made before the failure is removed again.
void ensure_host_rules(const HostRules& r, const std::string& state_dir);

// Removes the rules (each one that is there) and the marker. Never throws for
// a rule that is already gone.
void remove_host_rules(const HostRules& r, const std::string& state_dir);
// Removes only the marker of `network` under `state_dir` (another runroot's,
// when the rules went through remove_host_rules in this one).
void forget_host_rules(const std::string& network, const std::string& state_dir);

}  // namespace vitro::net
