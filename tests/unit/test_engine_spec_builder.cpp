// engine/ spec builder: image config + run options -> OCI config.json with
// docker's semantics (entrypoint/cmd, env, user resolution in the rootfs).
#include <gtest/gtest.h>

#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "engine/spec_builder.hpp"
#include "image_testutil.hpp"
#include "oci/default_spec.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

using namespace vitro;
using namespace vitro::image;
using namespace vitro::engine;
using namespace image_test;
using nlohmann::json;

namespace {

struct Rootfs {
    ImageTempDir t;
    std::string path = t.path;
    Rootfs() {
        make_dirs(path + "/etc");
        put_file(path + "/etc/passwd",
                 "root:x:0:0:root:/root:/bin/sh\n"
                 "# a comment\n"
                 "daemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n"
                 "app:x:1000:1000:App:/home/app:/bin/sh\n"
                 "broken line\n");
        put_file(path + "/etc/group",
                 "root:x:0:\n"
                 "staff:x:50:app,other\n"
                 "app:x:1000:\n"
                 "audio:x:29:other, app\n");
    }
};

ImageConfig image_with(std::vector<std::string> ep, std::vector<std::string> cmd) {
    ImageConfig c;
    c.entrypoint = std::move(ep);
    c.cmd = std::move(cmd);
    return c;
}

std::vector<std::string> args_of(const ImageConfig& img, const RunOptions& o, const std::string& rootfs) {
    return build_spec(img, o, rootfs)["process"]["args"].get<std::vector<std::string>>();
}

using V = std::vector<std::string>;

}  // namespace

TEST(EngineSpecBuilder, EntrypointCmdCombinations) {
    Rootfs r;
    RunOptions o;
    // Entrypoint + Cmd: Cmd are the default arguments.
    EXPECT_EQ(args_of(image_with({"/ep", "-x"}, {"a"}), o, r.path), (V{"/ep", "-x", "a"}));
    // Only Cmd; only Entrypoint.
    EXPECT_EQ(args_of(image_with({}, {"sh", "-c", "true"}), o, r.path), (V{"sh", "-c", "true"}));
    EXPECT_EQ(args_of(image_with({"/ep"}, {}), o, r.path), (V{"/ep"}));
    // A command replaces Cmd, keeps Entrypoint.
    o.command = {"b", "c"};
    EXPECT_EQ(args_of(image_with({"/ep"}, {"a"}), o, r.path), (V{"/ep", "b", "c"}));
    EXPECT_EQ(args_of(image_with({}, {"a"}), o, r.path), (V{"b", "c"}));
    // --entrypoint replaces Entrypoint and clears the image's Cmd.
    RunOptions e;
    e.entrypoint = "/x";
    EXPECT_EQ(args_of(image_with({"/ep"}, {"a"}), e, r.path), (V{"/x"}));
    e.command = {"y"};
    EXPECT_EQ(args_of(image_with({"/ep"}, {"a"}), e, r.path), (V{"/x", "y"}));
    // --entrypoint "" resets it: the command alone.
    RunOptions reset;
    reset.entrypoint = "";
    reset.command = {"sh"};
    EXPECT_EQ(args_of(image_with({"/ep"}, {"a"}), reset, r.path), (V{"sh"}));
    // Nothing at all to run: a clear error.
    std::string err = error_of([&] { build_spec(image_with({}, {}), RunOptions{}, r.path); });
    EXPECT_NE(err.find("no command specified"), std::string::npos) << err;
    RunOptions only_reset;
    only_reset.entrypoint = "";
    err = error_of([&] { build_spec(image_with({"/ep"}, {"a"}), only_reset, r.path); });
    EXPECT_NE(err.find("no command specified"), std::string::npos) << err;
}

