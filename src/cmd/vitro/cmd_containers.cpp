// Container commands: run, create, start, stop, restart, kill, pause,
// unpause, rename, port, rm, ps, logs, exec, inspect, wait, top, diff. Flags as docker's; the work is in engine/.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <algorithm>
#include <fstream>
#include <map>
#include <iostream>
#include <chrono>
#include <functional>
#include <memory>
#include <regex>
#include <thread>

#include "cmd/vitro/common.hpp"
#include "cmd/vitro/image_views.hpp"
#include "cmd/vitro/registry_flags.hpp"
#include "engine/container_log.hpp"
#include "engine/engine.hpp"
#include "engine/monitor.hpp"
#include "image/import.hpp"
#include "image/pull.hpp"
#include "image/snapshot.hpp"
#include "image/store.hpp"
#include "linux/sealed_exe.hpp"
#include "runtime/runtime.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"
#include "util/subprocess.hpp"
#include "util/file.hpp"

namespace vitro::cli {

namespace {

using engine::ContainerRecord;
using engine::ContainerState;
using nlohmann::json;

// IMAGE [CMD...] or CONTAINER [CMD...] after the flags (prefix_command).
std::vector<std::string> rest_args(CLI::App* cmd) {
    auto rest = cmd->remaining();
    if (!rest.empty() && rest[0] == "--") rest.erase(rest.begin());
    return rest;
}

struct RunFlags {
    engine::CreateRequest req;
    bool detach = false, tty = false, interactive = false, sig_proxy = true;
    std::vector<std::string> env_files, ports, cap_add, cap_drop, security_opts, log_opts;
    std::vector<std::string> ulimits, labels, label_files;
    std::string memory, restart = "no", entrypoint;
    bool entrypoint_set = false;
    double cpus = 0;
    int64_t pids_limit = 0;
    std::string pull = "missing";
    RegistryFlags reg;
};

// podman's --sig-proxy (run, start --attach): on by default, =false turns it off.
void add_sig_proxy_flag(CLI::App* c, bool& on) {
    c->add_flag("--sig-proxy", on,
                "attached: pass the signals this command gets on to the container (default true; "
                "--sig-proxy=false: they are its own, and the container runs on without it)");
}

void add_run_flags(CLI::App* c, RunFlags& f, bool with_detach) {
    auto& r = f.req;
    c->set_help_flag("--help", "print this help");  // -h is --hostname, as in docker
    if (with_detach) {
        c->add_flag("-d,--detach", f.detach, "run in the background and print the container ID");
        c->add_flag("--rm", r.auto_remove, "remove the container when it exits");
        add_sig_proxy_flag(c, f.sig_proxy);
    } else {
        c->add_flag("--rm", r.auto_remove, "remove the container when it exits");
    }
    c->add_flag("-i,--interactive", f.interactive, "keep stdin open");
    c->add_flag("-t,--tty", f.tty, "allocate a pseudo-terminal");
    c->add_option("--name", r.name, "container name");
    c->add_option("-e,--env", r.run.env, "set an environment variable (KEY=VALUE, or KEY to take it from here)");
    c->add_option("--env-file", f.env_files, "read KEY=VALUE lines from a file");
    c->add_option("-v,--volume", r.volumes, "bind a host path or a named volume: SRC:DST[:ro]");
    c->add_option("--tmpfs", r.tmpfs, "mount a tmpfs: DST[:OPTIONS]");
    c->add_option("-p,--publish", f.ports, "publish a port: [HOST_IP:]HOST_PORT:CONTAINER_PORT[/udp] (in a pod: on pod create)");
    c->add_option("--network,--net", r.network, "none, host, bridge (the default network) or a network name");
    c->add_option("-m,--memory", f.memory, "memory limit (e.g. 64m, 1g)");
    c->add_option("--cpus", f.cpus, "number of CPUs (e.g. 0.5)");
    c->add_option("--pids-limit", f.pids_limit, "maximum number of processes");
    c->add_option("-u,--user", r.run.user, "user: NAME|UID[:GROUP|GID]");
    c->add_option("-w,--workdir", r.run.workdir, "working directory in the container");
    c->add_option("--entrypoint", f.entrypoint, "replace the image's entrypoint")->each([&f](const std::string&) {
        f.entrypoint_set = true;
    });
    c->add_flag("--read-only", r.run.read_only, "mount the root filesystem read-only");
    c->add_option("--cap-add", f.cap_add, "add a capability (NET_ADMIN, ALL, ...)");
    c->add_option("--cap-drop", f.cap_drop, "drop a capability");
    c->add_option("--security-opt", f.security_opts, "seccomp=FILE|unconfined, no-new-privileges");
    c->add_option("--log-opt", f.log_opts,
                  "log rotation: max-size=SIZE (k/m/g; -1: unbounded), max-file=N (files kept); "
                  "default max-size=20m,max-file=5, or $VITRO_LOG_OPTS");
    c->add_option("-h,--hostname", r.run.hostname, "container host name");
    c->add_option("--add-host", r.etc.add_hosts,
                  "add a line to /etc/hosts: HOST:IP (IPv4 or IPv6; repeatable). /etc/hosts also has the "
                  "container's name and host.containers.internal (the host on its network)");
    c->add_option("--dns", r.etc.dns_servers,
                  "a DNS server for /etc/resolv.conf instead of the host's (repeatable); none: the image's own "
                  "/etc/resolv.conf");
    c->add_option("--dns-search", r.etc.dns_search,
                  "a DNS search domain instead of the host's (repeatable; . : none)");
    c->add_option("--dns-option", r.etc.dns_options, "a resolv.conf option instead of the host's (repeatable; e.g. ndots:2)");
    c->add_option("--ulimit", f.ulimits,
                  "a resource limit: TYPE=SOFT[:HARD] (nofile, nproc, core, memlock, stack, cpu, fsize, ...; "
                  "-1: unlimited; repeatable), or host (this shell's limits)");
    c->add_option("-l,--label", f.labels, "set a label: KEY=VALUE (or KEY, empty value; repeatable)");
    c->add_option("--label-file", f.label_files, "read KEY=VALUE label lines from a file");
    c->add_option("--restart", f.restart, "restart policy: no, on-failure[:N], always, unless-stopped");
    c->add_option("--isolation", r.isolation,
                  "namespaces (the default) or vm: a microVM with a kernel of its own (QEMU microvm, the rootfs "
                  "over virtiofs; needs scripts/vm-kernel.sh's kernel; no -t, -p, -v or networks yet)");
    c->add_option("--pod", r.pod, "join a pod: its network (localhost, ports), IPC and UTS namespaces (see vitro pod)");
    c->add_option("--stop-signal", r.stop_signal, "signal to stop the container (default SIGTERM)");
    c->add_option("--stop-timeout", r.stop_timeout, "seconds to wait before killing the container (default 10)");
    c->add_option("--pull", f.pull, "pull the image first: missing (when it is not in the store), always, or never")
        ->check(CLI::IsMember({"missing", "always", "never"}))
        ->default_str("missing");
    add_registry_flags(c, f.reg, true);
    // One value per occurrence (-p A -p B), so that IMAGE is never taken as a value.
    for (auto* o : c->get_options()) o->allow_extra_args(false);
    c->prefix_command();
}

void read_env_file(const std::string& path, std::vector<std::string>& env) {
    std::ifstream in(path);
    if (!in) throw Error(errno, "--env-file " + path + ": " + std::strerror(errno));
    for (std::string line; std::getline(in, line);) {
        std::string t = trim(line);
        if (t.empty() || t[0] == '#') continue;
        env.push_back(t);
    }
}

// --label KEY[=VALUE]: into labels (a later one of a key wins).
void add_label(const std::string& kv, std::map<std::string, std::string>& labels) {
    auto eq = kv.find('=');
    std::string key = kv.substr(0, eq);
    if (key.empty()) throw Error(EINVAL, "invalid --label \"" + kv + "\": no key");
    labels[key] = eq == std::string::npos ? "" : kv.substr(eq + 1);
}

// Flags -> CreateRequest (everything but the image and command).
engine::CreateRequest finish_request(RunFlags& f, const std::vector<std::string>& rest) {
    auto& r = f.req;
    if (rest.empty()) throw Error(EINVAL, "an image is required: vitro run [OPTIONS] IMAGE [COMMAND [ARG...]]");
    r.image = rest[0];
    // A global flag after the command (vitro run --runtime crun ...) lands here, not as an option.
    if (r.image[0] == '-') throw Error(EINVAL, "unknown flag: " + r.image + " (see vitro run --help)");
    r.run.command.assign(rest.begin() + 1, rest.end());
    std::vector<std::string> env;
    for (const auto& file : f.env_files) read_env_file(file, env);
    env.insert(env.end(), r.run.env.begin(), r.run.env.end());
    r.run.env = env;
    r.run.tty = f.tty;
    r.interactive = f.interactive;
    if (f.entrypoint_set) r.run.entrypoint = f.entrypoint;
    if (!f.memory.empty()) r.run.memory = static_cast<int64_t>(parse_size(f.memory, "--memory"));
    if (f.cpus != 0) r.run.cpus = f.cpus;
    if (f.pids_limit != 0) r.run.pids_limit = f.pids_limit;
    r.run.cap_add = f.cap_add;
    r.run.cap_drop = f.cap_drop;
    r.security_opts = f.security_opts;
    r.log = engine::parse_log_opts(f.log_opts, engine::default_log_limits());
    r.run.ulimits = engine::parse_ulimits(f.ulimits);
    {
        std::vector<std::string> labels;  // files first: a --label overrides
        for (const auto& file : f.label_files) try {
            read_env_file(file, labels);
        } catch (const Error& e) {
            throw Error(e.code(), std::string("--label-file ") + file + ": " + std::strerror(e.code()));
        }
        labels.insert(labels.end(), f.labels.begin(), f.labels.end());
        for (const auto& l : labels) add_label(l, r.labels);
    }
    for (const auto& p : f.ports) r.ports.push_back(engine::parse_port_mapping(p));
    r.restart = engine::parse_restart(f.restart);
    if (r.auto_remove && r.restart.policy != engine::RestartPolicy::No)
        throw Error(EINVAL, "--rm and --restart cannot be used together");
    engine::validate_request(r);  // bad flags refused before a pull
    return r;
}

// --pull: the image from its registry before the container is made, as
// podman does (missing: only when the store has no such name). A failed pull
// is one error line naming the image (125); nothing of it is left in the store.
void pull_if_needed(const Globals& g, const RunFlags& f, const std::string& ref) {
    if (f.pull == "never") return;
    image::Store store(g.root);
    bool local = store.find_name(ref).has_value();
    if (f.pull == "missing" && local) return;
    image::PullOptions po;
    po.registry = registry_options(f.reg);
    po.authfile = f.reg.authfile;
    po.progress = progress_for(false);
    if (po.progress && !local) std::fprintf(stderr, "Trying to pull %s...\n", ref.c_str());
    try {
        image::pull(store, ref, po);
    } catch (const Error& e) {
        if (local) throw;
        throw Error(e.code(), ref + ": image not known locally, and " + e.what());
    }
}

std::string short_id(const std::string& id) { return id.substr(0, 12); }

std::string command_of(const ContainerRecord& c) {
    return join(c.config.value("args", c.config.value("command", std::vector<std::string>{})), " ");
}

// podman's state names: created, running, paused, exited, removing.
std::string state_name(const ContainerRecord& c) {
    if (engine::is_paused(c)) return "paused";
    return c.state == ContainerState::Exited ? "exited" : std::string(engine::to_string(c.state));
}

std::string status_text(const ContainerRecord& c) {
    switch (c.state) {
        case ContainerState::Created: return "Created";
        case ContainerState::Running:
            if (engine::is_paused(c)) return "Paused";
            return "Up " + human_since(c.started_at.value_or(c.created_at));
        case ContainerState::Exited:
            return "Exited (" + (c.exit_code ? std::to_string(*c.exit_code) : std::string("?")) + ") " +
                   human_since(c.finished_at.value_or(c.created_at)) + " ago";
        case ContainerState::Removing: return "Removing";
    }
    return "Unknown";
}

std::string ports_text(const ContainerRecord& c) {
    std::vector<std::string> out;
    for (const auto& p : c.config.value("ports", json::array()))
        out.push_back((p.value("hostIP", "").empty() ? std::string("0.0.0.0") : p.value("hostIP", "")) + ":" +
                      std::to_string(p.value("hostPort", 0)) + "->" + std::to_string(p.value("containerPort", 0)) +
                      "/" + p.value("protocol", "tcp"));
    return join(out, ", ");
}

// ps --filter KEY=VALUE, podman's rule: values of one key match any of them
// (label: all of them), different keys all.
using PsFilters = std::map<std::string, std::vector<std::string>>;
constexpr const char* kPsFilterKeys = "ancestor, exited, id, label, name, status";

PsFilters parse_ps_filters(const std::vector<std::string>& values) {
    static const std::vector<std::string> keys = {"ancestor", "exited", "id", "label", "name", "status"};
    static const std::vector<std::string> states = {"created", "running", "exited", "paused", "removing", "unknown"};
    PsFilters out;
    for (const auto& f : values) {
        auto eq = f.find('=');
        if (eq == std::string::npos) throw Error(EINVAL, "invalid --filter \"" + f + "\": expected KEY=VALUE");
        std::string key = f.substr(0, eq), value = f.substr(eq + 1);
        if (std::find(keys.begin(), keys.end(), key) == keys.end())
            throw Error(EINVAL, "invalid --filter \"" + f + "\": unknown key \"" + key + "\" (" + kPsFilterKeys + ")");
        if (key == "status" && std::find(states.begin(), states.end(), value) == states.end())
            throw Error(EINVAL, "invalid --filter \"" + f + "\": \"" + value + "\" is not a container status (" +
                                    join(states, ", ") + ")");
        uint64_t n = 0;
        if (key == "exited" && !parse_u64(value, n))
            throw Error(EINVAL, "invalid --filter \"" + f + "\": \"" + value + "\" is not an exit code");
        if (key == "name") try {
            std::regex re(value);
        } catch (const std::regex_error& e) {
            throw Error(EINVAL, "invalid --filter \"" + f + "\": not a regular expression: " + e.what());
        }
        out[key].push_back(value);
    }
    return out;
}

bool ps_filter_matches(const std::string& key, const std::string& value, const ContainerRecord& c,
                       const image::Store& images) {
    if (key == "id") return c.id.rfind(value, 0) == 0;
    if (key == "name") return std::regex_search(c.name, std::regex(value));
    if (key == "status") return state_name(c) == value;
    if (key == "exited") return c.state == ContainerState::Exited && c.exit_code && std::to_string(*c.exit_code) == value;
    if (key == "label") {
        const json labels = c.config.value("labels", json::object());
        auto eq = value.find('=');
        auto it = labels.find(value.substr(0, eq));
        return it != labels.end() && (eq == std::string::npos || *it == value.substr(eq + 1));
    }
    if (key == "ancestor") {  // the image as named, or the image the value names (a name or an ID)
        if (c.image == value) return true;
        auto tag = images.find_name(value);
        auto d = tag ? images.resolve(*tag) : std::nullopt;
        return d && d->digest == c.image_digest;
    }
    return false;
}

bool ps_matches(const PsFilters& filters, const ContainerRecord& c, const image::Store& images) {
    for (const auto& [key, values] : filters) {
        auto one = [&](const std::string& v) { return ps_filter_matches(key, v, c, images); };
        bool ok = key == "label" ? std::all_of(values.begin(), values.end(), one)
                                 : std::any_of(values.begin(), values.end(), one);
        if (!ok) return false;
    }
    return true;
}

// An image's details for `inspect`, with podman's field names.
// podman's `top` descriptors as the host's ps(1) keywords. pid and user are
// the host's view (vitro reads no pid namespace for ps).
const std::map<std::string, std::string>& top_descriptors() {
    static const std::map<std::string, std::string> m = {
        {"args", "args"},   {"comm", "comm"},   {"etime", "etime"}, {"group", "group"},   {"hgroup", "group"},
        {"hpid", "pid"},    {"huser", "user"},  {"nice", "nice"},   {"pcpu", "pcpu"},     {"pgid", "pgid"},
        {"pid", "pid"},     {"ppid", "ppid"},   {"rgroup", "rgroup"}, {"ruser", "ruser"}, {"state", "stat"},
        {"stime", "lstart"}, {"time", "time"},  {"tty", "tty"},     {"user", "user"},     {"vsz", "vsz"}};
    return m;
}

// Runs the host's ps with `args`; its stdout, or an Error with ps's message.
std::string run_ps(const std::vector<std::string>& args) {
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) env.emplace_back(*e);
    std::vector<std::string> argv = {"ps"};
    argv.insert(argv.end(), args.begin(), args.end());
    RunResult r = run_program_capture(require_program("ps"), argv, env, "", 30);
    if (r.timed_out || !WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0) {
        while (!r.stderr_tail.empty() && r.stderr_tail.back() == '\n') r.stderr_tail.pop_back();
        throw Error(EINVAL, join(argv, " ") + ": " + describe_status(r, 30) +
                                (r.stderr_tail.empty() ? "" : ": " + r.stderr_tail));
    }
    return r.stdout_data;
}

// Keeps ps output's header and the rows whose PID column is one of `pids`:
// the user's ps options may select every process on the host (aux, -e).
// A row whose PID cannot be read is dropped, never shown.
std::string keep_container_rows(const std::string& out, const std::vector<pid_t>& pids) {
    std::vector<std::string> lines = split(out, '\n');
    if (lines.empty() || trim(lines[0]).empty()) throw Error(EINVAL, "ps printed no header");
    auto words = [](const std::string& line) {
        std::vector<std::string> w;
        for (const auto& x : split(line, ' '))
            if (!x.empty()) w.push_back(x);
        return w;
    };
    std::vector<std::string> header = words(lines[0]);
    size_t col = 0;
    for (; col < header.size() && header[col] != "PID"; ++col)
        // Values of these columns may hold spaces, which would shift the PID column.
        if (header[col] == "CMD" || header[col] == "COMMAND" || header[col] == "ARGS" || header[col] == "STARTED")
            throw Error(EINVAL, "ps options: the PID column must come before " + header[col] +
                                    " (vitro top shows only the container's rows, found by PID)");
    if (col == header.size())
        throw Error(EINVAL, "ps options print no PID column: vitro top shows only the container's rows, found by "
                            "PID (add one, e.g. -o pid,args, or use descriptors)");
    std::string kept = lines[0] + "\n";
    for (size_t i = 1; i < lines.size(); ++i) {
        auto w = words(lines[i]);
        uint64_t pid = 0;
        if (w.size() > col && parse_u64(w[col], pid) &&
            std::find(pids.begin(), pids.end(), static_cast<pid_t>(pid)) != pids.end())
            kept += lines[i] + "\n";
    }
    return kept;
}

// `vitro top`'s output for a container's `pids`: podman's descriptors, or ps
// options with only the container's rows kept.
std::string container_top(const std::vector<pid_t>& pids, const std::vector<std::string>& extra) {
    std::string list;
    for (pid_t p : pids) list += (list.empty() ? "" : ",") + std::to_string(p);
    if (extra.empty()) return run_ps({"-o", "user,pid,ppid,etime,time,args", "-p", list});
    std::string keywords;
    bool descriptors = true;
    for (const auto& d : extra) {
        auto it = top_descriptors().find(d);
        if (it == top_descriptors().end()) {
            descriptors = false;
            break;
        }
        keywords += (keywords.empty() ? "" : ",") + it->second;
    }
    // -p alone selects: ps lists nothing but these processes.
    if (descriptors) return run_ps({"-o", keywords, "-p", list});
    return keep_container_rows(run_ps(extra), pids);
}

json inspect_json(const engine::Engine& eng, const ContainerRecord& c) {
    json ports = c.config.value("ports", json::array());
    json ips = c.config.value("ips", json::array());
    std::string ip = ips.empty() ? "" : ips[0].get<std::string>().substr(0, ips[0].get<std::string>().find('/'));
    return {{"Id", c.id},
            {"Name", c.name},
            {"Created", c.created_at},
            {"Image", c.image},
            {"ImageDigest", c.image_digest},
            {"State",
             {{"Status", state_name(c)},
              {"Running", c.state == ContainerState::Running && !engine::is_paused(c)},
              {"Paused", engine::is_paused(c)},
              {"Pid", c.config.value("init_pid", 0)},
              {"MonitorPid", c.pid},
              {"ExitCode", c.exit_code.value_or(0)},
              {"StartedAt", c.started_at.value_or("")},
              {"FinishedAt", c.finished_at.value_or("")},
              {"RestartCount", c.config.value("restart_count", 0)}}},
            {"Config",
             {{"Cmd", c.config.value("command", json::array())},
              {"Args", c.config.value("args", json::array())},
              {"Hostname", c.config.value("hostname", "")},
              {"Tty", c.config.value("tty", false)},
              {"OpenStdin", c.config.value("interactive", false)},
              {"StopSignal", c.config.value("stop_signal", "SIGTERM")},
              {"Labels", c.config.value("labels", json::object())}}},
            {"HostConfig",
             {{"NetworkMode", c.config.value("network", "")},
              {"AutoRemove", c.config.value("auto_remove", false)},
              {"Isolation", c.config.value("isolation", "namespaces")},
              {"RestartPolicy", c.config.value("restart", json::object())},
              {"Ulimits", c.config.value("ulimits", json::array())},
              {"ExtraHosts", engine::etc_options_of(c.config).add_hosts},
              {"Dns", engine::etc_options_of(c.config).dns_servers},
              {"DnsSearch", engine::etc_options_of(c.config).dns_search},
              {"DnsOptions", engine::etc_options_of(c.config).dns_options},
              {"Runtime", c.config.value("runtime", "").empty() ? "vitro" : c.config.value("runtime", "")}}},
            {"NetworkSettings", {{"IPAddress", ip}, {"IPs", ips}, {"Ports", ports}}},
            {"Pod", c.pod_id.value_or("")},
            {"PodName", engine::pod_name(c)},
            {"IsInfra", engine::is_infra(c)},
            {"LogPath", eng.log_path(c)},
            {"Bundle", c.bundle}};
}

// Runs `fn` on each container named; prints the name as given when done,
// an error line when not, and goes on with the others (as podman's). 125
// when any failed.
int for_each_container(const std::vector<std::string>& refs, const std::function<void(const std::string&)>& fn) {
    int code = 0;
    for (const auto& r : refs) {
        try {
            fn(r);
            std::printf("%s\n", r.c_str());
        } catch (const std::exception& e) {
            std::fflush(stdout);
            std::fprintf(stderr, "Error: %s\n", e.what());
            code = 125;
        }
    }
    return code;
}

// `-a` or names, never both, and one of them.
std::vector<std::string> refs_or_all(const std::vector<std::string>& refs, bool all, const char* cmd,
                                     const std::function<std::vector<std::string>()>& every) {
    if (all && !refs.empty())
        throw Error(EINVAL, std::string(cmd) + ": --all and container names cannot be used together");
    if (!all && refs.empty()) throw Error(EINVAL, std::string(cmd) + ": name at least one container, or --all");
    return all ? every() : refs;
}

// `port`'s PRIVATE_PORT[/PROTO] (tcp when none).
std::pair<uint16_t, std::string> parse_private_port(const std::string& value) {
    std::vector<std::string> f = split(value, '/');
    uint64_t n = 0;
    if (f.size() > 2 || !parse_u64(f[0], n) || n == 0 || n > 65535)
        throw Error(EINVAL, "invalid port \"" + value + "\": use PRIVATE_PORT[/PROTO], the port in 1-65535");
    std::string proto = f.size() == 2 ? f[1] : "tcp";
    if (proto != "tcp" && proto != "udp" && proto != "sctp")
        throw Error(EINVAL, "invalid port \"" + value + "\": the protocol must be tcp, udp or sctp");
    return {static_cast<uint16_t>(n), proto};
}

// Runs a start that may attach, mapping a process that cannot start to
// docker's exit codes (126/127) after printing the reason.
int start_mapped(engine::Engine& eng, const std::string& id, const engine::StartOptions& so) {
    try {
        return eng.start(id, so);
    } catch (const std::exception& e) {
        if (int code = engine::exec_failure_exit_code(e)) {
            std::fprintf(stderr, "Error: %s\n", e.what());
            return code;
        }
        throw;
    }
}

// While attached, a terminal's ^C goes to the container (our process group);
// we only wait for it.
struct IgnoreInteractiveSignals {
    IgnoreInteractiveSignals() {
        ::signal(SIGINT, SIG_IGN);
        ::signal(SIGQUIT, SIG_IGN);
    }
};

}  // namespace

