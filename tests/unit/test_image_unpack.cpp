// image/ layer unpack: every entry kind, whiteouts, compression, and hostile
// layers — nothing may ever be created or changed outside the target dir.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <thread>

#include "image/digest.hpp"
#include "image/store.hpp"
#include "image/unpack.hpp"
#include "image_testutil.hpp"
#include "util/file.hpp"

using namespace vitro;
using namespace vitro::image;
using namespace image_test;

namespace {
struct stat lstat_of(const std::string& p) {
    struct stat st {};
    EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
    return st;
}
std::string xattr_of(const std::string& p, const char* name) {
    char buf[256];
    ssize_t n = ::lgetxattr(p.c_str(), name, buf, sizeof buf);
    return n < 0 ? std::string("(none)") : std::string(buf, static_cast<size_t>(n));
}
// A sandbox: <t>/layer is the target, <t>/outside a directory with a file a
// hostile layer would love to reach, <t>/secret a file next to it.
struct Sandbox {
    ImageTempDir t;
    std::string layer = t.path + "/layer", outside = t.path + "/outside", secret = t.path + "/secret";
    Sandbox() {
        ::mkdir(outside.c_str(), 0755);
        put_file(outside + "/victim", "v");
        put_file(secret, "s");
    }
    // The sandbox holds only what it started with, unchanged.
    void expect_outside_untouched() {
        std::vector<std::string> want = {"outside", "outside/victim", "secret"};
        auto got = list_tree(t.path);
        std::vector<std::string> rest;
        for (auto& p : got)
            if (p != "layer" && p.rfind("layer/", 0) != 0) rest.push_back(p);
        EXPECT_EQ(rest, want);
        EXPECT_EQ(slurp(outside + "/victim"), "v");
        EXPECT_EQ(slurp(secret), "s");
        EXPECT_EQ(lstat_of(secret).st_nlink, 1u);
        EXPECT_EQ(lstat_of(outside + "/victim").st_nlink, 1u);
        EXPECT_EQ(xattr_of(outside, "trusted.overlay.opaque"), "(none)");
    }
    std::string unpack(const std::vector<Entry>& entries) {
        return error_of([&] { unpack_layer_bytes(make_tar(entries), layer); });
    }
};
}  // namespace

TEST(ImageUnpack, EntryKinds) {
    ImageTempDir t;
    std::string d = t.path + "/l";
    std::string tar = make_tar({
        {.path = "etc/", .type = AE_IFDIR, .mode = 0750},
        {.path = "etc/passwd", .data = "root:x:0:0::/root:/bin/sh\n", .mode = 0640, .uid = 1000, .gid = 1001},
        {.path = "./bin/tool", .data = "#!", .mode = 04755},
        {.path = "bin/sh", .type = AE_IFLNK, .link = "/bin/busybox"},
        {.path = "bin/tool2", .hardlink = "bin/tool"},
        {.path = "dev/null", .type = AE_IFCHR, .mode = 0666, .major = 1, .minor = 3},
        {.path = "run/fifo", .type = AE_IFIFO, .mode = 0600},
        {.path = "x/attr", .data = "a", .xattrs = {{"user.note", "hi"}, {"trusted.overlay.redirect", "/etc"}}},
    });
    UnpackResult r = unpack_layer_bytes(tar, d);
    EXPECT_EQ(r.entries, 8u);
    EXPECT_EQ(r.diff_id, sha256_digest(tar));
    EXPECT_EQ(slurp(d + "/etc/passwd"), "root:x:0:0::/root:/bin/sh\n");
    auto st = lstat_of(d + "/etc/passwd");
    EXPECT_EQ(st.st_mode & 07777, 0640u);
    EXPECT_EQ(st.st_uid, 1000u);
    EXPECT_EQ(st.st_gid, 1001u);
    EXPECT_EQ(st.st_mtim.tv_sec, 1700000000);
    EXPECT_EQ(lstat_of(d + "/etc").st_mode & 07777, 0750u);
    EXPECT_EQ(lstat_of(d + "/etc").st_mtim.tv_sec, 1700000000);  // dir times set after its contents
    EXPECT_EQ(lstat_of(d + "/bin/tool").st_mode & 07777, 04755u);
    EXPECT_EQ(fs::read_symlink(d + "/bin/sh"), "/bin/busybox");
    EXPECT_EQ(lstat_of(d + "/bin/tool2").st_ino, lstat_of(d + "/bin/tool").st_ino);
    st = lstat_of(d + "/dev/null");
    EXPECT_TRUE(S_ISCHR(st.st_mode));
    EXPECT_EQ(st.st_rdev, ::makedev(1, 3));
    EXPECT_TRUE(S_ISFIFO(lstat_of(d + "/run/fifo").st_mode));
    EXPECT_EQ(xattr_of(d + "/x/attr", "user.note"), "hi");
    EXPECT_EQ(xattr_of(d + "/x/attr", "trusted.overlay.redirect"), "(none)");  // overlay control: dropped
}

