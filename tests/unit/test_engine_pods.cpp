// Pods' pure logic: --share parsing, the namespace paths a member joins, the
// pod status podman shows.
#include <gtest/gtest.h>

#include "engine/pods.hpp"
#include "util/error.hpp"

using namespace vitro::engine;
using nlohmann::json;

TEST(EnginePods, ParseShare) {
    EXPECT_EQ(parse_pod_share("ipc,net,uts"), (std::vector<std::string>{"ipc", "net", "uts"}));
    EXPECT_EQ(parse_pod_share("uts, net,net"), (std::vector<std::string>{"net", "uts"}));
    EXPECT_EQ(parse_pod_share("pid"), (std::vector<std::string>{"pid"}));
    EXPECT_TRUE(parse_pod_share("none").empty());
    EXPECT_TRUE(parse_pod_share("").empty());
    try {
        parse_pod_share("net,user");
        FAIL() << "user namespaces are not shared";
    } catch (const vitro::Error& e) {
        EXPECT_EQ(e.code(), EINVAL);
        EXPECT_NE(std::string(e.what()).find("unknown namespace \"user\""), std::string::npos) << e.what();
    }
}

TEST(EnginePods, JoinNamespaces) {
    json spec = {{"linux",
                  {{"namespaces",
                    {{{"type", "pid"}}, {{"type", "network"}, {"path", "/run/vitro/netns/own"}}, {{"type", "ipc"}},
                     {{"type", "uts"}}, {{"type", "mount"}}}}}}};
    join_pod_namespaces(spec, {"ipc", "net", "uts"}, 4242, "/run/vitro/netns/infra");
    std::map<std::string, std::string> got;
    for (const auto& ns : spec["linux"]["namespaces"]) got[ns["type"].get<std::string>()] = ns.value("path", "");
    EXPECT_EQ(got.size(), 5u);  // replaced, not added twice
    EXPECT_EQ(got["network"], "/run/vitro/netns/infra");
    EXPECT_EQ(got["ipc"], "/proc/4242/ns/ipc");
    EXPECT_EQ(got["uts"], "/proc/4242/ns/uts");
    EXPECT_EQ(got["pid"], "");    // not shared: a namespace of its own
    EXPECT_EQ(got["mount"], "");
    // A second start with a new infra pid points at the new one.
    join_pod_namespaces(spec, {"ipc", "net", "uts"}, 77, "/run/vitro/netns/infra");
    for (const auto& ns : spec["linux"]["namespaces"]) {
        if (ns["type"] == "ipc") {
            EXPECT_EQ(ns["path"], "/proc/77/ns/ipc");
        }
    }
    // Sharing pid adds the entry when the spec had none.
    json bare = json::object();
    join_pod_namespaces(bare, {"pid"}, 9, "");
    EXPECT_EQ(bare["linux"]["namespaces"], json::parse(R"([{"type":"pid","path":"/proc/9/ns/pid"}])"));
}

TEST(EnginePods, Status) {
    using S = ContainerState;
    EXPECT_EQ(pod_status({}), "Created");
    EXPECT_EQ(pod_status({S::Created, S::Created}), "Created");
    EXPECT_EQ(pod_status({S::Running, S::Running}), "Running");
    EXPECT_EQ(pod_status({S::Running, S::Exited}), "Degraded");
    EXPECT_EQ(pod_status({S::Running, S::Created}), "Degraded");
    EXPECT_EQ(pod_status({S::Exited, S::Exited}), "Exited");
    EXPECT_EQ(pod_status({S::Exited, S::Created}), "Stopped");
}
