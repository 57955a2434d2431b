#include "engine/seccomp_profile.hpp"

#include <sys/utsname.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <utility>

#include "util/error.hpp"

namespace vitro::engine {

using nlohmann::json;

namespace {

// ---- the host -----------------------------------------------------------------

struct HostArch {
    std::string go_name;                 // how docker profiles name it in includes/excludes.arches
    std::string scmp;                    // SCMP_ARCH_... of the native ABI
    std::vector<std::string> sub_arches; // the other ABIs a process may use on it
};

const HostArch& host_arch() {
    static const HostArch arch = [] {
#if defined(__x86_64__)
        return HostArch{"amd64", "SCMP_ARCH_X86_64", {"SCMP_ARCH_X86", "SCMP_ARCH_X32"}};
#elif defined(__i386__)
        return HostArch{"386", "SCMP_ARCH_X86", {}};
#elif defined(__aarch64__)
        return HostArch{"arm64", "SCMP_ARCH_AARCH64", {"SCMP_ARCH_ARM"}};
#elif defined(__arm__)
        return HostArch{"arm", "SCMP_ARCH_ARM", {}};
#elif defined(__riscv) && __riscv_xlen == 64
        return HostArch{"riscv64", "SCMP_ARCH_RISCV64", {}};
#elif defined(__s390x__)
        return HostArch{"s390x", "SCMP_ARCH_S390X", {"SCMP_ARCH_S390"}};
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        return HostArch{"ppc64le", "SCMP_ARCH_PPC64LE", {}};
#else
#error "vitro: no seccomp architecture for this target"
#endif
    }();
    return arch;
}

// "5.10.0-21-amd64" -> {5, 10}; {0, 0} when unreadable.
std::pair<int, int> parse_kernel_version(const std::string& text) {
    int major = 0, minor = 0;
    if (std::sscanf(text.c_str(), "%d.%d", &major, &minor) < 1) return {-1, -1};
    return {major, minor};
}

std::pair<int, int> host_kernel() {
    static const std::pair<int, int> v = [] {
        struct utsname u {};
        if (::uname(&u) != 0) return std::pair<int, int>{0, 0};
        return parse_kernel_version(u.release);
    }();
    return v;
}

// A JSON number that is a whole number >= 0 (json literals in C++ are signed, parsed ones unsigned).
bool is_count(const json& j) {
    return j.is_number_unsigned() || (j.is_number_integer() && j.get<int64_t>() >= 0);
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

// ---- the default profile, as a docker-format document ---------------------------
//
// Written in docker's own format so that one converter (below) applies the
// capability, architecture and kernel conditions for both the default profile
// and a user's file.

// Syscalls every container may make. Not io_uring_setup/enter/register: the
// I/O a ring does is never seen by seccomp, so a ring would bypass this very
// filter (docker >= 25 and containerd dropped them too).
constexpr std::string_view kAllowed[] = {
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset", "chdir", "chmod",
    "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres", "clock_getres_time64",
    "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "close", "close_range",
    "connect", "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl",
    "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2",
    "execve", "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64",
    "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchown", "fchown32", "fchownat", "fcntl",
    "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat",
    "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex",
    "futex_time64", "futex_waitv", "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid",
    "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getitimer",
    "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid",
    "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list", "getrusage", "getsid",
    "getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday", "getuid", "getuid32",
    "getxattr", "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl",
    "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set",
    "io_setup", "io_submit", "ipc", "kill",
    "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lchown32",
    "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr", "_llseek", "lremovexattr", "lseek",
    "lsetxattr", "lstat", "lstat64", "madvise", "membarrier", "memfd_create", "memfd_secret", "mincore",
    "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect",
    "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend",
    "mq_timedsend_time64", "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
    "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect", "open", "openat",
    "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free",
    "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2", "prlimit64",
    "process_mrelease", "pselect6", "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read", "readahead",
    "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg",
    "remap_file_pages", "removexattr", "rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rseq",
    "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
    "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr",
    "sched_getparam", "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr",
    "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget", "semop",
    "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto",
    "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32",
    "setitimer", "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid",
    "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid", "setsockopt",
    "set_thread_area", "set_tid_address", "setuid", "setuid32", "setxattr", "shmat", "shmctl", "shmdt",
    "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socketcall",
    "socketpair", "splice", "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync",
    "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete",
    "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64",
    "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times",
    "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "utime",
    "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write",
    "writev",
};

// Syscalls a capability guards: allowed only when the container holds it.
struct CapGroup {
    std::string_view cap;
    std::vector<std::string_view> names;
};
const std::vector<CapGroup>& cap_groups() {
    static const std::vector<CapGroup> groups = {
        {"CAP_DAC_READ_SEARCH", {"open_by_handle_at"}},
        {"CAP_SYS_ADMIN",
         {"bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie",
          "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl", "quotactl_fd",
          "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare"}},
        {"CAP_SYS_BOOT", {"reboot"}},
        {"CAP_SYS_CHROOT", {"chroot"}},
        {"CAP_SYS_MODULE", {"delete_module", "init_module", "finit_module"}},
        {"CAP_SYS_PACCT", {"acct"}},
        {"CAP_SYS_PTRACE", {"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"}},
        {"CAP_SYS_RAWIO", {"iopl", "ioperm"}},
        {"CAP_SYS_TIME", {"settimeofday", "stime", "clock_settime", "clock_settime64"}},
        {"CAP_SYS_TTY_CONFIG", {"vhangup"}},
        {"CAP_SYS_NICE", {"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"}},
        {"CAP_SYSLOG", {"syslog"}},
        {"CAP_BPF", {"bpf"}},
        {"CAP_PERFMON", {"perf_event_open"}},
    };
    return groups;
}

// The personality() values a container may set: PER_LINUX, PER_LINUX32,
// PER_LINUX|UNAME26, PER_LINUX32|UNAME26, and 0xffffffff (a query).
constexpr uint64_t kPersonalities[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};

// CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET: clone() without
// any of them is allowed to everyone.
constexpr uint64_t kCloneNamespaceFlags = 0x7E020000;

constexpr uint64_t kAfVsock = 40;

json names_of(const std::vector<std::string_view>& names) {
    json a = json::array();
    for (auto n : names) a.push_back(std::string(n));
    return a;
}

json docker_default_profile() {
    json syscalls = json::array();
    auto allow = [&](std::vector<std::string_view> names) {
        json r = {{"names", names_of(names)}, {"action", "SCMP_ACT_ALLOW"}};
        syscalls.push_back(r);
        return &syscalls.back();
    };

    allow(std::vector<std::string_view>(std::begin(kAllowed), std::end(kAllowed)));
    // Unprivileged ptrace is safe from kernel 4.8 on (seccomp runs after ptrace there).
    (*allow({"process_vm_readv", "process_vm_writev", "ptrace"}))["includes"] = {{"minKernel", "4.8"}};
    (*allow({"socket"}))["args"] = json::array({{{"index", 0}, {"value", kAfVsock}, {"op", "SCMP_CMP_NE"}}});
    for (uint64_t p : kPersonalities)
        (*allow({"personality"}))["args"] = json::array({{{"index", 0}, {"value", p}, {"op", "SCMP_CMP_EQ"}}});

    // Architecture-specific syscalls.
    (*allow({"arch_prctl"}))["includes"] = {{"arches", {"amd64", "x32"}}};
    (*allow({"modify_ldt"}))["includes"] = {{"arches", {"amd64", "x32", "x86"}}};
    (*allow({"sync_file_range2", "swapcontext"}))["includes"] = {{"arches", {"ppc64le"}}};
    (*allow({"arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush",
             "set_tls"}))["includes"] = {{"arches", {"arm", "arm64"}}};
    (*allow({"s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"}))["includes"] = {
        {"arches", {"s390", "s390x"}}};
    (*allow({"riscv_flush_icache"}))["includes"] = {{"arches", {"riscv64"}}};

    for (const auto& g : cap_groups()) (*allow(g.names))["includes"] = {{"caps", {std::string(g.cap)}}};

    // Without CAP_SYS_ADMIN: clone only without namespace flags (flags are the
    // first argument, the second on s390), clone3 answers ENOSYS (its flags sit
    // in memory seccomp cannot read; libcs fall back to clone on ENOSYS).
    json* clone = allow({"clone"});
    (*clone)["args"] =
        json::array({{{"index", 0}, {"value", kCloneNamespaceFlags}, {"valueTwo", 0}, {"op", "SCMP_CMP_MASKED_EQ"}}});
    (*clone)["excludes"] = {{"caps", {"CAP_SYS_ADMIN"}}, {"arches", {"s390", "s390x"}}};
    json* clone_s390 = allow({"clone"});
    (*clone_s390)["args"] =
        json::array({{{"index", 1}, {"value", kCloneNamespaceFlags}, {"valueTwo", 0}, {"op", "SCMP_CMP_MASKED_EQ"}}});
    (*clone_s390)["includes"] = {{"arches", {"s390", "s390x"}}};
    (*clone_s390)["excludes"] = {{"caps", {"CAP_SYS_ADMIN"}}};
    syscalls.push_back({{"names", {"clone3"}},
                        {"action", "SCMP_ACT_ERRNO"},
                        {"errnoRet", ENOSYS},
                        {"excludes", {{"caps", {"CAP_SYS_ADMIN"}}}}});

    return {{"defaultAction", "SCMP_ACT_ERRNO"}, {"defaultErrnoRet", EPERM}, {"syscalls", syscalls}};
}

// ---- docker format -> OCI --------------------------------------------------------

[[noreturn]] void bad(const std::string& source, const std::string& field, const std::string& what) {
    throw Error(EINVAL, "seccomp profile " + source + ": " + field + ": " + what);
}

std::vector<std::string> string_list(const json& j, const std::string& source, const std::string& field) {
    std::vector<std::string> out;
    if (j.is_null()) return out;
    if (!j.is_array()) bad(source, field, "expected an array of strings");
    for (size_t i = 0; i < j.size(); ++i) {
        if (!j[i].is_string()) bad(source, field + "[" + std::to_string(i) + "]", "expected a string");
        out.push_back(j[i].get<std::string>());
    }
    return out;
}

// includes/excludes {caps, arches, minKernel}: does the filter match this container on this host?
struct Filter {
    std::vector<std::string> caps, arches;
    std::string min_kernel;
};

Filter parse_filter(const json& j, const std::string& source, const std::string& field) {
    Filter f;
    if (j.is_null()) return f;
    if (!j.is_object()) bad(source, field, "expected an object");
    if (j.contains("caps")) f.caps = string_list(j["caps"], source, field + ".caps");
    if (j.contains("arches")) f.arches = string_list(j["arches"], source, field + ".arches");
    if (j.contains("minKernel") && !j["minKernel"].is_null()) {
        if (!j["minKernel"].is_string()) bad(source, field + ".minKernel", "expected a string like \"4.8\"");
        f.min_kernel = j["minKernel"].get<std::string>();
        auto v = parse_kernel_version(f.min_kernel);
        if (v.first < 0) bad(source, field + ".minKernel", "'" + f.min_kernel + "' is not a kernel version");
    }
    return f;
}

bool kernel_at_least(const std::string& version) {
    return host_kernel() >= parse_kernel_version(version);
}

// Whether a rule applies, the way docker decides it: excludes.caps — any held
// cap drops it; includes.caps — every cap must be held; arches against the
// host's (Go-style) name; minKernel against the running kernel.
bool rule_applies(const Filter& inc, const Filter& exc, const std::vector<std::string>& caps) {
    const std::string& arch = host_arch().go_name;
    if (!exc.arches.empty() && contains(exc.arches, arch)) return false;
    if (!inc.arches.empty() && !contains(inc.arches, arch)) return false;
    for (const auto& c : exc.caps)
        if (contains(caps, c)) return false;
    for (const auto& c : inc.caps)
        if (!contains(caps, c)) return false;
    if (!exc.min_kernel.empty() && kernel_at_least(exc.min_kernel)) return false;
    if (!inc.min_kernel.empty() && !kernel_at_least(inc.min_kernel)) return false;
    return true;
}

json convert_arg(const json& a, const std::string& source, const std::string& field) {
    if (!a.is_object()) bad(source, field, "expected an object");
    json out = json::object();
    for (const char* key : {"index", "value", "valueTwo"}) {
        if (!a.contains(key) || a[key].is_null()) {
            if (std::string_view(key) == "index") bad(source, field + ".index", "missing");
            continue;
        }
        if (!is_count(a[key]))
            bad(source, field + "." + key, "expected a non-negative integer");
        out[key] = a[key].get<uint64_t>();
    }
    if (!a.contains("op") || !a["op"].is_string()) bad(source, field + ".op", "expected an operator name");
    out["op"] = a["op"];
    return out;
}

}  // namespace

json convert_docker_seccomp(const json& profile, const std::vector<std::string>& caps, const std::string& source) {
    if (!profile.is_object()) bad(source, "(top level)", "expected a JSON object");
    json out = json::object();
    if (!profile.contains("defaultAction") || !profile["defaultAction"].is_string())
        bad(source, "defaultAction", "missing (e.g. \"SCMP_ACT_ERRNO\")");
    out["defaultAction"] = profile["defaultAction"];
    if (profile.contains("defaultErrnoRet") && !profile["defaultErrnoRet"].is_null()) {
        if (!is_count(profile["defaultErrnoRet"])) bad(source, "defaultErrnoRet", "expected an errno number");
        out["defaultErrnoRet"] = profile["defaultErrnoRet"];
    }

    // Architectures: a list as given, or from archMap the entry for this host
    // with its sub-architectures.
    std::vector<std::string> arches;
    if (profile.contains("architectures")) arches = string_list(profile["architectures"], source, "architectures");
    if (profile.contains("archMap") && !profile["archMap"].is_null()) {
        if (!arches.empty()) bad(source, "archMap", "'architectures' and 'archMap' cannot both be given");
        const json& map = profile["archMap"];
        if (!map.is_array()) bad(source, "archMap", "expected an array");
        for (size_t i = 0; i < map.size(); ++i) {
            const std::string field = "archMap[" + std::to_string(i) + "]";
            if (!map[i].is_object() || !map[i].contains("architecture") || !map[i]["architecture"].is_string())
                bad(source, field, "expected {\"architecture\": ..., \"subArchitectures\": [...]}");
            if (map[i]["architecture"].get<std::string>() != host_arch().scmp) continue;
            arches.push_back(host_arch().scmp);
            if (map[i].contains("subArchitectures"))
                for (auto& s : string_list(map[i]["subArchitectures"], source, field + ".subArchitectures"))
                    arches.push_back(s);
        }
    }
    if (!arches.empty()) out["architectures"] = arches;

    if (profile.contains("flags")) {
        auto flags = string_list(profile["flags"], source, "flags");
        if (!flags.empty()) out["flags"] = flags;
    }
    if (profile.contains("listenerPath") && profile["listenerPath"].is_string() &&
        !profile["listenerPath"].get<std::string>().empty())
        out["listenerPath"] = profile["listenerPath"];
    if (profile.contains("listenerMetadata") && profile["listenerMetadata"].is_string() &&
        !profile["listenerMetadata"].get<std::string>().empty())
        out["listenerMetadata"] = profile["listenerMetadata"];

    json syscalls = json::array();
    // name -> action of an unconditional rule already emitted: a repeat of it
    // (ptrace under minKernel and under CAP_SYS_PTRACE) is left out.
    std::set<std::pair<std::string, std::string>> unconditional;
    const json empty = json::array();
    const json& calls = profile.contains("syscalls") && !profile["syscalls"].is_null() ? profile["syscalls"] : empty;
    if (!calls.is_array()) bad(source, "syscalls", "expected an array");
    for (size_t i = 0; i < calls.size(); ++i) {
        const std::string field = "syscalls[" + std::to_string(i) + "]";
        const json& c = calls[i];
        if (!c.is_object()) bad(source, field, "expected an object");

        std::vector<std::string> names;
        if (c.contains("names")) names = string_list(c["names"], source, field + ".names");
        if (c.contains("name") && !c["name"].is_null()) {  // docker's older single-name form
            if (!c["name"].is_string()) bad(source, field + ".name", "expected a string");
            if (!names.empty()) bad(source, field, "'name' and 'names' cannot both be given");
            names.push_back(c["name"].get<std::string>());
        }
        if (names.empty()) bad(source, field + ".names", "no syscall names");
        if (!c.contains("action") || !c["action"].is_string()) bad(source, field + ".action", "missing");

        Filter inc = parse_filter(c.value("includes", json()), source, field + ".includes");
        Filter exc = parse_filter(c.value("excludes", json()), source, field + ".excludes");
        if (!rule_applies(inc, exc, caps)) continue;

        json rule = {{"names", json::array()}, {"action", c["action"]}};
        if (c.contains("errnoRet") && !c["errnoRet"].is_null()) {
            if (!is_count(c["errnoRet"])) bad(source, field + ".errnoRet", "expected an errno number");
            rule["errnoRet"] = c["errnoRet"];
        }
        json args = json::array();
        if (c.contains("args") && !c["args"].is_null()) {
            if (!c["args"].is_array()) bad(source, field + ".args", "expected an array");
            for (size_t j = 0; j < c["args"].size(); ++j)
                args.push_back(convert_arg(c["args"][j], source, field + ".args[" + std::to_string(j) + "]"));
        }
        const std::string action_key = c["action"].get<std::string>() + "/" + rule.value("errnoRet", json()).dump();
        for (const auto& n : names) {
            if (args.empty() && !unconditional.insert({n, action_key}).second) continue;
            rule["names"].push_back(n);
        }
        if (rule["names"].empty()) continue;
        if (!args.empty()) rule["args"] = args;
        syscalls.push_back(std::move(rule));
    }
    out["syscalls"] = syscalls;
    return out;
}

json default_seccomp_profile(const std::vector<std::string>& caps) {
    json p = convert_docker_seccomp(docker_default_profile(), caps, "(vitro default)");
    std::vector<std::string> arches{host_arch().scmp};
    for (const auto& s : host_arch().sub_arches) arches.push_back(s);
    p["architectures"] = arches;
    return p;
}

void apply_security_opts(json& spec, const std::vector<std::string>& security_opts) {
    bool unconfined = false;
    std::optional<json> custom;
    std::vector<std::string> caps;
    if (spec.contains("process") && spec["process"].contains("capabilities") &&
        spec["process"]["capabilities"].contains("bounding"))
        caps = string_list(spec["process"]["capabilities"]["bounding"], "(spec)", "process.capabilities.bounding");

    for (const auto& opt : security_opts) {
        // KEY=VALUE, or docker's older KEY:VALUE.
        size_t sep = opt.find_first_of("=:");
        std::string key = opt.substr(0, sep);
        std::string value = sep == std::string::npos ? "" : opt.substr(sep + 1);
        bool has_value = sep != std::string::npos;

        if (key == "seccomp") {
            if (value.empty()) throw Error(EINVAL, "--security-opt \"" + opt + "\": seccomp needs a value (unconfined or a profile file)");
            if (value == "unconfined") {
                unconfined = true;
                custom.reset();
                continue;
            }
            std::ifstream in(value, std::ios::binary);
            if (!in) throw_errno("--security-opt seccomp: open profile", value);
            std::stringstream ss;
            ss << in.rdbuf();
            json doc = json::parse(ss.str(), nullptr, false);
            if (doc.is_discarded())
                throw Error(EINVAL, "--security-opt seccomp: profile " + value + " is not valid JSON");
            custom = convert_docker_seccomp(doc, caps, value);
            unconfined = false;
        } else if (key == "no-new-privileges") {
            bool on = true;
            if (has_value) {
                if (value == "true") on = true;
                else if (value == "false") on = false;
                else throw Error(EINVAL, "--security-opt \"" + opt + "\": no-new-privileges takes true or false");
            }
            spec["process"]["noNewPrivileges"] = on;
        } else if ((key == "label" || key == "apparmor") && has_value) {
            // No SELinux or AppArmor support: accepted, no effect (as podman on a host without them).
        } else {
            throw Error(EINVAL, "--security-opt \"" + opt +
                                    "\": unknown option (known: seccomp=unconfined|FILE, no-new-privileges, "
                                    "label=..., apparmor=...)");
        }
    }

    if (unconfined) {
        if (spec.contains("linux") && spec["linux"].is_object()) spec["linux"].erase("seccomp");
        return;
    }
    spec["linux"]["seccomp"] = custom ? *custom : default_seccomp_profile(caps);
}

}  // namespace vitro::engine