void add_container_commands(CLI::App& app, Globals& g) {
    auto flags = std::make_shared<RunFlags>();

    auto* run = app.add_subcommand("run", "create and start a container: vitro run [OPTIONS] IMAGE [COMMAND [ARG...]]");
    add_run_flags(run, *flags, true);
    run->callback([&g, flags, run] {
        auto req = finish_request(*flags, rest_args(run));
        req.started_by_creator = true;
        pull_if_needed(g, *flags, req.image);
        engine::Engine eng(engine_options(g));
        ContainerRecord c = eng.create(req);
        // --rm: a container that could not start goes too (a port taken, ...).
        auto remove_if_rm = [&] {
            if (!req.auto_remove) return;
            try {
                eng.remove(c.id, true);
            } catch (const Error&) {
            }
        };
        try {
            if (flags->detach) {
                g.exit_code = start_mapped(eng, c.id, {false, false});
                if (g.exit_code == 0) std::printf("%s\n", c.id.c_str());
                else if (g.exit_code >= 126 && g.exit_code <= 127) remove_if_rm();
                return;
            }
            g.exit_code = start_mapped(eng, c.id, {true, flags->interactive, flags->sig_proxy});
        } catch (...) {
            remove_if_rm();
            throw;
        }
        if (g.exit_code >= 126 && g.exit_code <= 127) remove_if_rm();
    });

    auto* create = app.add_subcommand("create", "create a container without starting it: vitro create [OPTIONS] IMAGE [COMMAND [ARG...]]");
    add_run_flags(create, *flags, false);
    create->callback([&g, flags, create] {
        auto req = finish_request(*flags, rest_args(create));
        pull_if_needed(g, *flags, req.image);
        engine::Engine eng(engine_options(g));
        std::printf("%s\n", eng.create(req).id.c_str());
    });

    auto refs = std::make_shared<std::vector<std::string>>();
    auto start_attach = std::make_shared<bool>(false);
    auto start_interactive = std::make_shared<bool>(false);
    auto start_sig_proxy = std::make_shared<bool>(true);
    auto* start = app.add_subcommand("start", "start one or more created or stopped containers");
    start->add_flag("-a,--attach", *start_attach, "attach to the container's output and return its exit code");
    start->add_flag("-i,--interactive", *start_interactive, "attach stdin");
    add_sig_proxy_flag(start, *start_sig_proxy);
    start->add_option("containers", *refs, "container names or IDs")->required();
    start->callback([&g, refs, start_attach, start_interactive, start_sig_proxy] {
        engine::Engine eng(engine_options(g));
        if (*start_attach) {
            if (refs->size() != 1) throw Error(EINVAL, "--attach takes exactly one container");
            g.exit_code = start_mapped(eng, (*refs)[0], {true, *start_interactive, *start_sig_proxy});
            return;
        }
        for (const auto& r : *refs) {
            eng.start(r, {});
            std::printf("%s\n", r.c_str());
        }
    });

    auto stop_timeout = std::make_shared<std::optional<int>>();
    auto* stop = app.add_subcommand("stop", "stop running containers (signal, wait, then SIGKILL)");
    stop->add_option("-t,--time", *stop_timeout, "seconds to wait before killing (default: the container's, 10)");
    stop->add_option("containers", *refs, "container names or IDs")->required();
    stop->callback([&g, refs, stop_timeout] {
        engine::Engine eng(engine_options(g));
        for (const auto& r : *refs) {
            eng.stop(r, *stop_timeout);
            std::printf("%s\n", r.c_str());
        }
    });

    auto kill_signal = std::make_shared<std::string>("KILL");
    auto* kill = app.add_subcommand("kill", "send a signal to running containers (default SIGKILL)");
    kill->add_option("-s,--signal", *kill_signal, "signal name or number");
    kill->add_option("containers", *refs, "container names or IDs")->required();
    kill->callback([&g, refs, kill_signal] {
        engine::Engine eng(engine_options(g));
        int sig = runtime::parse_signal(*kill_signal);
        for (const auto& r : *refs) {
            eng.kill(r, sig);
            std::printf("%s\n", r.c_str());
        }
    });

    // restart, pause, unpause: names, or -a. The IDs of those -a picks.
    auto ids_where = [&g](const std::function<bool(const ContainerRecord&)>& keep) {
        engine::Engine eng(engine_options(g));
        std::vector<std::string> ids;
        for (const auto& c : eng.list())
            if (keep(c)) ids.push_back(c.id);
        return ids;
    };

    struct RestartFlags {
        std::optional<int> timeout;
        bool all = false, running = false;
    };
    auto rf = std::make_shared<RestartFlags>();
    auto* restart = app.add_subcommand("restart", "stop (stop signal, wait, then SIGKILL) and start containers again; "
                                                  "created and exited ones are started");
    restart->add_option("-t,--time", rf->timeout, "seconds to wait before killing (default: the container's, 10)");
    restart->add_flag("-a,--all", rf->all, "restart every container");
    restart->add_flag("--running", rf->running, "with --all: only the running ones");
    restart->add_option("containers", *refs, "container names or IDs");
    restart->callback([&g, refs, rf, ids_where] {
        if (rf->running && !rf->all) throw Error(EINVAL, "restart: --running goes with --all");
        auto targets = refs_or_all(*refs, rf->all, "restart", [&] {
            return ids_where([&](const ContainerRecord& c) { return !rf->running || engine::is_running(c); });
        });
        engine::Engine eng(engine_options(g));
        g.exit_code = for_each_container(targets, [&](const std::string& r) { eng.restart(r, rf->timeout); });
    });

    auto pause_all = std::make_shared<bool>(false);
    auto* pause = app.add_subcommand("pause", "freeze every process of running containers (the cgroup freezer)");
    pause->add_flag("-a,--all", *pause_all, "pause every running container");
    pause->add_option("containers", *refs, "container names or IDs");
    pause->callback([&g, refs, pause_all, ids_where] {
        auto targets = refs_or_all(*refs, *pause_all, "pause", [&] {
            return ids_where([](const ContainerRecord& c) { return engine::is_running(c) && !engine::is_paused(c); });
        });
        engine::Engine eng(engine_options(g));
        g.exit_code = for_each_container(targets, [&](const std::string& r) { eng.pause(r); });
    });

    auto* unpause = app.add_subcommand("unpause", "thaw the processes of paused containers");
    unpause->add_flag("-a,--all", *pause_all, "unpause every paused container");
    unpause->add_option("containers", *refs, "container names or IDs");
    unpause->callback([&g, refs, pause_all, ids_where] {
        auto targets = refs_or_all(*refs, *pause_all, "unpause", [&] {
            return ids_where([](const ContainerRecord& c) { return engine::is_paused(c); });
        });
        engine::Engine eng(engine_options(g));
        g.exit_code = for_each_container(targets, [&](const std::string& r) { eng.unpause(r); });
    });

    auto rename_args = std::make_shared<std::pair<std::string, std::string>>();
    auto* rename = app.add_subcommand("rename", "give a container a new name: vitro rename CONTAINER NEW_NAME");
    rename->add_option("container", rename_args->first, "container name or ID")->required();
    rename->add_option("name", rename_args->second, "the new name: [a-zA-Z0-9][a-zA-Z0-9_.-]*")->required();
    rename->callback([&g, rename_args] {
        engine::Engine eng(engine_options(g));
        eng.rename(rename_args->first, rename_args->second);
    });

    struct PortFlags {
        bool all = false;
        std::string ref, private_port;
    };
    auto pf = std::make_shared<PortFlags>();
    auto* port = app.add_subcommand(
        "port", "list a running container's published ports (80/tcp -> 0.0.0.0:8080), or the host address of one: "
                "vitro port CONTAINER [PRIVATE_PORT[/PROTO]]");
    port->add_flag("-a,--all", pf->all, "every running container's, each line after its short ID and a tab");
    port->add_option("container", pf->ref, "container name or ID");
    port->add_option("private_port", pf->private_port,
                     "PRIVATE_PORT[/PROTO]: only that port's host address (tcp by default)");
    port->callback([&g, pf] {
        if (pf->all && !pf->ref.empty()) throw Error(EINVAL, "port: no arguments are needed with --all");
        if (!pf->all && pf->ref.empty()) throw Error(EINVAL, "port: name a running container, or --all");
        std::optional<std::pair<uint16_t, std::string>> wanted;
        if (!pf->private_port.empty()) wanted = parse_private_port(pf->private_port);
        engine::Engine eng(engine_options(g));
        std::vector<ContainerRecord> shown;
        if (pf->all) shown = eng.list();
        else shown.push_back(eng.get(pf->ref));
        bool found = false;
        for (const auto& c : shown) {
            // As podman's: only running containers' ports (a paused one's are not listed).
            if (c.state != ContainerState::Running || engine::is_paused(c) || !engine::is_running(c)) continue;
            // A pod's member publishes through its infra.
            ContainerRecord owner = c;
            if (auto infra = c.config.value("pod_infra", std::string()); !infra.empty())
                if (auto i = eng.state().find_container(infra)) owner = *i;
            std::string prefix = pf->all ? short_id(c.id) + "\t" : "";
            for (const auto& p : engine::ports_of(owner.config)) {
                std::string host = (p.host_ip.empty() ? "0.0.0.0" : p.host_ip) + ":" + std::to_string(p.host_port);
                if (!wanted) {
                    std::printf("%s%u/%s -> %s\n", prefix.c_str(), p.container_port, p.protocol.c_str(), host.c_str());
                } else if (p.container_port == wanted->first && p.protocol == wanted->second) {
                    std::printf("%s%s\n", prefix.c_str(), host.c_str());
                    found = true;
                }
            }
            if (wanted && !found) throw Error(ENOENT, "failed to find published port \"" + pf->private_port + "\"");
        }
    });

    auto rm_force = std::make_shared<bool>(false);
    auto* rm = app.add_subcommand("rm", "remove containers");
    rm->add_flag("-f,--force", *rm_force, "kill and remove running containers");
    rm->add_option("containers", *refs, "container names or IDs")->required();
    rm->callback([&g, refs, rm_force] {
        engine::Engine eng(engine_options(g));
        int failed = 0;
        for (const auto& r : *refs) {
            try {
                eng.remove(r, *rm_force);
                std::printf("%s\n", r.c_str());
            } catch (const Error& e) {
                std::fprintf(stderr, "Error: %s\n", e.what());
                ++failed;
            }
        }
        if (failed) g.exit_code = 1;
    });

    auto ps_all = std::make_shared<bool>(false), ps_quiet = std::make_shared<bool>(false);
    auto ps_format = std::make_shared<std::string>("table");
    auto ps_pod = std::make_shared<bool>(false);
    auto ps_no_trunc = std::make_shared<bool>(false);
    auto ps_filters = std::make_shared<std::vector<std::string>>();
    auto* ps = app.add_subcommand("ps", "list containers (running ones unless -a)");
    ps->alias("list");
    ps->add_flag("-a,--all", *ps_all, "show all containers");
    ps->add_flag("-p,--pod", *ps_pod, "show the pod of each container (POD ID and PODNAME columns)");
    ps->add_flag("-q,--quiet", *ps_quiet, "only IDs");
    ps->add_option("--format", *ps_format, "table, json, or a {{.Field}} template");
    ps->add_flag("--no-trunc", *ps_no_trunc, "full container IDs and commands");
    ps->add_option("-f,--filter", *ps_filters,
                   "KEY=VALUE: id (prefix), name (regular expression), label=KEY[=VALUE], status (created, "
                   "running, exited, paused, removing, unknown; lists stopped ones without -a), exited (code), "
                   "ancestor (image name or ID). Values of one key: any matches (label: all); different keys: all "
                   "match (repeatable)")
        ->allow_extra_args(false);
    ps->callback([&g, ps_all, ps_quiet, ps_format, ps_pod, ps_no_trunc, ps_filters] {
        PsFilters filters = parse_ps_filters(*ps_filters);  // a bad filter before anything is read
        engine::Engine eng(engine_options(g));
        json rows = json::array();
        std::vector<ContainerRecord> shown;
        // Without -a only running ones, as podman's (a paused one is not); a
        // status filter picks the states itself (docker's rule): stopped ones too.
        const bool all = *ps_all || filters.count("status") || filters.count("exited");
        for (const auto& c : eng.list())
            if ((all || (c.state == ContainerState::Running && !engine::is_paused(c))) &&
                ps_matches(filters, c, eng.images()))
                shown.push_back(c);
        auto id_of = [&](const ContainerRecord& c) { return *ps_no_trunc ? c.id : short_id(c.id); };
        if (*ps_quiet) {
            for (const auto& c : shown) std::printf("%s\n", id_of(c).c_str());
            return;
        }
        for (const auto& c : shown)
            rows.push_back({{"Id", c.id},
                            {"Names", json::array({c.name})},
                            {"Image", c.image},
                            {"Command", command_of(c)},
                            {"Created", c.created_at},
                            {"State", state_name(c)},
                            {"Status", status_text(c)},
                            {"ExitCode", c.exit_code.value_or(0)},
                            {"Pid", c.config.value("init_pid", 0)},
                            {"Ports", c.config.value("ports", json::array())},
                            {"Networks", json::array({c.config.value("network", "")})},
                            {"Pod", c.pod_id.value_or("")},
                            {"PodName", engine::pod_name(c)},
                            {"IsInfra", engine::is_infra(c)},
                            {"Labels", c.config.value("labels", json::object())}});
        if (*ps_format == "json") {
            std::printf("%s\n", rows.dump(4).c_str());
        } else if (*ps_format == "table") {
            std::printf("%-12s  %-24s  %-20s  %-14s  %-22s  %-20s  %s", "CONTAINER ID", "IMAGE", "COMMAND", "CREATED",
                        "STATUS", "PORTS", *ps_pod ? "NAMES                   " : "NAMES");
            std::printf(*ps_pod ? "  %-12s  %s\n" : "\n", "POD ID", "PODNAME");
            for (const auto& c : shown) {
                std::string cmd = command_of(c);
                if (cmd.size() > 20 && !*ps_no_trunc) cmd = cmd.substr(0, 17) + "...";
                std::printf("%-12s  %-24s  %-20s  %-14s  %-22s  %-20s  ", id_of(c).c_str(), c.image.c_str(),
                            cmd.c_str(), (human_since(c.created_at) + " ago").c_str(), status_text(c).c_str(),
                            ports_text(c).c_str());
                if (*ps_pod)
                    std::printf("%-24s  %-12s  %s\n", c.name.c_str(), short_id(c.pod_id.value_or("")).c_str(),
                                engine::pod_name(c).c_str());
                else
                    std::printf("%s\n", c.name.c_str());
            }
        } else {
            for (const auto& r : rows) std::fputs(render_format(*ps_format, r).c_str(), stdout);
        }
    });

    struct LogsFlags {
        bool follow = false, timestamps = false;
        std::string tail = "all", since, until, ref;
    };
    auto lf = std::make_shared<LogsFlags>();
    auto* logs = app.add_subcommand("logs", "print a container's output");
    logs->add_flag("-f,--follow", lf->follow, "keep printing new output until the container stops");
    logs->add_flag("-t,--timestamps", lf->timestamps, "show timestamps");
    logs->add_option("-n,--tail", lf->tail, "number of lines from the end (default all)");
    logs->add_option("--since", lf->since, "only output after this time (RFC 3339, Unix seconds, or 10m)");
    logs->add_option("--until", lf->until, "only output before this time");
    logs->add_option("container", lf->ref, "container name or ID")->required();
    logs->callback([&g, lf] {
        engine::Engine eng(engine_options(g));
        ContainerRecord c = eng.get(lf->ref);
        engine::LogReadOptions o;
        o.timestamps = lf->timestamps;
        if (lf->tail != "all") {
            uint64_t n = 0;
            if (!parse_u64(lf->tail, n)) throw Error(EINVAL, "--tail: \"" + lf->tail + "\" is not a number");
            o.tail = n;
        }
        if (!lf->since.empty()) o.since = engine::parse_time_bound(lf->since, "--since");
        if (!lf->until.empty()) o.until = engine::parse_time_bound(lf->until, "--until");
        engine::print_log(eng.log_path(c), o, lf->follow, [&] {
            auto now = eng.state().find_container(c.id);
            return now && engine::is_running(*now);
        });
    });

    struct ExecFlags {
        bool interactive = false, tty = false, detach = false;
        std::vector<std::string> env;
        std::string user, workdir;
    };
    auto ef = std::make_shared<ExecFlags>();
    auto* exec = app.add_subcommand("exec", "run a command in a running container: vitro exec [OPTIONS] CONTAINER COMMAND [ARG...]");
    exec->add_flag("-i,--interactive", ef->interactive, "keep stdin open");
    exec->add_flag("-t,--tty", ef->tty, "allocate a pseudo-terminal");
    exec->add_flag("-d,--detach", ef->detach, "run in the background");
    exec->add_option("-e,--env", ef->env, "set an environment variable");
    exec->add_option("-u,--user", ef->user, "user: NAME|UID[:GROUP|GID]");
    exec->add_option("-w,--workdir", ef->workdir, "working directory");
    for (auto* o : exec->get_options()) o->allow_extra_args(false);
    exec->prefix_command();
    exec->callback([&g, ef, exec] {
        auto rest = rest_args(exec);
        if (rest.size() < 2) throw Error(EINVAL, "exec needs a container and a command: vitro exec CONTAINER COMMAND [ARG...]");
        engine::Engine eng(engine_options(g));
        engine::ExecOptions o;
        o.req.args.assign(rest.begin() + 1, rest.end());
        o.req.env = ef->env;
        o.req.cwd = ef->workdir;
        o.req.tty = ef->tty;
        o.req.detach = ef->detach;
        o.user = ef->user;
        IgnoreInteractiveSignals ignore;
        try {
            g.exit_code = eng.exec(rest[0], o);
        } catch (const std::exception& e) {
            if (int code = engine::exec_failure_exit_code(e)) {
                std::fprintf(stderr, "Error: %s\n", e.what());
                g.exit_code = code;
                return;
            }
            throw;
        }
    });

    auto inspect_format = std::make_shared<std::string>("json");
    auto* inspect = app.add_subcommand("inspect", "show containers' or images' details as JSON");
    inspect->add_option("-f,--format", *inspect_format, "json, or a {{.Field}} template (e.g. {{.State.Pid}})");
    inspect->add_option("names", *refs, "container or image names or IDs")->required();
    inspect->callback([&g, refs, inspect_format] {
        engine::Engine eng(engine_options(g));
        std::vector<LocalImage> images;  // read on the first name that is no container
        bool images_read = false;
        json found = json::array();
        std::vector<std::string> errors;
        for (const auto& r : *refs) {
            // A container first, then an image (by name or ID), as podman's inspect looks.
            if (eng.state().find_container(r)) {
                found.push_back(inspect_json(eng, eng.get(r)));
                continue;
            }
            if (!images_read) images = local_images(eng.images()), images_read = true;
            if (const LocalImage* i = find_local_image(eng.images(), images, r))
                found.push_back(image_inspect_json(images, *i));
            else
                errors.push_back("no such object: \"" + r + "\"");
        }
        print_inspect(found, *inspect_format, errors);
    });

    auto* wait = app.add_subcommand("wait", "wait for containers to exit and print their exit codes");
    wait->add_option("containers", *refs, "container names or IDs")->required();
    wait->callback([&g, refs] {
        engine::Engine eng(engine_options(g));
        for (const auto& r : *refs) std::printf("%d\n", eng.wait(r));
    });

    auto* top = app.add_subcommand(
        "top", "show the processes of a container: vitro top CONTAINER [DESCRIPTORS... | ps OPTIONS]\n"
               "  descriptors (podman's): args comm etime group hgroup hpid huser nice pcpu pgid pid ppid rgroup\n"
               "  ruser state stime time tty user vsz; anything else is ps's options, and only the\n"
               "  container's rows of that ps output are shown (it needs a PID column)");
    top->prefix_command();
    top->callback([&g, top] {
        auto rest = rest_args(top);
        if (rest.empty()) throw Error(EINVAL, "top needs a container");
        engine::Engine eng(engine_options(g));
        auto pids = eng.pids(rest[0]);
        std::fputs(container_top(pids, {rest.begin() + 1, rest.end()}).c_str(), stdout);
    });

    struct StatsFlags {
        bool no_stream = false;
        std::string format = "table";
        std::vector<std::string> refs;
    };
    auto stf = std::make_shared<StatsFlags>();
    auto* stats = app.add_subcommand("stats", "show running containers' CPU, memory and process counts (live)");
    stats->add_flag("--no-stream", stf->no_stream, "print one sample and exit");
    stats->add_option("--format", stf->format, "table, json, or a {{.Field}} template");
    stats->add_option("containers", stf->refs, "container names or IDs (default: all running)");
    stats->callback([&g, stf] {
        engine::Engine eng(engine_options(g));
        std::vector<ContainerRecord> shown;
        if (stf->refs.empty()) {
            for (const auto& c : eng.list())
                if (engine::is_running(c)) shown.push_back(c);
        } else {
            for (const auto& r : stf->refs) shown.push_back(eng.get(r));
        }
        // CPU % needs two samples: the first is taken a second before each row.
        auto sample = [&] {
            std::vector<std::pair<json, std::chrono::steady_clock::time_point>> out;
            for (const auto& c : shown) out.emplace_back(eng.stats(c.id), std::chrono::steady_clock::now());
            return out;
        };
        auto prev = sample();
        const bool tty = stdout_is_tty();
        for (;;) {
            std::this_thread::sleep_for(std::chrono::seconds(1));
            auto now = sample();
            json rows = json::array();
            for (size_t i = 0; i < shown.size(); ++i) {
                const json& a = prev[i].first;
                const json& b = now[i].first;
                double secs = std::chrono::duration<double>(now[i].second - prev[i].second).count();
                double cpu_ns = b["cpu"]["usage"].value("total", 0.0) - a["cpu"]["usage"].value("total", 0.0);
                double mem = b["memory"]["usage"].value("usage", 0.0) - b["memory"].value("cache", 0.0);
                double limit = b["memory"]["usage"].value("limit", 0.0);
                if (limit <= 0 || limit > 1e18) limit = static_cast<double>(::sysconf(_SC_PHYS_PAGES)) * ::sysconf(_SC_PAGESIZE);
                rows.push_back({{"Id", shown[i].id},
                                {"Name", shown[i].name},
                                {"CPUPerc", secs > 0 ? 100.0 * cpu_ns / (secs * 1e9) : 0.0},
                                {"MemUsage", static_cast<uint64_t>(std::max(mem, 0.0))},
                                {"MemLimit", static_cast<uint64_t>(limit)},
                                {"MemPerc", limit > 0 ? 100.0 * std::max(mem, 0.0) / limit : 0.0},
                                {"PIDs", b["pids"].value("current", 0)}});
            }
            if (stf->format == "json") {
                std::printf("%s\n", rows.dump(4).c_str());
            } else if (stf->format == "table") {
                if (tty && !stf->no_stream) std::printf("\033[2J\033[H");  // redraw in place
                std::printf("%-12s  %-24s  %-8s  %-22s  %-7s  %s\n", "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT",
                            "MEM %", "PIDS");
                for (const auto& r : rows) {
                    char mem[64];
                    std::snprintf(mem, sizeof mem, "%.1fMiB / %.1fMiB", r["MemUsage"].get<double>() / (1 << 20),
                                  r["MemLimit"].get<double>() / (1 << 20));
                    std::printf("%-12s  %-24s  %6.2f%%   %-22s  %5.2f%%   %d\n", short_id(r["Id"]).c_str(),
                                r["Name"].get<std::string>().c_str(), r["CPUPerc"].get<double>(), mem,
                                r["MemPerc"].get<double>(), r["PIDs"].get<int>());
                }
            } else {
                for (const auto& r : rows) std::fputs(render_format(stf->format, r).c_str(), stdout);
            }
            std::fflush(stdout);
            if (stf->no_stream) return;
            prev = std::move(now);
        }
    });

    auto diff_ref = std::make_shared<std::string>();
    auto* diff = app.add_subcommand("diff", "list files a container added (A), changed (C) or deleted (D)");
    diff->add_option("container", *diff_ref, "container name or ID")->required();
    diff->callback([&g, diff_ref] {
        engine::Engine eng(engine_options(g));
        ContainerRecord c = eng.get(*diff_ref);
        auto layers = c.config.value("layers", std::vector<std::string>{});
        std::fputs(image::format_changes(image::diff(c.bundle + "/upper", layers)).c_str(), stdout);
    });

    // The monitor's way back from vitro-monitor (engine/monitor.hpp): hidden.
    struct ExitedFlags {
        std::vector<int> holds;
        int code = 0;
        std::string id;
    };
    auto xf = std::make_shared<ExitedFlags>();
    auto* exited = app.add_subcommand("container-exited", "(internal) record a container's exit for its monitor");
    exited->group("");
    exited->add_option("--hold", xf->holds, "an fd the monitor holds (published port)")->allow_extra_args(false);
    exited->add_option("--exit-code", xf->code, "the container's exit code")->required();
    exited->add_option("container", xf->id, "container ID")->required();
    exited->callback([&g, xf] {
        engine::MonitorArgs a;
        a.engine = engine_options(g);
        a.id = xf->id;
        for (int fd : xf->holds) a.port_holds.emplace_back(fd);
        engine::resume_monitor(std::move(a), xf->code);
    });

    // Commands that put a process in a container run from a sealed copy of
    // this binary (CVE-2019-5736): a container cannot reach it through /proc.
    for (auto* c : {run, start, exec, exited})
        c->preparse_callback([&g](size_t) { os::ensure_sealed_exe(g.argc, g.argv); });
}

}  // namespace vitro::cli
