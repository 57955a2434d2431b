// The host <-> vitro-agent protocol over the VM's virtio-serial port: frames
// of an 8-byte header (payload length u32, type u16, version u8, session u8;
// little-endian) and at most kMaxPayload bytes. Session 0 is the container's
// own process, 1-255 the processes `vitro exec` started in it: the stdio,
// signal and exit frames of each carry its session. The host treats the
// guest as hostile: a frame with another version, an unknown type or a
// length over the limit ends the connection with an error, never a crash or
// an unbounded buffer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vitro::vm {

inline constexpr uint8_t kProtocolVersion = 2;
inline constexpr size_t kHeaderSize = 8;
inline constexpr uint32_t kMaxPayload = 1 << 20;
// The virtio-serial port's name, which the agent looks its device up by.
inline constexpr std::string_view kAgentPortName = "vitro.agent";

enum class FrameType : uint16_t {
    Hello = 1,     // guest -> host, first: JSON {"version", "kernel"}
    Run = 2,       // host -> guest: JSON, the process to run (see vm/shim.cpp)
    Stdin = 3,     // host -> guest: bytes for the process's stdin
    StdinEof = 4,  // host -> guest: its stdin is closed
    Signal = 5,    // host -> guest: u32, a signal for the process
    Stdout = 6,    // guest -> host: bytes the process wrote
    Stderr = 7,    // guest -> host
    Exit = 8,      // guest -> host, last of its session: u32, the exit code (128 + signal when killed)
    Exec = 9,      // host -> guest: JSON, a process to start in the running container, in a new session
};

struct Frame {
    FrameType type;
    std::string payload;
    uint8_t session = 0;
};

// A frame's bytes (header + payload). Throws Error(EMSGSIZE) past kMaxPayload.
std::string encode(FrameType type, std::string_view payload, uint8_t session = 0);
std::string encode_u32(FrameType type, uint32_t value, uint8_t session = 0);
// A u32 payload's value; throws Error(EPROTO) when it is not 4 bytes.
uint32_t payload_u32(const Frame& f, std::string_view what);

// Reassembles frames from a byte stream, however it is split.
class Decoder {
public:
    // Appends bytes (at most what one frame can take beyond those held:
    // the buffer never grows past one whole frame).
    void feed(std::string_view bytes);
    // The next whole frame, if there is one. Throws Error(EPROTO) on a bad
    // header; the decoder is unusable afterwards.
    std::optional<Frame> next();
    size_t buffered() const { return buf_.size() - pos_; }

private:
    std::string buf_;
    size_t pos_ = 0;
};

}  // namespace vitro::vm
