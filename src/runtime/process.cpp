#include "runtime/process.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "linux/capabilities.hpp"
#include "linux/console.hpp"
#include "linux/rlimits.hpp"
#include "runtime/init.hpp"
#include "runtime/seccomp.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace vitro::runtime {

namespace {
constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

std::string env_path(const oci::Process& p) {
    for (const auto& e : p.env)
        if (e.rfind("PATH=", 0) == 0) return e.substr(5);
    return kDefaultPath;
}

bool is_executable_file(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
}

void apply_scheduler(const oci::Scheduler& s) {
    static const std::pair<const char*, int> policies[] = {
        {"SCHED_OTHER", SCHED_OTHER}, {"SCHED_FIFO", SCHED_FIFO}, {"SCHED_RR", SCHED_RR},
        {"SCHED_BATCH", SCHED_BATCH}, {"SCHED_IDLE", SCHED_IDLE}, {"SCHED_DEADLINE", 6},
    };
    int policy = -1;
    for (auto& [n, v] : policies)
        if (s.policy == n) policy = v;
    if (policy < 0) throw Error("process.scheduler.policy: unsupported policy '" + s.policy + "'");
    struct {
        uint32_t size;
        uint32_t policy;
        uint64_t flags;
        int32_t nice;
        uint32_t priority;
        uint64_t runtime, deadline, period;
    } attr{};
    attr.size = sizeof attr;
    attr.policy = static_cast<uint32_t>(policy);
    attr.nice = s.nice.value_or(0);
    attr.priority = static_cast<uint32_t>(s.priority.value_or(0));
    attr.runtime = s.runtime.value_or(0);
    attr.deadline = s.deadline.value_or(0);
    attr.period = s.period.value_or(0);
    for (const auto& f : s.flags) {
        if (f == "SCHED_FLAG_RESET_ON_FORK") attr.flags |= 0x01;
        else if (f == "SCHED_FLAG_RECLAIM") attr.flags |= 0x02;
        else if (f == "SCHED_FLAG_DL_OVERRUN") attr.flags |= 0x04;
        else if (f == "SCHED_FLAG_KEEP_POLICY") attr.flags |= 0x08;
        else if (f == "SCHED_FLAG_KEEP_PARAMS") attr.flags |= 0x10;
        else if (f == "SCHED_FLAG_UTIL_CLAMP_MIN") attr.flags |= 0x20;
        else if (f == "SCHED_FLAG_UTIL_CLAMP_MAX") attr.flags |= 0x40;
        else throw Error("process.scheduler.flags: unknown flag '" + f + "'");
    }
    if (::syscall(SYS_sched_setattr, 0, &attr, 0) < 0) throw_errno("process.scheduler: sched_setattr");
}

void apply_io_priority(const oci::IoPriority& io) {
    int klass = io.klass == "IOPRIO_CLASS_RT" ? 1 : io.klass == "IOPRIO_CLASS_BE" ? 2 : 3;
    int prio = (klass << 13) | (io.priority & 0xff);
    if (::syscall(SYS_ioprio_set, 1 /*IOPRIO_WHO_PROCESS*/, 0, prio) < 0) throw_errno("process.ioPriority: ioprio_set");
}

void apply_personality(const oci::Personality& p) {
    unsigned long persona = p.domain == "LINUX32" ? PER_LINUX32 : PER_LINUX;
    if (::personality(persona) < 0) throw_errno("linux.personality");
}

void set_identity(const oci::Process& p, bool user_ns) {
    const auto& u = p.user;
    std::vector<gid_t> groups(u.additional_gids.begin(), u.additional_gids.end());
    // In a user namespace whose setgroups is "deny", setgroups(0) fails: skip it then.
    if (::setgroups(groups.size(), groups.data()) < 0) {
        bool denied = user_ns && errno == EPERM && groups.empty();
        if (!denied) throw_errno("process.user: setgroups");
    }
    if (::setresgid(u.gid, u.gid, u.gid) < 0) throw_errno("process.user: setgid", std::to_string(u.gid));
    if (::setresuid(u.uid, u.uid, u.uid) < 0) throw_errno("process.user: setuid", std::to_string(u.uid));
}

std::vector<char*> cstrings(std::vector<std::string>& v) {
    std::vector<char*> out;
    for (auto& s : v) out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}
}  // namespace

