// create and run: the runtime side of building a container.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>

#include "cgroups/cgroup.hpp"
#include "linux/clone.hpp"
#include "linux/console.hpp"
#include "linux/namespaces.hpp"
#include "linux/procfs.hpp"
#include "linux/sync_pipe.hpp"
#include "oci/sysctl.hpp"
#include "runtime/hooks.hpp"
#include "runtime/init.hpp"
#include "runtime/internal.hpp"
#include "runtime/runtime.hpp"
#include "runtime/seccomp.hpp"
#include "runtime/store.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace vitro::runtime {

namespace {

std::string absolute_existing(const std::string& path, const std::string& what) {
    char buf[PATH_MAX];
    if (!::realpath(path.c_str(), buf)) throw_errno(errno, what, path);
    return buf;
}

// The rootfs, absolute against the (already resolved) bundle. One reached
// through a symlink is refused, as runc refuses it: a hostile bundle's
// `rootfs -> /` would make the host's root the container's.
std::string checked_rootfs(const std::string& bundle, const std::string& root_path) {
    std::filesystem::path named(root_path);
    if (named.is_relative()) named = std::filesystem::path(bundle) / named;
    std::string lexical = named.lexically_normal().string();
    if (lexical.size() > 1 && lexical.back() == '/') lexical.pop_back();
    struct stat st;
    if (::stat(lexical.c_str(), &st) < 0 || !S_ISDIR(st.st_mode))
        throw Error(ENOENT, "root.path: rootfs " + lexical + " does not exist or is not a directory");
    std::string real = absolute_existing(lexical, "root.path");
    if (real != lexical)
        throw Error(ELOOP, "root.path: " + root_path + " goes through a symlink (" + lexical + " is " + real +
                               "); name the real directory");
    return real;
}

// validate_spec knows only that a sysctl's namespace is listed; one joined by
// path must not be the runtime's own, i.e. the host's.
void refuse_sysctls_in_host_namespaces(const oci::Spec& spec) {
    if (!spec.linux) return;
    for (const auto& [key, value] : spec.linux->sysctl) {
        const oci::Namespace* ns = spec.find_namespace(oci::sysctl_namespace(key));
        if (!ns || ns->path.empty()) continue;
        struct stat st;
        if (::stat(ns->path.c_str(), &st) < 0) throw_errno("linux.namespaces: " + ns->type, ns->path);
        if (st.st_ino == os::namespace_inode(0, os::namespace_proc_name(ns->type)))
            throw Error("linux.sysctl: " + key + " would change the host: the " + ns->type + " namespace at " +
                        ns->path + " is the host's own");
    }
}

// The creator's user name from /etc/passwd (no NSS: the binary is static).
std::string owner_name() {
    std::string uid = std::to_string(::getuid());
    try {
        for (const auto& line : split(read_file("/etc/passwd"), '\n')) {
            auto f = split(line, ':');
            if (f.size() > 2 && f[2] == uid) return f[0];
        }
    } catch (const Error&) {
        // No /etc/passwd: the numeric UID is the owner's name
    }
    return uid;
}

void write_id_map(pid_t pid, const char* file, const std::vector<oci::IdMapping>& maps) {
    std::string text;
    for (const auto& m : maps)
        text += std::to_string(m.container_id) + " " + std::to_string(m.host_id) + " " + std::to_string(m.size) + "\n";
    if (text.empty()) return;
    try {
        write_file("/proc/" + std::to_string(pid) + "/" + file, text);
    } catch (const Error& e) {
        throw e.wrap(std::string("linux.") + (file[0] == 'u' ? "uidMappings" : "gidMappings"));
    }
}

// Everything create made, undone in reverse unless dismissed.
struct CreateCleanup {
    const Context& ctx;
    std::string id;
    bool active = true;
    bool dir_made = false;
    std::unique_ptr<cgroups::Manager> cgroup;
    pid_t stage1 = -1, init = -1;
    const oci::Spec* spec = nullptr;
    bool run_poststop = false;
    std::string state_json;