TEST(EngineSpecBuilder, UserResolution) {
    Rootfs r;
    auto u = resolve_user(r.path, "");
    EXPECT_EQ(u.uid, 0u);
    EXPECT_EQ(u.gid, 0u);
    EXPECT_EQ(u.home, "/root");

    u = resolve_user(r.path, "app");
    EXPECT_EQ(u.uid, 1000u);
    EXPECT_EQ(u.gid, 1000u);
    EXPECT_EQ(u.home, "/home/app");
    EXPECT_EQ(u.additional_gids, (std::vector<uint32_t>{50, 29}));

    u = resolve_user(r.path, "1000");  // numeric, in passwd: its gid and home
    EXPECT_EQ(u.uid, 1000u);
    EXPECT_EQ(u.gid, 1000u);
    EXPECT_EQ(u.home, "/home/app");

    u = resolve_user(r.path, "4242");  // numeric, not in passwd: fine, gid 0
    EXPECT_EQ(u.uid, 4242u);
    EXPECT_EQ(u.gid, 0u);
    EXPECT_EQ(u.home, "/");

    u = resolve_user(r.path, "1000:50");
    EXPECT_EQ(u.uid, 1000u);
    EXPECT_EQ(u.gid, 50u);
    EXPECT_TRUE(u.additional_gids.empty());

    u = resolve_user(r.path, "app:staff");
    EXPECT_EQ(u.uid, 1000u);
    EXPECT_EQ(u.gid, 50u);

    u = resolve_user(r.path, "daemon:7");
    EXPECT_EQ(u.uid, 1u);
    EXPECT_EQ(u.gid, 7u);

    std::string err = error_of([&] { resolve_user(r.path, "nobody"); });
    EXPECT_NE(err.find("unable to find user nobody"), std::string::npos) << err;
    err = error_of([&] { resolve_user(r.path, "app:wheel"); });
    EXPECT_NE(err.find("unable to find group wheel"), std::string::npos) << err;
    err = error_of([&] { resolve_user(r.path, "app:"); });
    EXPECT_NE(err, "(no error)");

    // In the spec: the image's user, overridden by --user.
    ImageConfig img = image_with({}, {"sh"});
    img.user = "app";
    json spec = build_spec(img, RunOptions{}, r.path);
    EXPECT_EQ(spec["process"]["user"]["uid"], 1000);
    EXPECT_EQ(spec["process"]["user"]["gid"], 1000);
    EXPECT_EQ(spec["process"]["user"]["additionalGids"], json({50, 29}));
    RunOptions o;
    o.user = "0:0";
    spec = build_spec(img, o, r.path);
    EXPECT_EQ(spec["process"]["user"], json({{"uid", 0}, {"gid", 0}}));
    o.user = "ghost";
    err = error_of([&] { build_spec(img, o, r.path); });
    EXPECT_NE(err.find("unable to find user ghost"), std::string::npos) << err;
}

TEST(EngineSpecBuilder, UserLookupStaysInsideTheRootfs) {
    // /etc/passwd a symlink to a passwd file outside the rootfs (absolute, and
    // by ".."): resolved inside the rootfs, where it does not exist, so the
    // outside file's "evil" entry must never be found.
    ImageTempDir outside;
    put_file(outside.path + "/passwd", "evil:x:0:0::/:/bin/sh\n");
    std::string base = outside.path.substr(outside.path.rfind('/') + 1);
    for (std::string target : {outside.path + "/passwd", "../../../../" + base + "/passwd"}) {
        ImageTempDir t;
        make_dirs(t.path + "/etc");
        ASSERT_EQ(::symlink(target.c_str(), (t.path + "/etc/passwd").c_str()), 0);
        std::string err = error_of([&] { resolve_user(t.path, "evil"); });
        EXPECT_NE(err.find("unable to find user evil"), std::string::npos) << target << ": " << err;
    }
    std::string err;
    // A FIFO planted as /etc/group is refused, not read (no hang).
    Rootfs r;
    ::unlink((r.path + "/etc/group").c_str());
    ASSERT_EQ(::mkfifo((r.path + "/etc/group").c_str(), 0644), 0);
    err = error_of([&] { resolve_user(r.path, "app"); });
    EXPECT_NE(err.find("not a regular file"), std::string::npos) << err;
    // No passwd at all: numeric users still work.
    ImageTempDir empty;
    EXPECT_EQ(resolve_user(empty.path, "123:456").gid, 456u);
}

