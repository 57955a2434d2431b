// image/ registry client: WWW-Authenticate parsing (the network paths are in
// tests/integration/test_registry.cpp, against a real docker-registry).
#include <gtest/gtest.h>

#include "image/registry.hpp"

using namespace vitro::image;

TEST(ImageRegistry, BearerChallenge) {
    auto c = parse_auth_challenge(
        R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push")");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->scheme, "bearer");
    EXPECT_EQ(c->params["realm"], "https://auth.docker.io/token");
    EXPECT_EQ(c->params["service"], "registry.docker.io");
    EXPECT_EQ(c->params["scope"], "repository:library/busybox:pull,push");
}

TEST(ImageRegistry, BasicAndOddChallenges) {
    auto c = parse_auth_challenge(R"(Basic realm="Registry Realm")");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->scheme, "basic");
    EXPECT_EQ(c->params["realm"], "Registry Realm");
    // Several challenges: the first Basic or Bearer one; unquoted and escaped values; case.
    c = parse_auth_challenge(R"(Negotiate abc, BEARER Realm=http://h/t , Error="a \"b\"", Service=s)");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->scheme, "bearer");
    EXPECT_EQ(c->params["realm"], "http://h/t");
    EXPECT_EQ(c->params["error"], "a \"b\"");
    EXPECT_EQ(c->params["service"], "s");
    EXPECT_FALSE(parse_auth_challenge(""));
    EXPECT_FALSE(parse_auth_challenge("Negotiate"));
    EXPECT_FALSE(parse_auth_challenge(R"(Digest realm="x", nonce="y")"));
    EXPECT_TRUE(parse_auth_challenge(R"(Bearer realm="unterminated)"));
    EXPECT_TRUE(parse_auth_challenge("Basic"));
}
