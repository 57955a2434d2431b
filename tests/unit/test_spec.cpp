// config.json parsing and validation: field paths in errors, strict types,
// and the values the runtime must refuse at create.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "oci/default_spec.hpp"
#include "oci/spec.hpp"
#include "util/error.hpp"

using vitro::Error;
using vitro::oci::parse_spec;
using vitro::oci::validate_spec;

namespace {

std::string minimal(const std::string& extra_process = "", const std::string& extra_top = "") {
    return R"({"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/")" + extra_process +
           "}" + extra_top + "}";
}

std::string error_of(const std::string& text) {
    try {
        validate_spec(parse_spec(text));
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(Spec, ParsesMinimal) {
    auto s = parse_spec(minimal());
    EXPECT_EQ(s.oci_version, "1.0.2");
    EXPECT_EQ(s.root_path, "rootfs");
    ASSERT_TRUE(s.process);
    EXPECT_EQ(s.process->args.at(0), "sh");
    EXPECT_NO_THROW(validate_spec(s));
}

TEST(Spec, DefaultSpecRoundTrips) {
    for (bool rootless : {false, true}) {
        auto s = parse_spec(vitro::oci::default_spec(rootless).dump());
        EXPECT_NO_THROW(validate_spec(s));
        EXPECT_TRUE(s.has_namespace("mount"));
        EXPECT_EQ(s.has_namespace("user"), rootless);
    }
}

TEST(Spec, MalformedJsonIsNamed) { EXPECT_NE(error_of("{").find("malformed JSON"), std::string::npos); }

TEST(Spec, WrongTypeNamesField) {
    EXPECT_NE(error_of(minimal(R"(,"user":{"uid":"zero"})")).find("process.user.uid: expected an integer"),
              std::string::npos);
    EXPECT_NE(error_of(minimal(R"(,"terminal":1)")).find("process.terminal: expected a boolean"),
              std::string::npos);
}

TEST(Spec, RefusesUnknownCapability) {
    auto e = error_of(minimal(R"(,"capabilities":{"bounding":["CAP_FLY"]})"));
    EXPECT_NE(e.find("process.capabilities.bounding: unknown capability 'CAP_FLY'"), std::string::npos) << e;
}

TEST(Spec, RefusesUnknownRlimitAndSoftAboveHard) {
    EXPECT_NE(error_of(minimal(R"(,"rlimits":[{"type":"RLIMIT_BOGUS","hard":1,"soft":1}])")).find("unknown rlimit"),
              std::string::npos);
    EXPECT_NE(error_of(minimal(R"(,"rlimits":[{"type":"RLIMIT_NOFILE","hard":1,"soft":2}])")).find("soft limit"),
              std::string::npos);
}

TEST(Spec, RefusesUnknownNamespaceAndDuplicates) {
    EXPECT_NE(error_of(minimal("", R"(,"linux":{"namespaces":[{"type":"bogus"}]})")).find("unknown namespace type"),
              std::string::npos);
    EXPECT_NE(error_of(minimal("", R"(,"linux":{"namespaces":[{"type":"pid"},{"type":"pid"}]})")).find("twice"),
              std::string::npos);
}

TEST(Spec, RefusesMappingsWithoutUserNamespace) {
    auto e = error_of(minimal("", R"(,"linux":{"uidMappings":[{"containerID":0,"hostID":1000,"size":1}]})"));
    EXPECT_NE(e.find("user namespace"), std::string::npos) << e;
}

TEST(Spec, RefusesRelativePaths) {
    EXPECT_NE(error_of(R"({"ociVersion":"1.0.2","root":{"path":"r"},"process":{"args":["sh"],"cwd":"rel"}})")
                  .find("process.cwd"),
              std::string::npos);
    EXPECT_NE(error_of(minimal("", R"(,"mounts":[{"destination":"tmp","type":"tmpfs"}])")).find("mounts[0].destination"),
              std::string::npos);
}

TEST(Spec, RefusesMissingProcessArgsAndBadVersion) {
    EXPECT_NE(error_of(R"({"ociVersion":"1.0.2","root":{"path":"r"},"process":{"cwd":"/"}})").find("process.args"),
              std::string::npos);
    EXPECT_NE(error_of(R"({"ociVersion":"2.0.0","root":{"path":"r"},"process":{"args":["a"],"cwd":"/"}})")
                  .find("ociVersion"),
              std::string::npos);
}

TEST(Spec, ParsesResourcesAndSeccomp) {
    auto s = parse_spec(minimal("", R"(,"linux":{"resources":{"memory":{"limit":1048576},"cpu":{"quota":5000,"period":10000,"cpus":"0"},"pids":{"limit":10}},
        "seccomp":{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getcwd"],"action":"SCMP_ACT_ERRNO","errnoRet":5,"args":[{"index":0,"value":1,"valueTwo":2,"op":"SCMP_CMP_EQ"}]}]}})"));
    ASSERT_TRUE(s.linux && s.linux->resources && s.linux->resources->memory);
    EXPECT_EQ(*s.linux->resources->memory->limit, 1048576);
    EXPECT_EQ(*s.linux->resources->cpu->quota, 5000);
    EXPECT_EQ(s.linux->resources->cpu->cpus, "0");
    EXPECT_EQ(s.linux->resources->pids->limit, 10);
    ASSERT_TRUE(s.linux->seccomp);
    EXPECT_EQ(s.linux->seccomp->syscalls.at(0).args.at(0).value_two, 2u);
    EXPECT_EQ(*s.linux->seccomp->syscalls.at(0).errno_ret, 5u);
}

TEST(Spec, RefusesOutOfRangeIntegers) {
    EXPECT_NE(error_of(minimal(R"(,"user":{"uid":-1})")).find("out of range"), std::string::npos);
    EXPECT_NE(error_of(minimal(R"(,"oomScoreAdj":5000)")).find("oomScoreAdj"), std::string::npos);
}

namespace {

// A spec with NAMESPACES (OCI types) and one sysctl KEY=1.
std::string with_sysctl(const std::string& key, const std::vector<std::string>& namespaces) {
    std::string ns;
    for (const auto& t : namespaces) ns += std::string(ns.empty() ? "" : ",") + R"({"type":")" + t + R"("})";
    return minimal("", R"(,"linux":{"namespaces":[)" + ns + R"(],"sysctl":{")" + key + R"(":"1"}})");
}

}  // namespace

TEST(Spec, SysctlsOnlyInTheContainersOwnNamespaces) {
    const std::vector<std::string> all = {"pid", "network", "ipc", "uts", "mount"};
    // Host-wide whatever the namespaces: refused, the key named.
    for (const char* key : {"kernel.core_pattern", "kernel.core_uses_pid", "vm.overcommit_memory", "fs.file-max",
                            "kernel/core_pattern", "kernel.shm_next_id"}) {
        auto e = error_of(with_sysctl(key, all));
        EXPECT_NE(e.find(std::string("linux.sysctl: ") + key + " is not in a separate kernel namespace"),
                  std::string::npos)
            << key << ": " << e;
    }
    // Namespaced, and the namespace is the container's own: accepted.
    for (auto [key, ns] : std::vector<std::pair<std::string, std::string>>{
             {"net.ipv4.ip_forward", "network"}, {"net/ipv4/conf/eth0.100/forwarding", "network"},
             {"kernel.shm_rmid_forced", "ipc"}, {"kernel.msgmax", "ipc"}, {"fs.mqueue.msg_max", "ipc"},
             {"kernel.hostname", "uts"}, {"kernel.domainname", "uts"}}) {
        EXPECT_EQ(error_of(with_sysctl(key, all)), "") << key;
        // Without that namespace it would be the host's: refused, naming key and namespace.
        std::vector<std::string> without;
        for (const auto& t : all)
            if (t != ns) without.push_back(t);
        auto e = error_of(with_sysctl(key, without));
        EXPECT_NE(e.find("linux.sysctl: " + key + " needs a " + ns + " namespace"), std::string::npos) << e;
    }
    for (const char* key : {"net..ipv4", "net/../kernel/core_pattern", "", "net.ipv4."})
        EXPECT_NE(error_of(with_sysctl(key, all)).find("linux.sysctl: "), std::string::npos) << key;
}

TEST(Spec, OversizedFieldsAreNamed) {
    const std::string big(10 << 20, 'a');
    EXPECT_NE(error_of(minimal("", R"(,"hostname":")" + big + "\"")).find("hostname: 10485760 bytes long, at most 64"),
              std::string::npos);
    EXPECT_NE(error_of(minimal("", R"(,"domainname":")" + std::string(65, 'd') + "\"")).find("domainname: 65 bytes"),
              std::string::npos);
    std::string long_cwd = R"({"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/)" +
                           big + R"("}})";
    EXPECT_NE(error_of(long_cwd).find("process.cwd: 10485761 bytes long, at most 4095"), std::string::npos);
    EXPECT_NE(error_of(minimal(R"(,"env":["A=)" + big + "\"]")).find("process.env[0]: "), std::string::npos);
    EXPECT_EQ(error_of(minimal("", R"(,"hostname":")" + std::string(64, 'h') + "\"")), "");
}
