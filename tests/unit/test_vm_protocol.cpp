// vm/protocol: the frames between the host and vitro-agent, and what the
// host's decoder does with a guest's garbage.
#include <gtest/gtest.h>

#include <string>

#include "util/error.hpp"
#include "vm/protocol.hpp"

using namespace vitro;
using namespace vitro::vm;

TEST(VmProtocol, FramesSurviveAnySplit) {
    std::string stream = encode(FrameType::Hello, R"({"version":2})") + encode(FrameType::Stdout, "abc", 3) +
                         encode(FrameType::Stdout, "") + encode_u32(FrameType::Exit, 7, 255);
    for (size_t chunk = 1; chunk <= stream.size(); ++chunk) {
        Decoder d;
        std::vector<Frame> got;
        for (size_t off = 0; off < stream.size(); off += chunk) {
            d.feed(std::string_view(stream).substr(off, chunk));
            while (auto f = d.next()) got.push_back(*f);
        }
        ASSERT_EQ(got.size(), 4u) << "chunk " << chunk;
        EXPECT_EQ(got[0].type, FrameType::Hello);
        EXPECT_EQ(got[1].payload, "abc");
        EXPECT_EQ(got[1].session, 3);  // an exec's
        EXPECT_EQ(got[2].payload, "");
        EXPECT_EQ(got[2].session, 0);  // the container's own process
        EXPECT_EQ(payload_u32(got[3], "exit"), 7u);
        EXPECT_EQ(got[3].session, 255);
        EXPECT_EQ(d.buffered(), 0u);
    }
}

TEST(VmProtocol, BadHeadersAreRefusedBeforeTheirPayload) {
    auto header = [](uint32_t len, uint16_t type, uint8_t version, uint8_t session) {
        std::string h;
        for (int i = 0; i < 4; ++i) h.push_back(static_cast<char>((len >> (8 * i)) & 0xff));
        h.push_back(static_cast<char>(type & 0xff));
        h.push_back(static_cast<char>(type >> 8));
        h.push_back(static_cast<char>(version));
        h.push_back(static_cast<char>(session));
        return h;
    };
    struct Case {
        std::string bytes, says;
    } cases[] = {{header(kMaxPayload + 1, 6, 2, 0), "limit"},
                 {header(0xffffffffu, 6, 2, 4), "limit"},
                 {header(1, 6, 1, 0), "version 1"},
                 {header(1, 6, 3, 0), "version 3"},
                 {header(1, 0, 2, 0), "unknown type 0"},
                 {header(1, 99, 2, 7), "unknown type 99"}};
    for (const auto& c : cases) {
        Decoder d;
        d.feed(c.bytes);  // the header alone: refused without waiting for a payload
        try {
            d.next();
            ADD_FAILURE() << "accepted: " << c.says;
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), EPROTO);
            EXPECT_NE(std::string(e.what()).find(c.says), std::string::npos) << e.what();
        }
    }
}

TEST(VmProtocol, PayloadLimitsHoldBothWays) {
    EXPECT_NO_THROW(encode(FrameType::Stdout, std::string(kMaxPayload, 'x')));
    EXPECT_THROW(encode(FrameType::Stdout, std::string(kMaxPayload + 1, 'x')), Error);
    Frame short_exit{FrameType::Exit, "ab"};
    EXPECT_THROW(payload_u32(short_exit, "exit"), Error);
}
