// Which containers' networks moved since the last scrape, seen from the
// exporter's side of their veths: one RTM_GETSTATS dump of this namespace
// per scrape, instead of a /proc/<pid>/net/dev read (the kernel printing
// every device) per container. A veth's counters move whenever its peer's
// do (each end counts what the other sent), so a container whose every
// interface is the peer of a veth here, none of which moved, has the
// counters it had: the collector keeps them and reads the container's own
// file only when one moved.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "linux/rtnetlink.hpp"

namespace vitro::introspect {

class VethActivity {
public:
    // A NETLINK_ROUTE socket in this thread's network namespace; throws when
    // none can be made.
    VethActivity();

    // Reads every device's counters (one dump). A device that appeared or
    // went since the last call re-learns which veth peers which namespace
    // (one more dump), and counts as moved. Throws on a netlink failure.
    void sample();
    // Learn the veths again at the next sample() (after a discovery).
    void relearn() { relearn_ = true; }

    // The id this namespace gives the network namespace `netns_fd` refers to
    // (the one a veth's IFLA_LINK_NETNSID names); nullopt when it has none:
    // no veth of ours peers into it.
    std::optional<int> nsid_of(int netns_fd);
    // How many veths here have their peer in namespace `nsid`.
    std::size_t peers_in(int nsid) const;
    // Whether any of them moved (or appeared, or went) in the last sample().
    bool moved(int nsid) const { return moved_.count(nsid) != 0; }

private:
    void learn();

    os::Rtnl nl_;
    std::map<int, int> peer_ns_;            // veth ifindex -> its peer's namespace id
    std::map<int, std::size_t> peers_;      // namespace id -> veths peering into it
    struct Counters {
        std::string stats;     // rtnl_link_stats64 as last read
        uint64_t sampled = 0;  // the sample() that saw the device last
    };
    std::map<int, Counters> counters_;      // by ifindex
    uint64_t samples_ = 0;
    std::set<int> moved_;                   // namespace ids
    bool relearn_ = true;
};

}  // namespace vitro::introspect
