// engine/ default seccomp profile and --security-opt: the profile's shape for
// a given capability set, and that the runtime's own seccomp code accepts and
// enforces it (loaded in forked children: a filter cannot be removed).
#include "engine/seccomp_profile.hpp"

#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "engine/spec_builder.hpp"
#include "image_testutil.hpp"
#include "oci/default_spec.hpp"
#include "oci/spec.hpp"
#include "runtime/seccomp.hpp"
#include "util/error.hpp"
#include "testutil.hpp"

using namespace vitro;
using namespace vitro::engine;
using nlohmann::json;

namespace {

using vitro::test::errno_of;

// Rules (as JSON) that name `syscall`.
std::vector<json> rules_for(const json& profile, const std::string& syscall) {
    std::vector<json> out;
    for (const auto& r : profile["syscalls"])
        for (const auto& n : r["names"])
            if (n == syscall) out.push_back(r);
    return out;
}

// Allowed with no condition on its arguments.
bool allowed(const json& profile, const std::string& syscall) {
    for (const auto& r : rules_for(profile, syscall))
        if (r["action"] == "SCMP_ACT_ALLOW" && !r.contains("args")) return true;
    return false;
}

std::vector<std::string> with(std::vector<std::string> caps, const std::string& cap) {
    caps.push_back(cap);
    return caps;
}

// The spec JSON through the OCI parser and the runtime's validator, as
// vitro-runtime create would see it.
oci::Seccomp through_runtime(const json& seccomp) {
    json spec = oci::default_spec(false);
    spec["linux"]["seccomp"] = seccomp;
    oci::Spec s = oci::parse_spec(spec.dump());
    oci::validate_spec(s);
    EXPECT_TRUE(s.linux && s.linux->seccomp);
    runtime::validate_seccomp(*s.linux->seccomp);
    return *s.linux->seccomp;
}

// Forks; the child loads `p` (after no_new_privs) and exits with body()'s result.
int in_child(const oci::Seccomp& p, const std::function<int()>& body) {
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) throw_errno("fork");
    if (pid == 0) {
        int code = 100;
        try {
            if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) throw_errno("prctl NO_NEW_PRIVS");
            runtime::load_seccomp(p);
            code = body();
        } catch (const std::exception& e) {
            std::fprintf(stderr, "child: %s\n", e.what());
        }
        ::_exit(code);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) throw_errno("waitpid");
    return status;
}

// errno of a raw syscall, 0 when it succeeded.
void expect_exit0(int status) {
    ASSERT_TRUE(WIFEXITED(status)) << "child killed by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    EXPECT_EQ(WEXITSTATUS(status), 0) << "the check that failed is the child's exit code";
}

// ---- shape ----------------------------------------------------------------------

