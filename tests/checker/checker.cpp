// vitro-checker: a small static binary that the integration tests copy into a
// bundle's rootfs and run as the container's process (or through `exec`), to
// check the container from the inside, like youki's contest/runtimetest.
//
//   checker CHECK [ARGS...] [+ CHECK [ARGS...]]...
//
// Each check exits 0 when it holds; the first one that does not prints one line
// "checker: CHECK ...: expected ..., got ..." on stderr and the binary exits 1.
// Usage errors exit 2. Checks joined by a lone "+" run in order, in one process.
//
// Static on purpose: the rootfs is busybox only, with no dynamic loader.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <linux/magic.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

using Args = std::vector<std::string>;

// A failed check: the message is printed once by main().
struct CheckFailed {
    std::string message;
};
struct UsageError {
    std::string message;
};

[[noreturn]] void fail(const std::string& msg) { throw CheckFailed{msg}; }
[[noreturn]] void usage(const std::string& msg) { throw UsageError{msg}; }

std::string errno_text(int e) {
    static const std::map<int, const char*> names = {
        {EPERM, "EPERM"},   {ENOENT, "ENOENT"}, {EACCES, "EACCES"}, {EROFS, "EROFS"},   {EINVAL, "EINVAL"},
        {EBUSY, "EBUSY"},   {EEXIST, "EEXIST"}, {ENOSYS, "ENOSYS"}, {EXDEV, "EXDEV"},   {ENOTDIR, "ENOTDIR"},
        {EISDIR, "EISDIR"}, {EBADF, "EBADF"},   {ENODEV, "ENODEV"}, {ENXIO, "ENXIO"},   {ENOSPC, "ENOSPC"},
        {EFAULT, "EFAULT"}, {EIO, "EIO"},       {ENOTSUP, "ENOTSUP"}, {ECHILD, "ECHILD"}, {EAGAIN, "EAGAIN"},
    };
    auto it = names.find(e);
    std::string name = it != names.end() ? it->second : "errno " + std::to_string(e);
    return name + " (" + std::strerror(e) + ")";
}

int parse_errno(const std::string& s) {
    static const std::map<std::string, int> names = {
        {"EPERM", EPERM},   {"ENOENT", ENOENT}, {"EACCES", EACCES}, {"EROFS", EROFS},   {"EINVAL", EINVAL},
        {"EBUSY", EBUSY},   {"EEXIST", EEXIST}, {"ENOSYS", ENOSYS}, {"EXDEV", EXDEV},   {"ENOTDIR", ENOTDIR},
        {"EISDIR", EISDIR}, {"EBADF", EBADF},   {"ENODEV", ENODEV}, {"ENXIO", ENXIO},   {"ENOSPC", ENOSPC},
        {"EFAULT", EFAULT}, {"EIO", EIO},       {"ENOTSUP", ENOTSUP}, {"ECHILD", ECHILD}, {"EAGAIN", EAGAIN},
    };
    if (auto it = names.find(s); it != names.end()) return it->second;
    char* end = nullptr;
    long v = std::strtol(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || v <= 0) usage("not an errno name or number: '" + s + "'");
    return static_cast<int>(v);
}

uint64_t parse_u64(const std::string& s, int base = 10) {
    if (s == "unlimited" || s == "-1") return UINT64_MAX;
    char* end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(s.c_str(), &end, base);
    if (s.empty() || *end != '\0' || errno != 0) usage("not a number: '" + s + "'");
    return v;
}

long long parse_i64(const std::string& s) {
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || errno != 0) usage("not a number: '" + s + "'");
    return v;
}

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("cannot read " + path + ": " + errno_text(errno));
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
    size_t i = 0;
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    return s.substr(i);
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (c == sep) {
            out.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    out.push_back(cur);
    return out;
}

std::string hex(uint64_t v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
    return buf;
}

std::string octal(unsigned v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0%o", v);
    return buf;
}

// A field of /proc/self/status ("CapEff", "Umask", ...).
std::string status_field(const std::string& key) {
    std::istringstream in(read_text("/proc/self/status"));
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(key + ":", 0) == 0) return trim(line.substr(key.size() + 1));
    fail("/proc/self/status has no " + key + " line");
}

void need(const Args& a, size_t n, const char* synopsis) {
    if (a.size() != n) usage(std::string("usage: ") + synopsis);
}
void need_at_least(const Args& a, size_t n, const char* synopsis) {
    if (a.size() < n) usage(std::string("usage: ") + synopsis);
}

// ---- capabilities -------------------------------------------------------

