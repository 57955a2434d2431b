// rtnetlink (NETLINK_ROUTE), the protocol: building a request (the family
// header, attributes, nested attributes), sending it, reading its ack, reply
// or dump, and the kernel's error with its extended-ack message. The link,
// address and route calls made with it are in netdev.hpp.
#pragma once

#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "util/fd.hpp"

namespace vitro::os {

// One request: nlmsghdr, the family header (ifinfomsg, ifaddrmsg, rtmsg), then
// attributes. Nests are opened and closed around the attributes they hold.
class NlRequest {
public:
    // NLM_F_REQUEST is added to `flags`.
    template <typename Header>
    NlRequest(uint16_t type, uint16_t flags, const Header& family_header) : NlRequest(type, flags) {
        append(&family_header, sizeof family_header);
    }

    void put(uint16_t type, const void* data, size_t len);
    void put_u8(uint16_t type, uint8_t v) { put(type, &v, sizeof v); }
    void put_u32(uint16_t type, uint32_t v) { put(type, &v, sizeof v); }
    void put_string(uint16_t type, std::string_view s);  // NUL-terminated, as the kernel wants names
    // A struct as it is, e.g. the ifinfomsg that starts a veth's VETH_INFO_PEER.
    template <typename T>
    void put_struct(const T& v) {
        append(&v, sizeof v);
    }
    // Opens a nested attribute; end_nest(offset) closes it. NLA_F_NESTED is
    // set unless `flag` is false (for the few the kernel reads as plain bytes).
    size_t begin_nest(uint16_t type, bool flag = true);
    void end_nest(size_t offset);

    nlmsghdr* header() { return reinterpret_cast<nlmsghdr*>(buf_.data()); }
    size_t size() const { return buf_.size(); }

private:
    NlRequest(uint16_t type, uint16_t flags);
    void append(const void* data, size_t len);  // padded to NLMSG_ALIGNTO
    std::vector<char> buf_;
};

// The attributes of a message (after its family header) or of a nested
// attribute, by type. Views into the message: it must outlive them.
class NlAttrs {
public:
    NlAttrs() = default;
    NlAttrs(const void* first, size_t len);
    // The attributes of `msg`, whose family header is `header_size` bytes.
    static NlAttrs of(const nlmsghdr& msg, size_t header_size);

    bool has(uint16_t type) const { return get(type) != nullptr; }
    std::span<const uint8_t> bytes(uint16_t type) const;
    std::string_view str(uint16_t type) const;  // without the trailing NUL
    std::optional<uint32_t> u32(uint16_t type) const;
    std::optional<uint8_t> u8(uint16_t type) const;
    NlAttrs nested(uint16_t type) const;  // empty when absent

private:
    const rtattr* get(uint16_t type) const;
    std::vector<const rtattr*> by_type_;
};

// The family header at the start of a message's payload.
template <typename Header>
Header family_header(const nlmsghdr& msg) {
    Header h{};
    if (msg.nlmsg_len >= NLMSG_LENGTH(sizeof h)) std::memcpy(&h, NLMSG_DATA(&msg), sizeof h);
    return h;
}

// A NETLINK_ROUTE socket, with extended acks and strict checking of dump
// filters (an address dump asked for one link answers for that link only).
class Rtnl {
public:
    // In the network namespace `netns_fd` refers to (netns_socket.hpp); -1: this thread's.
    explicit Rtnl(int netns_fd = -1);

    // Sends `req` asking for an ack: 0, or the kernel's negative errno with
    // its extended-ack message (if any) in *detail.
    int call(NlRequest& req, std::string* detail = nullptr);
    // The same; a failure throws Error(errno, "`what`: EXXX (...)[: kernel's message]").
    void request(NlRequest& req, std::string_view what);
    // A GET of one object: 0 with the answer in `reply`, or the negative errno.
    int get(NlRequest& req, std::vector<char>& reply, std::string* detail = nullptr);
    // A dump (NLM_F_DUMP is added): `each` sees every message up to NLMSG_DONE.
    void dump(NlRequest& req, std::string_view what, const std::function<void(const nlmsghdr&)>& each);

private:
    void send(NlRequest& req);
    // Reads the answers to the last request, handing each message of ours to
    // `on_message` until it returns false; NLMSG_ERROR ends the wait with its errno.
    int receive(const std::function<bool(const nlmsghdr&)>& on_message, std::string* detail);

    UniqueFd fd_;
    uint32_t seq_ = 0;
    std::vector<char> rxbuf_;
};

// "what: EXXX (description)" with the kernel's extended-ack text after it, if any.
std::string describe_netlink_error(std::string_view what, int err, const std::string& detail);

}  // namespace vitro::os
