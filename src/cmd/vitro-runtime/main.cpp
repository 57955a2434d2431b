// vitro-runtime: an OCI runtime with runc's command line. Argument parsing
// and exit codes only; the work is in runtime/.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>

#include "cgroups/cgroup.hpp"
#include "linux/capabilities.hpp"
#include "linux/sealed_exe.hpp"
#include "oci/default_spec.hpp"
#include "runtime/runtime.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"
#include "util/subprocess.hpp"

using namespace vitro;
using nlohmann::json;

namespace {

struct Globals {
    std::string root = "/run/vitro-runtime";
    std::string log_path, log_format = "text", rootless = "auto", criu;
    bool debug = false, systemd_cgroup = false;
};

std::chrono::milliseconds parse_duration(const std::string& s) {
    size_t i = 0;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])))) ++i;
    uint64_t v = 0;
    if (!parse_u64(s.substr(0, i), v)) throw Error("--interval: invalid duration '" + s + "'");
    std::string unit = s.substr(i);
    if (unit == "ms") return std::chrono::milliseconds(v);
    if (unit == "s" || unit.empty()) return std::chrono::seconds(v);
    if (unit == "m") return std::chrono::minutes(v);
    throw Error("--interval: invalid duration '" + s + "' (use e.g. 500ms, 5s, 1m)");
}

void print_table(const std::vector<oci::State>& states) {
    std::printf("%-12s %-10s %-10s %-40s %-30s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER");
    for (const auto& s : states)
        std::printf("%-12s %-10d %-10s %-40s %-30s %s\n", s.id.c_str(),
                    s.status == oci::Status::Stopped ? 0 : s.pid, oci::status_name(s.status), s.bundle.c_str(),
                    s.created.c_str(), s.owner.c_str());
}

// `ps` passthrough: run ps(1) and keep the header and the container's rows.
int ps_table(const std::vector<pid_t>& pids, std::vector<std::string> ps_args) {
    if (ps_args.empty()) ps_args = {"-ef"};
    std::vector<std::string> argv = {"ps"};
    argv.insert(argv.end(), ps_args.begin(), ps_args.end());
    int pipefd[2];
    if (::pipe(pipefd) < 0) throw_errno("pipe");
    pid_t child = ::fork();
    if (child == 0) {
        ::dup2(pipefd[1], 1);
        ::close(pipefd[0]);
        std::vector<char*> a;
        for (auto& s : argv) a.push_back(s.data());
        a.push_back(nullptr);
        ::execvp("ps", a.data());
        ::_exit(127);
    }
    ::close(pipefd[1]);
    std::string out = read_fd(pipefd[0]);
    ::close(pipefd[0]);
    int st = 0;
    ::waitpid(child, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) throw Error("ps " + join(ps_args, " ") + " failed");
    auto lines = split(out, '\n');
    if (lines.empty()) return 0;
    auto header = split(lines[0], ' ');
    int pid_col = -1, col = 0;
    for (auto& h : header) {
        if (h.empty()) continue;
        if (h == "PID") pid_col = col;
        ++col;
    }
    if (pid_col < 0) throw Error("ps output has no PID column");
    std::printf("%s\n", lines[0].c_str());
    for (size_t i = 1; i < lines.size(); ++i) {
        std::vector<std::string> f;
        for (auto& x : split(lines[i], ' '))
            if (!x.empty()) f.push_back(x);
        if (static_cast<int>(f.size()) <= pid_col) continue;
        for (pid_t p : pids)
            if (f[static_cast<size_t>(pid_col)] == std::to_string(p)) std::printf("%s\n", lines[i].c_str());
    }
    return 0;
}

oci::Resources::Memory& mem_of(oci::Resources& r) { return r.memory ? *r.memory : r.memory.emplace(); }
oci::Resources::Cpu& cpu_of(oci::Resources& r) { return r.cpu ? *r.cpu : r.cpu.emplace(); }
oci::Resources::BlockIO& blkio_of(oci::Resources& r) { return r.block_io ? *r.block_io : r.block_io.emplace(); }

