// Pure logic of the runtime's command line: signal names and container ids.
#include <signal.h>

#include <gtest/gtest.h>

#include "runtime/runtime.hpp"
#include "util/error.hpp"

using vitro::Error;
using vitro::runtime::parse_signal;
using vitro::runtime::validate_id;

TEST(RuntimeCli, SignalsByNameNumberAndPrefix) {
    EXPECT_EQ(parse_signal("KILL"), SIGKILL);
    EXPECT_EQ(parse_signal("SIGTERM"), SIGTERM);
    EXPECT_EQ(parse_signal("usr1"), SIGUSR1);
    EXPECT_EQ(parse_signal("9"), 9);
    EXPECT_EQ(parse_signal("RTMIN+2"), SIGRTMIN + 2);
}

TEST(RuntimeCli, BadSignalsAreNamed) {
    for (const char* bad : {"0", "65", "SIGNOPE", "", "-1"}) {
        try {
            parse_signal(bad);
            ADD_FAILURE() << "accepted signal '" << bad << "'";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("signal"), std::string::npos) << e.what();
        }
    }
}

TEST(RuntimeCli, ContainerIds) {
    for (const char* ok : {"a", "web-1", "x_y.z+1", "0123456789abcdef"}) EXPECT_NO_THROW(validate_id(ok)) << ok;
    for (const char* bad : {"", "-lead", ".hidden", "a/b", "..", "sp ace", "semi;colon"}) {
        EXPECT_THROW(validate_id(bad), Error) << "accepted id '" << bad << "'";
    }
    EXPECT_THROW(validate_id(std::string(1025, 'a')), Error);
}
