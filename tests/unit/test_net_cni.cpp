// CNI protocol: conflist parsing, the stdin each plugin gets, error results,
// and the chain logic (order, prevResult, cache, DEL in reverse, timeout) driven
// through small shell-script plugins (fakes: the real plugins need root and are
// exercised in tests/integration/test_net.cpp).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <fstream>

#include "net/cni.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/subprocess.hpp"
#include "testutil.hpp"

using namespace vitro;
using namespace vitro::net;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

using vitro::test::TempDir;
using vitro::test::error_of;


const char* kList = R"({"cniVersion":"1.0.0","name":"net1","plugins":[
  {"type":"first","capabilities":{"portMappings":true}},
  {"type":"second","opt":7}]})";

}  // namespace

TEST(NetCniParse, ValidList) {
    auto l = parse_conflist(kList, "x.conflist");
    EXPECT_EQ(l.name, "net1");
    EXPECT_EQ(l.cni_version, "1.0.0");
    ASSERT_EQ(l.plugins.size(), 2u);
    EXPECT_EQ(l.plugins[1]["opt"], 7);
    EXPECT_FALSE(l.disable_check);
}

TEST(NetCniParse, ErrorsNameFileAndField) {
    EXPECT_NE(error_of([] { parse_conflist("{not json", "a.conflist"); }).find("a.conflist: not valid JSON"), std::string::npos);
    EXPECT_NE(error_of([] { parse_conflist("[]", "a.conflist"); }).find("a.conflist"), std::string::npos);
    EXPECT_NE(error_of([] { parse_conflist(R"({"cniVersion":"1.0.0","plugins":[{"type":"x"}]})", "a.conflist"); })
                  .find("a.conflist: name:"),
              std::string::npos);
    EXPECT_NE(error_of([] { parse_conflist(R"({"name":"n","plugins":[{"type":"x"}]})", "a.conflist"); })
                  .find("a.conflist: cniVersion:"),
              std::string::npos);
    EXPECT_NE(error_of([] { parse_conflist(R"({"name":"n","cniVersion":"1.0.0","plugins":[]})", "a.conflist"); })
                  .find("a.conflist: plugins:"),
              std::string::npos);
    EXPECT_NE(error_of([] { parse_conflist(R"({"name":"n","cniVersion":"1.0.0","plugins":[{"type":"x"},{"typo":1}]})", "a.conflist"); })
                  .find("a.conflist: plugins[1].type:"),
              std::string::npos);
    EXPECT_NE(error_of([] { parse_conflist(R"({"name":"n","cniVersion":"1.0.0","plugins":[{"type":"../../bin/sh"}]})", "a.conflist"); })
                  .find("plugins[0].type: must be a plugin name"),
              std::string::npos);
    EXPECT_NE(error_of([] { parse_conflist(R"({"name":"a/b","cniVersion":"1.0.0","plugins":[{"type":"x"}]})", "a.conflist"); })
                  .find("a.conflist: name:"),
              std::string::npos);
    EXPECT_NE(error_of([] { load_conflist("/nonexistent/n.conflist"); }).find("/nonexistent/n.conflist"), std::string::npos);
}

TEST(NetCniParse, PluginStdin) {
    auto l = parse_conflist(kList, "x");
    RuntimeConf rt{.container_id = "c1", .netns = "/run/ns/c1"};
    rt.capability_args = {{"portMappings", json::array({{{"hostPort", 8080}, {"containerPort", 80}, {"protocol", "tcp"}}})},
                          {"bandwidth", {{"ingressRate", 1}}}};
    json first = plugin_stdin(l, 0, rt, std::nullopt);
    EXPECT_EQ(first["name"], "net1");
    EXPECT_EQ(first["cniVersion"], "1.0.0");
    EXPECT_EQ(first["runtimeConfig"]["portMappings"][0]["hostPort"], 8080);
    EXPECT_FALSE(first["runtimeConfig"].contains("bandwidth"));  // not a declared capability
    EXPECT_FALSE(first.contains("prevResult"));
    json second = plugin_stdin(l, 1, rt, json{{"cniVersion", "1.0.0"}, {"ips", json::array()}});
    EXPECT_FALSE(second.contains("runtimeConfig"));
    EXPECT_EQ(second["opt"], 7);
    EXPECT_EQ(second["prevResult"]["cniVersion"], "1.0.0");
}

TEST(NetCniParse, ErrorResultAndArgs) {
    EXPECT_EQ(describe_plugin_error(R"({"cniVersion":"1.0.0","code":7,"msg":"bad config","details":"no bridge"})", ""),
              "bad config: no bridge (code 7)");
    EXPECT_EQ(describe_plugin_error("garbage", "stderr text\n"), "stderr text");
    EXPECT_EQ(format_cni_args({{"IgnoreUnknown", "1"}, {"K8S_POD_NAME", "p"}}), "IgnoreUnknown=1;K8S_POD_NAME=p");
    EXPECT_EQ(cache_key("net1", "c1", "eth0"), "net1-c1-eth0");
}