TEST(EngineSpecBuilder, EnvMergeAndOverride) {
    Rootfs r;
    ImageConfig img = image_with({}, {"sh"});
    img.env = {"PATH=/img/bin", "A=1", "B=2"};
    RunOptions o;
    o.env = {"B=3", "C=4", "A=", "VITRO_TEST_FROM_HOST", "VITRO_TEST_UNSET"};
    ::setenv("VITRO_TEST_FROM_HOST", "h", 1);
    ::unsetenv("VITRO_TEST_UNSET");
    json spec = build_spec(img, o, r.path);
    EXPECT_EQ(spec["process"]["env"], json({"PATH=/img/bin", "A=", "B=3", "C=4", "VITRO_TEST_FROM_HOST=h", "HOME=/root"}));

    // PATH defaulted (first) when the image has none; HOSTNAME, TERM with a tty.
    img.env = {"X=1"};
    RunOptions t;
    t.tty = true;
    t.hostname = "box";
    spec = build_spec(img, t, r.path);
    EXPECT_EQ(spec["process"]["env"],
              json({std::string("PATH=") + kDefaultPath, "X=1", "HOSTNAME=box", "TERM=xterm", "HOME=/root"}));
    EXPECT_EQ(spec["process"]["terminal"], true);
    EXPECT_EQ(spec["hostname"], "box");
    // A user-given PATH wins; HOME of a non-root user.
    t.env = {"PATH=/mine"};
    t.user = "app";
    spec = build_spec(img, t, r.path);
    EXPECT_EQ(spec["process"]["env"][0], "X=1");
    EXPECT_EQ(spec["process"]["env"][1], "PATH=/mine");
    EXPECT_EQ(spec["process"]["env"].back(), "HOME=/home/app");
    RunOptions bad;
    bad.env = {"=x"};
    EXPECT_NE(error_of([&] { build_spec(img, bad, r.path); }), "(no error)");
}

TEST(EngineSpecBuilder, WorkdirRootLimitsCapsMounts) {
    Rootfs r;
    ImageConfig img = image_with({}, {"sh"});
    img.working_dir = "/srv";
    json spec = build_spec(img, RunOptions{}, r.path);
    // The default spec's shape is kept.
    json def = oci::default_spec(false);
    EXPECT_EQ(spec["ociVersion"], def["ociVersion"]);
    EXPECT_EQ(spec["linux"]["namespaces"], def["linux"]["namespaces"]);
    EXPECT_EQ(spec["linux"]["maskedPaths"], def["linux"]["maskedPaths"]);
    EXPECT_EQ(spec["mounts"], def["mounts"]);
    EXPECT_EQ(spec["process"]["cwd"], "/srv");
    EXPECT_EQ(spec["process"]["terminal"], false);
    EXPECT_EQ(spec["process"]["noNewPrivileges"], false);
    EXPECT_EQ(spec["root"], json({{"path", "rootfs"}, {"readonly", false}}));
    EXPECT_EQ(spec["process"]["capabilities"]["bounding"], json(default_capabilities()));
    EXPECT_FALSE(spec["linux"]["resources"].contains("memory"));

    RunOptions o;
    o.workdir = "/work";
    o.read_only = true;
    o.root_path = "/var/lib/vitro/containers/c/merged";
    o.memory = 64 << 20;
    o.cpus = 1.5;
    o.pids_limit = 100;
    o.cap_add = {"sys_admin", "CAP_NET_ADMIN"};
    o.cap_drop = {"NET_RAW", "chown"};
    o.no_new_privileges = true;
    o.mounts = {{.source = "/data", .destination = "/data", .options = {"ro"}},
                {.source = "", .destination = "/dev/shm", .type = "tmpfs", .options = {"size=1m"}},
                {.source = "", .destination = "/tmp", .type = "tmpfs"}};
    spec = build_spec(img, o, r.path);
    EXPECT_EQ(spec["process"]["cwd"], "/work");
    EXPECT_EQ(spec["root"], json({{"path", "/var/lib/vitro/containers/c/merged"}, {"readonly", true}}));
    EXPECT_EQ(spec["linux"]["resources"]["memory"]["limit"], 64 << 20);
    EXPECT_EQ(spec["linux"]["resources"]["cpu"]["quota"], 150000);
    EXPECT_EQ(spec["linux"]["resources"]["cpu"]["period"], 100000);
    EXPECT_EQ(spec["linux"]["resources"]["pids"]["limit"], 100);
    EXPECT_EQ(spec["linux"]["resources"]["devices"], def["linux"]["resources"]["devices"]);
    EXPECT_EQ(spec["process"]["noNewPrivileges"], true);
    auto caps = spec["process"]["capabilities"]["effective"].get<std::vector<std::string>>();
    auto has = [&](const std::string& c) { return std::find(caps.begin(), caps.end(), c) != caps.end(); };
    EXPECT_TRUE(has("CAP_SYS_ADMIN"));
    EXPECT_TRUE(has("CAP_NET_ADMIN"));
    EXPECT_TRUE(has("CAP_KILL"));
    EXPECT_FALSE(has("CAP_NET_RAW"));
    EXPECT_FALSE(has("CAP_CHOWN"));
    EXPECT_EQ(spec["process"]["capabilities"]["bounding"], spec["process"]["capabilities"]["permitted"]);

    auto find_mount = [&](const std::string& dst) {
        json found;
        int n = 0;
        for (auto& m : spec["mounts"])
            if (m["destination"] == dst) {
                found = m;
                ++n;
            }
        EXPECT_LE(n, 1) << dst;
        return found;
    };
    EXPECT_EQ(find_mount("/data"),
              json({{"destination", "/data"}, {"type", "bind"}, {"source", "/data"}, {"options", {"rbind", "ro"}}}));
    EXPECT_EQ(find_mount("/dev/shm"),
              json({{"destination", "/dev/shm"}, {"type", "tmpfs"}, {"source", "tmpfs"}, {"options", {"size=1m"}}}));
    EXPECT_EQ(find_mount("/tmp")["options"], json({"nosuid", "nodev"}));

    // drop ALL, add one back; add ALL.
    RunOptions d;
    d.cap_drop = {"ALL"};
    d.cap_add = {"kill"};
    spec = build_spec(img, d, r.path);
    EXPECT_EQ(spec["process"]["capabilities"]["effective"], json({"CAP_KILL"}));
    RunOptions a;
    a.cap_add = {"all"};
    spec = build_spec(img, a, r.path);
    EXPECT_GT(spec["process"]["capabilities"]["effective"].size(), 30u);

    // Bad input: clear errors.
    RunOptions bad;
    bad.cap_add = {"NOT_A_CAP"};
    EXPECT_NE(error_of([&] { build_spec(img, bad, r.path); }).find("unknown capability"), std::string::npos);
    RunOptions rel;
    rel.workdir = "relative";
    EXPECT_NE(error_of([&] { build_spec(img, rel, r.path); }).find("not an absolute path"), std::string::npos);
    RunOptions relm;
    relm.mounts = {{.source = "/x", .destination = "y"}};
    EXPECT_NE(error_of([&] { build_spec(img, relm, r.path); }).find("not an absolute path"), std::string::npos);
}

