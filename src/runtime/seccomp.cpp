#include "runtime/seccomp.hpp"

#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/error.hpp"
#include "util/file.hpp"

namespace vitro::runtime {

namespace {

const std::string kField = "linux.seccomp";

// The most arguments a syscall has (seccomp_data.args).
constexpr unsigned kMaxSyscallArgs = 6;
// libseccomp keeps the low 16 bits of SCMP_ACT_ERRNO / SCMP_ACT_TRACE.
constexpr unsigned kMaxActionData = 0xffff;

[[noreturn]] void fail(const std::string& field, const std::string& what) {
    throw Error(field + ": " + what);
}

// libseccomp calls return 0 or -errno.
void check_scmp(int rc, const std::string& field, std::string_view op, std::string_view object = {}) {
    if (rc < 0) throw_errno(-rc, field + ": " + std::string(op), object);
}

// ---- names -> libseccomp values --------------------------------------------

enum class ActionData { none, errno_ret, trace_ret };

struct ActionName {
    std::string_view name;
    uint32_t value;
    ActionData data;
};

constexpr std::array<ActionName, 9> kActions = {{
    {"SCMP_ACT_KILL", SCMP_ACT_KILL, ActionData::none},
    {"SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS, ActionData::none},
    {"SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD, ActionData::none},
    {"SCMP_ACT_TRAP", SCMP_ACT_TRAP, ActionData::none},
    {"SCMP_ACT_ERRNO", SCMP_ACT_ERRNO(0), ActionData::errno_ret},
    {"SCMP_ACT_TRACE", SCMP_ACT_TRACE(0), ActionData::trace_ret},
    {"SCMP_ACT_ALLOW", SCMP_ACT_ALLOW, ActionData::none},
    {"SCMP_ACT_LOG", SCMP_ACT_LOG, ActionData::none},
    {"SCMP_ACT_NOTIFY", SCMP_ACT_NOTIFY, ActionData::none},
}};

// `field` names the action ("...syscalls[3].action"), `ret_field` the errno
// value that goes with it ("...syscalls[3].errnoRet"). errnoRet is ignored for
// actions that carry no value, as runc does.
uint32_t parse_action(const std::string& name, std::optional<unsigned> ret, const std::string& field,
                      const std::string& ret_field) {
    for (const auto& a : kActions) {
        if (a.name != name) continue;
        if (a.data == ActionData::none) return a.value;
        // Both default to EPERM when no value is given (runc does the same for TRACE).
        unsigned v = ret.value_or(EPERM);
        if (v > kMaxActionData)
            fail(ret_field, "value " + std::to_string(v) + " out of range (0-" + std::to_string(kMaxActionData) + ")");
        return a.data == ActionData::errno_ret ? SCMP_ACT_ERRNO(v) : SCMP_ACT_TRACE(v);
    }
    fail(field, "unknown action '" + name + "'");
}

// "SCMP_ARCH_X86_64" -> libseccomp's "x86_64" -> token.
uint32_t parse_arch(const std::string& name, const std::string& field) {
    constexpr std::string_view prefix = "SCMP_ARCH_";
    if (name.starts_with(prefix) && name.size() > prefix.size()) {
        std::string lower;
        for (char c : std::string_view(name).substr(prefix.size()))
            lower += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
        if (uint32_t token = seccomp_arch_resolve_name(lower.c_str()); token != 0) return token;
    }
    fail(field, "unknown architecture '" + name + "'");
}

constexpr std::array<std::pair<std::string_view, scmp_compare>, 7> kOperators = {{
    {"SCMP_CMP_NE", SCMP_CMP_NE},
    {"SCMP_CMP_LT", SCMP_CMP_LT},
    {"SCMP_CMP_LE", SCMP_CMP_LE},
    {"SCMP_CMP_EQ", SCMP_CMP_EQ},
    {"SCMP_CMP_GE", SCMP_CMP_GE},
    {"SCMP_CMP_GT", SCMP_CMP_GT},
    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
}};

scmp_compare parse_operator(const std::string& name, const std::string& field) {
    for (const auto& [n, op] : kOperators)
        if (n == name) return op;
    fail(field, "unknown operator '" + name + "'");
}

// Each flag becomes a filter attribute set to 1.
scmp_filter_attr parse_flag(const std::string& name, const std::string& field) {
    if (name == "SECCOMP_FILTER_FLAG_TSYNC") return SCMP_FLTATR_CTL_TSYNC;
    if (name == "SECCOMP_FILTER_FLAG_LOG") return SCMP_FLTATR_CTL_LOG;
    if (name == "SECCOMP_FILTER_FLAG_SPEC_ALLOW") return SCMP_FLTATR_CTL_SSB;
    if (name == "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV") {
#if SCMP_VER_MAJOR > 2 || (SCMP_VER_MAJOR == 2 && SCMP_VER_MINOR >= 6)
        return SCMP_FLTATR_CTL_WAITKILL;
#else
        fail(field, "flag '" + name + "' needs libseccomp 2.6.0 or later; vitro was built with libseccomp " +
                        std::to_string(SCMP_VER_MAJOR) + "." + std::to_string(SCMP_VER_MINOR) + "." +
                        std::to_string(SCMP_VER_MICRO));
#endif
    }
    fail(field, "unknown flag '" + name + "'");
}

// ---- the profile, checked and resolved -------------------------------------

struct Rule {
    std::string field;  // "linux.seccomp.syscalls[3]", for errors while adding it
    std::string name;
    int nr = 0;
    uint32_t action = 0;
    std::vector<scmp_arg_cmp> conditions;
    // libseccomp refuses two conditions on one argument in one rule; like runc,
    // such a set becomes one rule per condition (OR instead of AND).
    bool rule_per_condition = false;
};

struct Filter {
    uint32_t default_action = 0;
    std::vector<uint32_t> arches;
    struct Attr {
        scmp_filter_attr attr;
        std::string field, flag;
    };
    std::vector<Attr> attrs;
    std::vector<Rule> rules;
    bool uses_notify = false;
};

// Every name check happens here, so validate and load refuse the same profiles.
Filter resolve(const oci::Seccomp& p) {
    Filter f;
    f.default_action =
        parse_action(p.default_action, p.default_errno_ret, kField + ".defaultAction", kField + ".defaultErrnoRet");
    if (f.default_action == SCMP_ACT_NOTIFY)
        fail(kField + ".defaultAction", "SCMP_ACT_NOTIFY cannot be the default action");

    for (size_t i = 0; i < p.architectures.size(); ++i)
        f.arches.push_back(parse_arch(p.architectures[i], kField + ".architectures[" + std::to_string(i) + "]"));

    for (size_t i = 0; i < p.flags.size(); ++i) {
        std::string field = kField + ".flags[" + std::to_string(i) + "]";
        f.attrs.push_back({parse_flag(p.flags[i], field), field, p.flags[i]});
    }

    for (size_t i = 0; i < p.syscalls.size(); ++i) {
        const auto& call = p.syscalls[i];
        const std::string field = kField + ".syscalls[" + std::to_string(i) + "]";
        uint32_t action = parse_action(call.action, call.errno_ret, field + ".action", field + ".errnoRet");

        std::vector<scmp_arg_cmp> conditions;
        std::array<unsigned, kMaxSyscallArgs> per_arg{};
        bool shared_arg = false;
        for (size_t j = 0; j < call.args.size(); ++j) {
            const auto& arg = call.args[j];
            const std::string arg_field = field + ".args[" + std::to_string(j) + "]";
            scmp_compare op = parse_operator(arg.op, arg_field + ".op");
            if (arg.index >= kMaxSyscallArgs)
                fail(arg_field + ".index", "argument index " + std::to_string(arg.index) + " out of range (0-" +
                                               std::to_string(kMaxSyscallArgs - 1) + ")");
            if (++per_arg[arg.index] > 1) shared_arg = true;
            // For SCMP_CMP_MASKED_EQ, value is the mask and valueTwo the datum,
            // which is libseccomp's order too.
            conditions.push_back(scmp_arg_cmp{arg.index, op, arg.value, arg.value_two});
        }

        // libseccomp refuses a rule whose action is the default one; it would
        // change nothing anyway.
        if (action == f.default_action) continue;

        for (const auto& name : call.names) {
            int nr = seccomp_syscall_resolve_name(name.c_str());
            if (nr == __NR_SCMP_ERROR) continue;  // unknown to this libseccomp: skipped, as runc does
            f.rules.push_back(Rule{field, name, nr, action, conditions, shared_arg});
            if (action == SCMP_ACT_NOTIFY) f.uses_notify = true;
        }
    }
    return f;
}

// ---- libseccomp context -----------------------------------------------------

struct ContextRelease {
    void operator()(void* ctx) const noexcept { seccomp_release(ctx); }
};
using FilterContext = std::unique_ptr<void, ContextRelease>;

void add_rule(scmp_filter_ctx ctx, const Rule& r) {
    auto add = [&](unsigned count, const scmp_arg_cmp* conds) {
        check_scmp(seccomp_rule_add_array(ctx, r.action, r.nr, count, conds), r.field, "add rule for", r.name);
    };
    if (r.conditions.empty() || !r.rule_per_condition) {
        add(static_cast<unsigned>(r.conditions.size()), r.conditions.data());
        return;
    }
    for (const auto& cond : r.conditions) add(1, &cond);
}

// The listener fd lives in libseccomp's global state, not in the context, so
// seccomp_release leaves it open; the caller becomes its only owner, as in runc
// (which closes libseccomp's fd once the agent has it). The kernel created it
// O_CLOEXEC. No syscall is made here: the filter is already in force and may
// forbid fcntl or dup. This process must not call seccomp_reset(NULL, ...)
// afterwards, which would close the fd behind the owner's back.
UniqueFd take_listener(scmp_filter_ctx ctx) {
    int fd = seccomp_notify_fd(ctx);
    if (fd < 0) throw Error(kField + ": seccomp_notify_fd: no listener fd after loading a SCMP_ACT_NOTIFY filter");
    return UniqueFd(fd);
}

}  // namespace

void validate_seccomp(const oci::Seccomp& profile) { (void)resolve(profile); }

namespace {

// libseccomp's context for a resolved filter, everything added.
FilterContext build_context(const oci::Seccomp& profile, const Filter& f) {
    FilterContext ctx(seccomp_init(f.default_action));
    if (!ctx) throw Error(kField + ": seccomp_init failed for defaultAction '" + profile.default_action + "'");
    scmp_filter_ctx c = ctx.get();

    // Report the kernel's errno rather than libseccomp's -ECANCELED.
    check_scmp(seccomp_attr_set(c, SCMP_FLTATR_API_SYSRAWRC, 1), kField, "set attribute", "SYSRAWRC");
    // The runtime sets no_new_privs itself from process.noNewPrivileges.
    check_scmp(seccomp_attr_set(c, SCMP_FLTATR_CTL_NNP, 0), kField, "set attribute", "CTL_NNP");

    for (size_t i = 0; i < f.arches.size(); ++i) {
        int rc = seccomp_arch_add(c, f.arches[i]);
        if (rc != -EEXIST)
            check_scmp(rc, kField + ".architectures[" + std::to_string(i) + "]", "add architecture",
                       profile.architectures[i]);
    }
    for (const auto& a : f.attrs) check_scmp(seccomp_attr_set(c, a.attr, 1), a.field, "set", a.flag);
    for (const auto& r : f.rules) add_rule(c, r);
    return ctx;
}

// Everything that decides the program libseccomp makes, as bytes: the cache key.
std::string cache_key(const Filter& f) {
    std::string k;
    auto put = [&k](const void* p, size_t n) { k.append(static_cast<const char*>(p), n); };
    auto put32 = [&](uint32_t v) { put(&v, sizeof v); };
    const scmp_version* v = seccomp_version();
    put32(v->major), put32(v->minor), put32(v->micro), put32(seccomp_api_get());
    put32(f.default_action);
    put32(static_cast<uint32_t>(f.arches.size()));
    for (auto a : f.arches) put32(a);
    put32(static_cast<uint32_t>(f.attrs.size()));
    for (const auto& a : f.attrs) put32(a.attr);
    put32(static_cast<uint32_t>(f.rules.size()));
    for (const auto& r : f.rules) {
        put32(static_cast<uint32_t>(r.nr)), put32(r.action), put32(r.rule_per_condition);
        put32(static_cast<uint32_t>(r.conditions.size()));
        for (const auto& c : r.conditions) put(&c, sizeof c);
    }
    return k;
}

// FNV-1a, for the file name only: the whole key is stored and compared.
std::string key_name(const std::string& key) {
    uint64_t h = 1469598103934665603ULL;
    for (unsigned char ch : key) h = (h ^ ch) * 1099511628211ULL;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%016llx.bpf", static_cast<unsigned long long>(h));
    return buf;
}

unsigned filter_flags(const Filter& f) {
    unsigned flags = 0;
    for (const auto& a : f.attrs) {
        if (a.attr == SCMP_FLTATR_CTL_TSYNC) flags |= SECCOMP_FILTER_FLAG_TSYNC;
        if (a.attr == SCMP_FLTATR_CTL_LOG) flags |= SECCOMP_FILTER_FLAG_LOG;
        if (a.attr == SCMP_FLTATR_CTL_SSB) flags |= SECCOMP_FILTER_FLAG_SPEC_ALLOW;
    }
    return flags;
}

// Cache file: key length (u32), key, then the program.
std::optional<std::vector<sock_filter>> read_cached(const std::string& path, const std::string& key) {
    std::string data;
    try {
        data = read_file(path);
    } catch (const Error&) {
        return std::nullopt;
    }
    uint32_t klen = 0;
    if (data.size() < sizeof klen) return std::nullopt;
    std::memcpy(&klen, data.data(), sizeof klen);
    if (data.size() < sizeof klen + klen || data.compare(sizeof klen, klen, key) != 0) return std::nullopt;
    size_t off = sizeof klen + klen, n = (data.size() - off) / sizeof(sock_filter);
    if (n == 0 || (data.size() - off) % sizeof(sock_filter)) return std::nullopt;
    std::vector<sock_filter> prog(n);
    std::memcpy(prog.data(), data.data() + off, n * sizeof(sock_filter));
    return prog;
}

std::vector<sock_filter> export_program(scmp_filter_ctx c) {
    UniqueFd mem(static_cast<int>(::memfd_create("vitro-seccomp", MFD_CLOEXEC)));
    if (!mem) throw_errno("memfd_create");
    check_scmp(seccomp_export_bpf(c, mem.get()), kField, "export filter");
    if (::lseek(mem.get(), 0, SEEK_SET) < 0) throw_errno("lseek", "seccomp memfd");
    std::string bpf = read_fd(mem.get());
    std::vector<sock_filter> prog(bpf.size() / sizeof(sock_filter));
    std::memcpy(prog.data(), bpf.data(), prog.size() * sizeof(sock_filter));
    if (prog.empty()) throw Error(kField + ": libseccomp exported an empty filter");
    return prog;
}

}  // namespace

std::optional<CompiledSeccomp> compile_seccomp(const oci::Seccomp& profile, const std::string& cache_dir) {
    const Filter f = resolve(profile);
    if (f.uses_notify) return std::nullopt;
    CompiledSeccomp out;
    out.flags = filter_flags(f);
    const std::string key = cache_key(f);
    const std::string path = cache_dir.empty() ? "" : cache_dir + "/" + key_name(key);
    if (!path.empty())
        if (auto cached = read_cached(path, key)) {
            out.program = std::move(*cached);
            return out;
        }
    FilterContext ctx = build_context(profile, f);
    out.program = export_program(ctx.get());
    if (!path.empty()) {
        try {
            make_dirs(cache_dir, 0700);
            uint32_t klen = static_cast<uint32_t>(key.size());
            std::string file(reinterpret_cast<const char*>(&klen), sizeof klen);
            file += key;
            file.append(reinterpret_cast<const char*>(out.program.data()), out.program.size() * sizeof(sock_filter));
            write_file_atomic(path, file, 0600);
        } catch (const Error&) {
            // A cache that cannot be written only costs the next compile.
        }
    }
    return out;
}

void load_compiled_seccomp(const CompiledSeccomp& filter) {
    sock_fprog prog{static_cast<unsigned short>(filter.program.size()), const_cast<sock_filter*>(filter.program.data())};
    if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, filter.flags, &prog) < 0) throw_errno("seccomp", "load filter");
}

UniqueFd load_seccomp(const oci::Seccomp& profile) {
    if (auto compiled = compile_seccomp(profile)) {
        load_compiled_seccomp(*compiled);
        return {};
    }
    // SCMP_ACT_NOTIFY: libseccomp loads it and keeps the listener fd.
    const Filter f = resolve(profile);
    FilterContext ctx = build_context(profile, f);
    check_scmp(seccomp_load(ctx.get()), kField, "load filter");
    return take_listener(ctx.get());
}

}  // namespace vitro::runtime
