#include "net/host_local_ipam.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <set>

#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace vitro::net {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kHostLocalDefaultDataDir = "/var/lib/cni/networks";
constexpr const char* kLastReservedPrefix = "last_reserved_ip.";

[[noreturn]] void ipam_bad(const std::string& msg) { throw Error(EINVAL, msg); }

std::string ipam_string(const json& obj, const char* key, const std::string& where) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return {};
    if (!it->is_string()) ipam_bad(where + "." + key + ": expected a string");
    return it->get<std::string>();
}

IpPrefix ipam_cidr(const std::string& text) {
    auto p = IpPrefix::parse(text);
    if (!p) ipam_bad("invalid CIDR address: " + text);
    return *p;
}

IpAddress ipam_ip(const std::string& text) {
    auto a = IpAddress::parse(text);
    if (!a) ipam_bad("invalid IP address: " + text);
    return *a;
}

// The last address of a subnet, less the broadcast address for IPv4.
IpAddress ipam_last_usable(const IpPrefix& subnet) {
    IpAddress end = subnet.last();
    if (!end.v6) --end.bytes[3];
    return end;
}

// A range from its JSON object, completed and checked as the binary does.
IpamRange ipam_range(const json& obj, const std::string& where) {
    if (!obj.is_object()) ipam_bad(where + ": expected an object");
    std::string subnet_text = ipam_string(obj, "subnet", where);
    if (subnet_text.empty()) ipam_bad(where + ".subnet: missing");
    IpamRange r;
    r.subnet = ipam_cidr(subnet_text);
    const std::string net = IpPrefix{r.subnet.network(), r.subnet.prefix}.str();
    if (r.subnet.prefix > r.subnet.address.bits() - 2) ipam_bad("Network " + net + " too small to allocate from");
    auto in_subnet = [&](const IpAddress& a) {
        if (a.v6 != r.subnet.address.v6) ipam_bad("IP " + a.str() + " is not the same protocol as subnet " + net);
        if (!r.subnet.contains(a)) ipam_bad(a.str() + " not in network " + net);
    };
    std::string gw = ipam_string(obj, "gateway", where);
    if (gw.empty()) {
        r.gateway = next_address(r.subnet.address);
    } else {
        r.gateway = ipam_ip(gw);
        if (!r.subnet.contains(r.gateway)) ipam_bad("gateway " + gw + " not in network " + net);
    }
    std::string start = ipam_string(obj, "rangeStart", where);
    r.start = start.empty() ? next_address(r.subnet.address) : ipam_ip(start);
    if (!start.empty()) in_subnet(r.start);
    std::string end = ipam_string(obj, "rangeEnd", where);
    if (end.empty()) {
        r.end = ipam_last_usable(r.subnet);
    } else {
        r.end = ipam_ip(end);
        in_subnet(r.end);
        if (r.end < r.start) ipam_bad(end + " is in network " + net + " but before start " + r.start.str());
    }
    return r;
}

bool ipam_overlap(const IpamRange& a, const IpamRange& b) {
    if (a.start.v6 != b.start.v6) return false;
    return a.contains(b.start) || a.contains(b.end) || b.contains(a.start) || b.contains(a.end);
}

bool ipam_set_contains(const IpamRangeSet& set, const IpAddress& a) {
    for (const auto& r : set)
        if (r.contains(a)) return true;
    return false;
}

std::string ipam_set_text(const IpamRangeSet& set) {
    std::vector<std::string> parts;
    for (const auto& r : set) parts.push_back(r.str());
    return join(parts, ",");
}

// What an address file holds.
std::string hostlocal_key(const std::string& id, const std::string& ifname) { return trim(id) + "\r\n" + ifname; }

