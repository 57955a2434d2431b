// image/ references (docker's grammar and normalization) and auth.json.
#include <gtest/gtest.h>

#include <stdlib.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "image/auth_file.hpp"
#include "image/reference.hpp"
#include "image_testutil.hpp"
#include "util/file.hpp"

using namespace vitro;
using namespace vitro::image;
using namespace image_test;

namespace {
const std::string kDigest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
}

TEST(ImageReference, DockerHubNormalization) {
    Reference r = parse_reference("busybox");
    EXPECT_EQ(r.registry, "docker.io");
    EXPECT_EQ(r.repository, "library/busybox");
    EXPECT_EQ(r.tag, "latest");
    EXPECT_EQ(r.digest, "");
    EXPECT_EQ(r.str(), "docker.io/library/busybox:latest");
    EXPECT_EQ(parse_reference("user/app:1.0").str(), "docker.io/user/app:1.0");
    EXPECT_EQ(parse_reference("index.docker.io/busybox").str(), "docker.io/library/busybox:latest");
    EXPECT_EQ(parse_reference("docker.io/library/busybox:1.36").str(), "docker.io/library/busybox:1.36");
}

TEST(ImageReference, RegistryHosts) {
    Reference r = parse_reference("localhost:5000/a/b:t");
    EXPECT_EQ(r.registry, "localhost:5000");
    EXPECT_EQ(r.repository, "a/b");
    EXPECT_EQ(r.tag, "t");
    EXPECT_EQ(r.str(), "localhost:5000/a/b:t");
    EXPECT_EQ(parse_reference("localhost/x").registry, "localhost");
    EXPECT_EQ(parse_reference("localhost/x").str(), "localhost/x:latest");
    EXPECT_EQ(parse_reference("quay.io/podman/hello").registry, "quay.io");
    EXPECT_EQ(parse_reference("127.0.0.1:5000/x").registry, "127.0.0.1:5000");
    EXPECT_EQ(parse_reference("[::1]:5000/x:y").registry, "[::1]:5000");
    // A first component without '.', ':' or "localhost" is a docker.io namespace.
    EXPECT_EQ(parse_reference("myhost/x").str(), "docker.io/myhost/x:latest");
}

TEST(ImageReference, Digests) {
    Reference r = parse_reference("host/x@" + kDigest);
    EXPECT_EQ(r.registry, "docker.io");  // no dot, no port: a docker.io namespace
    EXPECT_EQ(r.repository, "host/x");
    r = parse_reference("host.example/x@" + kDigest);
    EXPECT_EQ(r.registry, "host.example");
    EXPECT_EQ(r.tag, "");
    EXPECT_EQ(r.digest, kDigest);
    EXPECT_EQ(r.tag_or_digest(), kDigest);
    EXPECT_EQ(r.str(), "host.example/x@" + kDigest);
    r = parse_reference("localhost:5000/x:v1@" + kDigest);
    EXPECT_EQ(r.tag, "v1");
    EXPECT_EQ(r.tag_or_digest(), kDigest);
    EXPECT_EQ(r.str(), "localhost:5000/x:v1@" + kDigest);
}

TEST(ImageReference, PathComponents) {
    EXPECT_EQ(parse_reference("a_b/c__d/e-f/g--h/i.j").repository, "a_b/c__d/e-f/g--h/i.j");
    EXPECT_EQ(parse_reference("x:a_B-1.0").tag, "a_B-1.0");
}

TEST(ImageReference, Junk) {
    auto err = [](const std::string& s) { return error_of([&] { parse_reference(s); }); };
    EXPECT_EQ(err("Foo::x").rfind("invalid reference format: \"Foo::x\": ", 0), 0u) << err("Foo::x");
    EXPECT_NE(err("Busybox").find("repository name must be lowercase"), std::string::npos);
    EXPECT_NE(err("").find("empty reference"), std::string::npos);
    EXPECT_NE(err("x:").find("tag \"\""), std::string::npos);
    EXPECT_NE(err("x:-t").find("tag \"-t\""), std::string::npos);
    EXPECT_NE(err("x:" + std::string(129, 'a')).find("tag"), std::string::npos);
    EXPECT_NE(err("x@sha256:abc").find("digest"), std::string::npos);
    EXPECT_NE(err("x@md5:abc").find("only sha256"), std::string::npos);
    EXPECT_NE(err("a//b").find("path component \"\""), std::string::npos);
    EXPECT_NE(err("a/b_").find("path component \"b_\""), std::string::npos);
    EXPECT_NE(err("a/-b").find("path component"), std::string::npos);
    EXPECT_NE(err("a/b___c").find("path component"), std::string::npos);
    EXPECT_NE(err("-host.io/x").find("registry \"-host.io\""), std::string::npos);
    EXPECT_NE(err("host.io:/x").find("registry"), std::string::npos);
    EXPECT_NE(err("host.io:5a/x").find("registry"), std::string::npos);
    EXPECT_NE(err("host.io/").find("path component"), std::string::npos);
    EXPECT_NE(err(kDigest.substr(7)).find("image ID"), std::string::npos);
    EXPECT_NE(err("a/" + std::string(260, 'b')).find("255"), std::string::npos);
    EXPECT_NE(err("a b").find("path component"), std::string::npos);
}

