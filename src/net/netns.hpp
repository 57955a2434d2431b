// NetNs: sole owner of a named network namespace, kept alive as an nsfs bind
// mount on a file under a directory of the caller's choosing (what
// `ip netns add` does under /run/netns). Removed (umount + unlink) on every path.
#pragma once

#include <filesystem>
#include <string>

namespace vitro::net {

class NetNs {
public:
    NetNs() = default;
    // Creates a fresh network namespace (its lo up) pinned at dir/name.
    // Throws if dir/name already exists; leaves nothing behind on failure.
    static NetNs create(const std::filesystem::path& dir, const std::string& name);
    // Takes ownership of an existing pinned namespace (e.g. from a state file).
    static NetNs adopt(std::filesystem::path path) { return NetNs(std::move(path)); }

    NetNs(NetNs&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
    NetNs& operator=(NetNs&& o) noexcept;
    NetNs(const NetNs&) = delete;
    NetNs& operator=(const NetNs&) = delete;
    ~NetNs();

    const std::filesystem::path& path() const { return path_; }
    explicit operator bool() const { return !path_.empty(); }
    // Gives up ownership: the namespace outlives this object.
    std::filesystem::path release();
    // Unmounts and unlinks now; throws on failure (the destructor only tries).
    void remove();

private:
    explicit NetNs(std::filesystem::path p) : path_(std::move(p)) {}
    std::filesystem::path path_;
};

// Unmounts (lazily) and unlinks a pinned namespace file; a missing file is fine.
void remove_netns(const std::filesystem::path& path);

// IPv6 off on interface `ifname` of the namespace pinned at `netns`
// (net.ipv6.conf.IFNAME.disable_ipv6 = 1 there): no link-local address, no
// router solicitations, no router advertisements taken. Nothing to do on a
// kernel without IPv6. Throws naming the interface otherwise.
void disable_ipv6(const std::filesystem::path& netns, const std::string& ifname);

}  // namespace vitro::net
