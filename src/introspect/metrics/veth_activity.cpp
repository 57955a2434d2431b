#include "introspect/metrics/veth_activity.hpp"

#include <linux/if_link.h>
#include <linux/net_namespace.h>
#include <sys/socket.h>

#include <cstring>

namespace vitro::introspect {

namespace {

// The payload of attribute `type` among a message's attributes after a
// family header of `header_size` bytes; empty when absent. A walk, not
// NlAttrs: this runs for every device at every scrape.
std::string_view attr(const nlmsghdr& m, size_t header_size, uint16_t type) {
    size_t start = NLMSG_LENGTH(NLMSG_ALIGN(header_size));
    if (m.nlmsg_len < start) return {};
    auto* a = reinterpret_cast<const rtattr*>(reinterpret_cast<const char*>(&m) + start);
    auto left = static_cast<unsigned>(m.nlmsg_len - start);
    for (; RTA_OK(a, left); a = RTA_NEXT(a, left))
        if ((a->rta_type & NLA_TYPE_MASK) == type) return {static_cast<const char*>(RTA_DATA(a)), RTA_PAYLOAD(a)};
    return {};
}

}  // namespace

VethActivity::VethActivity() : nl_(-1) {}

std::optional<int> VethActivity::nsid_of(int netns_fd) {
    rtgenmsg g{};
    g.rtgen_family = AF_UNSPEC;
    os::NlRequest req(RTM_GETNSID, 0, g);
    req.put_u32(NETNSA_FD, static_cast<uint32_t>(netns_fd));
    std::vector<char> reply;
    try {
        if (nl_.get(req, reply) < 0 || reply.empty()) return std::nullopt;
    } catch (const std::exception&) {
        return std::nullopt;  // the container's network is then read at every scrape
    }
    auto& m = *reinterpret_cast<const nlmsghdr*>(reply.data());
    auto id = attr(m, sizeof(rtgenmsg), NETNSA_NSID);
    int32_t nsid = -1;
    if (m.nlmsg_type != RTM_NEWNSID || id.size() < sizeof nsid) return std::nullopt;
    std::memcpy(&nsid, id.data(), sizeof nsid);
    if (nsid < 0) return std::nullopt;  // NETNSA_NSID_NOT_ASSIGNED
    return nsid;
}

std::size_t VethActivity::peers_in(int nsid) const {
    auto it = peers_.find(nsid);
    return it == peers_.end() ? 0 : it->second;
}

// Every veth of this namespace whose peer is in another one, and that
// one's id. The dump asks for veths only and without their counters.
void VethActivity::learn() {
    ifinfomsg h{};
    h.ifi_family = AF_UNSPEC;
    os::NlRequest req(RTM_GETLINK, 0, h);
    req.put_u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
    size_t info = req.begin_nest(IFLA_LINKINFO);
    req.put_string(IFLA_INFO_KIND, "veth");
    req.end_nest(info);
    std::map<int, int> now;
    nl_.dump(req, "RTM_GETLINK dump of the veths", [&](const nlmsghdr& m) {
        if (m.nlmsg_type != RTM_NEWLINK) return;
        auto ifi = os::family_header<ifinfomsg>(m);
        auto ns = attr(m, sizeof(ifinfomsg), IFLA_LINK_NETNSID);
        int32_t nsid = -1;
        if (ns.size() < sizeof nsid) return;  // its peer is here too
        std::memcpy(&nsid, ns.data(), sizeof nsid);
        if (nsid >= 0) now[ifi.ifi_index] = nsid;
    });
    // Peers that came or went, or moved to another namespace.
    for (auto& [index, nsid] : now)
        if (auto it = peer_ns_.find(index); it == peer_ns_.end() || it->second != nsid) moved_.insert(nsid);
    for (auto& [index, nsid] : peer_ns_)
        if (auto it = now.find(index); it == now.end() || it->second != nsid) moved_.insert(nsid);
    peer_ns_ = std::move(now);
    peers_.clear();
    for (auto& [index, nsid] : peer_ns_) ++peers_[nsid];
    relearn_ = false;
}

void VethActivity::sample() {
    moved_.clear();
    ++samples_;
    if_stats_msg h{};
    h.family = AF_UNSPEC;
    h.filter_mask = IFLA_STATS_FILTER_BIT(IFLA_STATS_LINK_64);
    os::NlRequest req(RTM_GETSTATS, 0, h);
    bool devices_changed = false;
    std::size_t seen = 0;
    nl_.dump(req, "RTM_GETSTATS dump", [&](const nlmsghdr& m) {
        if (m.nlmsg_type != RTM_NEWSTATS) return;
        auto index = static_cast<int>(os::family_header<if_stats_msg>(m).ifindex);
        auto stats = attr(m, sizeof(if_stats_msg), IFLA_STATS_LINK_64);
        ++seen;
        auto [it, added] = counters_.try_emplace(index);
        devices_changed |= added;
        it->second.sampled = samples_;
        if (it->second.stats == stats) return;
        it->second.stats.assign(stats);
        if (auto p = peer_ns_.find(index); p != peer_ns_.end()) moved_.insert(p->second);
    });
    // A device gone: its counters forgotten, the veths learnt again.
    if (seen != counters_.size()) {
        devices_changed = true;
        std::erase_if(counters_, [&](const auto& c) { return c.second.sampled != samples_; });
    }
    if (devices_changed || relearn_) learn();
}

}  // namespace vitro::introspect
