// Seccomp: profiles are loaded in forked children (a filter cannot be removed),
// which report what they saw through their exit status.
#include "runtime/seccomp.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "util/error.hpp"
#include "util/file.hpp"
#include "testutil.hpp"

namespace vitro::runtime {
namespace {

using vitro::test::errno_of;

// Exit codes a child uses besides its own checks.
constexpr int kThrew = 100;
constexpr int kLoadEacces = 101;

oci::Seccomp profile(std::string default_action = "SCMP_ACT_ALLOW") {
    oci::Seccomp s;
    s.default_action = std::move(default_action);
    return s;
}

oci::SeccompSyscall rule(std::vector<std::string> names, std::string action,
                         std::optional<unsigned> errno_ret = std::nullopt, std::vector<oci::SeccompArg> args = {}) {
    oci::SeccompSyscall r;
    r.names = std::move(names);
    r.action = std::move(action);
    r.errno_ret = errno_ret;
    r.args = std::move(args);
    return r;
}

oci::SeccompArg arg(unsigned index, std::string op, uint64_t value, uint64_t value_two = 0) {
    oci::SeccompArg a;
    a.index = index;
    a.op = std::move(op);
    a.value = value;
    a.value_two = value_two;
    return a;
}

// Forks; the child runs `body` and exits with its result. Returns the wait status.
int in_child(const std::function<int()>& body) {
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) throw_errno("fork");
    if (pid == 0) {
        int code = kThrew;
        try {
            code = body();
        } catch (const Error& e) {
            code = e.code() == EACCES ? kLoadEacces : kThrew;
            std::fprintf(stderr, "child: %s\n", e.what());
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

// Sets no_new_privs (what the runtime does for process.noNewPrivileges), so
// loading works without CAP_SYS_ADMIN, then loads the profile.
UniqueFd load_with_nnp(const oci::Seccomp& p) {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) throw_errno("prctl NO_NEW_PRIVS");
    return load_seccomp(p);
}

// What a child needs after loading a deny-by-default filter: free(), writes,
// exiting, and what ASan does before a noreturn call (sigaltstack, gettid).
const std::vector<std::string> kChildNeeds = {"exit_group", "exit",  "brk",         "mmap",        "munmap",
                                              "madvise",    "write", "rt_sigreturn", "futex",       "sigaltstack",
                                              "gettid"};

// The errno of a raw syscall that is expected to fail, or 0 if it succeeded.
void expect_exit(int status, int code) {
    ASSERT_TRUE(WIFEXITED(status)) << "child killed by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    EXPECT_EQ(WEXITSTATUS(status), code);
}

void expect_signal(int status, int sig) {
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    EXPECT_EQ(WTERMSIG(status), sig);
}

std::string validation_error(const oci::Seccomp& p) {
    try {
        validate_seccomp(p);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

// ---- actions -----------------------------------------------------------------

TEST(Seccomp, ErrnoRuleReturnsErrnoRet) {
    auto p = profile();
    p.syscalls.push_back(rule({"getcwd"}, "SCMP_ACT_ERRNO", 42));
    int status = in_child([&] {
        load_with_nnp(p);
        char buf[256];
        if (errno_of(::syscall(SYS_getcwd, buf, sizeof buf)) != 42) return 1;
        if (::syscall(SYS_getpid) != ::getpid()) return 2;  // others still allowed
        return 0;
    });
    expect_exit(status, 0);
}

TEST(Seccomp, ErrnoWithoutErrnoRetIsEperm) {
    auto p = profile();
    p.syscalls.push_back(rule({"getcwd"}, "SCMP_ACT_ERRNO"));
    int status = in_child([&] {
        load_with_nnp(p);
        char buf[256];
        return errno_of(::syscall(SYS_getcwd, buf, sizeof buf)) == EPERM ? 0 : 1;
    });
    expect_exit(status, 0);
}

TEST(Seccomp, DefaultErrnoWithAllowList) {
    auto p = profile("SCMP_ACT_ERRNO");
    p.default_errno_ret = 55;
    p.syscalls.push_back(rule(kChildNeeds, "SCMP_ACT_ALLOW"));
    p.syscalls.push_back(rule({"getpid"}, "SCMP_ACT_ALLOW"));
    int status = in_child([&] {
        load_with_nnp(p);
        if (errno_of(::syscall(SYS_getppid)) != 55) return 1;
        if (::syscall(SYS_getpid) < 0) return 2;
        return 0;
    });
    expect_exit(status, 0);
}

TEST(Seccomp, KillActionsKillWithSigsys) {
    for (const char* action : {"SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS"}) {
        SCOPED_TRACE(action);
        auto p = profile();
        p.syscalls.push_back(rule({"getppid"}, action));
        int status = in_child([&] {
            load_with_nnp(p);
            ::syscall(SYS_getppid);
            return 0;
        });
        expect_signal(status, SIGSYS);
    }
}

TEST(Seccomp, TrapRaisesSigsysForTheSyscall) {
    auto p = profile();
    p.syscalls.push_back(rule({"getppid"}, "SCMP_ACT_TRAP"));
    int status = in_child([&] {
        struct sigaction sa = {};
        sa.sa_flags = SA_SIGINFO;
        sa.sa_sigaction = [](int, siginfo_t* info, void*) { ::_exit(info->si_syscall == SYS_getppid ? 7 : 8); };
        if (::sigaction(SIGSYS, &sa, nullptr) < 0) return 1;
        load_with_nnp(p);
        ::syscall(SYS_getppid);
        return 2;
    });
    expect_exit(status, 7);
}

TEST(Seccomp, LogActionAllows) {
    auto p = profile();
    p.syscalls.push_back(rule({"getppid"}, "SCMP_ACT_LOG"));
    int status = in_child([&] {
        load_with_nnp(p);
        return ::syscall(SYS_getppid) == ::getppid() ? 0 : 1;
    });
    expect_exit(status, 0);
}

TEST(Seccomp, TraceWithoutTracerFailsWithEnosys) {
    // With no tracer attached the kernel fails a SECCOMP_RET_TRACE syscall with ENOSYS.
    auto p = profile();
    p.syscalls.push_back(rule({"getcwd"}, "SCMP_ACT_TRACE", 3));
    int status = in_child([&] {
        load_with_nnp(p);
        char buf[256];
        return errno_of(::syscall(SYS_getcwd, buf, sizeof buf)) == ENOSYS ? 0 : 1;
    });
    expect_exit(status, 0);
}

// ---- argument conditions -----------------------------------------------------

TEST(Seccomp, ArgEqualBlocksOnlyThatValue) {
    auto p = profile();
    p.syscalls.push_back(rule({"personality"}, "SCMP_ACT_ERRNO", std::nullopt, {arg(0, "SCMP_CMP_EQ", 0xffffffff)}));
    int status = in_child([&] {
        load_with_nnp(p);
        if (errno_of(::syscall(SYS_personality, 0xffffffffUL)) != EPERM) return 1;
        if (::syscall(SYS_personality, 0UL) < 0) return 2;  // PER_LINUX: allowed
        return 0;
    });
    expect_exit(status, 0);
}

TEST(Seccomp, ArgsOnDifferentIndexesAreAnded) {
    auto p = profile();
    p.syscalls.push_back(rule({"getpriority"}, "SCMP_ACT_ERRNO", 44,
                              {arg(0, "SCMP_CMP_EQ", PRIO_PROCESS), arg(1, "SCMP_CMP_EQ", 0)}));
    int status = in_child([&] {
        load_with_nnp(p);
        if (errno_of(::syscall(SYS_getpriority, PRIO_PROCESS, 0)) != 44) return 1;
        if (::syscall(SYS_getpriority, PRIO_PROCESS, ::getpid()) < 0) return 2;
        if (::syscall(SYS_getpriority, PRIO_PGRP, 0) < 0) return 3;
        return 0;
    });
    expect_exit(status, 0);
}

TEST(Seccomp, ArgsOnTheSameIndexAreOred) {
    auto p = profile();
    p.syscalls.push_back(rule({"getpriority"}, "SCMP_ACT_ERRNO", 45,
                              {arg(0, "SCMP_CMP_EQ", PRIO_PGRP), arg(0, "SCMP_CMP_EQ", PRIO_USER)}));
    int status = in_child([&] {
        load_with_nnp(p);
        if (errno_of(::syscall(SYS_getpriority, PRIO_PGRP, 0)) != 45) return 1;
        if (errno_of(::syscall(SYS_getpriority, PRIO_USER, 0)) != 45) return 2;
        if (::syscall(SYS_getpriority, PRIO_PROCESS, 0) < 0) return 3;
        return 0;
    });
    expect_exit(status, 0);
}

TEST(Seccomp, MaskedEqUsesValueAsMaskAndValueTwoAsDatum) {
    auto p = profile();
    // Blocks getpgid(pid) when bits 8..15 of pid are 0x04.
    p.syscalls.push_back(
        rule({"getpgid"}, "SCMP_ACT_ERRNO", 46, {arg(0, "SCMP_CMP_MASKED_EQ", 0xff00, 0x0400)}));
    int status = in_child([&] {
        load_with_nnp(p);
        if (errno_of(::syscall(SYS_getpgid, 0x7000412L)) != 46) return 1;
        // Not matching: the kernel answers (ESRCH for a pid that does not exist).
        // 0x0c has bit 0x04 set, so mask and datum swapped would block it.
        if (errno_of(::syscall(SYS_getpgid, 0x7000c12L)) == 46) return 2;
        if (::syscall(SYS_getpgid, 0L) < 0) return 3;
        return 0;
    });
    expect_exit(status, 0);
}

TEST(Seccomp, OrderingOperators) {
    struct Case {
        const char* op;
        uint64_t value;
        long blocked, allowed;
    };
    for (const Case& c : {Case{"SCMP_CMP_NE", 0, 5, 0}, Case{"SCMP_CMP_LT", 10, 9, 10},
                          Case{"SCMP_CMP_LE", 10, 10, 11}, Case{"SCMP_CMP_GE", 10, 10, 9},
                          Case{"SCMP_CMP_GT", 10, 11, 10}}) {
        SCOPED_TRACE(c.op);
        auto p = profile();
        p.syscalls.push_back(rule({"getpgid"}, "SCMP_ACT_ERRNO", 47, {arg(0, c.op, c.value)}));
        int status = in_child([&] {
            load_with_nnp(p);
            if (errno_of(::syscall(SYS_getpgid, c.blocked)) != 47) return 1;
            if (errno_of(::syscall(SYS_getpgid, c.allowed)) == 47) return 2;
            return 0;
        });
        expect_exit(status, 0);
    }
}

// ---- names, arches, flags ----------------------------------------------------

TEST(Seccomp, UnknownSyscallNamesAreSkipped) {
    auto p = profile();
    p.syscalls.push_back(rule({"no_such_syscall", "getcwd"}, "SCMP_ACT_ERRNO", 42));
    p.syscalls.push_back(rule({"also_not_a_syscall"}, "SCMP_ACT_KILL"));
    EXPECT_NO_THROW(validate_seccomp(p));
    int status = in_child([&] {
        load_with_nnp(p);
        char buf[256];
        return errno_of(::syscall(SYS_getcwd, buf, sizeof buf)) == 42 ? 0 : 1;
    });
    expect_exit(status, 0);
}

TEST(Seccomp, RulesWithTheDefaultActionAreSkipped) {
    auto p = profile("SCMP_ACT_ERRNO");
    p.syscalls.push_back(rule({"getcwd"}, "SCMP_ACT_ERRNO", EPERM));  // same as the default: skipped
    p.syscalls.push_back(rule({"getppid"}, "SCMP_ACT_ERRNO", 48));    // differs: kept
    p.syscalls.push_back(rule(kChildNeeds, "SCMP_ACT_ALLOW"));
    int status = in_child([&] {
        load_with_nnp(p);
        char buf[256];
        if (errno_of(::syscall(SYS_getcwd, buf, sizeof buf)) != EPERM) return 1;
        if (errno_of(::syscall(SYS_getppid)) != 48) return 2;
        return 0;
    });
    expect_exit(status, 0);
}

TEST(Seccomp, ArchitecturesAreAdded) {
    auto p = profile();
    // The native one among them is already in the filter (EEXIST is fine).
    p.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"};
    p.syscalls.push_back(rule({"getcwd", "socketcall", "_llseek"}, "SCMP_ACT_ERRNO", 42));
    int status = in_child([&] {
        load_with_nnp(p);
        char buf[256];
        return errno_of(::syscall(SYS_getcwd, buf, sizeof buf)) == 42 ? 0 : 1;
    });
    expect_exit(status, 0);
}

TEST(Seccomp, AllArchitectureNamesResolve) {
    auto p = profile();
    p.architectures = {"SCMP_ARCH_X86",      "SCMP_ARCH_X86_64",    "SCMP_ARCH_X32",      "SCMP_ARCH_ARM",
                       "SCMP_ARCH_AARCH64",  "SCMP_ARCH_MIPS",      "SCMP_ARCH_MIPS64",   "SCMP_ARCH_MIPS64N32",
                       "SCMP_ARCH_MIPSEL",   "SCMP_ARCH_MIPSEL64",  "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
                       "SCMP_ARCH_PPC64",    "SCMP_ARCH_PPC64LE",   "SCMP_ARCH_S390",     "SCMP_ARCH_S390X",
                       "SCMP_ARCH_PARISC",   "SCMP_ARCH_PARISC64",  "SCMP_ARCH_RISCV64"};
    EXPECT_NO_THROW(validate_seccomp(p));
}

TEST(Seccomp, FlagsAreApplied) {
    auto p = profile();
    p.flags = {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"};
    p.syscalls.push_back(rule({"getcwd"}, "SCMP_ACT_ERRNO", 42));
    EXPECT_NO_THROW(validate_seccomp(p));
    int status = in_child([&] {
        load_with_nnp(p);
        char buf[256];
        return errno_of(::syscall(SYS_getcwd, buf, sizeof buf)) == 42 ? 0 : 1;
    });
    expect_exit(status, 0);
}

TEST(Seccomp, LoadingDoesNotSetNoNewPrivs) {
    auto p = profile();
    p.syscalls.push_back(rule({"getcwd"}, "SCMP_ACT_ERRNO", 42));
    int status = in_child([&] {
        if (::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 0) return 1;
        load_seccomp(p);  // needs CAP_SYS_ADMIN without no_new_privs
        if (::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 0) return 2;
        char buf[256];
        return errno_of(::syscall(SYS_getcwd, buf, sizeof buf)) == 42 ? 0 : 3;
    });
    if (WIFEXITED(status) && WEXITSTATUS(status) == kLoadEacces) GTEST_SKIP() << "needs CAP_SYS_ADMIN";
    expect_exit(status, 0);
}

// ---- SCMP_ACT_NOTIFY ---------------------------------------------------------

TEST(Seccomp, NotifyReturnsAListenerFd) {
    auto p = profile();
    p.syscalls.push_back(rule({"getcwd"}, "SCMP_ACT_NOTIFY"));
    int status = in_child([&] {
        UniqueFd listener = load_with_nnp(p);
        if (!listener) return 1;
        int fd_flags = ::fcntl(listener.get(), F_GETFD);
        if (fd_flags < 0 || !(fd_flags & FD_CLOEXEC)) return 2;

        // A grandchild inherits the filter; its getcwd is answered here.
        pid_t pid = ::fork();
        if (pid < 0) return 3;
        if (pid == 0) {
            char buf[256];
            ::_exit(errno_of(::syscall(SYS_getcwd, buf, sizeof buf)) == EDOM ? 0 : 1);
        }
        struct seccomp_notif* req = nullptr;
        struct seccomp_notif_resp* resp = nullptr;
        if (seccomp_notify_alloc(&req, &resp) < 0) return 4;
        int code = 0;
        if (seccomp_notify_receive(listener.get(), req) < 0) {
            code = 5;
        } else if (req->data.nr != SYS_getcwd || static_cast<pid_t>(req->pid) != pid) {
            code = 6;
        } else {
            resp->id = req->id;
            resp->val = 0;
            resp->error = -EDOM;
            resp->flags = 0;
            if (seccomp_notify_respond(listener.get(), resp) < 0) code = 7;
        }
        seccomp_notify_free(req, resp);
        int st = 0;
        if (::waitpid(pid, &st, 0) != pid) return 8;
        if (code != 0) return code;
        return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 9;
    });
    expect_exit(status, 0);
}

TEST(Seccomp, NoNotifyRuleMeansNoListener) {
    auto p = profile();
    p.syscalls.push_back(rule({"getcwd"}, "SCMP_ACT_ERRNO", 42));
    int status = in_child([&] { return load_with_nnp(p) ? 1 : 0; });
    expect_exit(status, 0);
}

// ---- validation --------------------------------------------------------------

TEST(SeccompValidate, AcceptsAFullProfile) {
    auto p = profile("SCMP_ACT_ERRNO");
    p.default_errno_ret = 38;
    p.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86"};
    p.flags = {"SECCOMP_FILTER_FLAG_LOG"};
    p.syscalls = {rule({"read", "write", "no_such_syscall"}, "SCMP_ACT_ALLOW"),
                  rule({"personality"}, "SCMP_ACT_ALLOW", std::nullopt, {arg(0, "SCMP_CMP_EQ", 0)}),
                  rule({"clone"}, "SCMP_ACT_ALLOW", std::nullopt, {arg(0, "SCMP_CMP_MASKED_EQ", 0x7e020000, 0)}),
                  rule({"ptrace"}, "SCMP_ACT_TRACE"), rule({"kexec_load"}, "SCMP_ACT_KILL_PROCESS"),
                  rule({"getcwd"}, "SCMP_ACT_NOTIFY"), rule({"uname"}, "SCMP_ACT_LOG"),
                  rule({"reboot"}, "SCMP_ACT_TRAP")};
    EXPECT_NO_THROW(validate_seccomp(p));
}

TEST(SeccompValidate, UnknownDefaultAction) {
    EXPECT_EQ(validation_error(profile("SCMP_ACT_FOO")),
              "linux.seccomp.defaultAction: unknown action 'SCMP_ACT_FOO'");
}

TEST(SeccompValidate, NotifyCannotBeTheDefault) {
    EXPECT_EQ(validation_error(profile("SCMP_ACT_NOTIFY")),
              "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action");
}

TEST(SeccompValidate, UnknownRuleAction) {
    auto p = profile();
    p.syscalls = {rule({"getcwd"}, "SCMP_ACT_ERRNO"), rule({"getcwd"}, "SCMP_ACT_ERRNO"),
                  rule({"getcwd"}, "SCMP_ACT_ERRNO"), rule({"no_such_syscall"}, "SCMP_ACT_FOO")};
    // Checked even when every name is unknown.
    EXPECT_EQ(validation_error(p), "linux.seccomp.syscalls[3].action: unknown action 'SCMP_ACT_FOO'");
}

TEST(SeccompValidate, ErrnoRetOutOfRange) {
    auto p = profile();
    p.syscalls = {rule({"getcwd"}, "SCMP_ACT_ERRNO", 70000)};
    EXPECT_EQ(validation_error(p), "linux.seccomp.syscalls[0].errnoRet: value 70000 out of range (0-65535)");
    auto d = profile("SCMP_ACT_ERRNO");
    d.default_errno_ret = 70000;
    EXPECT_EQ(validation_error(d), "linux.seccomp.defaultErrnoRet: value 70000 out of range (0-65535)");
}

TEST(SeccompValidate, UnknownArchitecture) {
    auto p = profile();
    p.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"};
    EXPECT_EQ(validation_error(p), "linux.seccomp.architectures[1]: unknown architecture 'SCMP_ARCH_VAX'");
    p.architectures = {"x86_64"};  // libseccomp's own spelling is not the spec's
    EXPECT_EQ(validation_error(p), "linux.seccomp.architectures[0]: unknown architecture 'x86_64'");
}

TEST(SeccompValidate, UnknownOperator) {
    auto p = profile();
    p.syscalls = {rule({"getcwd"}, "SCMP_ACT_ERRNO"),
                  rule({"personality"}, "SCMP_ACT_ERRNO", std::nullopt,
                       {arg(0, "SCMP_CMP_EQ", 1), arg(1, "SCMP_CMP_APPROX", 2)})};
    EXPECT_EQ(validation_error(p), "linux.seccomp.syscalls[1].args[1].op: unknown operator 'SCMP_CMP_APPROX'");
}

TEST(SeccompValidate, ArgIndexOutOfRange) {
    auto p = profile();
    p.syscalls = {rule({"personality"}, "SCMP_ACT_ERRNO", std::nullopt, {arg(6, "SCMP_CMP_EQ", 1)})};
    EXPECT_EQ(validation_error(p), "linux.seccomp.syscalls[0].args[0].index: argument index 6 out of range (0-5)");
}

TEST(SeccompValidate, UnknownFlag) {
    auto p = profile();
    p.flags = {"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_FOO"};
    EXPECT_EQ(validation_error(p), "linux.seccomp.flags[1]: unknown flag 'SECCOMP_FILTER_FLAG_FOO'");
}

TEST(SeccompValidate, WaitKillableRecvNeedsNewerLibseccomp) {
    auto p = profile();
    p.flags = {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};
#if SCMP_VER_MAJOR > 2 || (SCMP_VER_MAJOR == 2 && SCMP_VER_MINOR >= 6)
    EXPECT_NO_THROW(validate_seccomp(p));
#else
    std::string err = validation_error(p);
    EXPECT_EQ(err.rfind("linux.seccomp.flags[0]: flag 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV' needs libseccomp 2.6.0", 0),
              0u)
        << err;
#endif
}

TEST(SeccompValidate, LoadRefusesWhatValidateRefuses) {
    auto p = profile();
    p.syscalls = {rule({"getcwd"}, "SCMP_ACT_FOO")};
    int status = in_child([&] {
        try {
            load_with_nnp(p);
        } catch (const Error& e) {
            return std::string(e.what()) == "linux.seccomp.syscalls[0].action: unknown action 'SCMP_ACT_FOO'" ? 0 : 1;
        }
        return 2;
    });
    expect_exit(status, 0);
}

// The compiled-filter cache: a second compile of the same profile is read
// back (same program), a different profile gets its own entry, and a file
// whose stored key does not match is never used.
TEST(SeccompCache, SameProfileReadBackOthersApart) {
    char tmpl[] = "/tmp/vitro-seccomp-cache.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    const std::string dir = std::string(tmpl) + "/cache";
    oci::Seccomp a = profile("SCMP_ACT_ERRNO");
    a.syscalls.push_back(rule(kChildNeeds, "SCMP_ACT_ALLOW"));
    oci::Seccomp b = a;
    b.syscalls.push_back(rule({"getpid"}, "SCMP_ACT_ALLOW"));

    auto files = [&] {
        std::vector<std::string> out;
        if (DIR* d = ::opendir(dir.c_str())) {
            while (dirent* e = ::readdir(d))
                if (e->d_name[0] != '.') out.push_back(dir + "/" + e->d_name);
            ::closedir(d);
        }
        return out;
    };
    auto first = compile_seccomp(a, dir);
    ASSERT_TRUE(first);
    ASSERT_EQ(files().size(), 1u);
    const std::string a_file = files()[0];
    auto again = compile_seccomp(a, dir);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->program.size(), first->program.size());
    EXPECT_EQ(0, std::memcmp(again->program.data(), first->program.data(), first->program.size() * sizeof(sock_filter)));
    auto other = compile_seccomp(b, dir);
    ASSERT_TRUE(other);
    EXPECT_EQ(files().size(), 2u);
    EXPECT_NE(other->program.size(), first->program.size());

    // A cache file under a's name holding another key is ignored (and replaced).
    std::string forged = vitro::read_file(a_file);
    forged[sizeof(uint32_t)] ^= 0x5a;  // the key no longer matches a's
    vitro::write_file_atomic(a_file, forged, 0600);
    auto rebuilt = compile_seccomp(a, dir);
    ASSERT_TRUE(rebuilt);
    EXPECT_EQ(0, std::memcmp(rebuilt->program.data(), first->program.data(), first->program.size() * sizeof(sock_filter)));
    EXPECT_NE(vitro::read_file(a_file), forged);
    std::filesystem::remove_all(tmpl);
}

// The compiled program loads with seccomp(2) alone and is enforced.
TEST(SeccompCache, CompiledProgramEnforced) {
    oci::Seccomp p = profile("SCMP_ACT_ALLOW");
    p.syscalls.push_back(rule({"getppid"}, "SCMP_ACT_ERRNO", 38));
    auto compiled = compile_seccomp(p);
    ASSERT_TRUE(compiled);
    expect_exit(in_child([&] {
                    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return 2;
                    load_compiled_seccomp(*compiled);
                    return errno_of(::syscall(SYS_getppid)) == 38 ? 0 : 1;
                }),
                0);
}


}  // namespace
}  // namespace vitro::runtime
