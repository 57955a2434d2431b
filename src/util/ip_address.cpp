#include "util/ip_address.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <charconv>
#include <cstring>

namespace vitro {

int IpAddress::family() const { return v6 ? AF_INET6 : AF_INET; }

std::string IpAddress::str() const {
    char buf[INET6_ADDRSTRLEN] = "";
    ::inet_ntop(family(), bytes.data(), buf, sizeof buf);
    return buf;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
    std::string s(text);
    IpAddress a;
    if (::inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) return a;
    a.v6 = true;
    if (::inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) return a;
    return std::nullopt;
}

IpAddress IpAddress::from_bytes(int family, const void* data) {
    IpAddress a;
    a.v6 = family == AF_INET6;
    std::memcpy(a.bytes.data(), data, a.size());
    return a;
}

namespace {
// Sets (or clears) every bit of `a` from bit `prefix` on.
IpAddress with_host_bits(IpAddress a, int prefix, bool set) {
    for (int bit = prefix; bit < a.bits(); ++bit) {
        uint8_t m = static_cast<uint8_t>(0x80u >> (bit % 8));
        if (set) a.bytes[bit / 8] |= m;
        else a.bytes[bit / 8] &= static_cast<uint8_t>(~m);
    }
    return a;
}
}  // namespace

IpAddress IpPrefix::network() const { return with_host_bits(address, prefix, false); }
IpAddress IpPrefix::last() const { return with_host_bits(address, prefix, true); }

bool IpPrefix::contains(const IpAddress& a) const {
    return a.v6 == address.v6 && with_host_bits(a, prefix, false) == network();
}

std::optional<IpPrefix> IpPrefix::parse(std::string_view text) {
    auto slash = text.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    auto addr = IpAddress::parse(text.substr(0, slash));
    if (!addr) return std::nullopt;
    std::string_view len = text.substr(slash + 1);
    int prefix = -1;
    auto [end, ec] = std::from_chars(len.data(), len.data() + len.size(), prefix);
    if (len.empty() || ec != std::errc() || end != len.data() + len.size() || prefix < 0 || prefix > addr->bits())
        return std::nullopt;
    return IpPrefix{*addr, prefix};
}

IpAddress next_address(IpAddress a) {
    for (size_t i = a.size(); i-- > 0;)
        if (++a.bytes[i] != 0) break;
    return a;
}

}  // namespace vitro
