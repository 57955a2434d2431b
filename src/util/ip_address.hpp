// IPv4 and IPv6 addresses as bytes: parse, print, step, prefixes. What
// host-local IPAM and the rtnetlink calls need, without any socket.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vitro {

struct IpAddress {
    bool v6 = false;
    std::array<uint8_t, 16> bytes{};  // IPv4: the first 4

    size_t size() const { return v6 ? 16 : 4; }
    int family() const;  // AF_INET or AF_INET6
    int bits() const { return v6 ? 128 : 32; }
    std::string str() const;  // inet_ntop's text: "10.88.0.2", "fd00::2"
    auto operator<=>(const IpAddress&) const = default;

    // "10.88.0.2" or "fd00::2"; nullopt when neither.
    static std::optional<IpAddress> parse(std::string_view text);
    static IpAddress from_bytes(int family, const void* data);
};

// An address with a prefix length: "10.88.0.2/16".
struct IpPrefix {
    IpAddress address;
    int prefix = 0;

    std::string str() const { return address.str() + "/" + std::to_string(prefix); }
    bool operator==(const IpPrefix&) const = default;
    // The network address (host bits cleared) and the last address (host bits set).
    IpAddress network() const;
    IpAddress last() const;
    bool contains(const IpAddress& a) const;
    // "ADDRESS/LEN" with LEN in range for the family; nullopt otherwise.
    static std::optional<IpPrefix> parse(std::string_view text);
};

// The address after `a` (wrapping at the end of the family's space).
IpAddress next_address(IpAddress a);

}  // namespace vitro
