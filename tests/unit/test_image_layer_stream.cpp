// image/ LayerStream: a layer unpacked while its blob arrives. Whatever goes
// wrong (corrupt bytes, a wrong diffID, a hostile path, a download that
// stops or starts over), nothing is left in layers/ but what publish() put
// there.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "image/digest.hpp"
#include "image/layer_stream.hpp"
#include "image/store.hpp"
#include "image/unpack.hpp"
#include "image_testutil.hpp"
#include "util/file.hpp"

using namespace vitro;
using namespace vitro::image;
using namespace image_test;

namespace {

// Incompressible bytes, so that the gzip stream is about as large.
std::string stream_random_bytes(size_t n) {
    std::mt19937 gen(42);
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(gen());
    return s;
}

struct StreamLayer {
    std::string tar, gz, diff_id, digest;
};

StreamLayer make_stream_layer(const std::vector<Entry>& entries) {
    StreamLayer l;
    l.tar = make_tar(entries);
    l.gz = make_tar(entries, Compression::gzip);
    l.diff_id = sha256_digest(l.tar);
    l.digest = sha256_digest(l.gz);
    return l;
}

StreamLayer big_stream_layer() {
    return make_stream_layer({{.path = "bin/data", .data = stream_random_bytes(3 << 20)},
                       {.path = "etc/hello", .data = "world"},
                       {.path = "bin/link", .type = AE_IFLNK, .link = "data"}});
}

// The names directly in dir.
std::vector<std::string> layer_dir_names(const std::string& dir) {
    std::vector<std::string> top;
    for (auto& p : list_tree(dir))
        if (p.find('/') == std::string::npos) top.push_back(p);
    return top;
}

// Writes `data` to the stream in pieces of `piece` bytes, as curl would.
void feed_stream(LayerStream& s, std::string_view data, size_t piece = 16384) {
    for (size_t off = 0; off < data.size(); off += piece) s.write(data.data() + off, std::min(piece, data.size() - off));
}

}  // namespace

TEST(ImageLayerStream, UnpacksWhileFedAndPublishes) {
    ImageTempDir t;
    Store store(t.path);
    StreamLayer l = big_stream_layer();
    LayerStream s(store, l.digest, l.diff_id);
    feed_stream(s, l.gz);
    EXPECT_FALSE(layer_ready(store, l.diff_id));  // not before publish()
    s.finish();
    EXPECT_FALSE(layer_ready(store, l.diff_id));
    EXPECT_EQ(s.publish(), layer_rootfs(store, l.diff_id));
    EXPECT_TRUE(layer_ready(store, l.diff_id));
    std::string root = layer_rootfs(store, l.diff_id);
    EXPECT_EQ(slurp(root + "/bin/data"), stream_random_bytes(3 << 20));
    EXPECT_EQ(slurp(root + "/etc/hello"), "world");
    EXPECT_EQ(slurp(store.layers_dir() + "/" + digest_hex(l.diff_id) + "/complete"), l.digest + "\n");
    // Only the layer: no temporary directory left.
    EXPECT_EQ(layer_dir_names(store.layers_dir()), std::vector<std::string>{digest_hex(l.diff_id)});
}

TEST(ImageLayerStream, PlainTarAndOneByteWrites) {
    ImageTempDir t;
    Store store(t.path);
    StreamLayer l = make_stream_layer({{.path = "a", .data = "b"}});
    LayerStream s(store, l.diff_id, l.diff_id);
    feed_stream(s, l.tar, 1);
    s.finish();
    EXPECT_EQ(slurp(s.publish() + "/a"), "b");
}

TEST(ImageLayerStream, CorruptBytesLeaveNothing) {
    ImageTempDir t;
    Store store(t.path);
    StreamLayer l = big_stream_layer();
    std::string bad = l.gz;
    bad[bad.size() / 2] ^= 0x55;
    {
        LayerStream s(store, l.digest, l.diff_id);
        feed_stream(s, bad);  // never blocks, though the unpacker gave up halfway
        EXPECT_NE(error_of([&] { s.finish(); }), "(no error)");
        EXPECT_NE(error_of([&] { s.publish(); }), "(no error)");
    }
    EXPECT_TRUE(list_tree(store.layers_dir()).empty());
    EXPECT_FALSE(layer_ready(store, l.diff_id));
}

TEST(ImageLayerStream, WrongDiffIdLeavesNothing) {
    ImageTempDir t;
    Store store(t.path);
    StreamLayer l = big_stream_layer();
    {
        LayerStream s(store, l.digest, sha256_digest("something else"));
        feed_stream(s, l.gz);
        std::string err = error_of([&] { s.finish(); });
        EXPECT_NE(err.find("the image config says"), std::string::npos) << err;
    }
    EXPECT_TRUE(list_tree(store.layers_dir()).empty());
}

TEST(ImageLayerStream, HostilePathRejectedLeavesNothing) {
    ImageTempDir t;
    Store store(t.path);
    StreamLayer l = make_stream_layer({{.path = "ok", .data = "x"}, {.path = "../../escape", .data = "x"}});
    {
        LayerStream s(store, l.digest, l.diff_id);
        feed_stream(s, l.gz);
        std::string err = error_of([&] { s.finish(); });
        EXPECT_NE(err.find("\"..\" in a layer path"), std::string::npos) << err;
    }
    EXPECT_TRUE(list_tree(store.layers_dir()).empty());
    EXPECT_FALSE(path_exists(t.path + "/escape"));
}

TEST(ImageLayerStream, StoppedHalfwayLeavesNothing) {
    ImageTempDir t;
    Store store(t.path);
    StreamLayer l = big_stream_layer();
    {
        LayerStream s(store, l.digest, l.diff_id);
        feed_stream(s, std::string_view(l.gz).substr(0, l.gz.size() / 2));
        // Destroyed without finish(): the download failed or was cancelled.
    }
    EXPECT_TRUE(list_tree(store.layers_dir()).empty());
}

TEST(ImageLayerStream, TruncatedThenRestartedSucceeds) {
    ImageTempDir t;
    Store store(t.path);
    StreamLayer l = big_stream_layer();
    LayerStream s(store, l.digest, l.diff_id);
    feed_stream(s, std::string_view(l.gz).substr(0, l.gz.size() / 2));
    s.restart();  // the download's next try starts from the first byte
    feed_stream(s, l.gz);
    s.finish();
    std::string root = s.publish();
    EXPECT_EQ(slurp(root + "/bin/data"), stream_random_bytes(3 << 20));
    EXPECT_EQ(layer_dir_names(store.layers_dir()), std::vector<std::string>{digest_hex(l.diff_id)});  // the first try's is gone
}

TEST(ImageLayerStream, TruncatedStreamRejected) {
    ImageTempDir t;
    Store store(t.path);
    StreamLayer l = big_stream_layer();
    {
        LayerStream s(store, l.digest, l.diff_id);
        feed_stream(s, std::string_view(l.gz).substr(0, l.gz.size() - 100));
        EXPECT_NE(error_of([&] { s.finish(); }), "(no error)");
    }
    EXPECT_TRUE(list_tree(store.layers_dir()).empty());
}

TEST(ImageLayerStream, EmptyStreamRejected) {
    ImageTempDir t;
    Store store(t.path);
    {
        LayerStream s(store, sha256_digest(""), sha256_digest(""));
        EXPECT_NE(error_of([&] { s.finish(); }), "(no error)");
    }
    EXPECT_TRUE(list_tree(store.layers_dir()).empty());
}