TEST(ImageUnpack, CompressedLayersAndDiffId) {
    std::vector<Entry> entries = {{.path = "a", .data = "alpha"}, {.path = "b/c", .data = "gamma"}};
    std::string plain = make_tar(entries);
    for (auto c : {Compression::gzip, Compression::zstd}) {
        ImageTempDir t;
        std::string blob = make_tar(entries, c);
        ASSERT_NE(blob, plain);
        put_file(t.path + "/blob", blob);
        UniqueFd fd(::open((t.path + "/blob").c_str(), O_RDONLY));
        UnpackResult r = unpack_layer(fd.get(), t.path + "/l");
        EXPECT_EQ(r.diff_id, sha256_digest(plain));
        EXPECT_EQ(slurp(t.path + "/l/b/c"), "gamma");
    }
}

TEST(ImageUnpack, Whiteouts) {
    ImageTempDir t;
    std::string d = t.path + "/l";
    unpack_layer_bytes(make_tar({
                           {.path = ".wh.gone", .data = ""},
                           {.path = "etc/.wh.hosts", .data = ""},
                           {.path = "opt/", .type = AE_IFDIR, .mode = 0755},
                           {.path = "opt/.wh..wh..opq", .data = ""},
                           {.path = "opt/new", .data = "n"},
                       }),
                       d);
    for (auto p : {"/gone", "/etc/hosts"}) {
        auto st = lstat_of(d + p);
        EXPECT_TRUE(S_ISCHR(st.st_mode)) << p;
        EXPECT_EQ(st.st_rdev, ::makedev(0, 0)) << p;
    }
    EXPECT_FALSE(path_exists(d + "/.wh.gone"));
    EXPECT_FALSE(path_exists(d + "/opt/.wh..wh..opq"));
    EXPECT_EQ(xattr_of(d + "/opt", "trusted.overlay.opaque"), "y");
    EXPECT_EQ(slurp(d + "/opt/new"), "n");
    EXPECT_NE(error_of([&] { unpack_layer_bytes(make_tar({{.path = "x/.wh...", .data = ""}}), t.path + "/l2"); })
                  .find("invalid whiteout"),
              std::string::npos);
}

TEST(ImageUnpack, HugeSparseFile) {
    ImageTempDir t;
    const int64_t size = int64_t{8} << 30;  // 8 GiB apparent, a few KiB on disk
    std::string tar = make_tar({{.path = "big", .data = "tail", .sparse_size = size}});
    ASSERT_LT(tar.size(), 64u << 10);
    unpack_layer_bytes(tar, t.path + "/l");
    auto st = lstat_of(t.path + "/l/big");
    EXPECT_EQ(st.st_size, size);
    EXPECT_LT(st.st_blocks * 512, 1 << 20);
    UniqueFd fd(::open((t.path + "/l/big").c_str(), O_RDONLY));
    char buf[4];
    ASSERT_EQ(::pread(fd.get(), buf, 4, size - 4), 4);
    EXPECT_EQ(std::string(buf, 4), "tail");
}