    ~CreateCleanup() {
        if (!active) return;
        for (pid_t p : {init, stage1})
            if (p > 0) {
                ::kill(p, SIGKILL);
                ::waitpid(p, nullptr, 0);
            }
        if (cgroup) {
            try {
                cgroup->destroy();
            } catch (const std::exception& e) {
                log::warn(std::string("cleanup: ") + e.what());
            }
        }
        if (run_poststop && spec && spec->hooks) run_hooks(spec->hooks->poststop, "poststop", state_json, true);
        if (dir_made) {
            std::error_code ec;
            std::filesystem::remove_all(container_dir(ctx, id), ec);
        }
    }
};

// The device cgroup rules the container gets: the spec's own, then (as runc
// and crun do) access to the default devices the runtime itself creates and
// to every device listed in linux.devices; mknod stays allowed so /dev can be built.
std::optional<oci::Resources> effective_resources(const oci::Spec& spec) {
    if (!spec.linux || !spec.linux->resources) return std::nullopt;
    oci::Resources r = *spec.linux->resources;
    auto allow = [&](const char* type, std::optional<int64_t> major, std::optional<int64_t> minor, const char* access) {
        oci::DeviceRule d;
        d.allow = true;
        d.type = type;
        d.major = major;
        d.minor = minor;
        d.access = access;
        r.devices.push_back(d);
    };
    if (r.devices.empty()) return r;
    allow("c", std::nullopt, std::nullopt, "m");
    allow("b", std::nullopt, std::nullopt, "m");
    for (auto [maj, min] : {std::pair{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 1}, {5, 2}, {10, 200}})
        allow("c", maj, min, "rwm");
    allow("c", 136, std::nullopt, "rwm");  // /dev/pts/*
    for (const auto& dev : spec.linux->devices)
        if (dev.type == "c" || dev.type == "b" || dev.type == "u")
            allow(dev.type == "b" ? "b" : "c", dev.major, dev.minor, "rwm");
    return r;
}

}  // namespace