TEST(EngineSpecBuilder, UlimitsParsedAndReplaceTheDefaults) {
    auto u = parse_ulimits({"nofile=512:1024", "core=-1", "nproc=10", "nofile=600:700"});
    ASSERT_EQ(u.size(), 2u + 1u);  // a later nofile replaces the first
    EXPECT_EQ(u[0].name, "nofile");
    EXPECT_EQ(u[0].soft, 600u);
    EXPECT_EQ(u[0].hard, 700u);
    EXPECT_EQ(u[1].soft, RLIM_INFINITY);
    EXPECT_EQ(u[2].hard, 10u);  // no HARD: the soft one
    for (const char* bad : {"nofile=2:1", "bogus=1", "nofile", "nofile=x", "nofile=1:y", "nofile=-2", "=1"})
        EXPECT_THROW(parse_ulimits({bad}), Error) << bad;
    try {
        parse_ulimits({"nofile=2048:1024"});
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("nofile=2048:1024"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(parse_ulimits({"host"}).empty());

    Rootfs r;
    RunOptions o;
    o.ulimits = parse_ulimits({"nofile=512:1024", "core=0"});
    json rl = build_spec(image_with({}, {"sh"}), o, r.path)["process"]["rlimits"];
    int nofile = 0;
    for (const auto& e : rl)
        if (e["type"] == "RLIMIT_NOFILE") {
            ++nofile;
            EXPECT_EQ(e["soft"], 512);
            EXPECT_EQ(e["hard"], 1024);
        }
    EXPECT_EQ(nofile, 1);  // the default's entry replaced, not a second one
    EXPECT_TRUE(std::any_of(rl.begin(), rl.end(), [](const json& e) { return e["type"] == "RLIMIT_CORE"; }));
}

TEST(EngineSpecBuilder, UlimitsTheInitCannotSetAreRefused) {
    struct rlimit now {};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &now), 0);
    EXPECT_NO_THROW(check_ulimits_settable({{"nofile", now.rlim_cur, now.rlim_max}}));
    uint64_t nr_open = 0;
    ASSERT_TRUE(parse_u64(trim(read_file("/proc/sys/fs/nr_open")), nr_open));
    try {
        check_ulimits_settable({{"nofile", 1024, nr_open + 1}});
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("fs.nr_open"), std::string::npos) << e.what();
    }
}
