// exec: a new process inside a running container. Stage 1 joins the init's
// namespaces (it is already in the container's cgroup), then forks the
// process as the runtime's child, inside the container's pid namespace.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "cgroups/cgroup.hpp"
#include "linux/clone.hpp"
#include "linux/console.hpp"
#include "linux/namespaces.hpp"
#include "linux/sync_pipe.hpp"
#include "runtime/init.hpp"
#include "runtime/internal.hpp"
#include "runtime/process.hpp"
#include "runtime/runtime.hpp"
#include "runtime/store.hpp"
#include "util/error.hpp"
#include "util/file.hpp"

namespace vitro::runtime {

namespace {

const char* const kJoinOrder[] = {"user", "mnt", "pid", "net", "ipc", "uts", "cgroup", "time"};

struct ExecChildArgs {
    pid_t init = 0;
    const oci::Process* process = nullptr;
    const oci::Spec* spec = nullptr;
    int console_fd = -1;
    bool foreground_tty = false;
    int preserve_fds = 0;
    const CompiledSeccomp* seccomp = nullptr;
};

[[noreturn]] void exec_stage2(const ExecChildArgs& a, const os::SyncSocket& sync) {
    const oci::Process& p = *a.process;
    attach_terminal(p, sync, a.console_fd, a.foreground_tty);
    apply_oom_score_adj(p);
    ExecPlan plan = make_exec_plan(*a.spec, p, a.preserve_fds, a.seccomp);
    // Success is the sync socket closing on exec (it is close-on-exec).
    exec_container_process(plan);
}

[[noreturn]] void exec_stage1(const ExecChildArgs& a, const os::SyncSocket& sync) {
    try {
        ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        close_fds_from(3 + a.preserve_fds, {sync.fd(), a.console_fd});
        sync.expect(kGo);
        // Open every namespace first: after joining the mount namespace,
        // /proc/<pid> may no longer name the same thing.
        std::vector<std::pair<UniqueFd, std::string>> fds;
        for (const char* ns : kJoinOrder) {
            unsigned long theirs = os::namespace_inode(a.init, ns), ours = os::namespace_inode(0, ns);
            if (theirs == 0 || theirs == ours) continue;
            std::string path = "/proc/" + std::to_string(a.init) + "/ns/" + ns;
            UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
            if (!fd) throw_errno("open", path);
            fds.emplace_back(std::move(fd), ns);
        }
        for (auto& [fd, ns] : fds)
            if (::setns(fd.get(), 0) < 0) throw_errno(std::string("join the container's ") + ns + " namespace");
        if (a.spec->has_namespace("user")) {
            if (::setresgid(0, 0, 0) < 0 || ::setresuid(0, 0, 0) < 0) throw_errno("become root in user namespace");
        }
        pid_t pid = os::clone_parent();
        if (pid < 0) throw_errno("clone exec process");
        if (pid == 0) {
            try {
                exec_stage2(a, sync);
            } catch (const std::exception& e) {
                sync.fail_and_exit(e, 127);
            }
        }
        sync.send(kInitPid, std::to_string(pid));
        ::_exit(0);
    } catch (const std::exception& e) {
        sync.fail_and_exit(e, 1);
    }
}

}  // namespace

oci::Process exec_base_process(const Context& ctx, const std::string& id) {
    load_state(ctx, id);  // "container X does not exist" before anything else
    oci::Spec spec = oci::parse_spec(read_file(container_dir(ctx, id) + "/config.json"));
    oci::Process p = spec.process ? *spec.process : oci::Process{};
    p.terminal = false;
    p.console_size.reset();
    return p;
}

int exec(const Context& ctx, const std::string& id, const ExecOptions& opts) {
    oci::State st = load_state(ctx, id);
    refresh_status(ctx, st);
    if (st.status != oci::Status::Running && st.status != oci::Status::Created)
        throw Error("cannot exec in container " + id + ": it is " + oci::status_name(st.status));
    oci::Spec spec = oci::parse_spec(read_file(container_dir(ctx, id) + "/config.json"));
    oci::validate_process(opts.process);
    const bool tty = opts.process.terminal;
    const bool foreground_tty = tty && opts.console_socket.empty() && !opts.detach;
    if (tty && opts.console_socket.empty() && opts.detach)
        throw Error("--tty with --detach needs --console-socket");

    UniqueFd console;
    if (tty && !opts.console_socket.empty()) console = os::connect_unix(opts.console_socket);
    auto cgroup = cgroups::load_manager(st.cgroup);
    auto [parent_sock, child_sock] = os::SyncSocket::make_pair();
    // Compiled here, before the fork: the process in the container only loads it.
    std::optional<CompiledSeccomp> seccomp;
    if (spec.linux && spec.linux->seccomp) seccomp = compile_seccomp(*spec.linux->seccomp, seccomp_cache_dir(ctx));
    ExecChildArgs args{st.pid,        &opts.process, &spec, console ? console.get() : -1, foreground_tty,
                       opts.preserve_fds, seccomp ? &*seccomp : nullptr};

    bool placed = false;
    pid_t stage1 = os::fork_into_cgroup(cgroup->v2_dir_fd(), placed);
    if (stage1 < 0) throw_errno("fork");
    if (stage1 == 0) {
        parent_sock.close();
        exec_stage1(args, child_sock);
    }
    child_sock.close();
    console.reset();
    pid_t proc = -1;
    UniqueFd master;
    try {
        if (!placed) cgroup->add_process(stage1);
        parent_sock.send(kGo);
        os::SyncMsg m = parent_sock.recv();
        os::SyncSocket::throw_if_error(m);
        proc = std::atoi(m.text.c_str());
        ::waitpid(stage1, nullptr, 0);
        stage1 = -1;
        if (foreground_tty) {
            parent_sock.expect(kConsole);
            master = parent_sock.recv_fd();
        }
        // The process either reports an error or execs (closing the socket).
        char buf[65536];
        ssize_t n;
        do {
            n = ::recv(parent_sock.fd(), buf, sizeof buf, 0);
        } while (n < 0 && errno == EINTR);
        if (n > 0) {
            os::SyncMsg err;
            std::memcpy(&err.code, buf, sizeof err.code);
            err.text.assign(buf + sizeof err.code, static_cast<size_t>(n) - sizeof err.code);
            os::SyncSocket::throw_if_error(err);
        }
    } catch (...) {
        if (stage1 > 0) {
            ::kill(stage1, SIGKILL);
            ::waitpid(stage1, nullptr, 0);
        }
        if (proc > 0) {
            ::kill(proc, SIGKILL);
            ::waitpid(proc, nullptr, 0);
        }
        throw;
    }
    if (!opts.pid_file.empty()) write_file_atomic(opts.pid_file, std::to_string(proc), 0644);
    if (opts.detach) return 0;
    return wait_foreground(proc, master ? master.get() : -1);
}

}  // namespace vitro::runtime