TEST(EngineSeccompProfile, DefaultDeniesWithEperm) {
    json p = default_seccomp_profile(default_capabilities());
    EXPECT_EQ(p["defaultAction"], "SCMP_ACT_ERRNO");
    EXPECT_EQ(p["defaultErrnoRet"], EPERM);
#if defined(__x86_64__)
    EXPECT_EQ(p["architectures"], json({"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}));
    EXPECT_TRUE(allowed(p, "arch_prctl"));
    EXPECT_TRUE(allowed(p, "modify_ldt"));
#endif
    for (const char* name : {"read", "write", "openat", "execve", "getdents64", "exit_group", "futex", "ptrace"})
        EXPECT_TRUE(allowed(p, name)) << name;
    for (const char* name : {"mount", "umount2", "unshare", "setns", "reboot", "init_module", "kexec_load",
                             "open_by_handle_at", "bpf", "perf_event_open", "settimeofday", "swapon", "keyctl",
                             "add_key", "userfaultfd", "vhangup", "acct", "iopl", "mbind", "syslog", "kcmp",
                             // io_uring does its I/O where seccomp cannot see it (docker >= 25 and containerd block it).
                             "io_uring_setup", "io_uring_enter", "io_uring_register"})
        EXPECT_TRUE(rules_for(p, name).empty()) << name << " has a rule";
    // Not on x86_64: the s390 rules, the arm ones.
    EXPECT_TRUE(rules_for(p, "s390_runtime_instr").empty());
}

TEST(EngineSeccompProfile, CapabilitiesToggleTheirSyscalls) {
    const std::vector<std::string> base = default_capabilities();
    const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
        {"CAP_SYS_ADMIN", {"mount", "umount2", "unshare", "setns", "sethostname", "fsopen", "move_mount", "quotactl"}},
        {"CAP_SYS_PTRACE", {"kcmp", "pidfd_getfd", "process_madvise"}},
        {"CAP_SYS_MODULE", {"init_module", "finit_module", "delete_module"}},
        {"CAP_SYS_BOOT", {"reboot"}},
        {"CAP_SYS_TIME", {"settimeofday", "clock_settime"}},
        {"CAP_SYS_NICE", {"mbind", "set_mempolicy", "get_mempolicy"}},
        {"CAP_SYSLOG", {"syslog"}},
        {"CAP_SYS_RAWIO", {"iopl", "ioperm"}},
        {"CAP_SYS_PACCT", {"acct"}},
        {"CAP_SYS_TTY_CONFIG", {"vhangup"}},
        {"CAP_BPF", {"bpf"}},
        {"CAP_PERFMON", {"perf_event_open"}},
        {"CAP_DAC_READ_SEARCH", {"open_by_handle_at"}},
    };
    json without = default_seccomp_profile(base);
    for (const auto& [cap, names] : cases) {
        ASSERT_EQ(std::count(base.begin(), base.end(), cap), 0) << cap << " is a default capability";
        json p = default_seccomp_profile(with(base, cap));
        for (const auto& n : names) {
            EXPECT_TRUE(allowed(p, n)) << n << " with " << cap;
            EXPECT_FALSE(allowed(without, n)) << n << " without " << cap;
        }
    }
    // CAP_SYS_CHROOT is one of docker's defaults.
    EXPECT_TRUE(allowed(without, "chroot"));
    std::vector<std::string> no_chroot = base;
    no_chroot.erase(std::remove(no_chroot.begin(), no_chroot.end(), "CAP_SYS_CHROOT"), no_chroot.end());
    EXPECT_FALSE(allowed(default_seccomp_profile(no_chroot), "chroot"));
}

TEST(EngineSeccompProfile, CloneAndClone3DependOnSysAdmin) {
    json p = default_seccomp_profile(default_capabilities());
    auto clone = rules_for(p, "clone");
    ASSERT_EQ(clone.size(), 1u);
    EXPECT_EQ(clone[0]["action"], "SCMP_ACT_ALLOW");
    ASSERT_EQ(clone[0]["args"].size(), 1u);
    EXPECT_EQ(clone[0]["args"][0]["index"], 0);
    EXPECT_EQ(clone[0]["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
    EXPECT_EQ(clone[0]["args"][0]["value"], 0x7E020000u);
    EXPECT_EQ(clone[0]["args"][0].value("valueTwo", 0u), 0u);
    auto clone3 = rules_for(p, "clone3");
    ASSERT_EQ(clone3.size(), 1u);
    EXPECT_EQ(clone3[0]["action"], "SCMP_ACT_ERRNO");
    EXPECT_EQ(clone3[0]["errnoRet"], ENOSYS);

    json admin = default_seccomp_profile(with(default_capabilities(), "CAP_SYS_ADMIN"));
    EXPECT_TRUE(allowed(admin, "clone"));
    EXPECT_TRUE(allowed(admin, "clone3"));
    EXPECT_EQ(rules_for(admin, "clone").size(), 1u);  // the masked rule is gone
    EXPECT_EQ(rules_for(admin, "clone3").size(), 1u);
}

TEST(EngineSeccompProfile, PersonalityAndSocketConditions) {
    json p = default_seccomp_profile(default_capabilities());
    std::vector<uint64_t> values;
    for (const auto& r : rules_for(p, "personality")) {
        ASSERT_EQ(r["args"].size(), 1u);
        EXPECT_EQ(r["args"][0]["op"], "SCMP_CMP_EQ");
        values.push_back(r["args"][0]["value"].get<uint64_t>());
    }
    EXPECT_EQ(values, (std::vector<uint64_t>{0x0, 0x8, 0x20000, 0x20008, 0xffffffff}));
    auto socket = rules_for(p, "socket");
    ASSERT_EQ(socket.size(), 1u);
    EXPECT_EQ(socket[0]["args"][0]["op"], "SCMP_CMP_NE");
    EXPECT_EQ(socket[0]["args"][0]["value"], 40);
}

TEST(EngineSeccompProfile, NoRepeatedUnconditionalRules) {
    // ptrace is allowed both from kernel 4.8 and with CAP_SYS_PTRACE; bpf with
    // CAP_SYS_ADMIN and CAP_BPF: each appears once.
    std::vector<std::string> caps = default_capabilities();
    for (const char* c : {"CAP_SYS_PTRACE", "CAP_SYS_ADMIN", "CAP_BPF", "CAP_PERFMON", "CAP_SYSLOG"})
        caps.push_back(c);
    json p = default_seccomp_profile(caps);
    for (const char* name : {"ptrace", "process_vm_readv", "bpf", "perf_event_open", "syslog"})
        EXPECT_EQ(rules_for(p, name).size(), 1u) << name;
}

// ---- through the runtime -----------------------------------------------------------

TEST(EngineSeccompProfile, RuntimeAcceptsEveryVariant) {
    std::vector<std::string> all = default_capabilities();
    for (const char* c : {"CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_MODULE", "CAP_SYS_BOOT", "CAP_SYS_TIME",
                          "CAP_SYS_NICE", "CAP_SYSLOG", "CAP_SYS_RAWIO", "CAP_BPF", "CAP_PERFMON"})
        all.push_back(c);
    for (const auto& caps : {std::vector<std::string>{}, default_capabilities(), all}) {
        oci::Seccomp s = through_runtime(default_seccomp_profile(caps));
        EXPECT_EQ(s.default_action, "SCMP_ACT_ERRNO");
        EXPECT_EQ(s.default_errno_ret, EPERM);
        // Loading compiles every rule with libseccomp.
        expect_exit0(in_child(s, [] { return 0; }));
    }
}

TEST(EngineSeccompProfile, EnforcedByTheRuntime) {
    oci::Seccomp s = through_runtime(default_seccomp_profile(default_capabilities()));
    int status = in_child(s, [] {
        if (::syscall(SYS_getpid) != ::getpid()) return 1;
        if (errno_of(::syscall(SYS_unshare, CLONE_NEWUTS)) != EPERM) return 2;
        if (errno_of(::syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, nullptr)) != EPERM) return 3;
        if (errno_of(::syscall(SYS_setns, 0, 0)) != EPERM) return 4;
#ifdef SYS_clone3
        if (errno_of(::syscall(SYS_clone3, nullptr, 0)) != ENOSYS) return 5;
#endif
        if (errno_of(::syscall(SYS_socket, 40 /* AF_VSOCK */, SOCK_STREAM, 0)) != EPERM) return 6;
#ifdef SYS_io_uring_setup
        if (errno_of(::syscall(SYS_io_uring_setup, 8, nullptr)) != EPERM) return 13;
#endif
        if (errno_of(::syscall(SYS_personality, 0xffffffffUL)) != 0) return 7;
        if (errno_of(::syscall(SYS_personality, 0x0040000UL /* ADDR_NO_RANDOMIZE */)) != EPERM) return 8;
        // clone with a namespace flag is refused; a plain fork works.
        if (errno_of(::syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0)) != EPERM) return 9;
        pid_t child = ::fork();
        if (child < 0) return 10;
        if (child == 0) ::_exit(0);
        int st = 0;
        if (::waitpid(child, &st, 0) != child || !WIFEXITED(st)) return 11;
        int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0) return 12;
        ::close(fd);
        return 0;
    });
    expect_exit0(status);
}

TEST(EngineSeccompProfile, SysAdminLetsUnshareThrough) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (unshare of a UTS namespace)";
    oci::Seccomp s = through_runtime(default_seccomp_profile(with(default_capabilities(), "CAP_SYS_ADMIN")));
    int status = in_child(s, [] {
        if (errno_of(::syscall(SYS_unshare, CLONE_NEWUTS)) != 0) return 1;
#ifdef SYS_clone3
        // clone3 reaches the kernel, which refuses the null argument itself.
        if (errno_of(::syscall(SYS_clone3, nullptr, 0)) == ENOSYS) return 2;
#endif
        return 0;
    });
    expect_exit0(status);
}

