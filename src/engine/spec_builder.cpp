#include "engine/spec_builder.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

#include "linux/capabilities.hpp"
#include "linux/mounts.hpp"
#include "linux/rlimits.hpp"
#include "oci/default_spec.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace vitro::engine {

using nlohmann::json;

namespace {

constexpr size_t kMaxDbSize = 4 << 20;

// /etc/passwd or /etc/group of the rootfs, opened confined to it. Empty when
// missing; a non-regular file (a FIFO planted there) is an error, not a hang.
std::string read_in_root(int root_fd, const std::string& path) {
    UniqueFd p = os::try_open_in_root(root_fd, path);
    if (!p) {
        if (errno == ENOENT || errno == ENOTDIR) return {};
        throw_errno("open in container rootfs", path);
    }
    struct stat st {};
    if (::fstat(p.get(), &st) < 0) throw_errno("stat in container rootfs", path);
    if (!S_ISREG(st.st_mode)) throw Error(EINVAL, "read " + path + " in container rootfs: not a regular file");
    if (static_cast<size_t>(st.st_size) > kMaxDbSize)
        throw Error(EFBIG, "read " + path + " in container rootfs: larger than 4 MiB");
    UniqueFd f(::open(os::fd_path(p.get()).c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!f) throw_errno("reopen in container rootfs", path);
    std::string data = read_fd(f.get());
    if (data.size() > kMaxDbSize) data.resize(kMaxDbSize);
    return data;
}

bool numeric(const std::string& s, uint32_t& out) {
    uint64_t v = 0;
    if (s.empty() || !parse_u64(s, v) || v > 0xffffffffu) return false;
    out = static_cast<uint32_t>(v);
    return true;
}

struct PasswdEntry {
    std::string name;
    uint32_t uid = 0, gid = 0;
    std::string home;
};
struct GroupEntry {
    std::string name;
    uint32_t gid = 0;
    std::vector<std::string> members;
};

std::vector<PasswdEntry> parse_passwd(const std::string& text) {
    std::vector<PasswdEntry> out;
    for (const auto& line : split(text, '\n')) {
        if (line.empty() || line[0] == '#') continue;
        auto f = split(line, ':');
        if (f.size() < 4) continue;
        PasswdEntry e;
        e.name = f[0];
        if (!numeric(f[2], e.uid) || !numeric(f[3], e.gid)) continue;
        if (f.size() > 5) e.home = f[5];
        out.push_back(std::move(e));
    }
    return out;
}

std::vector<GroupEntry> parse_group(const std::string& text) {
    std::vector<GroupEntry> out;
    for (const auto& line : split(text, '\n')) {
        if (line.empty() || line[0] == '#') continue;
        auto f = split(line, ':');
        if (f.size() < 3) continue;
        GroupEntry e;
        e.name = f[0];
        if (!numeric(f[2], e.gid)) continue;
        if (f.size() > 3)
            for (auto& m : split(f[3], ','))
                if (!m.empty()) e.members.push_back(trim(m));
        out.push_back(std::move(e));
    }
    return out;
}

std::string env_key(const std::string& kv) { return kv.substr(0, kv.find('=')); }

bool env_has(const std::vector<std::string>& env, const std::string& key) {
    return std::any_of(env.begin(), env.end(), [&](const std::string& e) { return env_key(e) == key; });
}

std::string cap_name(const std::string& in) {
    std::string s;
    for (char c : in) s.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    if (s == "ALL") return s;
    if (s.rfind("CAP_", 0) != 0) s = "CAP_" + s;
    if (!os::capability_from_name(s)) throw Error(EINVAL, "unknown capability \"" + in + "\"");
    return s;
}

std::vector<std::string> all_capabilities() {
    std::vector<std::string> out;
    for (int i = 0; i <= 40; ++i) {
        std::string n = os::capability_name(i);
        if (!n.empty() && n.rfind("CAP_", 0) == 0) out.push_back(n);
    }
    return out;
}

void check_absolute(const std::string& p, const std::string& what) {
    if (p.empty() || p[0] != '/') throw Error(EINVAL, what + " \"" + p + "\": not an absolute path");
}

// podman's (go-units') ulimit names.
constexpr const char* kUlimitNames[] = {"as",     "core",  "cpu",   "data",  "fsize",  "locks",
                                        "memlock", "msgqueue", "nice", "nofile", "nproc", "rss",
                                        "rtprio", "rttime", "sigpending", "stack"};

uint64_t ulimit_value(const std::string& v, const std::string& value) {
    if (v == "-1") return RLIM_INFINITY;
    uint64_t n = 0;
    if (!parse_u64(v, n))
        throw Error(EINVAL, "invalid --ulimit \"" + value + "\": \"" + v + "\" is not a number (or -1, unlimited)");
    return n;
}

}  // namespace

std::string rlimit_type(const std::string& name) {
    std::string s = "RLIMIT_";
    for (char c : name) s.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    return s;
}

std::vector<Ulimit> parse_ulimits(const std::vector<std::string>& values) {
    std::vector<Ulimit> out;
    auto put = [&](Ulimit u) {
        for (auto& o : out)
            if (o.name == u.name) {
                o = u;
                return;
            }
        out.push_back(std::move(u));
    };
    for (const auto& value : values) {
        if (value == "host") {
            for (const char* n : kUlimitNames) {
                struct rlimit rl {};
                if (::getrlimit(*os::rlimit_from_name(rlimit_type(n)), &rl) == 0) put({n, rl.rlim_cur, rl.rlim_max});
            }
            continue;
        }
        auto eq = value.find('=');
        if (eq == std::string::npos) throw Error(EINVAL, "invalid --ulimit \"" + value + "\": expected TYPE=SOFT[:HARD] or host");
        Ulimit u;
        u.name = value.substr(0, eq);
        if (std::find_if(std::begin(kUlimitNames), std::end(kUlimitNames),
                         [&](const char* n) { return u.name == n; }) == std::end(kUlimitNames))
            throw Error(EINVAL, "invalid --ulimit \"" + value + "\": unknown type \"" + u.name + "\" (" + [] {
                std::string all;
                for (const char* n : kUlimitNames) all += (all.empty() ? "" : ", ") + std::string(n);
                return all;
            }() + ")");
        std::string limits = value.substr(eq + 1);
        auto colon = limits.find(':');
        u.soft = ulimit_value(limits.substr(0, colon), value);
        u.hard = colon == std::string::npos ? u.soft : ulimit_value(limits.substr(colon + 1), value);
        if (u.soft > u.hard)
            throw Error(EINVAL, "invalid --ulimit \"" + value + "\": the soft limit is above the hard limit");
        put(std::move(u));
    }
    return out;
}

void check_ulimits_settable(const std::vector<Ulimit>& ulimits) {
    auto has_sys_resource = [] {
        for (const auto& line : split(read_file("/proc/self/status"), '\n'))
            if (line.rfind("CapEff:", 0) == 0) {
                unsigned long long eff = std::strtoull(trim(line.substr(7)).c_str(), nullptr, 16);
                return (eff >> CAP_SYS_RESOURCE & 1) != 0;
            }
        return false;
    };
    for (const auto& u : ulimits) {
        const std::string what = "invalid --ulimit \"" + u.name + "=" +
                                 (u.soft == RLIM_INFINITY ? "-1" : std::to_string(u.soft)) + ":" +
                                 (u.hard == RLIM_INFINITY ? "-1" : std::to_string(u.hard)) + "\": ";
        if (u.name == "nofile") {
            uint64_t nr_open = 0;
            try {
                parse_u64(trim(read_file("/proc/sys/fs/nr_open")), nr_open);
            } catch (const Error&) {
                // /proc/sys/fs/nr_open unreadable: the kernel itself refuses a hard limit above it at setrlimit
            }
            if (nr_open && u.hard > nr_open)
                throw Error(EINVAL, what + "above the kernel's maximum of open files (fs.nr_open " +
                                        std::to_string(nr_open) + ")");
        }
        struct rlimit now {};
        if (::getrlimit(*os::rlimit_from_name(rlimit_type(u.name)), &now) == 0 && u.hard > now.rlim_max &&
            !has_sys_resource())
            throw Error(EPERM, what + "the hard limit is above this process's (" +
                                   (now.rlim_max == RLIM_INFINITY ? "unlimited" : std::to_string(now.rlim_max)) +
                                   "), and raising it needs CAP_SYS_RESOURCE");
    }
}

std::vector<std::string> default_capabilities() {
    return {"CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",  "CAP_FOWNER",     "CAP_MKNOD",
            "CAP_NET_RAW", "CAP_SETGID",      "CAP_SETUID",  "CAP_SETFCAP",    "CAP_SETPCAP",
            "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"};
}

ResolvedUser resolve_user(const std::string& rootfs, const std::string& user) {
    ResolvedUser r;
    std::string u = user.empty() ? "0" : user, g;
    bool group_given = false;
    if (auto c = u.find(':'); c != std::string::npos) {
        g = u.substr(c + 1);
        u = u.substr(0, c);
        group_given = true;
        if (g.empty()) throw Error(EINVAL, "user \"" + user + "\": empty group");
    }
    if (u.empty()) throw Error(EINVAL, "user \"" + user + "\": empty user name");

    UniqueFd root(::open(rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root) throw_errno("open rootfs", rootfs);
    auto passwd = parse_passwd(read_in_root(root.get(), "/etc/passwd"));

    const PasswdEntry* entry = nullptr;
    uint32_t id = 0;
    if (numeric(u, id)) {
        r.uid = id;
        for (const auto& e : passwd)
            if (e.uid == id) {
                entry = &e;
                break;
            }
    } else {
        for (const auto& e : passwd)
            if (e.name == u) {
                entry = &e;
                break;
            }
        if (!entry) throw Error(ENOENT, "unable to find user " + u + ": no matching entries in passwd file");
        r.uid = entry->uid;
    }
    if (entry) {
        r.gid = entry->gid;
        if (!entry->home.empty()) r.home = entry->home;
    }

    std::vector<GroupEntry> groups;
    bool groups_read = false;
    auto load_groups = [&] {
        if (!groups_read) groups = parse_group(read_in_root(root.get(), "/etc/group"));
        groups_read = true;
    };
    if (group_given) {
        if (numeric(g, id)) {
            r.gid = id;
        } else {
            load_groups();
            auto it = std::find_if(groups.begin(), groups.end(), [&](const GroupEntry& e) { return e.name == g; });
            if (it == groups.end())
                throw Error(ENOENT, "unable to find group " + g + ": no matching entries in group file");
            r.gid = it->gid;
        }
    } else if (entry) {
        load_groups();
        for (const auto& ge : groups)
            if (ge.gid != r.gid && std::find(ge.members.begin(), ge.members.end(), entry->name) != ge.members.end() &&
                std::find(r.additional_gids.begin(), r.additional_gids.end(), ge.gid) == r.additional_gids.end())
                r.additional_gids.push_back(ge.gid);
    }
    return r;
}

// Sets kv in env: replaces an entry of the same name in place, else appends.
void env_set(std::vector<std::string>& env, const std::string& kv) {
    std::string key = env_key(kv);
    for (auto& e : env)
        if (env_key(e) == key) {
            e = kv;
            return;
        }
    env.push_back(kv);
}

std::vector<std::string> container_args(const ImageConfig& image, const RunOptions& opts) {
    std::vector<std::string> entrypoint = image.entrypoint, cmd = image.cmd;
    if (opts.entrypoint) {
        entrypoint.clear();
        if (!opts.entrypoint->empty()) entrypoint.push_back(*opts.entrypoint);
        cmd.clear();
    }
    if (!opts.command.empty()) cmd = opts.command;
    std::vector<std::string> args = entrypoint;
    args.insert(args.end(), cmd.begin(), cmd.end());
    if (args.empty()) throw Error(EINVAL, "no command specified: the image has no Entrypoint or Cmd and none was given");
    return args;
}

json build_spec(const ImageConfig& image, const RunOptions& opts, const std::string& rootfs) {
    json spec = oci::default_spec(opts.rootless);
    json& proc = spec["process"];

    proc["args"] = container_args(image, opts);
    proc["terminal"] = opts.tty;

    // user
    std::string user = !opts.user.empty() ? opts.user : image.user;
    ResolvedUser ru = resolve_user(rootfs, user);
    proc["user"] = {{"uid", ru.uid}, {"gid", ru.gid}};
    if (!ru.additional_gids.empty()) proc["user"]["additionalGids"] = ru.additional_gids;

    // env
    std::vector<std::string> env;
    for (const auto& e : image.env) env_set(env, e);
    for (const auto& e : opts.env) {
        if (e.empty() || e[0] == '=') throw Error(EINVAL, "environment variable \"" + e + "\": no name");
        if (e.find('=') == std::string::npos) {
            const char* v = ::getenv(e.c_str());
            if (v) env_set(env, e + "=" + v);
            continue;
        }
        env_set(env, e);
    }
    if (!env_has(env, "PATH")) env.insert(env.begin(), std::string("PATH=") + kDefaultPath);
    if (!opts.hostname.empty() && !env_has(env, "HOSTNAME")) env.push_back("HOSTNAME=" + opts.hostname);
    if (opts.tty && !env_has(env, "TERM")) env.push_back("TERM=xterm");
    if (!env_has(env, "HOME")) env.push_back("HOME=" + ru.home);
    proc["env"] = env;

    // cwd
    std::string cwd = !opts.workdir.empty() ? opts.workdir : (!image.working_dir.empty() ? image.working_dir : "/");
    check_absolute(cwd, "working directory");
    proc["cwd"] = cwd;

    // capabilities
    std::vector<std::string> caps = default_capabilities();
    std::vector<std::string> add, drop;
    for (const auto& c : opts.cap_add) add.push_back(cap_name(c));
    for (const auto& c : opts.cap_drop) drop.push_back(cap_name(c));
    if (std::find(drop.begin(), drop.end(), "ALL") != drop.end()) caps.clear();
    if (std::find(add.begin(), add.end(), "ALL") != add.end()) caps = all_capabilities();
    for (const auto& c : drop)
        if (c != "ALL" && std::find(add.begin(), add.end(), c) == add.end())
            caps.erase(std::remove(caps.begin(), caps.end(), c), caps.end());
    for (const auto& c : add)
        if (c != "ALL" && std::find(caps.begin(), caps.end(), c) == caps.end()) caps.push_back(c);
    proc["capabilities"] = {{"bounding", caps}, {"effective", caps}, {"permitted", caps}};
    proc["noNewPrivileges"] = opts.no_new_privileges;

    // rlimits: --ulimit replaces the default of its type
    json& rlimits = proc["rlimits"];
    if (!rlimits.is_array()) rlimits = json::array();
    for (const auto& u : opts.ulimits) {
        const std::string type = rlimit_type(u.name);
        json entry = {{"type", type}, {"soft", u.soft}, {"hard", u.hard}};
        auto it = std::find_if(rlimits.begin(), rlimits.end(), [&](const json& r) { return r.value("type", "") == type; });
        if (it != rlimits.end()) *it = entry;
        else rlimits.push_back(entry);
    }

    // root, hostname
    spec["root"] = {{"path", opts.root_path}, {"readonly", opts.read_only}};
    if (!opts.hostname.empty()) spec["hostname"] = opts.hostname;

    // resources
    if (!opts.rootless) {
        json& res = spec["linux"]["resources"];
        if (opts.memory) {
            if (*opts.memory <= 0) throw Error(EINVAL, "memory limit must be positive");
            res["memory"]["limit"] = *opts.memory;
        }
        if (opts.cpus) {
            if (!(*opts.cpus > 0) || !std::isfinite(*opts.cpus)) throw Error(EINVAL, "cpus must be positive");
            res["cpu"]["period"] = 100000;
            res["cpu"]["quota"] = static_cast<int64_t>(std::llround(*opts.cpus * 100000));
        }
        if (opts.pids_limit) res["pids"]["limit"] = *opts.pids_limit;
    } else if (opts.memory || opts.cpus || opts.pids_limit) {
        throw Error(EINVAL, "resource limits need a root (not rootless) container");
    }

    // mounts: a user mount on a default mount's destination replaces it.
    json& mounts = spec["mounts"];
    for (const auto& m : opts.mounts) {
        check_absolute(m.destination, "mount destination");
        json jm;
        jm["destination"] = m.destination;
        std::vector<std::string> o = m.options;
        if (m.type == "bind") {
            check_absolute(m.source, "bind mount source");
            jm["type"] = "bind";
            jm["source"] = m.source;
            if (std::find(o.begin(), o.end(), "bind") == o.end() && std::find(o.begin(), o.end(), "rbind") == o.end())
                o.insert(o.begin(), "rbind");
        } else {
            jm["type"] = m.type;
            jm["source"] = m.source.empty() ? m.type : m.source;
            if (m.type == "tmpfs" && o.empty()) o = {"nosuid", "nodev"};
        }
        jm["options"] = o;
        for (auto it = mounts.begin(); it != mounts.end(); ++it)
            if ((*it)["destination"] == m.destination) {
                mounts.erase(it);
                break;
            }
        mounts.push_back(std::move(jm));
    }
    return spec;
}

}  // namespace vitro::engine
