#include "runtime/init.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "linux/clone.hpp"
#include "linux/console.hpp"
#include "linux/mounts.hpp"
#include "linux/namespaces.hpp"
#include "runtime/hooks.hpp"
#include "runtime/process.hpp"
#include "runtime/rootfs.hpp"
#include "util/error.hpp"
#include "util/file.hpp"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

namespace vitro::runtime {

namespace {

bool g_created = false;  // after `created`, errors can only go to stderr


// state_fd: the container's state directory, opened before any namespace
// change and held across pivot_root: the fifo is opened relative to it, which
// needs neither the host's paths, nor a /proc, nor a mapped uid.
[[noreturn]] void run_init(const InitArgs& a, const os::SyncSocket& sync, UniqueFd state_fd) {
    const oci::Spec& spec = *a.spec;
    static const oci::Process kNoProcess;
    const oci::Process& proc = spec.process ? *spec.process : kNoProcess;
    // Not dumpable until exec: nothing in the container may ptrace us or open our /proc files.
    ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    ::umask(0);  // device and file modes are taken exactly as given
    if (::setsid() < 0) throw_errno("setsid");
    // A session keyring of its own, as runc does: the container cannot read
    // or fill the keys of whoever started it.
    if (!a.session_keyring.empty() &&
        ::syscall(SYS_keyctl, 1 /*KEYCTL_JOIN_SESSION_KEYRING*/, a.session_keyring.c_str()) < 0 && errno != ENOSYS)
        throw_errno("join a new session keyring", a.session_keyring);
    const oci::Namespace* cg = spec.find_namespace("cgroup");

    RootfsConfig rc;
    rc.spec = &spec;
    rc.rootfs = a.rootfs;
    const oci::Namespace* mnt = spec.find_namespace("mount");
    rc.new_mount_ns = mnt && mnt->path.empty();
    rc.user_ns = spec.has_namespace("user");
    rc.new_cgroup_ns = cg && cg->path.empty();
    rc.no_pivot = a.no_pivot;
    // The cgroup namespace is rooted where the init is when it unshares: so
    // only once the runtime says the init is in its cgroup.
    rc.in_cgroup = [&] {
        sync.expect(kCgroupJoined);
        if (rc.new_cgroup_ns && ::unshare(CLONE_NEWCGROUP) < 0) throw_errno("unshare cgroup namespace");
    };
    mount_rootfs(rc);

    sync.send(kMountsReady);
    std::string state_json = sync.expect(kHooksDone).text;
    if (spec.hooks) run_hooks(spec.hooks->create_container, "createContainer", state_json);


    enter_rootfs(rc);
    finish_rootfs(rc);

    // The pty comes from the container's own devpts, after pivot_root; its
    // slave also becomes /dev/console.
    std::string tty = attach_terminal(proc, sync, a.console_fd, a.foreground_tty);
    if (!tty.empty()) mount_console(tty);

    apply_oom_score_adj(proc);
    ExecPlan plan;
    if (spec.process) plan = make_exec_plan(spec, proc, a.preserve_fds, a.seccomp);
    sync.send(kCreated);
    g_created = true;

    // Block until `start` opens the fifo for reading.
    // The write end stays open (close-on-exec) until execve: `start` reads to
    // EOF, so it returns — and runs poststart hooks — only once the process runs.
    UniqueFd w(::openat(state_fd.get(), "exec.fifo", O_WRONLY | O_CLOEXEC));
    if (!w) throw_errno("open exec fifo");
    write_all(w.get(), "0", "exec fifo");
    state_fd.reset();
    if (spec.hooks) run_hooks(spec.hooks->start_container, "startContainer", state_json);
    if (!spec.process) ::_exit(0);  // nothing to run
    exec_container_process(plan);  // closes w on success
}

void write_time_offsets(const oci::Spec& spec) {
    std::string text;
    for (const auto& [clock, off] : spec.linux->time_offsets)
        text += clock + " " + std::to_string(off.first) + " " + std::to_string(off.second) + "\n";
    if (!text.empty()) write_file("/proc/self/timens_offsets", text);
}

}  // namespace

int direct_clone_flags(const oci::Spec& spec) {
    int flags = 0;
    if (spec.linux)
        for (const auto& ns : spec.linux->namespaces) {
            if (!ns.path.empty() || ns.type == "user" || ns.type == "time") return -1;
            if (ns.type != "cgroup") flags |= os::namespace_flag(ns.type);
        }
    return flags;
}

// First steps of either entry point: nothing of the runtime's (state-dir lock,
// log file...) may stay open in the container, so keep only stdio, the
// preserved fds and our two channels; open the state directory while its path
// still resolves; wait until the runtime has placed us in the cgroup.
static UniqueFd begin_setup(const InitArgs& a, const os::SyncSocket& sync) {
    close_fds_from(3 + a.preserve_fds, {sync.fd(), a.console_fd});
    std::string state_dir = a.exec_fifo.substr(0, a.exec_fifo.find_last_of('/'));
    UniqueFd state_fd(::open(state_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!state_fd) throw_errno("open", state_dir);
    sync.expect(kGo);
    return state_fd;
}

void run_direct_init(const InitArgs& a, const os::SyncSocket& sync) {
    try {
        UniqueFd state_fd = begin_setup(a, sync);
        run_init(a, sync, std::move(state_fd));
    } catch (const std::exception& e) {
        if (!g_created) sync.fail_and_exit(e, 127);
        dprintf(2, "vitro-runtime: container init: %s\n", e.what());
        ::_exit(127);
    }
}

void run_stage1(const InitArgs& a, const os::SyncSocket& sync) {
    try {
        UniqueFd state_fd = begin_setup(a, sync);
        const oci::Spec& spec = *a.spec;
        std::vector<oci::Namespace> joins;
        int unshare_flags = 0;
        bool new_user = false;
        if (spec.linux)
            for (const auto& ns : spec.linux->namespaces) {
                if (!ns.path.empty()) joins.push_back(ns);
                else if (ns.type == "cgroup") continue;  // unshared by init, once inside its cgroup
                else if (ns.type == "user") new_user = true;
                else unshare_flags |= os::namespace_flag(ns.type);
            }
        for (const auto& ns : joins)
            if (ns.type == "user") os::join_namespace(ns.path, ns.type);
        if (new_user) {
            if (::unshare(CLONE_NEWUSER) < 0) throw_errno("unshare user namespace");
            sync.send(kMapIds);
            sync.expect(kIdsMapped);
        }
        if (new_user || spec.has_namespace("user")) {
            if (::setresgid(0, 0, 0) < 0) throw_errno("setgid 0 in user namespace");
            if (::setresuid(0, 0, 0) < 0) throw_errno("setuid 0 in user namespace");
        }
        for (const auto& ns : joins)
            if (ns.type != "user") os::join_namespace(ns.path, ns.type);
        if (unshare_flags && ::unshare(unshare_flags) < 0) throw_errno("unshare namespaces");
        if ((unshare_flags & CLONE_NEWTIME) && spec.linux) write_time_offsets(spec);

        // The init becomes the runtime's child, not stage 1's, so the runtime
        // (or the shim that adopts it) can wait for it.
        pid_t pid = os::clone_parent();
        if (pid < 0) throw_errno("clone container init");
        if (pid == 0) {
            try {
                run_init(a, sync, std::move(state_fd));
            } catch (const std::exception& e) {
                if (!g_created) sync.fail_and_exit(e, 127);
                dprintf(2, "vitro-runtime: container init: %s\n", e.what());
                ::_exit(127);
            }
        }
        sync.send(kInitPid, std::to_string(pid));
        ::_exit(0);
    } catch (const std::exception& e) {
        sync.fail_and_exit(e, 1);
    }
}

}  // namespace vitro::runtime
