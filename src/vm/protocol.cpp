#include "vm/protocol.hpp"

#include <cerrno>
#include <cstring>

#include "util/error.hpp"

namespace vitro::vm {

namespace {
void put_u32(std::string& out, uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint32_t get_u32(const char* p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
    return v;
}
bool known(uint16_t t) { return t >= static_cast<uint16_t>(FrameType::Hello) && t <= static_cast<uint16_t>(FrameType::Exec); }
}  // namespace

std::string encode(FrameType type, std::string_view payload, uint8_t session) {
    if (payload.size() > kMaxPayload)
        throw Error(EMSGSIZE, "agent frame of " + std::to_string(payload.size()) + " bytes (the limit is " +
                                  std::to_string(kMaxPayload) + ")");
    std::string out;
    out.reserve(kHeaderSize + payload.size());
    put_u32(out, static_cast<uint32_t>(payload.size()));
    auto t = static_cast<uint16_t>(type);
    out.push_back(static_cast<char>(t & 0xff));
    out.push_back(static_cast<char>(t >> 8));
    out.push_back(static_cast<char>(kProtocolVersion));
    out.push_back(static_cast<char>(session));
    out.append(payload);
    return out;
}

std::string encode_u32(FrameType type, uint32_t value, uint8_t session) {
    std::string p;
    put_u32(p, value);
    return encode(type, p, session);
}

uint32_t payload_u32(const Frame& f, std::string_view what) {
    if (f.payload.size() != 4)
        throw Error(EPROTO, "agent frame " + std::string(what) + ": " + std::to_string(f.payload.size()) +
                                " bytes of payload, not 4");
    return get_u32(f.payload.data());
}

void Decoder::feed(std::string_view bytes) {
    if (pos_ > 0 && pos_ == buf_.size()) {
        buf_.clear();
        pos_ = 0;
    } else if (pos_ > (1u << 16)) {
        buf_.erase(0, pos_);
        pos_ = 0;
    }
    buf_.append(bytes);
}

std::optional<Frame> Decoder::next() {
    if (buffered() < kHeaderSize) return std::nullopt;
    const char* h = buf_.data() + pos_;
    uint32_t len = get_u32(h);
    uint16_t type = static_cast<uint16_t>(static_cast<unsigned char>(h[4]) | static_cast<unsigned char>(h[5]) << 8);
    auto version = static_cast<unsigned char>(h[6]);
    auto session = static_cast<uint8_t>(h[7]);
    if (version != kProtocolVersion)
        throw Error(EPROTO, "agent frame: protocol version " + std::to_string(version) + ", not " +
                                std::to_string(kProtocolVersion));
    if (!known(type)) throw Error(EPROTO, "agent frame: unknown type " + std::to_string(type));
    if (len > kMaxPayload)
        throw Error(EPROTO, "agent frame: " + std::to_string(len) + " bytes of payload (the limit is " +
                                std::to_string(kMaxPayload) + ")");
    if (buffered() < kHeaderSize + len) return std::nullopt;
    Frame f{static_cast<FrameType>(type), buf_.substr(pos_ + kHeaderSize, len), session};
    pos_ += kHeaderSize + len;
    return f;
}

}  // namespace vitro::vm
