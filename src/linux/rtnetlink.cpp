#include "linux/rtnetlink.hpp"

#include <sys/socket.h>

#include <cerrno>

#include "linux/netns_socket.hpp"
#include "util/error.hpp"

namespace vitro::os {

NlRequest::NlRequest(uint16_t type, uint16_t flags) : buf_(NLMSG_HDRLEN, 0) {
    header()->nlmsg_type = type;
    header()->nlmsg_flags = static_cast<uint16_t>(flags | NLM_F_REQUEST);
    header()->nlmsg_len = static_cast<uint32_t>(buf_.size());
}

void NlRequest::append(const void* data, size_t len) {
    size_t at = buf_.size();
    buf_.resize(at + NLMSG_ALIGN(len), 0);
    if (len) std::memcpy(buf_.data() + at, data, len);
    header()->nlmsg_len = static_cast<uint32_t>(buf_.size());
}

void NlRequest::put(uint16_t type, const void* data, size_t len) {
    rtattr a{};
    a.rta_type = type;
    a.rta_len = static_cast<unsigned short>(RTA_LENGTH(len));
    append(&a, sizeof a);  // RTA_LENGTH(0) == sizeof(rtattr), already aligned
    append(data, len);
}

void NlRequest::put_string(uint16_t type, std::string_view s) {
    std::string z(s);
    put(type, z.c_str(), z.size() + 1);
}

size_t NlRequest::begin_nest(uint16_t type, bool flag) {
    size_t at = buf_.size();
    put(static_cast<uint16_t>(flag ? type | NLA_F_NESTED : type), nullptr, 0);
    return at;
}

void NlRequest::end_nest(size_t offset) {
    auto* a = reinterpret_cast<rtattr*>(buf_.data() + offset);
    a->rta_len = static_cast<unsigned short>(buf_.size() - offset);
}

NlAttrs::NlAttrs(const void* first, size_t len) {
    auto* a = static_cast<const rtattr*>(first);
    auto left = static_cast<unsigned>(len);
    for (; RTA_OK(a, left); a = RTA_NEXT(a, left)) {
        uint16_t type = a->rta_type & NLA_TYPE_MASK;
        if (type >= by_type_.size()) by_type_.resize(type + 1u, nullptr);
        by_type_[type] = a;
    }
}

NlAttrs NlAttrs::of(const nlmsghdr& msg, size_t header_size) {
    size_t start = NLMSG_LENGTH(NLMSG_ALIGN(header_size));
    if (msg.nlmsg_len < start) return {};
    return NlAttrs(reinterpret_cast<const char*>(&msg) + start, msg.nlmsg_len - start);
}

const rtattr* NlAttrs::get(uint16_t type) const { return type < by_type_.size() ? by_type_[type] : nullptr; }

std::span<const uint8_t> NlAttrs::bytes(uint16_t type) const {
    const rtattr* a = get(type);
    if (!a) return {};
    return {static_cast<const uint8_t*>(RTA_DATA(a)), RTA_PAYLOAD(a)};
}

std::string_view NlAttrs::str(uint16_t type) const {
    auto b = bytes(type);
    std::string_view s(reinterpret_cast<const char*>(b.data()), b.size());
    if (auto nul = s.find('\0'); nul != std::string_view::npos) s = s.substr(0, nul);
    return s;
}

std::optional<uint32_t> NlAttrs::u32(uint16_t type) const {
    auto b = bytes(type);
    if (b.size() < sizeof(uint32_t)) return std::nullopt;
    uint32_t v;
    std::memcpy(&v, b.data(), sizeof v);
    return v;
}

std::optional<uint8_t> NlAttrs::u8(uint16_t type) const {
    auto b = bytes(type);
    if (b.empty()) return std::nullopt;
    return b[0];
}

NlAttrs NlAttrs::nested(uint16_t type) const {
    auto b = bytes(type);
    return b.empty() ? NlAttrs() : NlAttrs(b.data(), b.size());
}

std::string describe_netlink_error(std::string_view what, int err, const std::string& detail) {
    std::string m = std::string(what) + ": " + errno_name(err);
    if (!detail.empty()) m += ": " + detail;
    return m;
}

Rtnl::Rtnl(int netns_fd) : rxbuf_(32768) {
    fd_ = socket_in_netns(netns_fd, AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    int one = 1;
    // Best effort: an older kernel without them still works, with plainer errors.
    ::setsockopt(fd_.get(), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
    ::setsockopt(fd_.get(), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
    ::setsockopt(fd_.get(), SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof one);
}

void Rtnl::send(NlRequest& req) {
    req.header()->nlmsg_seq = ++seq_;
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    for (;;) {
        ssize_t n = ::sendto(fd_.get(), req.header(), req.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
        if (n >= 0) return;
        if (errno != EINTR) throw_errno("rtnetlink send");
    }
}

namespace {
// The extended-ack message (NLMSGERR_ATTR_MSG) of an NLMSG_ERROR, if any.
std::string rtnl_extack_message(const nlmsghdr& h) {
    if (!(h.nlmsg_flags & NLM_F_ACK_TLVS)) return {};
    auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(&h));
    size_t off = sizeof(nlmsgerr);
    if (!(h.nlmsg_flags & NLM_F_CAPPED)) off += e->msg.nlmsg_len - NLMSG_HDRLEN;
    size_t start = NLMSG_HDRLEN + NLMSG_ALIGN(off);
    if (h.nlmsg_len <= start) return {};
    NlAttrs tlvs(reinterpret_cast<const char*>(&h) + start, h.nlmsg_len - start);
    return std::string(tlvs.str(NLMSGERR_ATTR_MSG));
}
}  // namespace

int Rtnl::receive(const std::function<bool(const nlmsghdr&)>& on_message, std::string* detail) {
    for (;;) {
        ssize_t n = ::recv(fd_.get(), rxbuf_.data(), rxbuf_.size(), 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno("rtnetlink receive");
        }
        auto left = static_cast<unsigned>(n);
        for (auto* h = reinterpret_cast<const nlmsghdr*>(rxbuf_.data()); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
            if (h->nlmsg_seq != seq_) continue;  // a late answer to an earlier request
            if (h->nlmsg_type == NLMSG_ERROR) {
                if (h->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return -EPROTO;
                int err = static_cast<const nlmsgerr*>(NLMSG_DATA(h))->error;
                if (err != 0 && detail) *detail = rtnl_extack_message(*h);
                return err;
            }
            if (h->nlmsg_type == NLMSG_DONE) {  // a dump's end; it may carry the dump's error
                int err = 0;
                if (h->nlmsg_len >= NLMSG_LENGTH(sizeof err)) std::memcpy(&err, NLMSG_DATA(h), sizeof err);
                return err < 0 ? err : 0;
            }
            if (!on_message(*h)) return 0;
        }
    }
}

int Rtnl::call(NlRequest& req, std::string* detail) {
    req.header()->nlmsg_flags |= NLM_F_ACK;
    send(req);
    return receive([](const nlmsghdr&) { return true; }, detail);
}

void Rtnl::request(NlRequest& req, std::string_view what) {
    std::string detail;
    int rc = call(req, &detail);
    if (rc < 0) throw Error(-rc, describe_netlink_error(what, -rc, detail));
}

int Rtnl::get(NlRequest& req, std::vector<char>& reply, std::string* detail) {
    send(req);
    return receive(
        [&](const nlmsghdr& h) {
            auto* p = reinterpret_cast<const char*>(&h);
            reply.assign(p, p + h.nlmsg_len);
            return false;
        },
        detail);
}

void Rtnl::dump(NlRequest& req, std::string_view what, const std::function<void(const nlmsghdr&)>& each) {
    req.header()->nlmsg_flags |= NLM_F_DUMP;
    send(req);
    std::string detail;
    int rc = receive(
        [&](const nlmsghdr& h) {
            each(h);
            return true;
        },
        &detail);
    if (rc < 0) throw Error(-rc, describe_netlink_error(what, -rc, detail));
}

}  // namespace vitro::os