// The store of one network: its directory, locked (flock on `lock`) for the
// life of this object, as the binary locks it.
class HostLocalStore {
public:
    explicit HostLocalStore(const fs::path& dir) : dir_(dir) {
        make_dirs(dir.string(), 0755);
        fs::path lock = dir / "lock";
        lock_ = UniqueFd(::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
        if (!lock_) throw_errno("open", lock.string());
        while (::flock(lock_.get(), LOCK_EX) < 0)
            if (errno != EINTR) throw_errno("flock", lock.string());
    }

    // Creates the file of `ip` for the container, unless it exists: false then.
    bool reserve(const IpAddress& ip, const std::string& key, size_t range_set) {
        fs::path f = dir_ / ip.str();
        UniqueFd fd(::open(f.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
        if (!fd) {
            if (errno == EEXIST) return false;
            throw_errno("create", f.string());
        }
        if (!try_write_all(fd.get(), key)) {
            int err = errno;
            ::unlink(f.c_str());
            throw_errno(err, "write", f.string());
        }
        fd.reset();
        fs::path last = dir_ / (kLastReservedPrefix + std::to_string(range_set));
        write_file_atomic(last.string(), ip.str(), 0644);
        return true;
    }

    std::optional<IpAddress> last_reserved(size_t range_set) const {
        fs::path last = dir_ / (kLastReservedPrefix + std::to_string(range_set));
        if (!path_exists(last.string())) return std::nullopt;
        return IpAddress::parse(trim(read_file(last.string())));
    }

    // The addresses recorded for (id, ifname): files holding "<id>\r\n<ifname>",
    // or, when there is none, "<id>" alone (what host-local before 0.7 wrote).
    std::vector<IpAddress> owned_by(const std::string& id, const std::string& ifname) const {
        const std::string key = hostlocal_key(id, ifname), old_key = trim(id);
        std::vector<IpAddress> exact, old;
        for (const auto& [ip, content] : entries()) {
            if (content == key) exact.push_back(ip);
            else if (content == old_key) old.push_back(ip);
        }
        return exact.empty() ? old : exact;
    }

    void remove(const IpAddress& ip) const {
        fs::path f = dir_ / ip.str();
        if (::unlink(f.c_str()) < 0 && errno != ENOENT) throw_errno("remove", f.string());
    }

private:
    // Every address file and its trimmed content.
    std::vector<std::pair<IpAddress, std::string>> entries() const {
        std::vector<std::pair<IpAddress, std::string>> out;
        DIR* d = ::opendir(dir_.c_str());
        if (!d) throw_errno("open directory", dir_.string());
        std::unique_ptr<DIR, int (*)(DIR*)> closer(d, ::closedir);
        while (dirent* e = ::readdir(d)) {
            auto ip = IpAddress::parse(e->d_name);
            if (!ip) continue;  // lock, last_reserved_ip.N, ., ..
            try {
                out.emplace_back(*ip, trim(read_file((dir_ / e->d_name).string())));
            } catch (const Error&) {
                // Released meanwhile by a binary that does not lock: not ours to judge.
            }
        }
        return out;
    }

    fs::path dir_;
    UniqueFd lock_;
};

// Round-robin through a range set: from the address after the last one
// reserved (when it is still in the set), else from the first range's start;
// once around, skipping each range's gateway.
class HostLocalCursor {
public:
    HostLocalCursor(const IpamRangeSet& set, std::optional<IpAddress> last) : set_(set) {
        if (last && ipam_set_contains(set, *last)) {
            for (size_t i = 0; i < set.size(); ++i)
                if (set[i].contains(*last)) {
                    range_ = i;
                    break;
                }
            cur_ = *last;
        } else {
            start_ = set[0].start;
        }
    }

    // The next candidate, with its range; nullopt once around.
    std::optional<std::pair<IpAddress, const IpamRange*>> next() {
        for (;;) {
            const IpamRange* r = &set_[range_];
            if (!cur_) {
                cur_ = r->start;
                start_ = cur_;
            } else {
                if (*cur_ == r->end) {
                    range_ = (range_ + 1) % set_.size();
                    r = &set_[range_];
                    cur_ = r->start;
                } else {
                    cur_ = next_address(*cur_);
                }
                if (!start_) start_ = cur_;
                else if (*cur_ == *start_) return std::nullopt;
            }
            if (*cur_ != r->gateway) return std::make_pair(*cur_, r);
        }
    }

private:
    const IpamRangeSet& set_;
    size_t range_ = 0;
    std::optional<IpAddress> cur_, start_;
};

}  // namespace

bool IpamRange::contains(const IpAddress& a) const {
    return a.v6 == start.v6 && subnet.contains(a) && !(a < start) && !(end < a);
}

bool host_local_supported(const json& ipam) {
    static const std::set<std::string> known = {"type",    "subnet", "rangeStart", "rangeEnd",
                                                "gateway", "ranges", "routes",     "dataDir"};
    if (!ipam.is_object() || ipam.value("type", "") != "host-local") return false;
    for (const auto& [key, value] : ipam.items())
        if (!known.count(key)) return false;
    return true;
}

HostLocalConfig parse_host_local(const json& conf) {
    HostLocalConfig cfg;
    cfg.network = conf.value("name", "");
    auto ipam_it = conf.find("ipam");
    if (ipam_it == conf.end() || !ipam_it->is_object()) ipam_bad("IPAM config missing 'ipam' key");
    const json& ipam = *ipam_it;
    std::string data_dir = ipam_string(ipam, "dataDir", "ipam");
    cfg.dir = fs::path(data_dir.empty() ? kHostLocalDefaultDataDir : data_dir) / cfg.network;

    std::vector<std::pair<json, std::string>> sets;  // each set's JSON and its place, for messages
    if (ipam.contains("subnet")) sets.emplace_back(json::array({ipam}), "ipam");
    if (auto r = ipam.find("ranges"); r != ipam.end() && !r->is_null()) {
        if (!r->is_array()) ipam_bad("ipam.ranges: expected an array of range sets");
        for (size_t i = 0; i < r->size(); ++i) sets.emplace_back((*r)[i], "ipam.ranges[" + std::to_string(i) + "]");
    }
    if (sets.empty()) ipam_bad("no IP ranges specified");
    for (size_t i = 0; i < sets.size(); ++i) {
        const auto& [set_json, where] = sets[i];
        try {
            if (!set_json.is_array() || set_json.empty()) ipam_bad("empty range set");
            IpamRangeSet set;
            for (size_t j = 0; j < set_json.size(); ++j) {
                set.push_back(ipam_range(set_json[j], where + "[" + std::to_string(j) + "]"));
                if (set.back().start.v6 != set.front().start.v6) ipam_bad("mixed address families");
                for (size_t k = 0; k + 1 < set.size(); ++k)
                    if (ipam_overlap(set[k], set.back()))
                        ipam_bad("subnets " + set[k].subnet.str() + " and " + set.back().subnet.str() + " overlap");
            }
            cfg.range_sets.push_back(std::move(set));
        } catch (const Error& e) {
            throw e.wrap("invalid range set " + std::to_string(i));
        }
    }
    for (size_t i = 0; i < cfg.range_sets.size(); ++i)
        for (size_t j = i + 1; j < cfg.range_sets.size(); ++j)
            for (const auto& a : cfg.range_sets[i])
                for (const auto& b : cfg.range_sets[j])
                    if (ipam_overlap(a, b))
                        ipam_bad("range set " + std::to_string(i) + " overlaps with " + std::to_string(j));

    if (auto routes = ipam.find("routes"); routes != ipam.end() && !routes->is_null()) {
        if (!routes->is_array()) ipam_bad("ipam.routes: expected an array");
        for (size_t i = 0; i < routes->size(); ++i) {
            std::string where = "ipam.routes[" + std::to_string(i) + "]";
            const json& r = (*routes)[i];
            if (!r.is_object()) ipam_bad(where + ": expected an object");
            IpamRoute route{ipam_cidr(ipam_string(r, "dst", where)), std::nullopt};
            if (std::string gw = ipam_string(r, "gw", where); !gw.empty()) route.gw = ipam_ip(gw);
            cfg.routes.push_back(route);
        }
    }
    return cfg;
}

std::vector<IpamLease> host_local_allocate(const HostLocalConfig& cfg, const std::string& id, const std::string& ifname) {
    HostLocalStore store(cfg.dir);
    const std::string key = hostlocal_key(id, ifname);
    const std::vector<IpAddress> held = store.owned_by(id, ifname);
    std::vector<IpamLease> leases;
    try {
        for (size_t i = 0; i < cfg.range_sets.size(); ++i) {
            const IpamRangeSet& set = cfg.range_sets[i];
            const std::string context = "failed to allocate for range " + std::to_string(i);
            for (const auto& ip : held)
                if (ipam_set_contains(set, ip))
                    throw Error(EEXIST, context + ": " + ip.str() + " has been allocated to " + id +
                                            ", duplicate allocation is not allowed");
            HostLocalCursor cursor(set, store.last_reserved(i));
            std::optional<IpamLease> lease;
            while (auto candidate = cursor.next()) {
                auto [ip, range] = *candidate;
                if (store.reserve(ip, key, i)) {
                    lease = IpamLease{{ip, range->subnet.prefix}, range->gateway};
                    break;
                }
            }
            if (!lease) throw Error(ENOSPC, context + ": no IP addresses available in range set: " + ipam_set_text(set));
            leases.push_back(*lease);
        }
    } catch (...) {
        for (const auto& l : leases) store.remove(l.address.address);
        throw;
    }
    return leases;
}

void host_local_release(const HostLocalConfig& cfg, const std::string& id, const std::string& ifname) {
    HostLocalStore store(cfg.dir);
    for (const auto& ip : store.owned_by(id, ifname)) store.remove(ip);
}

bool host_local_holds(const HostLocalConfig& cfg, const std::string& id, const std::string& ifname) {
    return !HostLocalStore(cfg.dir).owned_by(id, ifname).empty();
}

}  // namespace vitro::net
