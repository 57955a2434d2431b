// libFuzzer target: the host side of the microVM agent protocol reads what a
// guest sends, and a guest may be compromised. The decoder must never crash,
// hang or hold more than one frame plus one read; whatever it accepts must
// encode back to the bytes it came from, however the input is split.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "util/error.hpp"
#include "vm/protocol.hpp"

using namespace vitro::vm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    // The first byte picks how the stream is cut into reads (1..256 bytes).
    size_t chunk = size ? static_cast<unsigned char>(in[0]) + 1 : 1;
    Decoder d;
    std::string re;
    size_t fed = 0;
    try {
        while (fed < in.size()) {
            std::string_view part = in.substr(fed, chunk);
            d.feed(part);
            fed += part.size();
            while (auto f = d.next()) {
                if (f->payload.size() > kMaxPayload) std::abort();
                re += encode(f->type, f->payload, f->session);
            }
            if (d.buffered() > kHeaderSize + kMaxPayload + chunk) std::abort();
        }
        if (re.size() + d.buffered() != in.size() || in.substr(0, re.size()) != re) std::abort();
    } catch (const vitro::Error&) {
        // A bad frame ends the session: the expected outcome for garbage.
    }
    return 0;
}