TEST(NetSubprocess, CaptureKeepsStdoutAndStderrApart) {
    auto r = run_program_capture("/bin/sh", {"sh", "-c", "cat; echo out2; echo err >&2; exit 3"}, {}, "in1\n", 10);
    EXPECT_EQ(r.stdout_data, "in1\nout2\n");
    EXPECT_EQ(r.stderr_tail, "err\n");
    EXPECT_TRUE(WIFEXITED(r.status));
    EXPECT_EQ(WEXITSTATUS(r.status), 3);
    auto big = run_program_capture("/bin/sh", {"sh", "-c", "head -c 200000 /dev/zero"}, {}, "", 10, 1000);
    EXPECT_EQ(big.stdout_data.size(), 1000u);
    EXPECT_TRUE(big.stdout_truncated);
    auto old = run_program("/bin/sh", {"sh", "-c", "echo ignored; echo e >&2"}, {}, "", 10);
    EXPECT_TRUE(old.stdout_data.empty());
    EXPECT_EQ(old.stderr_tail, "e\n");
}

// Fake plugins: each appends "<type> <command> <prevResult-ips>" to a log and,
// on ADD, adds its name to the result's "interfaces".
class NetCniFake : public ::testing::Test {
protected:
    TempDir tmp{"cni-unit"};
    fs::path log() const { return tmp.path / "log"; }
    void plugin(const std::string& name, const std::string& body) {
        fs::path p = tmp.path / "bin" / name;
        fs::create_directories(p.parent_path());
        std::ofstream(p) << "#!/bin/sh\n" << body;
        ::chmod(p.c_str(), 0755);
    }
    void chain_plugin(const std::string& name) {
        plugin(name, "in=$(cat)\n"
                     "prev=$(printf '%s' \"$in\" | sed -n 's/.*\"prevResult\":{[^}]*\"interfaces\":\\[\\([^]]*\\)\\].*/\\1/p')\n"
                     "echo \"" + name + " $CNI_COMMAND $CNI_CONTAINERID $CNI_IFNAME [$prev]\" >> " + log().string() + "\n"
                     "if [ \"$CNI_COMMAND\" = ADD ]; then\n"
                     "  if [ -n \"$prev\" ]; then prev=\"$prev,\"; fi\n"
                     "  echo '{\"cniVersion\":\"1.0.0\",\"interfaces\":['\"$prev\"'\"" + name + "\"]}'\nfi\n");
    }
    Cni cni() { return Cni({.plugin_dirs = {tmp.path / "nope", tmp.path / "bin"}, .cache_dir = tmp.path / "cache", .timeout_s = 2}); }
    std::string read_log() { return path_exists(log().string()) ? read_file(log().string()) : ""; }
};

TEST_F(NetCniFake, AddChainsDelReversesWithCachedResult) {
    chain_plugin("one");
    chain_plugin("two");
    auto l = parse_conflist(R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"one"},{"type":"two"}]})", "n");
    RuntimeConf rt{.container_id = "c1", .netns = "/x"};
    Cni c = cni();
    json res = c.add(l, rt);
    EXPECT_EQ(res["interfaces"], json::array({"one", "two"}));
    EXPECT_EQ(read_log(), "one ADD c1 eth0 []\ntwo ADD c1 eth0 [\"one\"]\n");
    ASSERT_TRUE(c.cached_result("n", rt));
    EXPECT_TRUE(path_exists((tmp.path / "cache" / "n-c1-eth0").string()));

    // ADD twice without DEL is refused, and changes nothing.
    EXPECT_NE(error_of([&] { c.add(l, rt); }).find("already attached"), std::string::npos);

    fs::remove(log());
    c.check(l, rt);
    EXPECT_EQ(read_log(), "one CHECK c1 eth0 [\"one\",\"two\"]\ntwo CHECK c1 eth0 [\"one\",\"two\"]\n");

    // A later process: a fresh Cni object finds the cache.
    fs::remove(log());
    cni().del(l, rt);
    EXPECT_EQ(read_log(), "two DEL c1 eth0 [\"one\",\"two\"]\none DEL c1 eth0 [\"one\",\"two\"]\n");
    EXPECT_FALSE(c.cached_result("n", rt));

    // DEL of a never-added container: runs without prevResult, no error.
    fs::remove(log());
    c.del(l, rt);
    EXPECT_EQ(read_log(), "two DEL c1 eth0 []\none DEL c1 eth0 []\n");
    EXPECT_NE(error_of([&] { c.check(l, rt); }).find("no cached result"), std::string::npos);
}

