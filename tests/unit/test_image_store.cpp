// image/ content store and digests: blobs verified while written, a bad
// digest leaves nothing, tags in index.json.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
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

// Several tags in one write, as one by one in order would leave them; one bad
// name and none is recorded.
TEST(ImageStore, TagSeveralAllOrNothing) {
    ImageTempDir t;
    Descriptor m1{std::string(media::kOciManifest), sha256_digest("m1"), 2, {}, {}};
    Descriptor m2{std::string(media::kOciManifest), sha256_digest("m2"), 2, {}, {}};
    Store s(t.path);
    s.tag("old:1", m1);
    s.tag({{"a:1", m1}, {"old:1", m2}, {"b:1", m1}, {"a:1", m2}});
    EXPECT_EQ(s.tags().size(), 3u);
    EXPECT_EQ(s.resolve("a:1")->digest, m2.digest);
    EXPECT_EQ(s.resolve("old:1")->digest, m2.digest);
    EXPECT_EQ(s.resolve("b:1")->digest, m1.digest);
    std::string before = read_file(t.path + "/index.json");
    EXPECT_NE(error_of([&] { s.tag({{"c:1", m1}, {"", m1}}); }).find("empty image name"), std::string::npos);
    EXPECT_NE(error_of([&] { s.tag({{"c:1", m1}, {"d:1", Descriptor{"", "sha256:bad", 0, {}, {}}}}); }).find("invalid digest"),
              std::string::npos);
    EXPECT_EQ(read_file(t.path + "/index.json"), before);
}

namespace {
// A child that starts writing a blob and a temp dir in the store, says so on
// `ready`, then waits to be killed: what a load killed with -9 leaves.
pid_t start_writer(const std::string& root, int ready) {
    pid_t pid = ::fork();
    if (pid == 0) {
        Store s(root);
        BlobWriter w = s.begin_blob();
        w.write(std::string(1 << 20, 'x'));
        UniqueFd owner;
        std::string dir = s.make_temp_dir("oci-archive", &owner);
        put_file(dir + "/f", "data");
        (void)!::write(ready, "r", 1);
        for (;;) ::pause();
    }
    return pid;
}
}  // namespace

// Temp entries of a writer that died are removed by the next sweep; those of
// a live writer never are.
TEST(ImageStore, OrphanTempsOfAKilledWriterAreRemoved) {
    ImageTempDir t;
    Store s(t.path + "/store");
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    pid_t child = start_writer(s.root(), p[1]);
    ASSERT_GT(child, 0);
    char c;
    ASSERT_EQ(::read(p[0], &c, 1), 1);
    ::close(p[0]);
    ::close(p[1]);
    EXPECT_EQ(list_tree(s.tmp_dir()).size(), 3u);  // blob-*, oci-archive-*, oci-archive-*/f
    // Alive: its lock stands, nothing goes (nor does this process's own writer).
    BlobWriter mine = s.begin_blob();
    mine.write("mine");
    EXPECT_EQ(s.remove_orphan_temps().entries, 0u);
    EXPECT_EQ(list_tree(s.tmp_dir()).size(), 4u);
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    EXPECT_EQ(list_tree(s.tmp_dir()).size(), 4u);  // the kernel does not clean up for it
    TempSweep swept = s.remove_orphan_temps();
    EXPECT_EQ(swept.entries, 2u);
    EXPECT_GE(swept.bytes, 1u << 20);
    ASSERT_EQ(list_tree(s.tmp_dir()).size(), 1u);  // only the live writer's blob
    EXPECT_EQ(mine.commit(), sha256_digest("mine"));
    EXPECT_TRUE(list_tree(s.tmp_dir()).empty());
}
