// image/ overlay snapshots: mount over unpacked layers, A/C/D diff of the
// upper dir, and nothing (mount, dir) left behind on any path. Root only.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>

#include "image/snapshot.hpp"
#include "image/unpack.hpp"
#include "image_testutil.hpp"
#include "util/file.hpp"

using namespace vitro;
using namespace vitro::image;
using namespace image_test;

namespace {

bool in_mountinfo(const std::string& path) {
    std::string info = read_file("/proc/self/mountinfo");
    return info.find(" " + path + " ") != std::string::npos;
}

bool exists(const std::string& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0;
}

#define REQUIRE_ROOT()                                          \
    do {                                                        \
        if (::geteuid() != 0) GTEST_SKIP() << "needs root";     \
    } while (0)

// A store root with two unpacked layers, base first.
struct Layers {
    ImageTempDir t;
    std::string root = t.path;
    std::vector<std::string> layers;
    Layers() {
        make_dirs(root + "/layers");
        layers.push_back(unpack(1, {
                                       {.path = "etc/", .type = AE_IFDIR, .mode = 0755},
                                       {.path = "etc/passwd", .data = "root:x:0:0::/root:/bin/sh\n"},
                                       {.path = "etc/hosts", .data = "127.0.0.1 localhost\n"},
                                       {.path = "bin/sh", .data = "#!sh", .mode = 0755},
                                       {.path = "usr/share/doc/a", .data = "a"},
                                       {.path = "usr/share/doc/b", .data = "b"},
                                       {.path = "opt/keep", .data = "k"},
                                   }));
        layers.push_back(unpack(2, {
                                       {.path = "app/run", .data = "run", .mode = 0755},
                                       {.path = "opt/.wh.keep"},
                                       {.path = "etc/hosts", .data = "127.0.0.1 localhost app\n"},
                                   }));
    }
    std::string unpack(int n, const std::vector<Entry>& entries) {
        std::string dir = root + "/layers/l" + std::to_string(n);
        make_dirs(dir);
        unpack_layer_bytes(make_tar(entries), dir + "/rootfs");
        return dir + "/rootfs";
    }
};

}  // namespace

TEST(ImageSnapshot, DiffOfHandMadeUpperDir) {
    // No mount needed: whiteouts and opaque dirs made by hand.
    REQUIRE_ROOT();
    Layers l;
    std::string up = l.t.path + "/upper";
    make_dirs(up + "/etc");
    put_file(up + "/etc/passwd", "changed");
    put_file(up + "/new", "n");
    make_dirs(up + "/bin");
    ASSERT_EQ(::mknod((up + "/bin/sh").c_str(), S_IFCHR | 0, makedev(0, 0)), 0);
    make_dirs(up + "/usr/share/doc");
    ASSERT_EQ(::setxattr((up + "/usr/share/doc").c_str(), "trusted.overlay.opaque", "y", 1, 0), 0);
    put_file(up + "/usr/share/doc/b", "b2");
    put_file(up + "/usr/share/doc/c", "c");
    make_dirs(up + "/opt");
    put_file(up + "/opt/keep", "again");  // whited out by layer 2: added again
    ASSERT_EQ(::symlink("/etc", (up + "/link").c_str()), 0);

    std::vector<Change> want = {
        {'C', "/bin"},           {'D', "/bin/sh"},        {'C', "/etc"},
        {'C', "/etc/passwd"},    {'A', "/link"},          {'A', "/new"},
        {'C', "/opt"},           {'A', "/opt/keep"},      {'C', "/usr"},
        {'C', "/usr/share"},     {'C', "/usr/share/doc"}, {'D', "/usr/share/doc/a"},
        {'C', "/usr/share/doc/b"}, {'A', "/usr/share/doc/c"},
    };
    EXPECT_EQ(diff(up, l.layers), want) << format_changes(diff(up, l.layers));
    EXPECT_EQ(format_changes({{'A', "/x"}, {'D', "/y"}}), "A /x\nD /y\n");
}