TEST(ImageUnpack, GarbageAndTruncatedRejectedAndRemoved) {
    ImageTempDir t;
    std::string d = t.path + "/l";
    EXPECT_NE(error_of([&] { unpack_layer_bytes("this is not a tar archive at all", d); }), "(no error)");
    EXPECT_FALSE(path_exists(d));
    EXPECT_NE(error_of([&] { unpack_layer_bytes("", d); }), "(no error)");
    EXPECT_FALSE(path_exists(d));
    std::string tar = make_tar({{.path = "a", .data = std::string(100000, 'x')}});
    EXPECT_NE(error_of([&] { unpack_layer_bytes(tar.substr(0, 5000), d); }), "(no error)");
    EXPECT_FALSE(path_exists(d));
    // The target must be fresh.
    ::mkdir(d.c_str(), 0755);
    EXPECT_NE(error_of([&] { unpack_layer_bytes(make_tar({{.path = "a"}}), d); }).find("EEXIST"), std::string::npos);
}

TEST(ImageUnpackHostile, DotDotRejected) {
    Sandbox s;
    std::string err = s.unpack({{.path = "ok", .data = "1"}, {.path = "../x", .data = "pwn"}});
    EXPECT_NE(err.find("\"..\" in a layer path"), std::string::npos) << err;
    EXPECT_FALSE(path_exists(s.layer));  // partial layer removed
    s.expect_outside_untouched();
    EXPECT_NE(s.unpack({{.path = "a/../../outside/victim", .data = "pwn"}}), "(no error)");
    s.expect_outside_untouched();
}

TEST(ImageUnpackHostile, AbsolutePathContained) {
    Sandbox s;
    std::string abs = s.outside + "/abs-file";
    EXPECT_EQ(s.unpack({{.path = abs, .data = "contained"}, {.path = "/etc/x", .data = "y"}}), "(no error)");
    EXPECT_EQ(slurp(s.layer + abs), "contained");
    EXPECT_EQ(slurp(s.layer + "/etc/x"), "y");
    s.expect_outside_untouched();
}

TEST(ImageUnpackHostile, SymlinkThenWrite) {
    for (std::string target : {std::string("ABS"), std::string("../outside"), std::string("../../../../../..")}) {
        Sandbox s;
        std::string link = target == "ABS" ? s.outside : target;
        s.unpack({{.path = "a", .type = AE_IFLNK, .link = link},
                  {.path = "a/file", .data = "pwn"},
                  {.path = "a/victim", .data = "pwn"},
                  {.path = "a/.wh.victim", .data = ""},
                  {.path = "a/.wh..wh..opq", .data = ""},
                  {.path = "a/sub/deep", .data = "pwn"}});
        s.expect_outside_untouched();
    }
}

TEST(ImageUnpackHostile, SymlinkReplacedByDirectory) {
    Sandbox s;
    EXPECT_EQ(s.unpack({{.path = "d", .type = AE_IFLNK, .link = s.outside},
                        {.path = "d", .type = AE_IFDIR, .mode = 0755},
                        {.path = "d/victim", .data = "inside"}}),
              "(no error)");
    EXPECT_EQ(slurp(s.layer + "/d/victim"), "inside");
    s.expect_outside_untouched();
}