TEST_F(NetCniFake, FailedAddIsUndoneAndNamesThePlugin) {
    chain_plugin("one");
    plugin("bad", "cat >/dev/null; echo \"bad $CNI_COMMAND\" >> " + log().string() +
                      "\n[ \"$CNI_COMMAND\" = DEL ] && exit 0\n"
                      "echo '{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"cannot do it\",\"details\":\"because\"}'; exit 1\n");
    auto l = parse_conflist(R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"one"},{"type":"bad"}]})", "n");
    RuntimeConf rt{.container_id = "c2", .netns = "/x"};
    Cni c = cni();
    std::string e = error_of([&] { c.add(l, rt); });
    EXPECT_NE(e.find("CNI plugin bad (network n, ADD): cannot do it: because (code 11)"), std::string::npos) << e;
    EXPECT_EQ(read_log(), "one ADD c2 eth0 []\nbad ADD\nbad DEL\none DEL c2 eth0 [\"one\"]\n");
    EXPECT_FALSE(c.cached_result("n", rt));
}

TEST_F(NetCniFake, UnknownPluginTimeoutAndBadOutput) {
    Cni c = cni();
    RuntimeConf rt{.container_id = "c3", .netns = "/x"};
    auto unknown = parse_conflist(R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"nosuch"}]})", "n");
    std::string e = error_of([&] { c.add(unknown, rt); });
    EXPECT_NE(e.find("CNI plugin nosuch (network n, ADD): CNI plugin \"nosuch\": not found in"), std::string::npos) << e;
    EXPECT_FALSE(c.cached_result("n", rt));

    plugin("slow", "exec sleep 30\n");
    auto slow = parse_conflist(R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"slow"}]})", "n");
    e = error_of([&] { c.check(slow, rt); });
    EXPECT_NE(e.find("no cached result"), std::string::npos);
    e = error_of([&] { c.add(slow, rt); });
    EXPECT_NE(e.find("CNI plugin slow (network n, ADD): timed out after 2s"), std::string::npos) << e;

    plugin("junk", "echo not-json\n");
    auto junk = parse_conflist(R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"junk"}]})", "n");
    e = error_of([&] { c.add(junk, rt); });
    EXPECT_NE(e.find("CNI plugin junk (network n, ADD): result is not a JSON object"), std::string::npos) << e;
}

TEST(NetCniNoop, PortmapAndTuningRunOnlyWithSomethingToDo) {
    vitro::net::RuntimeConf rt;
    nlohmann::json portmap = {{"type", "portmap"}, {"capabilities", {{"portMappings", true}}}};
    nlohmann::json tuning = {{"type", "tuning"}};
    EXPECT_TRUE(vitro::net::plugin_is_noop(portmap, rt));
    EXPECT_TRUE(vitro::net::plugin_is_noop(tuning, rt));
    EXPECT_FALSE(vitro::net::plugin_is_noop({{"type", "bridge"}}, rt));
    EXPECT_FALSE(vitro::net::plugin_is_noop({{"type", "firewall"}}, rt));
    // Settings or capability arguments make them work.
    EXPECT_FALSE(vitro::net::plugin_is_noop({{"type", "tuning"}, {"sysctl", {{"net.core.somaxconn", "500"}}}}, rt));
    EXPECT_FALSE(vitro::net::plugin_is_noop({{"type", "portmap"}, {"runtimeConfig", nlohmann::json::object()}}, rt));
    rt.capability_args["portMappings"] = nlohmann::json::array({{{"hostPort", 8080}, {"containerPort", 80}}});
    EXPECT_FALSE(vitro::net::plugin_is_noop(portmap, rt));
    // A capability the plugin does not declare changes nothing.
    EXPECT_TRUE(vitro::net::plugin_is_noop(tuning, rt));
}

TEST(NetCniBuiltin, VitroCniBuiltinZeroTurnsTheBuiltInsOff) {
    const char* before = std::getenv("VITRO_CNI_BUILTIN");
    std::string saved = before ? before : "";
    ::unsetenv("VITRO_CNI_BUILTIN");
    EXPECT_TRUE(vitro::net::CniOptions{}.builtin_plugins);
    ::setenv("VITRO_CNI_BUILTIN", "0", 1);
    EXPECT_FALSE(vitro::net::CniOptions{}.builtin_plugins);
    ::setenv("VITRO_CNI_BUILTIN", "1", 1);
    EXPECT_TRUE(vitro::net::CniOptions{}.builtin_plugins);
    if (before) ::setenv("VITRO_CNI_BUILTIN", saved.c_str(), 1);
    else ::unsetenv("VITRO_CNI_BUILTIN");
}