// ---- --security-opt ------------------------------------------------------------------

json spec_with_caps(const std::vector<std::string>& caps) {
    json spec = oci::default_spec(false);
    spec["process"]["capabilities"]["bounding"] = caps;
    spec["linux"].erase("seccomp");
    return spec;
}

std::string error_of(json& spec, const std::vector<std::string>& opts) {
    try {
        apply_security_opts(spec, opts);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(EngineSecurityOpts, DefaultProfileFromBoundingSet) {
    json spec = spec_with_caps(default_capabilities());
    apply_security_opts(spec, {});
    EXPECT_EQ(spec["linux"]["seccomp"], default_seccomp_profile(default_capabilities()));

    json admin = spec_with_caps(with(default_capabilities(), "CAP_SYS_ADMIN"));
    apply_security_opts(admin, {"label=disable", "apparmor=unconfined"});
    EXPECT_TRUE(allowed(admin["linux"]["seccomp"], "mount"));
}

TEST(EngineSecurityOpts, UnconfinedRemovesSeccomp) {
    json spec = spec_with_caps(default_capabilities());
    spec["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_KILL"}};
    apply_security_opts(spec, {"seccomp=unconfined"});
    EXPECT_FALSE(spec["linux"].contains("seccomp"));
    json colon = spec_with_caps(default_capabilities());
    apply_security_opts(colon, {"seccomp:unconfined"});
    EXPECT_FALSE(colon["linux"].contains("seccomp"));
}

TEST(EngineSecurityOpts, NoNewPrivileges) {
    json spec = spec_with_caps(default_capabilities());
    spec["process"]["noNewPrivileges"] = false;
    apply_security_opts(spec, {"no-new-privileges"});
    EXPECT_EQ(spec["process"]["noNewPrivileges"], true);
    apply_security_opts(spec, {"no-new-privileges=false"});
    EXPECT_EQ(spec["process"]["noNewPrivileges"], false);
    apply_security_opts(spec, {"no-new-privileges:true"});
    EXPECT_EQ(spec["process"]["noNewPrivileges"], true);
}

TEST(EngineSecurityOpts, UnknownOptionNamesTheValue) {
    json spec = spec_with_caps(default_capabilities());
    EXPECT_NE(error_of(spec, {"selinux=on"}).find("selinux=on"), std::string::npos);
    EXPECT_NE(error_of(spec, {"no-new-privileges=maybe"}).find("no-new-privileges=maybe"), std::string::npos);
    EXPECT_NE(error_of(spec, {"seccomp="}).find("seccomp="), std::string::npos);
}

TEST(EngineSecurityOpts, DockerFormatFileConverts) {
    image_test::ImageTempDir dir;
    const std::string file = dir.path + "/profile.json";
    image_test::put_file(file, R"({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
        ],
        "syscalls": [
            {"names": ["read", "write", "exit_group", "exit", "brk", "mmap", "munmap", "futex", "getpid",
                       "sigaltstack", "rt_sigprocmask", "rt_sigaction", "madvise", "mprotect"],
             "action": "SCMP_ACT_ALLOW", "comment": "basics, and what the ASan runtime calls in the child"},
            {"name": "getppid", "action": "SCMP_ACT_ALLOW"},
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "excludes": {"caps": ["CAP_CHOWN"]}},
            {"names": ["uname"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["s390x"]}},
            {"names": ["chdir"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["s390x"]}},
            {"names": ["mkdir"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "99.0"}},
            {"names": ["rmdir"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "3.0"}},
            {"names": ["kill"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 1, "value": 0, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]}
        ]
    })");
    json spec = spec_with_caps({"CAP_CHOWN"});
    apply_security_opts(spec, {"seccomp=" + file});
    const json& p = spec["linux"]["seccomp"];
    EXPECT_EQ(p["defaultAction"], "SCMP_ACT_ERRNO");
    EXPECT_EQ(p["defaultErrnoRet"], 1);