const std::vector<std::string>& cap_names() {
    static const std::vector<std::string> names = {
        "CAP_CHOWN",          "CAP_DAC_OVERRIDE",   "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
        "CAP_FSETID",         "CAP_KILL",           "CAP_SETGID",          "CAP_SETUID",
        "CAP_SETPCAP",        "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",      "CAP_NET_RAW",        "CAP_IPC_LOCK",        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",     "CAP_SYS_RAWIO",      "CAP_SYS_CHROOT",      "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",      "CAP_SYS_ADMIN",      "CAP_SYS_BOOT",        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",   "CAP_SYS_TIME",       "CAP_SYS_TTY_CONFIG",  "CAP_MKNOD",
        "CAP_LEASE",          "CAP_AUDIT_WRITE",    "CAP_AUDIT_CONTROL",   "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",   "CAP_MAC_ADMIN",      "CAP_SYSLOG",          "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",  "CAP_AUDIT_READ",     "CAP_PERFMON",         "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    };
    return names;
}

int cap_number(const std::string& name) {
    const auto& n = cap_names();
    auto it = std::find(n.begin(), n.end(), name);
    if (it == n.end()) usage("unknown capability '" + name + "'");
    return static_cast<int>(it - n.begin());
}

std::string cap_list(uint64_t mask) {
    std::string out;
    for (size_t i = 0; i < 64; ++i)
        if (mask & (uint64_t{1} << i)) {
            if (!out.empty()) out += ",";
            out += i < cap_names().size() ? cap_names()[i] : "cap" + std::to_string(i);
        }
    return out.empty() ? "(none)" : out;
}

// SET: eff, prm, inh, bnd, amb.
uint64_t cap_set(const std::string& set) {
    static const std::map<std::string, std::string> fields = {
        {"eff", "CapEff"}, {"prm", "CapPrm"}, {"inh", "CapInh"}, {"bnd", "CapBnd"}, {"amb", "CapAmb"}};
    auto it = fields.find(set);
    if (it == fields.end()) usage("capability set must be eff, prm, inh, bnd or amb, not '" + set + "'");
    return parse_u64(status_field(it->second), 16);
}

// ---- mounts ---------------------------------------------------------------

struct MountEntry {
    std::string mount_point, fstype, source;
    std::set<std::string> mount_opts, super_opts;
};

std::string unescape_mountinfo(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size()) {
            int v = 0;
            bool ok = true;
            for (size_t k = 1; k <= 3; ++k) {
                if (s[i + k] < '0' || s[i + k] > '7') ok = false;
                else v = v * 8 + (s[i + k] - '0');
            }
            if (ok) {
                out += static_cast<char>(v);
                i += 3;
                continue;
            }
        }
        out += s[i];
    }
    return out;
}

// The topmost mount at exactly PATH, from /proc/self/mountinfo.
std::optional<MountEntry> mount_at(const std::string& path) {
    std::istringstream in(read_text("/proc/self/mountinfo"));
    std::string line;
    std::optional<MountEntry> found;
    while (std::getline(in, line)) {
        auto f = split(line, ' ');
        if (f.size() < 10) continue;
        MountEntry e;
        e.mount_point = unescape_mountinfo(f[4]);
        for (auto& o : split(f[5], ',')) e.mount_opts.insert(o);
        size_t dash = 6;
        while (dash < f.size() && f[dash] != "-") ++dash;
        if (dash + 2 >= f.size()) continue;
        e.fstype = f[dash + 1];
        e.source = dash + 2 < f.size() ? unescape_mountinfo(f[dash + 2]) : "";
        if (dash + 3 < f.size())
            for (auto& o : split(f[dash + 3], ',')) e.super_opts.insert(o);
        if (e.mount_point == path) found = e;  // later lines are mounted on top
    }
    return found;
}

std::string join_set(const std::set<std::string>& s) {
    std::string out;
    for (auto& x : s) out += (out.empty() ? "" : ",") + x;
    return out;
}

bool statvfs_rdonly(const std::string& path) {
    struct statvfs sv {};
    if (::statvfs(path.c_str(), &sv) < 0) fail("statvfs " + path + ": " + errno_text(errno));
    return (sv.f_flag & ST_RDONLY) != 0;
}

// Try to write at PATH: a new file inside a directory, or the file itself.
// Returns 0 on success, else the errno.
int try_write(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) < 0) fail("stat " + path + ": " + errno_text(errno));
    if (S_ISDIR(st.st_mode)) {
        std::string probe = path + (path.back() == '/' ? "" : "/") + ".checker-probe";
        int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) return errno;
        ::close(fd);
        ::unlink(probe.c_str());
        return 0;
    }
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    ::close(fd);
    return 0;
}