CreateResult create_container(const Context& ctx, const std::string& id, const CreateOptions& opts) {
    validate_id(id);
    std::string bundle = absolute_existing(opts.bundle, "bundle");
    oci::Spec spec = oci::load_bundle_spec(bundle);
    std::string rootfs = checked_rootfs(bundle, spec.root_path);
    refuse_sysctls_in_host_namespaces(spec);
    // Checked and compiled now, before anything is made; the init only loads it.
    std::optional<CompiledSeccomp> seccomp;
    if (spec.linux && spec.linux->seccomp) seccomp = compile_seccomp(*spec.linux->seccomp, seccomp_cache_dir(ctx));
    const bool tty = spec.process && spec.process->terminal;
    const bool foreground_tty = tty && opts.console_socket.empty() && opts.foreground;
    if (tty && opts.console_socket.empty() && !opts.foreground)
        throw Error("process.terminal is true: --console-socket is required when the runtime detaches");

    make_dirs(ctx.root, 0700);
    std::string dir = container_dir(ctx, id);
    if (::mkdir(dir.c_str(), 0711) < 0) {
        if (errno == EEXIST) throw Error(EEXIST, "container " + id + " already exists");
        throw_errno("mkdir", dir);
    }
    CreateCleanup cleanup{ctx, id};
    cleanup.dir_made = true;
    cleanup.spec = &spec;
    ContainerLock lock(ctx, id);
    write_file_atomic(dir + "/config.json", read_file(bundle + "/config.json"), 0600);
    std::string fifo = exec_fifo_path(ctx, id);
    if (::mkfifo(fifo.c_str(), 0622) < 0) throw_errno("mkfifo", fifo);
    // Writable by the init whatever uid it has in its user namespace (umask aside).
    if (::chmod(fifo.c_str(), 0622) < 0) throw_errno("chmod", fifo);

    std::string cgroups_path = spec.linux ? spec.linux->cgroups_path : "";
    cleanup.cgroup = cgroups::make_manager(cgroups_path, id);
    cleanup.cgroup->create(effective_resources(spec));

    UniqueFd console;
    if (tty && !opts.console_socket.empty()) console = os::connect_unix(opts.console_socket);

    auto [parent_sock, child_sock] = os::SyncSocket::make_pair();
    InitArgs args;
    args.spec = &spec;
    args.rootfs = rootfs;
    args.exec_fifo = fifo;
    args.console_fd = console ? console.get() : -1;
    args.preserve_fds = opts.preserve_fds;
    args.no_pivot = opts.no_pivot;
    if (!opts.no_new_keyring) args.session_keyring = "_ses." + id;
    args.foreground_tty = foreground_tty;
    args.seccomp = seccomp ? &*seccomp : nullptr;

    // Fast path: clone the init straight into its namespaces; otherwise a
    // stage 1 process orders user namespace, joins and unshares first.
    const int direct = direct_clone_flags(spec);
    bool placed = false;
    pid_t child = os::fork_into_cgroup(cleanup.cgroup->v2_dir_fd(), placed, direct > 0 ? direct : 0);
    if (child < 0) throw_errno("clone container process");
    if (child == 0) {
        parent_sock.close();
        if (direct >= 0) run_direct_init(args, child_sock);
        run_stage1(args, child_sock);
    }
    child_sock.close();
    console.reset();
    pid_t init = -1;
    bool mounts_ready = false;
    if (direct >= 0) {
        init = child;
        cleanup.init = init;
        // Go first, then migrate: the first cgroup.procs write of a burst can
        // sleep for an RCU grace period; the init builds its mounts meanwhile
        // and waits for kCgroupJoined only where it must be in the cgroup.
        parent_sock.send(kGo);
        if (!placed) cleanup.cgroup->add_process(init);
        parent_sock.send(kCgroupJoined);
    } else {
        cleanup.stage1 = child;
        if (!placed) cleanup.cgroup->add_process(child);
        parent_sock.send(kGo);
        // The init may report kMountsReady before stage 1 reports its pid:
        // both write to the same socket.
        while (init < 0) {
            os::SyncMsg m = parent_sock.recv();
            os::SyncSocket::throw_if_error(m);
            if (m.code == kMountsReady) {
                mounts_ready = true;
            } else if (m.code == kMapIds) {
                write_id_map(child, "uid_map", spec.linux->uid_mappings);
                write_id_map(child, "gid_map", spec.linux->gid_mappings);
                parent_sock.send(kIdsMapped);
            } else if (m.code == kInitPid) {
                init = std::atoi(m.text.c_str());
            } else {
                throw Error("container setup: unexpected message " + std::to_string(m.code));
            }
        }
        cleanup.init = init;
        ::waitpid(child, nullptr, 0);
        cleanup.stage1 = -1;
        parent_sock.send(kCgroupJoined);  // stage 1 was placed before it forked the init
    }

    oci::State state;
    state.id = id;
    state.status = oci::Status::Creating;
    state.pid = init;
    state.bundle = bundle;
    state.annotations = spec.annotations;
    state.rootfs = rootfs;
    state.created = rfc3339_now();
    state.owner = owner_name();
    state.cgroup = cleanup.cgroup->to_json();
    state.use_terminal = tty;
    if (auto ps = os::read_proc_stat(init)) state.init_start_time = ps->start_time;

    if (!mounts_ready) parent_sock.expect(kMountsReady);
    save_state(ctx, state);
    // The hooks of the create phase see the container as "created": its
    // namespaces and init exist (the runtime-tools suite checks for this).
    oci::State hook_state = state;
    hook_state.status = oci::Status::Created;
    std::string state_json = hook_state.to_spec_json().dump();
    cleanup.state_json = state_json;
    cleanup.run_poststop = true;
    if (spec.hooks) {
        run_hooks(spec.hooks->create_runtime, "createRuntime", state_json);
    }
    parent_sock.send(kHooksDone, state_json);
    CreateResult result;
    if (foreground_tty) {
        parent_sock.expect(kConsole);
        result.console_master = parent_sock.recv_fd();
    }
    parent_sock.expect(kCreated);

    state.status = oci::Status::Created;
    save_state(ctx, state);
    if (!opts.pid_file.empty()) write_file_atomic(opts.pid_file, std::to_string(init), 0644);
    cleanup.active = false;
    result.pid = init;
    return result;
}

pid_t create(const Context& ctx, const std::string& id, const CreateOptions& opts) {
    return create_container(ctx, id, opts).pid;
}

namespace {
pid_t g_forward_to = -1;
void forward_signal(int sig) {
    if (g_forward_to > 0) ::kill(g_forward_to, sig);
}
}  // namespace

int wait_foreground(pid_t pid, int console_master) {
    g_forward_to = pid;
    struct sigaction sa {};
    sa.sa_handler = forward_signal;
    sa.sa_flags = SA_RESTART;
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGPIPE}) ::sigaction(sig, &sa, nullptr);
    if (console_master >= 0) {
        UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
        os::proxy_terminal(console_master, pidfd.get());
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) throw_errno("wait for container process");
    }
    g_forward_to = -1;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 1;
}

int run(const Context& ctx, const std::string& id, const CreateOptions& opts_in, bool detach) {
    CreateOptions opts = opts_in;
    opts.foreground = !detach;
    CreateResult res = create_container(ctx, id, opts);
    try {
        start(ctx, id);
    } catch (...) {
        try {
            remove(ctx, id, true);
        } catch (...) {
            // The start error is the one to report (rethrown below)
        }
        throw;
    }
    if (detach) return 0;
    int code = wait_foreground(res.pid, res.console_master.get());
    remove(ctx, id, true);
    return code;
}

}  // namespace vitro::runtime