#if defined(__x86_64__)
    EXPECT_EQ(p["architectures"], json({"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}));
    EXPECT_TRUE(allowed(p, "chdir"));
    EXPECT_TRUE(rules_for(p, "uname").empty());
#endif
    EXPECT_TRUE(allowed(p, "read"));
    EXPECT_TRUE(allowed(p, "getppid"));
    EXPECT_TRUE(rules_for(p, "mount").empty());   // no CAP_SYS_ADMIN
    EXPECT_TRUE(rules_for(p, "getcwd").empty());  // excluded: CAP_CHOWN held
    EXPECT_TRUE(rules_for(p, "mkdir").empty());   // kernel too old for it
    EXPECT_TRUE(allowed(p, "rmdir"));
    auto kill = rules_for(p, "kill");
    ASSERT_EQ(kill.size(), 1u);
    EXPECT_EQ(kill[0]["args"], json::parse(R"([{"index": 1, "value": 0, "valueTwo": 0, "op": "SCMP_CMP_EQ"}])"));
    for (const auto& r : p["syscalls"]) {
        EXPECT_FALSE(r.contains("includes"));
        EXPECT_FALSE(r.contains("excludes"));
        EXPECT_FALSE(r.contains("comment"));
    }
    through_runtime(p);

    json admin = spec_with_caps({"CAP_SYS_ADMIN"});
    apply_security_opts(admin, {"seccomp=" + file});
    EXPECT_TRUE(allowed(admin["linux"]["seccomp"], "mount"));
    auto getcwd = rules_for(admin["linux"]["seccomp"], "getcwd");
    ASSERT_EQ(getcwd.size(), 1u);
    EXPECT_EQ(getcwd[0]["errnoRet"], 13);

    // The converted profile is enforced: getcwd answers EACCES.
    oci::Seccomp s = through_runtime(admin["linux"]["seccomp"]);
    expect_exit0(in_child(s, [] {
        char buf[64];
        if (errno_of(::syscall(SYS_getcwd, buf, sizeof buf)) != EACCES) return 1;
        if (errno_of(::syscall(SYS_getuid)) != EPERM) return 2;  // not listed: the default action
        return 0;
    }));
}

TEST(EngineSecurityOpts, BadFileNamesTheFile) {
    image_test::ImageTempDir dir;
    json spec = spec_with_caps(default_capabilities());

    const std::string missing = dir.path + "/missing.json";
    std::string err = error_of(spec, {"seccomp=" + missing});
    EXPECT_NE(err.find(missing), std::string::npos) << err;

    const std::string garbage = dir.path + "/garbage.json";
    image_test::put_file(garbage, "{ not json");
    err = error_of(spec, {"seccomp=" + garbage});
    EXPECT_NE(err.find(garbage), std::string::npos) << err;

    const std::string no_default = dir.path + "/nodefault.json";
    image_test::put_file(no_default, R"({"syscalls": []})");
    err = error_of(spec, {"seccomp=" + no_default});
    EXPECT_NE(err.find(no_default), std::string::npos) << err;
    EXPECT_NE(err.find("defaultAction"), std::string::npos) << err;

    const std::string bad_rule = dir.path + "/badrule.json";
    image_test::put_file(bad_rule, R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": "read", "action": "SCMP_ACT_ERRNO"}]})");
    err = error_of(spec, {"seccomp=" + bad_rule});
    EXPECT_NE(err.find(bad_rule), std::string::npos) << err;
    EXPECT_NE(err.find("syscalls[0].names"), std::string::npos) << err;

    EXPECT_FALSE(spec["linux"].contains("seccomp"));  // untouched on error
}

}  // namespace
