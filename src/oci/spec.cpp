#include "oci/spec.hpp"

#include <algorithm>
#include <limits>
#include <set>

#include "linux/capabilities.hpp"
#include "linux/rlimits.hpp"
#include "oci/sysctl.hpp"
#include "util/error.hpp"
#include "util/file.hpp"

namespace vitro::oci {

using nlohmann::json;

namespace {

// A JSON value together with its path, so every error names the field.
struct Node {
    const json& j;
    std::string path;

    [[noreturn]] void fail(const std::string& what) const { throw Error(path + ": " + what); }

    bool has(const char* key) const { return j.contains(key) && !j.at(key).is_null(); }
    Node at(const char* key) const { return {j.at(key), path.empty() ? key : path + "." + key}; }
    Node at(size_t i) const { return {j.at(i), path + "[" + std::to_string(i) + "]"}; }

    void expect_object() const {
        if (!j.is_object()) fail("expected an object, got " + std::string(j.type_name()));
    }
    void expect_array() const {
        if (!j.is_array()) fail("expected an array, got " + std::string(j.type_name()));
    }
    std::string str() const {
        if (!j.is_string()) fail("expected a string, got " + std::string(j.type_name()));
        return j.get<std::string>();
    }
    bool boolean() const {
        if (!j.is_boolean()) fail("expected a boolean, got " + std::string(j.type_name()));
        return j.get<bool>();
    }
    template <typename T>
    T integer() const {
        if (!j.is_number_integer()) fail("expected an integer, got " + std::string(j.type_name()));
        if (j.is_number_unsigned()) {
            auto v = j.get<uint64_t>();
            if (v > static_cast<uint64_t>(std::numeric_limits<T>::max())) fail("value out of range");
            return static_cast<T>(v);
        }
        auto v = j.get<int64_t>();
        if (v < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
            (v > 0 && static_cast<uint64_t>(v) > static_cast<uint64_t>(std::numeric_limits<T>::max())))
            fail("value out of range");
        return static_cast<T>(v);
    }
    std::vector<std::string> strings() const {
        expect_array();
        std::vector<std::string> out;
        for (size_t i = 0; i < j.size(); ++i) out.push_back(at(i).str());
        return out;
    }
    template <typename F>
    void each(F&& f) const {
        expect_array();
        for (size_t i = 0; i < j.size(); ++i) f(at(i));
    }