TEST(ImageSnapshot, MountWriteDiffUnmountRemove) {
    REQUIRE_ROOT();
    Layers l;
    std::string dir, merged;
    {
        Snapshot s = Snapshot::create(l.root, "c1", l.layers);
        dir = s.dir();
        merged = s.merged_dir();
        EXPECT_EQ(dir, l.root + "/containers/c1");
        s.mount();
        ASSERT_TRUE(s.mounted());
        ASSERT_TRUE(in_mountinfo(merged));
        // The merged view: top layer wins, whiteouts hide.
        EXPECT_EQ(slurp(merged + "/etc/hosts"), "127.0.0.1 localhost app\n");
        EXPECT_EQ(slurp(merged + "/app/run"), "run");
        EXPECT_FALSE(exists(merged + "/opt/keep"));
        EXPECT_TRUE(s.diff().empty()) << format_changes(s.diff());

        put_file(merged + "/new.txt", "n");
        put_file(merged + "/etc/passwd", "root:x:0:0::/root:/bin/bash\n");
        ASSERT_EQ(::unlink((merged + "/bin/sh").c_str()), 0);
        std::filesystem::remove_all(merged + "/usr/share/doc");
        make_dirs(merged + "/usr/share/doc");
        put_file(merged + "/usr/share/doc/c", "c");
        put_file(merged + "/opt/keep", "again");
        ASSERT_EQ(::symlink("/etc", (merged + "/link").c_str()), 0);

        std::vector<Change> want = {
            {'C', "/bin"},        {'D', "/bin/sh"}, {'C', "/etc"},           {'C', "/etc/passwd"},
            {'A', "/link"},       {'A', "/new.txt"}, {'C', "/opt"},          {'A', "/opt/keep"},
            {'C', "/usr"},        {'C', "/usr/share"}, {'C', "/usr/share/doc"}, {'D', "/usr/share/doc/a"},
            {'D', "/usr/share/doc/b"}, {'A', "/usr/share/doc/c"},
        };
        EXPECT_EQ(s.diff(), want) << format_changes(s.diff());
        // The lower layers are untouched.
        EXPECT_EQ(slurp(l.layers[0] + "/etc/passwd"), "root:x:0:0::/root:/bin/sh\n");
        EXPECT_TRUE(exists(l.layers[0] + "/bin/sh"));

        // Reopened by id (as `vitro diff` would): the same answer.
        Snapshot again = Snapshot::open(l.root, "c1", l.layers);
        EXPECT_EQ(again.diff(), want);

        s.unmount();
        EXPECT_FALSE(s.mounted());
        EXPECT_FALSE(in_mountinfo(merged));
        s.unmount();  // twice is fine
        s.remove();
        EXPECT_FALSE(exists(dir));
    }
    EXPECT_FALSE(in_mountinfo(merged));
    EXPECT_FALSE(exists(dir));
}

TEST(ImageSnapshot, ReleasedSnapshotOutlivesItsObject) {
    REQUIRE_ROOT();
    Layers l;
    std::string merged;
    {
        Snapshot s = Snapshot::create(l.root, "keep", l.layers);
        s.mount();
        merged = s.merged_dir();
        s.release();
    }
    EXPECT_TRUE(in_mountinfo(merged));
    Snapshot s = Snapshot::open(l.root, "keep", l.layers);
    EXPECT_TRUE(s.mounted());
    s.remove();
    EXPECT_FALSE(in_mountinfo(merged));
    EXPECT_FALSE(exists(l.root + "/containers/keep"));
}

TEST(ImageSnapshot, FailureMidWayLeavesNoMount) {
    REQUIRE_ROOT();
    Layers l;
    std::string merged = l.root + "/containers/boom/merged";
    try {
        Snapshot s = Snapshot::create(l.root, "boom", l.layers);
        s.mount();
        ASSERT_TRUE(in_mountinfo(merged));
        throw Error(EIO, "later step failed");
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "later step failed");
    }
    EXPECT_FALSE(in_mountinfo(merged));
    EXPECT_FALSE(exists(l.root + "/containers/boom"));

    // A mount that fails (a missing layer) leaves neither mount nor dir.
    auto bad = l.layers;
    bad.push_back(l.root + "/layers/missing/rootfs");
    std::string err = error_of([&] {
        Snapshot s = Snapshot::create(l.root, "bad", bad);
        s.mount();
    });
    EXPECT_NE(err.find("mount overlay on"), std::string::npos) << err;
    EXPECT_FALSE(in_mountinfo(l.root + "/containers/bad/merged"));
    EXPECT_FALSE(exists(l.root + "/containers/bad"));
}

