// image/ models: OCI and Docker schema 2 documents, errors naming the field,
// platform choice in an index.
#include <gtest/gtest.h>

#include "image/digest.hpp"
#include "image/manifest.hpp"
#include "image_testutil.hpp"

using namespace vitro;
using namespace vitro::image;
using namespace image_test;
using nlohmann::json;

namespace {
json desc(const std::string& mt, const std::string& content) {
    return {{"mediaType", mt}, {"digest", sha256_digest(content)}, {"size", content.size()}};
}
}  // namespace

TEST(ImageManifest, ParsesOciAndDocker) {
    for (auto [mt, cmt, lmt] : {std::tuple{media::kOciManifest, media::kOciConfig, media::kOciLayerGzip},
                                std::tuple{media::kDockerManifest, media::kDockerConfig, media::kDockerLayerGzip}}) {
        json j = {{"schemaVersion", 2},
                  {"mediaType", mt},
                  {"config", desc(std::string(cmt), "c")},
                  {"layers", {desc(std::string(lmt), "l1"), desc(std::string(lmt), "l2")}}};
        Manifest m = parse_manifest(j.dump());
        EXPECT_EQ(m.media_type, mt);
        EXPECT_EQ(m.config.digest, sha256_digest("c"));
        ASSERT_EQ(m.layers.size(), 2u);
        EXPECT_EQ(m.layers[1].size, 2);
        EXPECT_EQ(parse_manifest(to_json(m).dump()).layers[0].digest, m.layers[0].digest);
    }
}

TEST(ImageManifest, ErrorsNameTheField) {
    json good = {{"schemaVersion", 2},
                 {"config", desc(std::string(media::kOciConfig), "c")},
                 {"layers", {desc(std::string(media::kOciLayer), "l")}}};
    auto err = [&](const std::function<void(json&)>& mutate) {
        json j = good;
        mutate(j);
        return error_of([&] { parse_manifest(j.dump(), "manifest X"); });
    };
    EXPECT_EQ(err([](json&) {}), "(no error)");
    EXPECT_NE(err([](json& j) { j["layers"][0]["digest"] = "sha256:../../x"; }).find("field layers[0].digest"),
              std::string::npos);
    EXPECT_NE(err([](json& j) { j["layers"][0]["size"] = -1; }).find("field layers[0].size"), std::string::npos);
    EXPECT_NE(err([](json& j) { j["layers"][0]["mediaType"] = "text/html"; }).find("layers[0].mediaType"),
              std::string::npos);
    EXPECT_NE(err([](json& j) { j.erase("config"); }).find("field config: missing"), std::string::npos);
    EXPECT_NE(err([](json& j) { j["schemaVersion"] = 1; }).find("field schemaVersion"), std::string::npos);
    EXPECT_NE(err([](json& j) { j["layers"] = "x"; }).find("field layers: expected an array"), std::string::npos);
    EXPECT_NE(error_of([] { parse_manifest("{nope"); }).find("not valid JSON"), std::string::npos);
    EXPECT_NE(error_of([] { parse_manifest("[]"); }).find("expected a JSON object"), std::string::npos);
}

TEST(ImageManifest, Config) {
    json j = {{"architecture", "amd64"},
              {"os", "linux"},
              {"config", {{"Env", {"PATH=/bin"}}, {"Cmd", {"sh"}}, {"WorkingDir", "/w"}, {"User", "1:2"}}},
              {"rootfs", {{"type", "layers"}, {"diff_ids", {sha256_digest("a")}}}}};
    ImageConfig c = parse_config(j.dump());
    EXPECT_EQ(c.cmd, std::vector<std::string>{"sh"});
    EXPECT_EQ(c.env, std::vector<std::string>{"PATH=/bin"});
    EXPECT_EQ(c.working_dir, "/w");
    EXPECT_EQ(c.user, "1:2");
    ASSERT_EQ(c.diff_ids.size(), 1u);
    j["config"]["Cmd"] = {1};
    EXPECT_NE(error_of([&] { parse_config(j.dump()); }).find("field config.Cmd[0]: expected a string"),
              std::string::npos);
    j["config"]["Cmd"] = {"sh"};
    j["rootfs"]["diff_ids"] = {"md5:x"};
    EXPECT_NE(error_of([&] { parse_config(j.dump()); }).find("field rootfs.diff_ids[0]"), std::string::npos);
}

TEST(ImageManifest, SelectPlatform) {
    auto entry = [](const std::string& os, const std::string& arch, const std::string& content) {
        json d = desc(std::string(media::kOciManifest), content);
        d["platform"] = {{"os", os}, {"architecture", arch}};
        return d;
    };
    json j = {{"schemaVersion", 2},
              {"mediaType", media::kOciIndex},
              {"manifests", {entry("linux", "arm64", "a"), entry("linux", "amd64", "b"), entry("windows", "amd64", "c")}}};
    Index idx = parse_index(j.dump());
    EXPECT_EQ(select_platform(idx).digest, sha256_digest("b"));
    EXPECT_EQ(select_platform(idx, "linux", "arm64").digest, sha256_digest("a"));
    std::string err = error_of([&] { select_platform(idx, "linux", "s390x"); });
    EXPECT_NE(err.find("no manifest for linux/s390x"), std::string::npos) << err;
    j["manifests"][1]["platform"].erase("architecture");
    EXPECT_NE(error_of([&] { parse_index(j.dump()); }).find("field manifests[1].platform.architecture"),
              std::string::npos);
}