    // Optional field helpers.
    void get(const char* k, std::string& out) const { if (has(k)) out = at(k).str(); }
    void get(const char* k, bool& out) const { if (has(k)) out = at(k).boolean(); }
    void get(const char* k, std::vector<std::string>& out) const { if (has(k)) out = at(k).strings(); }
    template <typename T>
    void get(const char* k, std::optional<T>& out) const {
        if (!has(k)) return;
        if constexpr (std::is_same_v<T, bool>) out = at(k).boolean();
        else out = at(k).integer<T>();
    }
    template <typename T>
        requires std::is_integral_v<T>
    void get(const char* k, T& out) const { if (has(k)) out = at(k).integer<T>(); }
    void get(const char* k, std::map<std::string, std::string>& out) const {
        if (!has(k)) return;
        Node m = at(k);
        m.expect_object();
        for (auto& [key, v] : m.j.items()) out[key] = Node{v, m.path + "." + key}.str();
    }
};

User parse_user(const Node& n) {
    n.expect_object();
    User u;
    n.get("uid", u.uid);
    n.get("gid", u.gid);
    n.get("umask", u.umask);
    if (n.has("additionalGids"))
        n.at("additionalGids").each([&](const Node& g) { u.additional_gids.push_back(g.integer<uint32_t>()); });
    return u;
}

Hook parse_hook(const Node& n) {
    n.expect_object();
    Hook h;
    if (!n.has("path")) n.fail("missing required field 'path'");
    h.path = n.at("path").str();
    n.get("args", h.args);
    n.get("env", h.env);
    n.get("timeout", h.timeout);
    if (h.timeout && *h.timeout <= 0) n.at("timeout").fail("must be greater than zero");
    return h;
}

std::vector<Hook> parse_hooks(const Node& n, const char* key) {
    std::vector<Hook> out;
    if (n.has(key)) n.at(key).each([&](const Node& h) { out.push_back(parse_hook(h)); });
    return out;
}

std::vector<IdMapping> parse_idmaps(const Node& n) {
    std::vector<IdMapping> out;
    n.each([&](const Node& m) {
        m.expect_object();
        IdMapping im;
        m.get("containerID", im.container_id);
        m.get("hostID", im.host_id);
        m.get("size", im.size);
        out.push_back(im);
    });
    return out;
}

Resources parse_resources(const Node& n) {
    n.expect_object();
    Resources r;
    if (n.has("devices"))
        n.at("devices").each([&](const Node& d) {
            d.expect_object();
            DeviceRule rule;
            if (!d.has("allow")) d.fail("missing required field 'allow'");
            rule.allow = d.at("allow").boolean();
            d.get("type", rule.type);
            d.get("major", rule.major);
            d.get("minor", rule.minor);
            d.get("access", rule.access);
            r.devices.push_back(rule);
        });
    if (n.has("memory")) {
        Node m = n.at("memory");
        m.expect_object();
        Resources::Memory mem;
        m.get("limit", mem.limit);
        m.get("reservation", mem.reservation);
        m.get("swap", mem.swap);
        m.get("kernel", mem.kernel);
        m.get("kernelTCP", mem.kernel_tcp);
        m.get("swappiness", mem.swappiness);
        m.get("disableOOMKiller", mem.disable_oom_killer);
        m.get("useHierarchy", mem.use_hierarchy);
        m.get("checkBeforeUpdate", mem.check_before_update);
        r.memory = mem;
    }
    if (n.has("cpu")) {
        Node c = n.at("cpu");
        c.expect_object();
        Resources::Cpu cpu;
        c.get("shares", cpu.shares);
        c.get("quota", cpu.quota);
        c.get("burst", cpu.burst);
        c.get("period", cpu.period);
        c.get("realtimeRuntime", cpu.realtime_runtime);
        c.get("realtimePeriod", cpu.realtime_period);
        c.get("cpus", cpu.cpus);
        c.get("mems", cpu.mems);
        c.get("idle", cpu.idle);
        r.cpu = cpu;
    }
    if (n.has("pids")) {
        Node p = n.at("pids");
        p.expect_object();
        Resources::Pids pids;
        p.get("limit", pids.limit);
        r.pids = pids;
    }
    if (n.has("blockIO")) {
        Node b = n.at("blockIO");
        b.expect_object();
        Resources::BlockIO bio;
        b.get("weight", bio.weight);
        b.get("leafWeight", bio.leaf_weight);
        if (b.has("weightDevice"))
            b.at("weightDevice").each([&](const Node& d) {
                WeightDevice w;
                d.get("major", w.major);
                d.get("minor", w.minor);
                d.get("weight", w.weight);
                d.get("leafWeight", w.leaf_weight);
                bio.weight_device.push_back(w);
            });
        auto throttle = [&](const char* key, std::vector<ThrottleDevice>& out) {
            if (!b.has(key)) return;
            b.at(key).each([&](const Node& d) {
                ThrottleDevice t;
                d.get("major", t.major);
                d.get("minor", t.minor);
                d.get("rate", t.rate);
                out.push_back(t);
            });
        };
        throttle("throttleReadBpsDevice", bio.read_bps);
        throttle("throttleWriteBpsDevice", bio.write_bps);
        throttle("throttleReadIOPSDevice", bio.read_iops);
        throttle("throttleWriteIOPSDevice", bio.write_iops);
        r.block_io = bio;
    }
    if (n.has("hugepageLimits"))
        n.at("hugepageLimits").each([&](const Node& h) {
            Resources::HugepageLimit hl;
            h.get("pageSize", hl.page_size);
            h.get("limit", hl.limit);
            r.hugepage_limits.push_back(hl);
        });
    if (n.has("network")) {
        Node nw = n.at("network");
        Resources::Network net;
        nw.get("classID", net.class_id);
        if (nw.has("priorities"))
            nw.at("priorities").each([&](const Node& p) {
                std::string name;
                uint32_t prio = 0;
                p.get("name", name);
                p.get("priority", prio);
                net.priorities.emplace_back(name, prio);
            });
        r.network = net;
    }
    n.get("unified", r.unified);
    return r;
}

Seccomp parse_seccomp(const Node& n) {
    n.expect_object();
    Seccomp s;
    if (!n.has("defaultAction")) n.fail("missing required field 'defaultAction'");
    s.default_action = n.at("defaultAction").str();
    n.get("defaultErrnoRet", s.default_errno_ret);
    n.get("architectures", s.architectures);
    n.get("flags", s.flags);
    n.get("listenerPath", s.listener_path);
    if (n.has("syscalls"))
        n.at("syscalls").each([&](const Node& sc) {
            sc.expect_object();
            SeccompSyscall call;
            if (!sc.has("names")) sc.fail("missing required field 'names'");
            call.names = sc.at("names").strings();
            if (!sc.has("action")) sc.fail("missing required field 'action'");
            call.action = sc.at("action").str();
            sc.get("errnoRet", call.errno_ret);
            if (sc.has("args"))
                sc.at("args").each([&](const Node& a) {
                    SeccompArg arg;
                    a.get("index", arg.index);
                    a.get("value", arg.value);
                    a.get("valueTwo", arg.value_two);
                    if (!a.has("op")) a.fail("missing required field 'op'");
                    arg.op = a.at("op").str();
                    call.args.push_back(arg);
                });
            s.syscalls.push_back(call);
        });
    return s;
}

Linux parse_linux(const Node& n) {
    n.expect_object();
    Linux l;
    if (n.has("namespaces"))
        n.at("namespaces").each([&](const Node& ns) {
            ns.expect_object();
            Namespace x;
            if (!ns.has("type")) ns.fail("missing required field 'type'");
            x.type = ns.at("type").str();
            ns.get("path", x.path);
            l.namespaces.push_back(x);
        });
    if (n.has("uidMappings")) l.uid_mappings = parse_idmaps(n.at("uidMappings"));
    if (n.has("gidMappings")) l.gid_mappings = parse_idmaps(n.at("gidMappings"));
    if (n.has("devices"))
        n.at("devices").each([&](const Node& d) {
            d.expect_object();
            Device dev;
            if (!d.has("path")) d.fail("missing required field 'path'");
            dev.path = d.at("path").str();
            if (!d.has("type")) d.fail("missing required field 'type'");
            dev.type = d.at("type").str();
            d.get("major", dev.major);
            d.get("minor", dev.minor);
            d.get("fileMode", dev.file_mode);
            d.get("uid", dev.uid);
            d.get("gid", dev.gid);
            l.devices.push_back(dev);
        });
    n.get("cgroupsPath", l.cgroups_path);
    if (n.has("resources")) l.resources = parse_resources(n.at("resources"));
    n.get("sysctl", l.sysctl);
    if (n.has("seccomp")) l.seccomp = parse_seccomp(n.at("seccomp"));
    n.get("rootfsPropagation", l.rootfs_propagation);
    n.get("maskedPaths", l.masked_paths);
    n.get("readonlyPaths", l.readonly_paths);
    n.get("mountLabel", l.mount_label);
    if (n.has("personality")) {
        Node p = n.at("personality");
        Personality per;
        if (!p.has("domain")) p.fail("missing required field 'domain'");
        per.domain = p.at("domain").str();
        p.get("flags", per.flags);
        l.personality = per;
    }
    if (n.has("timeOffsets")) {
        Node t = n.at("timeOffsets");
        t.expect_object();
        for (auto& [clock, v] : t.j.items()) {
            Node c{v, t.path + "." + clock};
            int64_t secs = 0;
            uint32_t nanos = 0;
            c.get("secs", secs);
            c.get("nanosecs", nanos);
            l.time_offsets[clock] = {secs, nanos};
        }
    }
    return l;
}

}  // namespace

Resources parse_resources(const json& j, const std::string& path) { return parse_resources(Node{j, path}); }

Process parse_process(const json& j, const std::string& path) {
    Node n{j, path};
    n.expect_object();
    Process p;
    n.get("terminal", p.terminal);
    if (n.has("consoleSize")) {
        Node cs = n.at("consoleSize");
        cs.expect_object();
        unsigned h = 0, w = 0;
        cs.get("height", h);
        cs.get("width", w);
        p.console_size = std::make_pair(h, w);
    }
    if (n.has("user")) p.user = parse_user(n.at("user"));
    n.get("args", p.args);
    n.get("env", p.env);
    n.get("cwd", p.cwd);
    if (n.has("capabilities")) {
        Node c = n.at("capabilities");
        c.expect_object();
        Capabilities caps;
        c.get("bounding", caps.bounding);
        c.get("effective", caps.effective);
        c.get("inheritable", caps.inheritable);
        c.get("permitted", caps.permitted);
        c.get("ambient", caps.ambient);
        p.capabilities = caps;
    }
    if (n.has("rlimits"))
        n.at("rlimits").each([&](const Node& r) {
            r.expect_object();
            Rlimit rl;
            if (!r.has("type")) r.fail("missing required field 'type'");
            rl.type = r.at("type").str();
            r.get("hard", rl.hard);
            r.get("soft", rl.soft);
            p.rlimits.push_back(rl);
        });
    n.get("noNewPrivileges", p.no_new_privileges);
    n.get("oomScoreAdj", p.oom_score_adj);
    n.get("apparmorProfile", p.apparmor_profile);
    n.get("selinuxLabel", p.selinux_label);
    if (n.has("ioPriority")) {
        Node io = n.at("ioPriority");
        IoPriority prio;
        if (!io.has("class")) io.fail("missing required field 'class'");
        prio.klass = io.at("class").str();
        io.get("priority", prio.priority);
        p.io_priority = prio;
    }
    if (n.has("scheduler")) {
        Node s = n.at("scheduler");
        Scheduler sch;
        if (!s.has("policy")) s.fail("missing required field 'policy'");
        sch.policy = s.at("policy").str();
        s.get("nice", sch.nice);
        s.get("priority", sch.priority);
        s.get("flags", sch.flags);
        s.get("runtime", sch.runtime);
        s.get("deadline", sch.deadline);
        s.get("period", sch.period);
        p.scheduler = sch;
    }
    return p;
}

Spec parse_spec(const std::string& text) {
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {
        throw Error(std::string("malformed JSON: ") + e.what());
    }
    Node n{j, ""};
    if (!j.is_object()) throw Error("expected a JSON object at the top level");
    Spec s;
    if (!n.has("ociVersion")) throw Error("ociVersion: missing required field");
    s.oci_version = n.at("ociVersion").str();
    if (n.has("root")) {
        Node r = n.at("root");
        r.expect_object();
        if (!r.has("path")) r.fail("missing required field 'path'");
        s.root_path = r.at("path").str();
        r.get("readonly", s.root_readonly);
    }
    if (n.has("process")) s.process = parse_process(j.at("process"), "process");
    n.get("hostname", s.hostname);
    n.get("domainname", s.domainname);
    if (n.has("mounts"))
        n.at("mounts").each([&](const Node& m) {
            m.expect_object();
            Mount mnt;
            if (!m.has("destination")) m.fail("missing required field 'destination'");
            mnt.destination = m.at("destination").str();
            m.get("type", mnt.type);
            m.get("source", mnt.source);
            m.get("options", mnt.options);
            s.mounts.push_back(mnt);
        });
    if (n.has("hooks")) {
        Node h = n.at("hooks");
        h.expect_object();
        Hooks hooks;
        hooks.prestart = parse_hooks(h, "prestart");
        hooks.create_runtime = parse_hooks(h, "createRuntime");
        hooks.create_container = parse_hooks(h, "createContainer");
        hooks.start_container = parse_hooks(h, "startContainer");
        hooks.poststart = parse_hooks(h, "poststart");
        hooks.poststop = parse_hooks(h, "poststop");
        s.hooks = hooks;
    }
    n.get("annotations", s.annotations);
    if (n.has("linux")) s.linux = parse_linux(n.at("linux"));
    return s;
}

const Namespace* Spec::find_namespace(const std::string& type) const {
    if (!linux) return nullptr;
    for (const auto& ns : linux->namespaces)
        if (ns.type == type) return &ns;
    return nullptr;
}

bool Spec::has_namespace(const std::string& type) const { return find_namespace(type) != nullptr; }

namespace {

// The kernel's own limits, checked here so that an oversized field is named
// instead of failing deep in the container's setup.
constexpr size_t path_max = 4095;         // PATH_MAX less the NUL
constexpr size_t uts_name_max = 64;       // __NEW_UTS_LEN
constexpr size_t arg_string_max = 131071;  // MAX_ARG_STRLEN less the NUL
constexpr size_t sysctl_value_max = 4095;  // /proc/sys takes one page

void check_size(const std::string& value, size_t max, const std::string& field) {
    if (value.size() > max)
        throw Error(field + ": " + std::to_string(value.size()) + " bytes long, at most " + std::to_string(max) +
                    " allowed");
}

void check_path(const std::string& value, const std::string& field) { check_size(value, path_max, field); }

// A sysctl is written only inside a namespace of the container's own: a
// host-wide one (vm.*, kernel.core_pattern) or one whose namespace the
// container shares with the host would change the host. Whether a namespace
// joined by path is the host's own is checked at create (runtime/).
void validate_sysctls(const Spec& s) {
    for (const auto& [key, value] : s.linux->sysctl) {
        check_size(value, sysctl_value_max, "linux.sysctl: " + key);
        std::string ns = sysctl_namespace(key);
        if (ns.empty())
            throw Error("linux.sysctl: " + key + " is not in a separate kernel namespace (only net.*, the IPC set, "
                        "fs.mqueue.* and kernel.hostname/domainname are)");
        if (!s.has_namespace(ns))
            throw Error("linux.sysctl: " + key + " needs a " + ns + " namespace of the container's own, and " +
                        "linux.namespaces has none: it would change the host's value");
    }
}

}  // namespace

void validate_process(const Process& p, const std::string& path) {
    if (p.args.empty()) throw Error(path + ".args: must name the program to run");
    if (p.cwd.empty() || p.cwd[0] != '/') throw Error(path + ".cwd: must be an absolute path, got '" + p.cwd + "'");
    check_path(p.cwd, path + ".cwd");
    for (size_t i = 0; i < p.args.size(); ++i)
        check_size(p.args[i], arg_string_max, path + ".args[" + std::to_string(i) + "]");
    for (size_t i = 0; i < p.env.size(); ++i)
        check_size(p.env[i], arg_string_max, path + ".env[" + std::to_string(i) + "]");
    if (p.capabilities) {
        auto check_set = [&](const std::vector<std::string>& set, const char* name) {
            for (const auto& c : set)
                if (!os::capability_from_name(c))
                    throw Error(path + ".capabilities." + name + ": unknown capability '" + c + "'");
        };
        check_set(p.capabilities->bounding, "bounding");
        check_set(p.capabilities->effective, "effective");
        check_set(p.capabilities->inheritable, "inheritable");
        check_set(p.capabilities->permitted, "permitted");
        check_set(p.capabilities->ambient, "ambient");
    }
    std::set<std::string> seen;
    for (const auto& r : p.rlimits) {
        if (!os::rlimit_from_name(r.type)) throw Error(path + ".rlimits: unknown rlimit type '" + r.type + "'");
        if (!seen.insert(r.type).second) throw Error(path + ".rlimits: duplicate rlimit type '" + r.type + "'");
        if (r.soft > r.hard) throw Error(path + ".rlimits: " + r.type + " soft limit is above the hard limit");
    }
    if (p.io_priority) {
        static const std::set<std::string> classes = {"IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE"};
        if (!classes.count(p.io_priority->klass))
            throw Error(path + ".ioPriority.class: unknown class '" + p.io_priority->klass + "'");
    }
    if (p.scheduler) {
        static const std::set<std::string> policies = {"SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH",
                                                       "SCHED_ISO", "SCHED_IDLE", "SCHED_DEADLINE"};
        if (!policies.count(p.scheduler->policy))
            throw Error(path + ".scheduler.policy: unknown policy '" + p.scheduler->policy + "'");
    }
    if (p.oom_score_adj && (*p.oom_score_adj < -1000 || *p.oom_score_adj > 1000))
        throw Error(path + ".oomScoreAdj: must be between -1000 and 1000");
}

void validate_spec(const Spec& s) {
    if (s.oci_version.rfind("1.", 0) != 0)
        throw Error("ociVersion: unsupported version '" + s.oci_version + "' (vitro-runtime supports 1.x)");
    if (s.root_path.empty()) throw Error("root.path: missing (the container needs a root filesystem)");
    check_path(s.root_path, "root.path");
    check_size(s.hostname, uts_name_max, "hostname");
    check_size(s.domainname, uts_name_max, "domainname");
    // A config without a process is valid: its container starts and exits at once.
    if (s.process) validate_process(*s.process);
    for (size_t i = 0; i < s.mounts.size(); ++i)
        if (s.mounts[i].destination.empty() || s.mounts[i].destination[0] != '/')
            throw Error("mounts[" + std::to_string(i) + "].destination: must be an absolute path, got '" +
                        s.mounts[i].destination + "'");
        else
            check_path(s.mounts[i].destination, "mounts[" + std::to_string(i) + "].destination");
    if (s.hooks) {
        for (const auto* list : {&s.hooks->prestart, &s.hooks->create_runtime, &s.hooks->create_container,
                                 &s.hooks->start_container, &s.hooks->poststart, &s.hooks->poststop})
            for (const auto& h : *list)
                if (h.path.empty() || h.path[0] != '/')
                    throw Error("hooks: hook path must be absolute, got '" + h.path + "'");
    }
    if (s.linux) {
        static const std::set<std::string> types = {"pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"};
        std::set<std::string> seen;
        for (const auto& ns : s.linux->namespaces) {
            if (!types.count(ns.type)) throw Error("linux.namespaces: unknown namespace type '" + ns.type + "'");
            if (!seen.insert(ns.type).second)
                throw Error("linux.namespaces: namespace type '" + ns.type + "' listed twice");
            if (!ns.path.empty() && ns.path[0] != '/')
                throw Error("linux.namespaces: path of the " + ns.type + " namespace must be absolute");
        }
        bool userns = seen.count("user") > 0;
        if (!userns && (!s.linux->uid_mappings.empty() || !s.linux->gid_mappings.empty()))
            throw Error("linux.uidMappings: mappings need a user namespace in linux.namespaces");
        if (!s.linux->time_offsets.empty() && !seen.count("time"))
            throw Error("linux.timeOffsets: offsets need a time namespace in linux.namespaces");
        for (const auto& [clock, off] : s.linux->time_offsets)
            if (clock != "monotonic" && clock != "boottime")
                throw Error("linux.timeOffsets: unknown clock '" + clock + "'");
        static const std::set<std::string> props = {"", "shared", "slave", "private", "unbindable",
                                                    "rshared", "rslave", "rprivate", "runbindable"};
        validate_sysctls(s);
        if (!props.count(s.linux->rootfs_propagation))
            throw Error("linux.rootfsPropagation: unknown value '" + s.linux->rootfs_propagation + "'");
        for (const auto& d : s.linux->devices) {
            static const std::set<std::string> dtypes = {"c", "b", "u", "p"};
            if (!dtypes.count(d.type)) throw Error("linux.devices: " + d.path + ": unknown type '" + d.type + "'");
            if (d.path.empty() || d.path[0] != '/')
                throw Error("linux.devices: path must be absolute, got '" + d.path + "'");
        }
        if (s.linux->resources)
            for (const auto& d : s.linux->resources->devices) {
                static const std::set<std::string> rtypes = {"a", "c", "b"};
                if (!rtypes.count(d.type))
                    throw Error("linux.resources.devices: unknown type '" + d.type + "'");
                if (d.access.find_first_not_of("rwm") != std::string::npos)
                    throw Error("linux.resources.devices: bad access '" + d.access + "'");
            }
        if (s.linux->personality) {
            const auto& d = s.linux->personality->domain;
            if (d != "LINUX" && d != "LINUX32")
                throw Error("linux.personality.domain: unknown domain '" + d + "'");
        }
    }
}

Spec load_bundle_spec(const std::string& bundle) {
    std::string path = bundle + "/config.json";
    std::string text;
    try {
        text = read_file(path);
    } catch (const Error& e) {
        throw Error(e.code(), "cannot read " + path + ": " + errno_name(e.code()));
    }
    try {
        Spec s = parse_spec(text);
        validate_spec(s);
        return s;
    } catch (const Error& e) {
        throw e.wrap(path);
    }
}

}  // namespace vitro::oci
