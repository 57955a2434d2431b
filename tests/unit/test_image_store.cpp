// image/ content store and digests: blobs verified while written, a bad
// digest leaves nothing, tags in index.json.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <nlohmann/json.hpp>

#include "image/digest.hpp"
#include "image/store.hpp"
#include "image_testutil.hpp"
#include "util/file.hpp"

using namespace vitro;
using namespace vitro::image;
using namespace image_test;

TEST(ImageDigest, Validation) {
    EXPECT_EQ(sha256_digest(""), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_TRUE(is_valid_digest(sha256_digest("x")));
    EXPECT_FALSE(is_valid_digest("sha256:../../etc/passwd"));
    EXPECT_FALSE(is_valid_digest("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"));
    EXPECT_FALSE(is_valid_digest("sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    EXPECT_FALSE(is_valid_digest("sha256:e3b0"));
    EXPECT_NE(error_of([] { digest_hex("sha256:/x"); }).find("invalid digest"), std::string::npos);
}

TEST(ImageStore, LayoutCreated) {
    ImageTempDir t;
    Store s(t.path + "/root");
    EXPECT_TRUE(path_exists(t.path + "/root/oci-layout"));
    EXPECT_TRUE(path_exists(t.path + "/root/blobs/sha256"));
    auto idx = nlohmann::json::parse(read_file(t.path + "/root/index.json"));
    EXPECT_EQ(idx["schemaVersion"], 2);
    EXPECT_TRUE(idx["manifests"].empty());
}

TEST(ImageStore, PutBlobVerifiesDigest) {
    ImageTempDir t;
    Store s(t.path);
    std::string d = s.put_blob_bytes("hello");
    EXPECT_EQ(d, sha256_digest("hello"));
    EXPECT_TRUE(s.has_blob(d));
    EXPECT_EQ(s.read_blob(d), "hello");
    EXPECT_EQ(read_file(s.blob_path(d)), "hello");
    // Again: deduplicated, same digest.
    EXPECT_EQ(s.put_blob_bytes("hello", d), d);

    auto before = list_tree(t.path);
    std::string want = sha256_digest("good content");
    std::string err = error_of([&] { s.put_blob_bytes("corrupt content", want); });
    EXPECT_NE(err.find("digest mismatch"), std::string::npos) << err;
    EXPECT_FALSE(s.has_blob(want));
    EXPECT_FALSE(s.has_blob(sha256_digest("corrupt content")));
    EXPECT_EQ(list_tree(t.path), before);  // nothing left behind, not even a temp file
}

TEST(ImageStore, PutBlobFromFileChecksSize) {
    ImageTempDir t;
    Store s(t.path + "/root");
    put_file(t.path + "/src", "0123456789");
    std::string d = sha256_digest("0123456789");
    EXPECT_NE(error_of([&] { s.put_blob_file(t.path + "/src", d, 5); }).find("larger"), std::string::npos);
    EXPECT_FALSE(s.has_blob(d));
    EXPECT_TRUE(list_tree(s.tmp_dir()).empty());
    EXPECT_EQ(s.put_blob_file(t.path + "/src", d, 10), d);
    UniqueFd fd = s.open_blob(d);
    EXPECT_EQ(read_fd(fd.get()), "0123456789");
    EXPECT_NE(error_of([&] { s.open_blob(sha256_digest("missing")); }).find("ENOENT"), std::string::npos);
}

TEST(ImageStore, AbandonedWriterLeavesNothing) {
    ImageTempDir t;
    Store s(t.path);
    {
        BlobWriter w = s.begin_blob();
        w.write("partial");
    }
    EXPECT_TRUE(list_tree(s.tmp_dir()).empty());
    EXPECT_TRUE(list_tree(t.path + "/blobs/sha256").empty());
}

// BlobWriter::verify: the checks (and fsync) of commit(), without the blob landing.
TEST(ImageStore, VerifyBeforeCommit) {
    ImageTempDir t;
    Store store(t.path);
    {
        BlobWriter w = store.begin_blob();
        w.write("hello");
        std::string err = error_of([&] { w.verify(sha256_digest("other"), 5); });
        EXPECT_NE(err.find("digest mismatch"), std::string::npos) << err;
        EXPECT_FALSE(store.has_blob(sha256_digest("hello")));
    }
    EXPECT_TRUE(list_tree(store.tmp_dir()).empty());
    BlobWriter w = store.begin_blob();
    w.write("hello");
    w.verify(sha256_digest("hello"), 5);
    EXPECT_FALSE(store.has_blob(sha256_digest("hello")));
    EXPECT_NE(error_of([&] { w.write("more"); }), "(no error)");
    bool added = false;
    EXPECT_EQ(w.commit(sha256_digest("hello"), 5, &added), sha256_digest("hello"));
    EXPECT_TRUE(added);
    EXPECT_TRUE(store.has_blob(sha256_digest("hello")));
}

TEST(ImageStore, CorruptBlobOnDiskDetectedOnRead) {
    ImageTempDir t;
    Store s(t.path);
    std::string d = s.put_blob_bytes("{\"a\":1}");
    ::chmod(s.blob_path(d).c_str(), 0644);
    put_file(s.blob_path(d), "{\"a\":2}");
    EXPECT_NE(error_of([&] { s.read_blob(d); }).find("corrupt"), std::string::npos);
}

TEST(ImageStore, Tags) {
    ImageTempDir t;
    Descriptor m1{std::string(media::kOciManifest), sha256_digest("m1"), 2, {}, {}};
    Descriptor m2{std::string(media::kOciManifest), sha256_digest("m2"), 2, {}, {}};
    {
        Store s(t.path);
        s.tag("busybox:latest", m1);
        s.tag("alpine:3", m2);
        s.tag("busybox:latest", m2);  // retag replaces
    }
    Store s(t.path);  // persisted
    auto r = s.resolve("busybox:latest");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->digest, m2.digest);
    EXPECT_EQ(s.tags().size(), 2u);
    auto idx = nlohmann::json::parse(read_file(t.path + "/index.json"));
    int n = 0;
    for (auto& m : idx["manifests"])
        if (m["annotations"]["org.opencontainers.image.ref.name"] == "busybox:latest") ++n;
    EXPECT_EQ(n, 1);
    EXPECT_TRUE(s.untag("busybox:latest"));
    EXPECT_FALSE(s.untag("busybox:latest"));
    EXPECT_FALSE(s.resolve("busybox:latest"));
    EXPECT_TRUE(s.resolve("alpine:3"));
    EXPECT_NE(error_of([&] { s.tag("x:y", Descriptor{"", "sha256:bad", 0, {}, {}}); }).find("invalid digest"),
              std::string::npos);
}