TEST(ImageReference, NormalizeLocalName) {
    EXPECT_EQ(normalize_local_name("busybox"), "busybox:latest");
    EXPECT_EQ(normalize_local_name("busybox:1"), "busybox:1");
    EXPECT_EQ(normalize_local_name("localhost:5000/a"), "localhost:5000/a:latest");
    EXPECT_EQ(normalize_local_name("localhost:5000/a:t"), "localhost:5000/a:t");
    EXPECT_EQ(normalize_local_name("a@" + kDigest), "a@" + kDigest);
}

// podman's NormalizeName, for names read from archives.
TEST(ImageReference, NormalizeImageName) {
    EXPECT_EQ(normalize_image_name("busybox"), "localhost/busybox:latest");
    EXPECT_EQ(normalize_image_name("app:1"), "localhost/app:1");
    EXPECT_EQ(normalize_image_name("team/app"), "localhost/team/app:latest");
    EXPECT_EQ(normalize_image_name("1"), "localhost/1:latest");
    EXPECT_EQ(normalize_image_name("localhost/team/app:1"), "localhost/team/app:1");
    EXPECT_EQ(normalize_image_name("docker.io/busybox"), "docker.io/library/busybox:latest");
    EXPECT_EQ(normalize_image_name("localhost:5000/a"), "localhost:5000/a:latest");
    EXPECT_EQ(normalize_image_name("quay.io/a/b:t@" + kDigest), "quay.io/a/b@" + kDigest);
    EXPECT_NE(error_of([] { normalize_image_name("UPPER/x"); }).find("invalid reference format"), std::string::npos);
}

TEST(ImageAuthFile, Base64) {
    EXPECT_EQ(base64_encode("user:pass"), "dXNlcjpwYXNz");
    EXPECT_EQ(base64_decode("dXNlcjpwYXNz"), "user:pass");
    for (std::string s : {"", "a", "ab", "abc", "abcd", "p:w:x\xff"}) EXPECT_EQ(base64_decode(base64_encode(s)), s);
    EXPECT_NE(error_of([] { base64_decode("abc"); }).find("base64"), std::string::npos);
    EXPECT_NE(error_of([] { base64_decode("a*c="); }).find("base64"), std::string::npos);
}

TEST(ImageAuthFile, Credentials) {
    Credentials c = parse_credentials("u:p:w");
    EXPECT_EQ(c.username, "u");
    EXPECT_EQ(c.password, "p:w");
    EXPECT_NE(error_of([] { parse_credentials("nocolon"); }).find("user:password"), std::string::npos);
    EXPECT_NE(error_of([] { parse_credentials(":p"); }).find("user:password"), std::string::npos);
}

TEST(ImageAuthFile, RoundTripKeepsOtherKeysMode0600) {
    ImageTempDir t;
    std::string path = t.path + "/sub/auth.json";
    {
        AuthFile f(path);
        EXPECT_FALSE(f.get("localhost:5000"));
        f.set("localhost:5000", {"alice", "s3:cret"});
        f.save();
    }
    struct stat st;
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    auto j = nlohmann::json::parse(read_file(path));
    EXPECT_EQ(j["auths"]["localhost:5000"]["auth"], base64_encode("alice:s3:cret"));

    j["credHelpers"] = {{"gcr.io", "gcloud"}};
    j["auths"]["https://index.docker.io/v1/"] = {{"auth", base64_encode("bob:pw")}};
    write_file_atomic(path, j.dump());
    AuthFile f(path);
    auto c = f.get("localhost:5000");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->username, "alice");
    EXPECT_EQ(c->password, "s3:cret");
    EXPECT_EQ(f.get("docker.io")->username, "bob");
    EXPECT_TRUE(f.remove("localhost:5000"));
    EXPECT_FALSE(f.remove("localhost:5000"));
    f.save();
    j = nlohmann::json::parse(read_file(path));
    EXPECT_EQ(j["credHelpers"]["gcr.io"], "gcloud");
    EXPECT_FALSE(j["auths"].contains("localhost:5000"));
    EXPECT_TRUE(j["auths"].contains("https://index.docker.io/v1/"));
    f.clear();
    f.save();
    EXPECT_TRUE(nlohmann::json::parse(read_file(path))["auths"].empty());
}

TEST(ImageAuthFile, DefaultPathAndMalformed) {
    ImageTempDir t;
    ::setenv("REGISTRY_AUTH_FILE", (t.path + "/a.json").c_str(), 1);
    EXPECT_EQ(AuthFile::default_path(), t.path + "/a.json");
    ::unsetenv("REGISTRY_AUTH_FILE");
    if (::geteuid() == 0) {
        EXPECT_EQ(AuthFile::default_path(), "/run/containers/0/auth.json");
    }

    write_file_atomic(t.path + "/bad.json", "[1]");
    EXPECT_NE(error_of([&] { AuthFile f(t.path + "/bad.json"); }).find("bad.json: not a JSON object"), std::string::npos);
    write_file_atomic(t.path + "/bad2.json", R"({"auths":{"h":{"auth":"bm9jb2xvbg=="}}})");
    std::string e = error_of([&] { AuthFile(t.path + "/bad2.json").get("h"); });
    EXPECT_NE(e.find("auths.h.auth"), std::string::npos) << e;
    EXPECT_FALSE(find_credentials("h", t.path + "/missing.json"));
}