// ---- the checks -------------------------------------------------------------

using Check = std::function<void(const Args&)>;

void check_hostname(const Args& a) {
    need(a, 1, "hostname NAME");
    struct utsname u {};
    ::uname(&u);
    if (a[0] != u.nodename) fail("expected hostname '" + a[0] + "', got '" + u.nodename + "'");
}

void check_domainname(const Args& a) {
    need(a, 1, "domainname NAME");
    struct utsname u {};
    ::uname(&u);
    if (a[0] != u.domainname) fail("expected domainname '" + a[0] + "', got '" + u.domainname + "'");
}

void check_uid_gid(const Args& a) {
    need_at_least(a, 2, "uid-gid UID GID [GROUPS...]");
    uid_t uid = static_cast<uid_t>(parse_u64(a[0]));
    gid_t gid = static_cast<gid_t>(parse_u64(a[1]));
    uid_t r, e, s;
    gid_t gr, ge, gs;
    ::getresuid(&r, &e, &s);
    ::getresgid(&gr, &ge, &gs);
    if (r != uid || e != uid || s != uid)
        fail("expected uid " + a[0] + " (real, effective, saved), got " + std::to_string(r) + "/" +
             std::to_string(e) + "/" + std::to_string(s));
    if (gr != gid || ge != gid || gs != gid)
        fail("expected gid " + a[1] + " (real, effective, saved), got " + std::to_string(gr) + "/" +
             std::to_string(ge) + "/" + std::to_string(gs));
    std::set<gid_t> want;
    for (size_t i = 2; i < a.size(); ++i) want.insert(static_cast<gid_t>(parse_u64(a[i])));
    int n = ::getgroups(0, nullptr);
    std::vector<gid_t> groups(static_cast<size_t>(std::max(n, 0)));
    if (n > 0) ::getgroups(n, groups.data());
    std::set<gid_t> got(groups.begin(), groups.end());
    if (got != want) {
        auto show = [](const std::set<gid_t>& s) {
            std::string out;
            for (auto g : s) out += (out.empty() ? "" : " ") + std::to_string(g);
            return "[" + out + "]";
        };
        fail("expected supplementary groups " + show(want) + ", got " + show(got));
    }
}

void check_umask(const Args& a) {
    need(a, 1, "umask OCTAL");
    unsigned want = static_cast<unsigned>(parse_u64(a[0], 8));
    mode_t got = ::umask(0);
    ::umask(got);
    if (got != want) fail("expected umask " + octal(want) + ", got " + octal(got));
}

void check_caps(const Args& a) {
    need(a, 1, "caps EFF_HEX");
    uint64_t want = parse_u64(a[0], 16);
    uint64_t got = cap_set("eff");
    if (want != got)
        fail("expected effective capabilities " + hex(want) + " (" + cap_list(want) + "), got " + hex(got) + " (" +
             cap_list(got) + ")");
}

void check_caps_set(const Args& a) {
    need(a, 2, "caps-set eff|prm|inh|bnd|amb HEX");
    uint64_t want = parse_u64(a[1], 16);
    uint64_t got = cap_set(a[0]);
    if (want != got)
        fail("expected " + a[0] + " capabilities " + hex(want) + " (" + cap_list(want) + "), got " + hex(got) + " (" +
             cap_list(got) + ")");
}

void check_cap_has(const Args& a, bool want_present) {
    if (a.empty() || a.size() > 2) usage("cap-has|cap-lacks CAP_NAME [eff|prm|inh|bnd|amb]");
    std::string set = a.size() == 2 ? a[1] : "eff";
    int n = cap_number(a[0]);
    uint64_t mask = cap_set(set);
    bool present = (mask >> n) & 1;
    if (present != want_present)
        fail("expected " + a[0] + (want_present ? " in " : " absent from ") + set + " set, which is " + hex(mask) +
             " (" + cap_list(mask) + ")");
}