TEST(ImageUnpackHostile, HardlinksStayInside) {
    {
        Sandbox s;  // absolute target: resolved in the layer, where it does not exist
        EXPECT_NE(s.unpack({{.path = "h", .hardlink = s.secret}}), "(no error)");
        EXPECT_FALSE(path_exists(s.layer));
        s.expect_outside_untouched();
    }
    {
        Sandbox s;  // ".." in the target
        std::string err = s.unpack({{.path = "h", .hardlink = "../secret"}});
        EXPECT_NE(err.find("\"..\""), std::string::npos) << err;
        s.expect_outside_untouched();
    }
    {
        Sandbox s;  // through a symlinked parent
        EXPECT_NE(s.unpack({{.path = "l", .type = AE_IFLNK, .link = s.t.path}, {.path = "h", .hardlink = "l/secret"}}),
                  "(no error)");
        s.expect_outside_untouched();
    }
    {
        Sandbox s;  // to a symlink that points out: links the symlink itself
        EXPECT_EQ(s.unpack({{.path = "l", .type = AE_IFLNK, .link = s.secret}, {.path = "h", .hardlink = "l"}}),
                  "(no error)");
        EXPECT_TRUE(S_ISLNK(lstat_of(s.layer + "/h").st_mode));
        s.expect_outside_untouched();
    }
    {
        Sandbox s;  // hardlink entry whose own path climbs out
        EXPECT_NE(s.unpack({{.path = "f", .data = "x"}, {.path = "../outside/h", .hardlink = "f"}}), "(no error)");
        s.expect_outside_untouched();
    }
}

TEST(ImageUnpackHostile, DeviceNodesStayInside) {
    Sandbox s;
    EXPECT_EQ(s.unpack({{.path = "/dev/sda", .type = AE_IFBLK, .mode = 0600, .major = 8, .minor = 0}}), "(no error)");
    EXPECT_TRUE(S_ISBLK(lstat_of(s.layer + "/dev/sda").st_mode));
    s.expect_outside_untouched();
}

TEST(ImageLayerCache, EnsureLayer) {
    ImageTempDir t;
    Store store(t.path);
    std::string tar = make_tar({{.path = "hello", .data = "world"}});
    std::string gz = make_tar({{.path = "hello", .data = "world"}}, Compression::gzip);
    std::string blob = store.put_blob_bytes(gz);
    std::string diff = sha256_digest(tar);
    EXPECT_FALSE(layer_ready(store, diff));
    // A wrong diffID: rejected, nothing left in layers/.
    std::string err = error_of([&] { ensure_layer(store, blob, sha256_digest("other")); });
    EXPECT_NE(err.find("the image config says"), std::string::npos) << err;
    EXPECT_TRUE(list_tree(store.layers_dir()).empty());
    std::string root = ensure_layer(store, blob, diff);
    EXPECT_EQ(root, layer_rootfs(store, diff));
    EXPECT_TRUE(layer_ready(store, diff));
    EXPECT_EQ(slurp(root + "/hello"), "world");
    EXPECT_EQ(ensure_layer(store, blob, diff), root);  // cached
    EXPECT_EQ(list_tree(store.layers_dir()).size(), 4u);  // <hex>, <hex>/complete, <hex>/rootfs, <hex>/rootfs/hello
}

TEST(ImageLayerCache, ConcurrentEnsureSeesOneCompleteLayer) {
    ImageTempDir t;
    Store store(t.path);
    std::vector<Entry> entries;
    for (int i = 0; i < 200; ++i) entries.push_back({.path = "d/f" + std::to_string(i), .data = std::string(1000, 'x')});
    std::string tar = make_tar(entries);
    std::string blob = store.put_blob_bytes(tar);
    std::string results[4];
    std::vector<std::thread> threads;
    for (auto& r : results)
        threads.emplace_back([&] {
            r = error_of([&] { r = ensure_layer(Store(t.path), blob, blob); });
            if (r == "(no error)") r = layer_rootfs(store, blob);
        });
    for (auto& th : threads) th.join();
    for (auto& r : results) EXPECT_EQ(r, layer_rootfs(store, blob));
    EXPECT_EQ(list_tree(store.layers_dir()).size(), 204u);  // one layer, no temp dirs left
    EXPECT_EQ(slurp(layer_rootfs(store, blob) + "/d/f199"), std::string(1000, 'x'));
}