TEST(ImageSnapshot, CreateRejectsBadOrTakenIds) {
    REQUIRE_ROOT();
    Layers l;
    EXPECT_NE(error_of([&] { Snapshot::create(l.root, "../x", l.layers); }), "(no error)");
    EXPECT_NE(error_of([&] { Snapshot::create(l.root, "..", l.layers); }), "(no error)");
    EXPECT_NE(error_of([&] { Snapshot::open(l.root, "nope", l.layers); }), "(no error)");
    Snapshot s = Snapshot::create(l.root, "dup", l.layers);
    std::string err = error_of([&] { Snapshot::create(l.root, "dup", l.layers); });
    EXPECT_NE(err.find("EEXIST"), std::string::npos) << err;
    EXPECT_TRUE(exists(s.dir()));  // the failed create did not remove the first one's dir
}

TEST(ImageSnapshot, SingleLayerAndScratch) {
    REQUIRE_ROOT();
    Layers l;
    {
        Snapshot s = Snapshot::create(l.root, "one", {l.layers[0]});
        s.mount();
        EXPECT_EQ(slurp(s.merged_dir() + "/etc/hosts"), "127.0.0.1 localhost\n");
        EXPECT_TRUE(exists(s.merged_dir() + "/opt/keep"));
    }
    EXPECT_FALSE(exists(l.root + "/containers/one"));
    {
        Snapshot s = Snapshot::create(l.root, "scratch", {});
        s.mount();
        put_file(s.merged_dir() + "/f", "x");
        EXPECT_EQ(s.diff(), (std::vector<Change>{{'A', "/f"}}));
    }
    EXPECT_FALSE(exists(l.root + "/containers/scratch"));
}

TEST(ImageSnapshot, LowerdirLongerThanAPage) {
    REQUIRE_ROOT();
    Layers l;
    // 50 layers with long names: the absolute lowerdir= string is > 4096 bytes,
    // relative to their parent it fits.
    std::vector<std::string> many;
    std::string pad(60, 'x');
    for (int i = 0; i < 50; ++i) {
        std::string n = std::to_string(i);
        std::string dir = l.root + "/layers/" + pad + n;
        make_dirs(dir);
        unpack_layer_bytes(make_tar({{.path = "layer", .data = n}, {.path = "f" + n, .data = n}}), dir + "/rootfs");
        many.push_back(dir + "/rootfs");
    }
    char before[4096];
    ASSERT_NE(::getcwd(before, sizeof before), nullptr);
    {
        Snapshot s = Snapshot::create(l.root, "long", many);
        s.mount();
        EXPECT_EQ(slurp(s.merged_dir() + "/layer"), "49");  // the top layer wins
        EXPECT_EQ(slurp(s.merged_dir() + "/f0"), "0");
        EXPECT_EQ(slurp(s.merged_dir() + "/f49"), "49");
    }
    char after[4096];
    ASSERT_NE(::getcwd(after, sizeof after), nullptr);
    EXPECT_STREQ(before, after);  // our cwd never moved
    EXPECT_FALSE(in_mountinfo(l.root + "/containers/long/merged"));
    EXPECT_FALSE(exists(l.root + "/containers/long"));

    // Too long even when relative: a clear error, nothing left.
    std::string longpad(200, 'y');
    std::vector<std::string> spread;
    for (int i = 0; i < 30; ++i) {
        std::string dir = l.root + "/d" + std::to_string(i) + "/" + longpad;
        make_dirs(dir);
        spread.push_back(dir);
    }
    std::string err = error_of([&] {
        Snapshot s = Snapshot::create(l.root, "huge", spread);
        s.mount();
    });
    EXPECT_NE(err.find("30 layers"), std::string::npos) << err;
    EXPECT_FALSE(exists(l.root + "/containers/huge"));
}
