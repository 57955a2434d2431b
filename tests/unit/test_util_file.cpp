// util/file: make_dirs, the `mkdir -p` every layer uses (state dirs,
// cgroups, rootfs paths).
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "testutil.hpp"
#include "util/error.hpp"
#include "util/file.hpp"

namespace {

using vitro::test::TempDir;

mode_t mode_of(const std::filesystem::path& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 ? st.st_mode : 0;
}

TEST(MakeDirs, MakesEveryMissingParentWithItsMode) {
    TempDir t("makedirs");
    const auto leaf = t.path / "a" / "b" / "c";
    vitro::make_dirs(leaf.string(), 0711);
    EXPECT_TRUE(S_ISDIR(mode_of(leaf)));
    EXPECT_EQ(mode_of(t.path / "a") & 07777 & ~0022u, 0711u & ~0022u);  // less the umask
    // There already, or named with a trailing slash: fine, nothing changes.
    vitro::make_dirs(leaf.string(), 0700);
    vitro::make_dirs((t.path / "a" / "b2").string() + "/", 0755);
    EXPECT_TRUE(S_ISDIR(mode_of(t.path / "a" / "b2")));
}

TEST(MakeDirs, AFileInThePathIsAnErrorNamingThePath) {
    TempDir t("makedirs");
    vitro::write_file_atomic((t.path / "f").string(), "x");
    const std::string under = (t.path / "f" / "d" / "e").string();
    try {
        vitro::make_dirs(under);
        FAIL() << "no error";
    } catch (const vitro::Error& e) {
        EXPECT_NE(std::string(e.what()).find(t.path.string() + "/f"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("mkdir"), std::string::npos) << e.what();
    }
}

}  // namespace