int rlimit_resource(const std::string& name) {
    static const std::map<std::string, int> r = {
        {"RLIMIT_AS", RLIMIT_AS},           {"RLIMIT_CORE", RLIMIT_CORE},         {"RLIMIT_CPU", RLIMIT_CPU},
        {"RLIMIT_DATA", RLIMIT_DATA},       {"RLIMIT_FSIZE", RLIMIT_FSIZE},       {"RLIMIT_LOCKS", RLIMIT_LOCKS},
        {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
        {"RLIMIT_NOFILE", RLIMIT_NOFILE},   {"RLIMIT_NPROC", RLIMIT_NPROC},       {"RLIMIT_RSS", RLIMIT_RSS},
        {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},   {"RLIMIT_RTTIME", RLIMIT_RTTIME},     {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
        {"RLIMIT_STACK", RLIMIT_STACK},
    };
    auto it = r.find(name);
    if (it == r.end()) usage("unknown rlimit '" + name + "'");
    return it->second;
}

std::string limit_text(rlim_t v) { return v == RLIM_INFINITY ? "unlimited" : std::to_string(v); }

void check_rlimit(const Args& a) {
    need(a, 3, "rlimit RLIMIT_X SOFT HARD");
    struct rlimit rl {};
    if (::getrlimit(rlimit_resource(a[0]), &rl) < 0) fail("getrlimit " + a[0] + ": " + errno_text(errno));
    rlim_t soft = parse_u64(a[1]) == UINT64_MAX ? RLIM_INFINITY : parse_u64(a[1]);
    rlim_t hard = parse_u64(a[2]) == UINT64_MAX ? RLIM_INFINITY : parse_u64(a[2]);
    if (rl.rlim_cur != soft || rl.rlim_max != hard)
        fail("expected " + a[0] + " soft " + limit_text(soft) + " hard " + limit_text(hard) + ", got soft " +
             limit_text(rl.rlim_cur) + " hard " + limit_text(rl.rlim_max));
}

void check_nnp(const Args& a) {
    need(a, 1, "nnp 0|1");
    int want = static_cast<int>(parse_u64(a[0]));
    int got = ::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
    if (got != want) fail("expected no_new_privs " + a[0] + ", got " + std::to_string(got));
}

void check_mount_ro(const Args& a, bool want_ro) {
    need(a, 1, want_ro ? "mount-ro PATH" : "mount-rw PATH");
    bool ro = statvfs_rdonly(a[0]);
    if (ro != want_ro) fail("expected " + a[0] + " on a " + (want_ro ? "read-only" : "read-write") + " mount, it is " +
                            (ro ? "read-only" : "read-write"));
}

void check_readonly(const Args& a) {
    need(a, 1, "readonly PATH");
    // Writing must fail. On an ordinary file or directory the error is EROFS;
    // in procfs a new name fails earlier (ENOENT), so the mount flag decides.
    int e = try_write(a[0]);
    if (e == 0) fail("expected writing to " + a[0] + " to fail with EROFS, it succeeded");
    if (!statvfs_rdonly(a[0]))
        fail("expected " + a[0] + " on a read-only mount, it is read-write (writing failed with " + errno_text(e) + ")");
    struct statfs sf {};
    if (::statfs(a[0].c_str(), &sf) == 0 && sf.f_type != PROC_SUPER_MAGIC && e != EROFS)
        fail("expected writing to " + a[0] + " to fail with EROFS, got " + errno_text(e));
}

void check_writable(const Args& a) {
    need(a, 1, "writable PATH");
    int e = try_write(a[0]);
    if (e != 0) fail("expected " + a[0] + " to be writable, got " + errno_text(e));
}

// A masked path reads as nothing: a file is /dev/null bound over it, a directory
// an empty read-only tmpfs.
void check_masked(const Args& a) {
    need(a, 1, "masked PATH");
    struct stat st {};
    if (::stat(a[0].c_str(), &st) < 0) fail("stat " + a[0] + ": " + errno_text(errno));
    if (S_ISDIR(st.st_mode)) {
        DIR* d = ::opendir(a[0].c_str());
        if (!d) fail("opendir " + a[0] + ": " + errno_text(errno));
        std::vector<std::string> entries;
        while (auto* ent = ::readdir(d))
            if (std::strcmp(ent->d_name, ".") != 0 && std::strcmp(ent->d_name, "..") != 0)
                entries.push_back(ent->d_name);
        ::closedir(d);
        if (!entries.empty())
            fail("expected masked directory " + a[0] + " to be empty, it lists '" + entries.front() + "' and " +
                 std::to_string(entries.size() - 1) + " more");
        int e = try_write(a[0]);
        if (e == 0) fail("expected masked directory " + a[0] + " to be read-only, a file could be created in it");
        return;
    }
    if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != 1 || minor(st.st_rdev) != 3)
        fail("expected masked file " + a[0] + " to be /dev/null (char 1:3), it is mode " + octal(st.st_mode) +
             " rdev " + std::to_string(major(st.st_rdev)) + ":" + std::to_string(minor(st.st_rdev)));
    int fd = ::open(a[0].c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("open masked " + a[0] + ": " + errno_text(errno));
    char buf[16];
    ssize_t n = ::read(fd, buf, sizeof buf);
    ::close(fd);
    if (n != 0) fail("expected masked file " + a[0] + " to read empty, read returned " + std::to_string(n));
}

void check_cannot_remount(const Args& a) {
    need(a, 1, "cannot-remount PATH");
    // Try to make the read-only bind writable again.
    if (::mount(nullptr, a[0].c_str(), nullptr, MS_REMOUNT | MS_BIND, nullptr) == 0)
        fail("expected remounting " + a[0] + " read-write to fail with EPERM, it succeeded");
    int e = errno;
    if (e != EPERM) fail("expected remounting " + a[0] + " read-write to fail with EPERM, got " + errno_text(e));
    if (!statvfs_rdonly(a[0])) fail("expected " + a[0] + " to stay read-only, it is read-write now");
}

// mount-info PATH FSTYPE [OPT...]: a mount at exactly PATH, of that type, whose
// mount or superblock options include each OPT.
void check_mount_info(const Args& a) {
    need_at_least(a, 2, "mount-info PATH FSTYPE [OPT...]");
    auto m = mount_at(a[0]);
    if (!m) fail("expected a mount at " + a[0] + ", there is none in /proc/self/mountinfo");
    if (a[1] != "-" && m->fstype != a[1]) fail("expected " + a[0] + " to be " + a[1] + ", it is " + m->fstype);
    for (size_t i = 2; i < a.size(); ++i)
        if (!m->mount_opts.count(a[i]) && !m->super_opts.count(a[i]))
            fail("expected mount option " + a[i] + " on " + a[0] + ", it has " + join_set(m->mount_opts) + " / " +
                 join_set(m->super_opts));
}

void check_not_mounted(const Args& a) {
    need(a, 1, "not-mounted PATH");
    if (auto m = mount_at(a[0])) fail("expected no mount at " + a[0] + ", found " + m->fstype);
}

void check_file_content(const Args& a) {
    need(a, 2, "file-content PATH TEXT");
    std::string got = read_text(a[0]);
    if (trim(got) != a[1]) fail("expected " + a[0] + " to contain '" + a[1] + "', it contains '" + trim(got) + "'");
}

void check_write_file(const Args& a) {
    need(a, 2, "write-file PATH TEXT");
    int fd = ::open(a[0].c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail("open " + a[0] + " for writing: " + errno_text(errno));
    std::string text = a[1] + "\n";
    ssize_t n = ::write(fd, text.data(), text.size());
    ::close(fd);
    if (n != static_cast<ssize_t>(text.size())) fail("write " + a[0] + ": " + errno_text(errno));
}

void check_exists(const Args& a, bool want) {
    need(a, 1, want ? "exists PATH" : "not-exists PATH");
    struct stat st {};
    bool there = ::lstat(a[0].c_str(), &st) == 0;
    if (there != want) fail(a[0] + (want ? " does not exist" : " exists, expected it absent"));
}

std::vector<int> open_fds() {
    DIR* d = ::opendir("/proc/self/fd");
    if (!d) fail("opendir /proc/self/fd: " + errno_text(errno));
    int own = ::dirfd(d);
    std::vector<int> fds;
    while (auto* ent = ::readdir(d)) {
        if (ent->d_name[0] == '.') continue;
        int fd = std::atoi(ent->d_name);
        if (fd != own) fds.push_back(fd);
    }
    ::closedir(d);
    std::sort(fds.begin(), fds.end());
    return fds;
}

std::string fd_target(int fd) {
    char buf[512];
    std::string link = "/proc/self/fd/" + std::to_string(fd);
    ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
    if (n < 0) return "?";
    buf[n] = '\0';
    return buf;
}

void check_no_extra_fds(const Args& a) {
    need(a, 1, "no-extra-fds N");
    int n = static_cast<int>(parse_u64(a[0]));
    std::string extra;
    for (int fd : open_fds())
        if (fd >= n) extra += (extra.empty() ? "" : ", ") + std::to_string(fd) + " -> " + fd_target(fd);
    if (!extra.empty()) fail("expected only fds 0.." + std::to_string(n - 1) + " open, also open: " + extra);
}

void check_fd_content(const Args& a) {
    need(a, 2, "fd-content FD TEXT");
    int fd = static_cast<int>(parse_u64(a[0]));
    if (::fcntl(fd, F_GETFD) < 0) fail("expected fd " + a[0] + " open, got " + errno_text(errno));
    std::string got;
    char buf[256];
    ::lseek(fd, 0, SEEK_SET);
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
    if (n < 0) fail("read fd " + a[0] + ": " + errno_text(errno));
    if (trim(got) != a[1]) fail("expected fd " + a[0] + " to read '" + a[1] + "', it reads '" + trim(got) + "'");
}

void check_pid1(const Args& a) {
    need(a, 0, "pid1");
    if (::getpid() != 1) fail("expected pid 1, got " + std::to_string(::getpid()));
}

uint64_t ns_inode(const std::string& type) {
    std::string path = "/proc/self/ns/" + type;
    struct stat st {};
    if (::stat(path.c_str(), &st) < 0) fail("stat " + path + ": " + errno_text(errno));
    return st.st_ino;
}

void check_ns(const Args& a, bool want_same) {
    need(a, 2, want_same ? "ns-same TYPE INODE" : "ns-differs TYPE HOSTINODE");
    uint64_t want = parse_u64(a[1]);
    uint64_t got = ns_inode(a[0]);
    if ((got == want) != want_same)
        fail("expected " + a[0] + " namespace " + (want_same ? "to be " : "to differ from ") + a[1] + ", it is " +
             std::to_string(got));
}

void check_cwd(const Args& a) {
    need(a, 1, "cwd PATH");
    char buf[4096];
    if (!::getcwd(buf, sizeof buf)) fail("getcwd: " + errno_text(errno));
    if (a[0] != buf) fail(std::string("expected cwd '") + a[0] + "', got '" + buf + "'");
}

extern "C" char** environ;

void check_env(const Args& a) {
    need(a, 1, "env KEY=VALUE");
    auto eq = a[0].find('=');
    if (eq == std::string::npos) usage("env KEY=VALUE");
    std::string key = a[0].substr(0, eq);
    int count = 0;
    std::string got;
    for (char** e = environ; *e; ++e)
        if (std::string_view(*e).substr(0, key.size() + 1) == key + "=") {
            ++count;
            got = *e;
        }
    if (count == 0) fail("expected " + a[0] + " in the environment, " + key + " is not set");
    if (count > 1) fail("expected " + key + " once in the environment, it is there " + std::to_string(count) + " times");
    if (got != a[0]) fail("expected " + a[0] + " in the environment, got " + got);
}

void check_env_absent(const Args& a) {
    need(a, 1, "env-absent KEY");
    if (const char* v = std::getenv(a[0].c_str())) fail("expected " + a[0] + " unset, it is '" + v + "'");
}

// device PATH c|b MAJOR MINOR MODE [UID GID]
void check_device(const Args& a) {
    if (a.size() != 5 && a.size() != 7) usage("device PATH c|b MAJOR MINOR MODE [UID GID]");
    struct stat st {};
    if (::stat(a[0].c_str(), &st) < 0) fail("stat " + a[0] + ": " + errno_text(errno));
    bool want_char = a[1] == "c" || a[1] == "u";
    if (a[1] != "c" && a[1] != "u" && a[1] != "b") usage("device type must be c, u or b");
    if (want_char ? !S_ISCHR(st.st_mode) : !S_ISBLK(st.st_mode))
        fail("expected " + a[0] + " to be a " + (want_char ? "character" : "block") + " device, mode is " +
             octal(st.st_mode));
    unsigned maj = static_cast<unsigned>(parse_u64(a[2])), min = static_cast<unsigned>(parse_u64(a[3]));
    if (major(st.st_rdev) != maj || minor(st.st_rdev) != min)
        fail("expected " + a[0] + " to be " + a[2] + ":" + a[3] + ", it is " + std::to_string(major(st.st_rdev)) +
             ":" + std::to_string(minor(st.st_rdev)));
    unsigned mode = static_cast<unsigned>(parse_u64(a[4], 8));
    if ((st.st_mode & 07777) != mode)
        fail("expected " + a[0] + " mode " + octal(mode) + ", it is " + octal(st.st_mode & 07777));
    if (a.size() == 7) {
        if (st.st_uid != parse_u64(a[5]) || st.st_gid != parse_u64(a[6]))
            fail("expected " + a[0] + " owned by " + a[5] + ":" + a[6] + ", it is " + std::to_string(st.st_uid) + ":" +
                 std::to_string(st.st_gid));
    }
}

// dev-rw PATH: the device can be opened for reading and writing (the device
// cgroup lets it through).
void check_dev_rw(const Args& a) {
    need(a, 1, "dev-rw PATH");
    int fd = ::open(a[0].c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) fail("expected to open " + a[0] + " read-write, got " + errno_text(errno));
    ::close(fd);
}

void check_dev_denied(const Args& a) {
    need(a, 1, "dev-denied PATH");
    int fd = ::open(a[0].c_str(), O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
        ::close(fd);
        fail("expected opening " + a[0] + " to be denied (EPERM), it succeeded");
    }
    if (errno != EPERM) fail("expected opening " + a[0] + " to fail with EPERM, got " + errno_text(errno));
}

void check_sysctl(const Args& a) {
    need(a, 2, "sysctl KEY VALUE");
    std::string path = "/proc/sys/" + a[0];
    std::replace(path.begin() + 10, path.end(), '.', '/');
    std::string got = trim(read_text(path));
    if (got != a[1]) fail("expected sysctl " + a[0] + " = " + a[1] + ", got " + got);
}

void check_seccomp_errno(const Args& a) {
    need(a, 2, "seccomp-errno SYSCALL ERRNO");
    int want = parse_errno(a[1]);
    long rc;
    errno = 0;
    if (a[0] == "getcwd") {
        char buf[256];
        rc = ::syscall(SYS_getcwd, buf, sizeof buf);
    } else if (a[0] == "getppid") {
        rc = ::syscall(SYS_getppid);
    } else if (a[0] == "uname") {
        struct utsname u {};
        rc = ::syscall(SYS_uname, &u);
    } else if (a[0] == "chdir") {
        rc = ::syscall(SYS_chdir, "/");
    } else if (a[0] == "mkdir") {
        rc = ::syscall(SYS_mkdir, "/tmp/.checker-seccomp", 0700);
        if (rc == 0) ::rmdir("/tmp/.checker-seccomp");
    } else if (a[0] == "personality") {
        rc = ::syscall(SYS_personality, 0xffffffffUL);
    } else {
        usage("seccomp-errno knows getcwd, getppid, uname, chdir, mkdir, personality; not '" + a[0] + "'");
    }
    int e = errno;
    if (rc != -1) fail("expected " + a[0] + " to fail with " + errno_text(want) + ", it returned " + std::to_string(rc));
    if (e != want) fail("expected " + a[0] + " to fail with " + errno_text(want) + ", got " + errno_text(e));
}

void check_seccomp_mode(const Args& a) {
    need(a, 1, "seccomp-mode 0|1|2");
    std::string got = status_field("Seccomp");
    if (got != a[0]) fail("expected Seccomp mode " + a[0] + " in /proc/self/status, got " + got);
}

void check_oom_score_adj(const Args& a) {
    need(a, 1, "oom-score-adj N");
    long long want = parse_i64(a[0]);
    std::string got = trim(read_text("/proc/self/oom_score_adj"));
    if (parse_i64(got) != want) fail("expected oom_score_adj " + a[0] + ", got " + got);
}

void check_cgroup_mem_limit(const Args& a) {
    need(a, 1, "cgroup-mem-limit BYTES");
    for (const char* path : {"/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory.max"}) {
        if (::access(path, F_OK) != 0) continue;
        std::string got = trim(read_text(path));
        std::string want = a[0];
        if (want == "max" && std::string(path).find("limit_in_bytes") != std::string::npos)
            want = "9223372036854771712";
        if (got != want) fail(std::string("expected ") + path + " = " + a[0] + ", got " + got);
        return;
    }
    fail("neither /sys/fs/cgroup/memory/memory.limit_in_bytes nor /sys/fs/cgroup/memory.max exists");
}

void check_symlink(const Args& a) {
    need(a, 2, "symlink PATH TARGET");
    char buf[4096];
    ssize_t n = ::readlink(a[0].c_str(), buf, sizeof buf - 1);
    if (n < 0) fail("expected " + a[0] + " to be a symlink to " + a[1] + ", readlink: " + errno_text(errno));
    buf[n] = '\0';
    if (a[1] != buf) fail("expected " + a[0] + " -> " + a[1] + ", it points to " + buf);
}

void check_personality(const Args& a) {
    need(a, 1, "personality LINUX|LINUX32");
    int p = ::personality(0xffffffff);
    int want = a[0] == "LINUX32" ? PER_LINUX32 : a[0] == "LINUX" ? PER_LINUX : -1;
    if (want < 0) usage("personality LINUX|LINUX32");
    if ((p & PER_MASK) != want) fail("expected personality " + a[0] + ", got " + hex(static_cast<unsigned>(p)));
}

void check_tty(const Args& a) {
    need(a, 0, "tty");
    if (!::isatty(0)) fail("expected stdin to be a terminal, isatty(0): " + errno_text(errno));
}

void check_uid_map(const Args& a, const char* file) {
    need(a, 3, "uid-map|gid-map INSIDE OUTSIDE COUNT");
    std::string got = trim(read_text(std::string("/proc/self/") + file));
    std::istringstream in(got);
    std::string line;
    std::vector<std::string> lines;
    while (std::getline(in, line)) {
        std::istringstream f(line);
        std::string x, y, z;
        f >> x >> y >> z;
        lines.push_back(x + " " + y + " " + z);
    }
    std::string want = a[0] + " " + a[1] + " " + a[2];
    if (lines.size() != 1 || lines[0] != want)
        fail(std::string("expected /proc/self/") + file + " to be '" + want + "', got '" + got + "'");
}

volatile sig_atomic_t got_term = 0;

void check_sleep(const Args& a) {
    need(a, 1, "sleep SECONDS");
    // As pid 1 a default SIGTERM would be ignored: exit on it, as a service would.
    struct sigaction sa {};
    sa.sa_handler = [](int) { got_term = 1; };
    ::sigaction(SIGTERM, &sa, nullptr);
    unsigned left = static_cast<unsigned>(parse_u64(a[0]));
    while (left > 0 && !got_term) left = ::sleep(left);
    if (got_term) ::_exit(143);
}

const std::map<std::string, Check>& checks() {
    static const std::map<std::string, Check> table = {
        {"hostname", check_hostname},
        {"domainname", check_domainname},
        {"uid-gid", check_uid_gid},
        {"umask", check_umask},
        {"caps", check_caps},
        {"caps-set", check_caps_set},
        {"cap-has", [](const Args& a) { check_cap_has(a, true); }},
        {"cap-lacks", [](const Args& a) { check_cap_has(a, false); }},
        {"rlimit", check_rlimit},
        {"nnp", check_nnp},
        {"mount-ro", [](const Args& a) { check_mount_ro(a, true); }},
        {"mount-rw", [](const Args& a) { check_mount_ro(a, false); }},
        {"readonly", check_readonly},
        {"writable", check_writable},
        {"masked", check_masked},
        {"cannot-remount", check_cannot_remount},
        {"mount-info", check_mount_info},
        {"not-mounted", check_not_mounted},
        {"file-content", check_file_content},
        {"write-file", check_write_file},
        {"exists", [](const Args& a) { check_exists(a, true); }},
        {"not-exists", [](const Args& a) { check_exists(a, false); }},
        {"no-extra-fds", check_no_extra_fds},
        {"fd-content", check_fd_content},
        {"pid1", check_pid1},
        {"ns-differs", [](const Args& a) { check_ns(a, false); }},
        {"ns-same", [](const Args& a) { check_ns(a, true); }},
        {"cwd", check_cwd},
        {"env", check_env},
        {"env-absent", check_env_absent},
        {"device", check_device},
        {"dev-rw", check_dev_rw},
        {"dev-denied", check_dev_denied},
        {"sysctl", check_sysctl},
        {"seccomp-errno", check_seccomp_errno},
        {"seccomp-mode", check_seccomp_mode},
        {"oom-score-adj", check_oom_score_adj},
        {"cgroup-mem-limit", check_cgroup_mem_limit},
        {"symlink", check_symlink},
        {"personality", check_personality},
        {"tty", check_tty},
        {"uid-map", [](const Args& a) { check_uid_map(a, "uid_map"); }},
        {"gid-map", [](const Args& a) { check_uid_map(a, "gid_map"); }},
        {"sleep", check_sleep},
        {"exit", [](const Args& a) {
             need(a, 1, "exit CODE");
             std::fflush(nullptr);
             ::_exit(static_cast<int>(parse_u64(a[0])));
         }},
    };
    return table;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<Args> steps(1);
    for (int i = 1; i < argc; ++i) {
        if (std::string_view(argv[i]) == "+") steps.emplace_back();
        else steps.back().push_back(argv[i]);
    }
    if (steps.front().empty()) {
        std::fprintf(stderr, "usage: checker CHECK [ARGS...] [+ CHECK [ARGS...]]...\nchecks:");
        for (auto& [name, _] : checks()) std::fprintf(stderr, " %s", name.c_str());
        std::fprintf(stderr, "\n");
        return 2;
    }
    for (const auto& step : steps) {
        if (step.empty()) {
            std::fprintf(stderr, "checker: empty check between '+'\n");
            return 2;
        }
        auto it = checks().find(step[0]);
        if (it == checks().end()) {
            std::fprintf(stderr, "checker: unknown check '%s'\n", step[0].c_str());
            return 2;
        }
        try {
            it->second(Args(step.begin() + 1, step.end()));
        } catch (const CheckFailed& f) {
            std::string line = "checker: " + step[0];
            for (size_t i = 1; i < step.size(); ++i) line += " " + step[i];
            std::fprintf(stderr, "%s: %s\n", line.c_str(), f.message.c_str());
            return 1;
        } catch (const UsageError& u) {
            std::fprintf(stderr, "checker: %s: %s\n", step[0].c_str(), u.message.c_str());
            return 2;
        }
    }
    return 0;
}