std::string find_executable(const oci::Process& p) {
    const std::string& name = p.args.at(0);
    if (name.find('/') != std::string::npos) {
        std::string path = name[0] == '/' ? name : p.cwd + "/" + name;
        if (!is_executable_file(path)) {
            struct stat st;
            int err = ::stat(path.c_str(), &st) < 0 ? errno : EACCES;
            throw Error(err, "exec: \"" + name + "\": " + (err == ENOENT ? "no such file or directory" : "permission denied"));
        }
        return name;
    }
    for (const auto& dir : split(env_path(p), ':')) {
        std::string cand = (dir.empty() ? "." : dir) + "/" + name;
        if (is_executable_file(cand)) return cand;
    }
    throw Error(ENOENT, "exec: \"" + name + "\": executable file not found in $PATH");
}

ExecPlan make_exec_plan(const oci::Spec& spec, const oci::Process& p, int preserve_fds,
                        const CompiledSeccomp* compiled) {
    ExecPlan plan;
    plan.process = &p;
    plan.seccomp = spec.linux && spec.linux->seccomp ? &*spec.linux->seccomp : nullptr;
    plan.compiled = compiled;
    plan.personality = spec.linux && spec.linux->personality ? &*spec.linux->personality : nullptr;
    plan.preserve_fds = preserve_fds;
    plan.user_ns = spec.has_namespace("user");
    plan.executable = find_executable(p);
    return plan;
}

std::string attach_terminal(const oci::Process& p, const os::SyncSocket& sync, int console_fd, bool foreground) {
    std::string slave_name;
    if (p.terminal) {
        os::Pty pty = os::open_pty();
        if (p.console_size) os::set_window_size(pty.master.get(), p.console_size->first, p.console_size->second);
        if (foreground) {
            sync.send(kConsole);
            sync.send_fd(pty.master.get());
        } else {
            os::send_fd_over(console_fd, pty.master.get(), pty.slave_name);
        }
        os::become_tty_session(pty.slave.get());
        slave_name = pty.slave_name;
    }
    if (console_fd >= 0) ::close(console_fd);
    return slave_name;
}

void apply_oom_score_adj(const oci::Process& p) {
    if (!p.oom_score_adj) return;
    try {
        write_file("/proc/self/oom_score_adj", std::to_string(*p.oom_score_adj));
    } catch (const Error& e) {
        throw e.wrap("process.oomScoreAdj");
    }
}

namespace {
void reset_signals() {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig)
        if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);  // EINVAL for the unused: fine
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
}
}  // namespace

void exec_container_process(const ExecPlan& plan) {
    const oci::Process& p = *plan.process;
    for (const auto& r : p.rlimits) os::set_rlimit(r.type, r.soft, r.hard);
    if (p.scheduler) apply_scheduler(*p.scheduler);
    if (p.io_priority) apply_io_priority(*p.io_priority);
    if (plan.personality) apply_personality(*plan.personality);
    // Nor the caller's signal state: a caller that blocks or ignores signals
    // (a monitor blocking SIGCHLD/SIGTERM for its signalfd, a shell ignoring
    // SIGINT) must not hand that to the container's process.
    reset_signals();
    // Nothing of the runtime's may reach the container: only stdio and the preserved fds.
    if (::syscall(SYS_close_range, 3 + plan.preserve_fds, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
        throw_errno("close_range");
    if (p.no_new_privileges && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) throw_errno("prctl PR_SET_NO_NEW_PRIVS");
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: do it while we have it.
    auto load_filter = [&plan] {
        if (plan.compiled) load_compiled_seccomp(*plan.compiled);
        else (void)load_seccomp(*plan.seccomp);
    };
    if (plan.seccomp && !p.no_new_privileges) load_filter();

    std::optional<os::CapSets> caps;
    if (p.capabilities) {
        const auto& c = *p.capabilities;
        caps = os::cap_sets_from_names(c.bounding, c.effective, c.inheritable, c.permitted, c.ambient);
        os::apply_bounding(*caps);
        os::keep_caps(true);
    }
    bool chdir_done = ::chdir(p.cwd.c_str()) == 0;
    int chdir_err = errno;
    set_identity(p, plan.user_ns);
    if (caps) {
        os::keep_caps(false);
        os::apply_process_caps(*caps);
    }
    if (!chdir_done && ::chdir(p.cwd.c_str()) < 0) throw_errno(chdir_done ? errno : chdir_err, "chdir to process.cwd", p.cwd);
    ::umask(p.user.umask.value_or(022));

    std::vector<std::string> args = p.args, env = p.env;
    auto argv = cstrings(args);
    auto envp = cstrings(env);
    if (plan.seccomp && p.no_new_privileges) load_filter();
    ::execve(plan.executable.c_str(), argv.data(), envp.data());
    throw_errno("exec", p.args[0]);
}

}  // namespace vitro::runtime