// exec's process: --process FILE, or the container's own settings with flag overrides.
oci::Process exec_process_from_flags(const runtime::Context& ctx, const std::string& id,
                                     const std::string& process_file, const std::vector<std::string>& args,
                                     bool tty, const std::string& cwd, const std::vector<std::string>& env,
                                     const std::string& user, const std::vector<std::string>& caps, bool nnp,
                                     const std::string& apparmor) {
    if (!process_file.empty()) {
        json j;
        try {
            j = json::parse(read_file(process_file));
        } catch (const json::exception& e) {
            throw Error(process_file + ": malformed JSON: " + e.what());
        }
        try {
            return oci::parse_process(j, "process");
        } catch (const Error& e) {
            throw e.wrap(process_file);
        }
    }
    if (args.empty()) throw Error("exec: no command given (args or --process FILE)");
    oci::Process p = runtime::exec_base_process(ctx, id);
    p.args = args;
    p.terminal = tty;
    if (!cwd.empty()) p.cwd = cwd;
    for (const auto& e : env) {
        auto key = e.substr(0, e.find('='));
        bool replaced = false;
        for (auto& old : p.env)
            if (old.substr(0, old.find('=')) == key) {
                old = e;
                replaced = true;
            }
        if (!replaced) p.env.push_back(e);
    }
    if (!user.empty()) {
        auto parts = split(user, ':');
        uint64_t uid = 0, gid = 0;
        if (!parse_u64(parts[0], uid) || (parts.size() > 1 && !parse_u64(parts[1], gid)))
            throw Error("--user: expected UID[:GID] as numbers, got '" + user + "'");
        p.user.uid = static_cast<uint32_t>(uid);
        p.user.gid = static_cast<uint32_t>(parts.size() > 1 ? gid : 0);
        p.user.additional_gids.clear();
    }
    if (!caps.empty()) {
        if (!p.capabilities) p.capabilities = oci::Capabilities{};
        for (const auto& c : caps) {
            if (!os::capability_from_name(c)) throw Error("--cap: unknown capability '" + c + "'");
            for (auto* set : {&p.capabilities->bounding, &p.capabilities->effective, &p.capabilities->permitted,
                              &p.capabilities->inheritable, &p.capabilities->ambient})
                set->push_back(c);
        }
    }
    if (nnp) p.no_new_privileges = true;
    if (!apparmor.empty()) p.apparmor_profile = apparmor;
    return p;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"vitro-runtime: an OCI container runtime (runc-compatible command line)", "vitro-runtime"};
    app.require_subcommand(1);
    app.set_version_flag("-v,--version",
                         std::string("vitro-runtime version ") + VITRO_VERSION + "\nspec: 1.0.2\n");
    Globals g;
    app.add_option("--root", g.root, "directory for container state (tmpfs)")->default_str(g.root);
    app.add_option("--log", g.log_path, "log file (default: stderr)");
    app.add_option("--log-format", g.log_format, "log format: text or json")->check(CLI::IsMember({"text", "json"}));
    app.add_flag("--debug", g.debug, "log debug messages");
    app.add_flag("--systemd-cgroup", g.systemd_cgroup, "use systemd for cgroups (not supported yet)");
    app.add_option("--rootless", g.rootless, "rootless mode: true, false or auto (accepted for compatibility)");
    app.add_option("--criu", g.criu, "path to criu (checkpoint/restore is not supported)");

    runtime::CreateOptions copts;
    std::string id;
    auto add_create_flags = [&](CLI::App* c) {
        c->add_option("-b,--bundle", copts.bundle, "path to the bundle directory (default: current directory)");
        c->add_option("--pid-file", copts.pid_file, "write the container init's pid to this file");
        c->add_option("--console-socket", copts.console_socket,
                      "unix socket that receives the pty master when process.terminal is set");
        c->add_flag("--no-pivot", copts.no_pivot, "move the rootfs to / and chroot instead of pivot_root");
        c->add_flag("--no-new-keyring", copts.no_new_keyring, "do not create a new session keyring");
        c->add_option("--preserve-fds", copts.preserve_fds, "pass this many fds beyond stdio (3..3+N-1)");
        c->add_option("container-id", id, "container id")->required();
    };
    auto* create_cmd = app.add_subcommand("create", "create a container (its process waits for `start`)");
    add_create_flags(create_cmd);
    auto* run_cmd = app.add_subcommand("run", "create and start a container, and wait for it unless --detach");
    add_create_flags(run_cmd);
    bool detach = false, keep = false;
    run_cmd->add_flag("-d,--detach", detach, "detach from the container's process");
    run_cmd->add_flag("--keep", keep, "(accepted for compatibility)");

    auto* start_cmd = app.add_subcommand("start", "start the process of a created container");
    start_cmd->add_option("container-id", id, "container id")->required();
    auto* state_cmd = app.add_subcommand("state", "print a container's state as JSON");
    state_cmd->add_option("container-id", id, "container id")->required();

    std::string format = "table";
    bool quiet = false;
    auto* list_cmd = app.add_subcommand("list", "list containers");
    list_cmd->add_option("-f,--format", format, "table or json")->check(CLI::IsMember({"table", "json"}));
    list_cmd->add_flag("-q,--quiet", quiet, "print ids only");

    std::string signal = "SIGTERM";
    bool all = false;
    auto* kill_cmd = app.add_subcommand("kill", "send a signal (default SIGTERM) to a container's init");
    kill_cmd->add_option("container-id", id, "container id")->required();
    kill_cmd->add_option("signal", signal, "signal name or number");
    kill_cmd->add_flag("-a,--all", all, "signal every process in the container");

    bool force = false;
    auto* delete_cmd = app.add_subcommand("delete", "delete a stopped container (or any, with --force)");
    delete_cmd->add_option("container-id", id, "container id")->required();
    delete_cmd->add_flag("-f,--force", force, "kill the container first if it is running");

    auto* pause_cmd = app.add_subcommand("pause", "freeze every process of a container");
    pause_cmd->add_option("container-id", id, "container id")->required();
    auto* resume_cmd = app.add_subcommand("resume", "thaw a paused container");
    resume_cmd->add_option("container-id", id, "container id")->required();

    auto* ps_cmd = app.add_subcommand("ps", "list a container's processes (ps options may follow the id)");
    ps_cmd->add_option("-f,--format", format, "table or json")->check(CLI::IsMember({"table", "json"}));
    ps_cmd->prefix_command();

    runtime::ExecOptions eopts;
    std::string process_file, exec_cwd, exec_user, apparmor, process_label;
    std::vector<std::string> exec_env, exec_caps, exec_extra_groups;
    bool exec_tty = false, exec_nnp = false;
    auto* exec_cmd = app.add_subcommand("exec", "run a new process inside a container: exec [flags] ID CMD [ARG...]");
    exec_cmd->add_option("-p,--process", process_file, "process.json describing the process");
    exec_cmd->add_flag("-t,--tty", exec_tty, "allocate a pseudo-terminal");
    exec_cmd->add_flag("-d,--detach", eopts.detach, "do not wait for the process");
    exec_cmd->add_option("--pid-file", eopts.pid_file, "write the process's pid to this file");
    exec_cmd->add_option("--console-socket", eopts.console_socket, "unix socket that receives the pty master");
    exec_cmd->add_option("--cwd", exec_cwd, "working directory in the container");
    exec_cmd->add_option("-e,--env", exec_env, "set an environment variable (KEY=VALUE)");
    exec_cmd->add_option("-u,--user", exec_user, "UID[:GID]");
    exec_cmd->add_option("--additional-gids", exec_extra_groups, "(accepted for compatibility)");
    exec_cmd->add_option("-c,--cap", exec_caps, "add a capability (CAP_NAME)");
    exec_cmd->add_flag("--no-new-privs", exec_nnp, "set no_new_privs");
    exec_cmd->add_option("--apparmor", apparmor, "AppArmor profile (not supported on this host)");
    exec_cmd->add_option("--process-label", process_label, "SELinux label (not supported)");
    exec_cmd->add_option("--preserve-fds", eopts.preserve_fds, "pass this many fds beyond stdio");
    exec_cmd->prefix_command();

    std::string resources_file, mem, mem_res, mem_swap, cpuset_cpus, cpuset_mems;
    std::optional<uint64_t> cpu_shares, cpu_period, cpu_rt_period;
    std::optional<int64_t> cpu_quota, cpu_rt_runtime, pids_limit;
    std::optional<uint16_t> blkio_weight;
    auto* update_cmd = app.add_subcommand("update", "change a running container's resource limits");
    update_cmd->add_option("container-id", id, "container id")->required();
    update_cmd->add_option("-r,--resources", resources_file, "linux.resources JSON file, or - for stdin");
    update_cmd->add_option("--memory", mem, "memory limit (bytes, or with k/m/g)");
    update_cmd->add_option("--memory-reservation", mem_res, "memory soft limit");
    update_cmd->add_option("--memory-swap", mem_swap, "memory+swap limit");
    update_cmd->add_option("--cpu-shares", cpu_shares, "CPU shares (relative weight)");
    update_cmd->add_option("--cpu-period", cpu_period, "CFS period (µs)");
    update_cmd->add_option("--cpu-quota", cpu_quota, "CFS quota (µs)");
    update_cmd->add_option("--cpu-rt-period", cpu_rt_period, "realtime period (µs)");
    update_cmd->add_option("--cpu-rt-runtime", cpu_rt_runtime, "realtime runtime (µs)");
    update_cmd->add_option("--cpuset-cpus", cpuset_cpus, "CPUs allowed (e.g. 0-1)");
    update_cmd->add_option("--cpuset-mems", cpuset_mems, "memory nodes allowed");
    update_cmd->add_option("--pids-limit", pids_limit, "maximum number of processes");
    update_cmd->add_option("--blkio-weight", blkio_weight, "block IO weight (10-1000)");

    bool stats_once = false;
    std::string interval = "5s";
    auto* events_cmd = app.add_subcommand("events", "print container stats events as JSON lines");
    events_cmd->add_option("container-id", id, "container id")->required();
    events_cmd->add_flag("--stats", stats_once, "print one stats event and exit");
    events_cmd->add_option("--interval", interval, "time between stats events (default 5s)");

    std::string spec_bundle;
    bool spec_rootless = false;
    auto* spec_cmd = app.add_subcommand("spec", "write a default config.json into the bundle directory");
    spec_cmd->add_option("-b,--bundle", spec_bundle, "bundle directory (default: current directory)");
    spec_cmd->add_flag("--rootless", spec_rootless, "a config for a rootless container");

    auto* features_cmd = app.add_subcommand("features", "print what this runtime supports (OCI features JSON)");


    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }

    log::init(g.log_path, g.log_format == "json", g.debug);
    runtime::Context ctx;
    ctx.root = g.root;
    try {
        if (g.systemd_cgroup)
            throw Error("--systemd-cgroup is not supported yet: use the default cgroupfs driver");
        // Commands that enter a container run from a sealed copy of this binary.
        if (create_cmd->parsed() || run_cmd->parsed() || exec_cmd->parsed()) os::ensure_sealed_exe(argc, argv);

        if (create_cmd->parsed()) {
            runtime::create(ctx, id, copts);
        } else if (run_cmd->parsed()) {
            return runtime::run(ctx, id, copts, detach);
        } else if (start_cmd->parsed()) {
            runtime::start(ctx, id);
        } else if (state_cmd->parsed()) {
            std::cout << runtime::state(ctx, id).to_runc_json().dump(2) << "\n";
        } else if (list_cmd->parsed()) {
            auto states = runtime::list(ctx);
            if (quiet) {
                for (const auto& s : states) std::cout << s.id << "\n";
            } else if (format == "json") {
                json arr = json::array();
                for (const auto& s : states) arr.push_back(s.to_runc_json());
                std::cout << arr.dump() << "\n";
            } else {
                print_table(states);
            }
        } else if (kill_cmd->parsed()) {
            runtime::kill(ctx, id, runtime::parse_signal(signal), all);
        } else if (delete_cmd->parsed()) {
            runtime::remove(ctx, id, force);
        } else if (pause_cmd->parsed()) {
            runtime::pause(ctx, id);
        } else if (resume_cmd->parsed()) {
            runtime::resume(ctx, id);
        } else if (ps_cmd->parsed()) {
            auto rest = ps_cmd->remaining();
            if (rest.empty()) throw Error("ps: container id required");
            id = rest[0];
            auto pids = runtime::pids(ctx, id);
            if (format == "json") {
                std::cout << json(pids).dump() << "\n";
            } else {
                return ps_table(pids, std::vector<std::string>(rest.begin() + 1, rest.end()));
            }
        } else if (exec_cmd->parsed()) {
            auto rest = exec_cmd->remaining();
            if (!rest.empty() && rest[0] == "--") rest.erase(rest.begin());
            if (rest.empty()) throw Error("exec: container id required");
            id = rest[0];
            runtime::validate_id(id);
            std::vector<std::string> cmd(rest.begin() + 1, rest.end());
            if (!cmd.empty() && cmd[0] == "--") cmd.erase(cmd.begin());
            eopts.process = exec_process_from_flags(ctx, id, process_file, cmd, exec_tty, exec_cwd, exec_env,
                                                    exec_user, exec_caps, exec_nnp, apparmor);
            if (!process_file.empty() && exec_tty) eopts.process.terminal = true;
            return runtime::exec(ctx, id, eopts);
        } else if (update_cmd->parsed()) {
            oci::Resources r;
            if (!resources_file.empty()) {
                std::string text = resources_file == "-" ? read_fd(0) : read_file(resources_file);
                json j;
                try {
                    j = json::parse(text);
                } catch (const json::exception& e) {
                    throw Error((resources_file == "-" ? std::string("stdin") : resources_file) +
                                ": malformed JSON: " + e.what());
                }
                r = oci::parse_resources(j, resources_file == "-" ? "stdin" : resources_file);
            }
            if (!mem.empty()) mem_of(r).limit = static_cast<int64_t>(parse_size(mem, "--memory"));
            if (!mem_res.empty())
                mem_of(r).reservation = static_cast<int64_t>(parse_size(mem_res, "--memory-reservation"));
            if (!mem_swap.empty())
                mem_of(r).swap = static_cast<int64_t>(parse_size(mem_swap, "--memory-swap"));
            if (cpu_shares) cpu_of(r).shares = cpu_shares;
            if (cpu_period) cpu_of(r).period = cpu_period;
            if (cpu_quota) cpu_of(r).quota = cpu_quota;
            if (cpu_rt_period) cpu_of(r).realtime_period = cpu_rt_period;
            if (cpu_rt_runtime) cpu_of(r).realtime_runtime = cpu_rt_runtime;
            if (!cpuset_cpus.empty()) cpu_of(r).cpus = cpuset_cpus;
            if (!cpuset_mems.empty()) cpu_of(r).mems = cpuset_mems;
            if (pids_limit) r.pids = oci::Resources::Pids{*pids_limit};
            if (blkio_weight) blkio_of(r).weight = blkio_weight;
            runtime::update(ctx, id, r);
        } else if (events_cmd->parsed()) {
            auto every = parse_duration(interval);
            for (;;) {
                json ev = {{"type", "stats"}, {"id", id}, {"data", runtime::stats(ctx, id)}};
                std::cout << ev.dump() << std::endl;
                if (stats_once) break;
                std::this_thread::sleep_for(every);
            }
        } else if (spec_cmd->parsed()) {
            std::string dir = spec_bundle.empty() ? "." : spec_bundle;
            std::string path = dir + "/config.json";
            if (path_exists(path)) throw Error(EEXIST, path + " already exists: remove it first");
            write_file_atomic(path, oci::default_spec(spec_rootless).dump(4) + "\n", 0644);
        } else if (features_cmd->parsed()) {
            std::cout << oci::features_json().dump(4) << "\n";
        }
    } catch (const std::exception& e) {
        log::error(e.what());
        return 1;
    }
    return 0;
}
