#include "engine/monitor.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "engine/container_log.hpp"
#include "engine/log_config.hpp"
#include "engine/monitor_pump.hpp"
#include "linux/procfs.hpp"
#include "runtime/runtime.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/time.hpp"

namespace vitro::engine {

namespace {

// Closes every fd but those in `keep`: the monitor lives long and must not
// hold what the starting command had open (its database, its pipes).
void close_other_fds(std::vector<int> keep) {
    std::vector<int> open;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (dirent* e = ::readdir(d)) {
            int fd = std::atoi(e->d_name);
            if (e->d_name[0] != '.' && fd > 2) open.push_back(fd);
        }
        ::closedir(d);
    }
    for (int fd : open)
        if (std::find(keep.begin(), keep.end(), fd) == keep.end()) ::close(fd);
}

UniqueFd dup_cloexec(int fd) {
    UniqueFd d(::fcntl(fd, F_DUPFD_CLOEXEC, 3));
    if (!d) throw_errno("dup");
    return d;
}

struct Pipe {
    UniqueFd r, w;
    static Pipe make() {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) < 0) throw_errno("pipe");
        return {UniqueFd(p[0]), UniqueFd(p[1])};
    }
};

// The monitor's own ends of the container's stdio, and where to copy output.
struct Stdio {
    UniqueFd out_r, err_r, in_w;  // pipes (no terminal)
    UniqueFd master;              // the pty master (terminal)
};

class Monitor {
public:
    explicit Monitor(MonitorArgs& a) : a_(a) {}

    // A fresh start (forked by Engine::start).
    [[noreturn]] void run() {
        pid_t init = -1;
        try {
            setup_process(true);
            open_engine();
            if (!take_claim()) ::_exit(0);
            init = start_container(*c_);
            notify("R " + std::to_string(init));
        } catch (const std::exception& e) {
            fail(e);
            ::_exit(1);
        }
        supervise(init);
    }

    // After vitro-monitor: the init has exited with `code`.
    [[noreturn]] void resume(int code) {
        try {
            setup_process(false);
            open_engine();
            a_.tty = c_->config.value("tty", false);
            a_.interactive = c_->config.value("interactive", false);
            if (auto init = after_exit(code)) supervise(*init);
        } catch (const std::exception& e) {
            log::error(std::string("monitor of ") + a_.id + ": " + e.what());
        }
        ::_exit(0);
    }

private:
    void open_engine() {
        engine_ = std::make_unique<Engine>(a_.engine);
        c_ = engine_->state().get_container(a_.id);
        // The monitor's own troubles go next to the container's log.
        log::init(c_->bundle + "/monitor.log", false, false);
        driver_ = engine_->driver_for(*c_);
        log_ = std::make_unique<LogWriter>(engine_->log_path(*c_), log_limits_of(c_->config));
    }

    // A `run --rm`'s claim becomes ours: while the starting command holds
    // it, its death lets the next command remove the container; ours keeps
    // that removal off while we start it. False: the claim was no longer
    // the command's (it died and another command is removing the container,
    // which is left to that one).
    bool take_claim() {
        if (a_.claim_pid <= 0) return true;
        auto self = os::read_proc_stat(::getpid());
        bool ours = false;
        engine_->state().update_container(a_.id, [&](ContainerRecord& r) {
            ours = r.state == ContainerState::Created && r.owner_pid == a_.claim_pid &&
                   r.owner_start_time == a_.claim_start_time;
            if (!ours) return;
            r.owner_pid = ::getpid();
            r.owner_start_time = self ? self->start_time : 0;
        });
        if (!ours) log::warn("container " + c_->name + ": its starting command died and another removes it; not starting it");
        return ours;
    }

    // Waits for the init and what follows its exit, restarts included.
    [[noreturn]] void supervise(pid_t init) {
        try {
            for (;;) {
                if (!a_.attach) exec_waiter(init);  // returns only when vitro-monitor cannot run
                PumpFds f;
                f.out = stdio_.out_r.get();
                f.err = stdio_.err_r.get();
                f.master = stdio_.master.get();
                if (a_.attach) {
                    f.attach_out = out_.get();
                    f.attach_err = err_.get();
                    if (a_.interactive) f.attach_in = in_.get();
                }
                if (a_.stop_with_client) watch_client(f);
                int code = pump_until_exit(init, f, sigfd_.get(), *log_);
                if (a_.stop_with_client && client_gone()) {
                    // Stopped because its client went: no restart, as after `vitro stop`.
                    engine_->state().update_container(a_.id, [](ContainerRecord& r) { r.config["stop_requested"] = true; });
                    a_.stop_with_client = false;
                }
                restore_terminal();
                stdio_ = Stdio{};
                auto next = after_exit(code);
                if (!next) break;
                init = *next;
            }
        } catch (const std::exception& e) {
            log::error(std::string("monitor of ") + a_.id + ": " + e.what());
        }
        ::_exit(0);
    }

    // The pump stops the container as `vitro stop` would when the attached
    // client is gone (killed before it could pass a signal on).
    void watch_client(PumpFds& f) {
        f.client = a_.notify_fd;
        f.stop_timeout_s = c_->config.value("stop_timeout", 10);
        try {
            f.stop_signal = runtime::parse_signal(c_->config.value("stop_signal", "SIGTERM"));
        } catch (const Error&) {
            f.stop_signal = SIGTERM;
        }
    }

    bool client_gone() const {
        pollfd p{a_.notify_fd, 0, 0};
        return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLERR | POLLHUP));
    }

    // Becomes vitro-monitor (same pid) to wait with little memory; it execs
    // `vitro container-exited` when the init is gone.
    void exec_waiter(pid_t init) {
        const EngineOptions& o = a_.engine;
        if (o.monitor_binary.empty() || o.self_binary.empty() || ::access(o.monitor_binary.c_str(), X_OK) != 0) return;
        const LogLimits limits = log_limits_of(c_->config);
        std::vector<std::string> argv = {o.monitor_binary, "--init", std::to_string(init), "--log", engine_->log_path(*c_),
                                         "--log-max-size", std::to_string(limits.max_size),
                                         "--log-max-file", std::to_string(limits.max_file)};
        std::vector<int> pass;
        auto fd_arg = [&](const char* flag, int fd) {
            if (fd < 0) return;
            argv.push_back(flag);
            argv.push_back(std::to_string(fd));
            pass.push_back(fd);
        };
        fd_arg("--out", stdio_.out_r.get());
        fd_arg("--err", stdio_.err_r.get());
        fd_arg("--master", stdio_.master.get());
        std::vector<int> holds;
        for (const auto& h : a_.port_holds) holds.push_back(h.get());
        if (stdio_.in_w) holds.push_back(stdio_.in_w.get());
        for (int fd : holds) fd_arg("--keep", fd);
        argv.push_back("--");
        for (auto& a : engine_command(o)) argv.push_back(a);
        argv.push_back("container-exited");
        for (int fd : holds) {
            argv.push_back("--hold");
            argv.push_back(std::to_string(fd));
        }
        argv.push_back(a_.id);
        for (int fd : pass) ::fcntl(fd, F_SETFD, 0);
        // The engine's database connection must not survive the exec half-used.
        engine_.reset();
        std::vector<char*> cargv;
        for (auto& a : argv) cargv.push_back(a.data());
        cargv.push_back(nullptr);
        ::execv(o.monitor_binary.c_str(), cargv.data());
        int err = errno;
        for (int fd : pass) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
        engine_ = std::make_unique<Engine>(a_.engine);
        log::warn(std::string("exec ") + o.monitor_binary + ": " + std::strerror(err) + "; waiting in place");
    }

    // The init has exited: record, and restart (returning the new init) or finish.
    std::optional<pid_t> after_exit(int code) {
        log_->flush();
        driver_->remove(a_.id);
        if (!should_restart(*c_, code)) {
            finish(*c_, code);
            return std::nullopt;
        }
        int attempt = engine_->state().get_container(a_.id).config.value("restart_count", 1);
        std::this_thread::sleep_for(std::chrono::milliseconds(std::min(100 << std::min(attempt - 1, 7), 10000)));
        return start_container(*c_);
    }

private:
    // fresh: forked by the starting command (else exec'ed by vitro-monitor).
    void setup_process(bool fresh) {
        ::prctl(PR_SET_CHILD_SUBREAPER, 1);
        ::prctl(PR_SET_NAME, "vitro-monitor");
        if (fresh && !a_.attach) ::setsid();
        std::vector<int> keep = {a_.notify_fd};
        for (const auto& h : a_.port_holds) keep.push_back(h.get());
        close_other_fds(keep);
        if (a_.attach) {
            out_ = dup_cloexec(1);
            err_ = dup_cloexec(2);
            if (a_.interactive) in_ = dup_cloexec(0);
        }
        null_in();
        sigfd_ = monitor_signals();
        if (a_.stop_with_client) leave_signals_to_client();
    }

    // The client passes its signals on to the container; we share its
    // process group (a terminal's ^C, a kill of the group reach us too), so
    // we neither forward them a second time nor die of them. A handler that
    // does nothing, not SIG_IGN: exec resets it, so the container's
    // processes do not inherit it.
    static void leave_signals_to_client() {
        sigset_t set = proxied_signals();
        struct sigaction sa {};
        sa.sa_handler = [](int) {};
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        for (int sig = 1; sig < NSIG; ++sig)
            if (sigismember(&set, sig) == 1) ::sigaction(sig, &sa, nullptr);
        ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
    }

    // Points fds 0-2 at /dev/null: the monitor must not keep the container's
    // pipe ends (EOF would never come) nor the caller's terminal.
    static void null_in() {
        int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null < 0) return;
        for (int fd = 0; fd < 3; ++fd) ::dup2(null, fd);
        if (null > 2) ::close(null);
    }

    pid_t start_container(const ContainerRecord& c) {
        stdio_ = Stdio{};
        const bool tty = a_.tty;
        if (!tty) {
            Pipe out = Pipe::make(), err = Pipe::make();
            UniqueFd in;
            if (a_.attach && a_.interactive) {
                in = dup_cloexec(in_.get());  // the caller's stdin, straight through
            } else if (a_.interactive) {
                Pipe p = Pipe::make();  // -di: stdin stays open, nobody writes
                in = std::move(p.r);
                stdio_.in_w = std::move(p.w);
            } else {
                in = UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
            }
            ::dup2(in.get(), 0);
            ::dup2(out.w.get(), 1);
            ::dup2(err.w.get(), 2);
            stdio_.out_r = std::move(out.r);
            stdio_.err_r = std::move(err.r);
        }
        StartedProcess sp;
        try {
            sp = driver_->create_and_start(a_.id, c.bundle);
        } catch (...) {
            null_in();
            throw;
        }
        null_in();
        if (tty) {
            stdio_.master = std::move(sp.console_master);
            if (stdio_.master && a_.attach && a_.interactive && ::isatty(in_.get())) {
                termios t{};
                if (::tcgetattr(in_.get(), &saved_termios_) == 0) {
                    t = saved_termios_;
                    ::cfmakeraw(&t);
                    ::tcsetattr(in_.get(), TCSANOW, &t);
                    raw_ = true;
                }
            }
        }
        auto self = os::read_proc_stat(::getpid());
        auto init = os::read_proc_stat(sp.pid);
        engine_->state().update_container(a_.id, [&](ContainerRecord& r) {
            r.state = ContainerState::Running;
            r.pid = ::getpid();
            r.pid_start_time = self ? self->start_time : 0;
            r.owner_pid = 0;  // a claim (take_claim) ends once it runs
            r.owner_start_time = 0;
            r.exit_code.reset();
            r.started_at = rfc3339_now();
            r.finished_at.reset();
            r.config["init_pid"] = sp.pid;
            r.config["init_start_time"] = init ? init->start_time : 0;
        });
        return sp.pid;
    }

    void restore_terminal() {
        if (raw_) ::tcsetattr(in_.get(), TCSANOW, &saved_termios_);
        raw_ = false;
    }

    bool should_restart(const ContainerRecord& c, int code) {
        auto now = engine_->state().find_container(a_.id);
        if (!now || now->state == ContainerState::Removing || now->config.value("stop_requested", false)) return false;
        const auto& r = c.config.value("restart", nlohmann::json::object());
        std::string policy = r.value("policy", "no");
        int max = r.value("max", 0);  // on-failure:N allows N restarts
        int restarts = now->config.value("restart_count", 0);
        bool again = policy == "always" || policy == "unless-stopped" ||
                     (policy == "on-failure" && code != 0 && (max == 0 || restarts < max));
        if (!again) return false;
        engine_->state().update_container(a_.id, [&](ContainerRecord& rec) {
            rec.exit_code = code;
            rec.config["restart_count"] = restarts + 1;
            rec.config.erase("paused");  // killed while paused: the new init runs
        });
        return true;
    }

    void finish(const ContainerRecord& c, int code) {
        // A pod's infra is gone: its members lose their namespaces' holder,
        // so the pod stops (members first, before the network goes).
        if (is_infra(c) && c.pod_id) {
            try {
                engine_->stop_pod_members(*c.pod_id, std::nullopt);
            } catch (const std::exception& e) {
                log::warn(std::string("stopping the members of pod ") + c.config.value("pod", "") + ": " + e.what());
            }
        }
        engine_->release_resources(c);
        a_.port_holds.clear();
        bool restarting = false;  // a live `vitro restart` starts it next: --rm waits
        engine_->state().update_container(a_.id, [&](ContainerRecord& r) {
            restarting = restart_pending(r);
            r.config.erase("paused");
            if (r.state != ContainerState::Removing) r.state = ContainerState::Exited;
            r.pid = 0;
            r.pid_start_time = 0;
            r.exit_code = code;
            r.finished_at = rfc3339_now();
            r.config.erase("init_pid");
            r.config.erase("init_start_time");
        });
        if (c.config.value("auto_remove", false) && !restarting) {
            try {
                engine_->remove(a_.id, true);
            } catch (const std::exception& e) {
                log::warn(std::string("--rm of ") + c.name + ": " + e.what());
            }
        }
        if (a_.attach) notify("X " + std::to_string(code));
    }

    // Start-up failed: undo, then tell the caller why.
    void fail(const std::exception& e) {
        restore_terminal();
        int err = 0;
        if (const auto* ve = dynamic_cast<const Error*>(&e)) err = ve->code();
        try {
            if (engine_) {
                ContainerRecord c = engine_->state().get_container(a_.id);
                if (driver_) driver_->remove(a_.id);
                engine_->release_resources(c);
                a_.port_holds.clear();
                if (c.config.value("auto_remove", false)) engine_->remove(a_.id, true);
            }
        } catch (const std::exception& e2) {
            log::warn(std::string("cleaning up after a failed start: ") + e2.what());
        }
        std::string msg = e.what();
        std::replace(msg.begin(), msg.end(), '\n', ' ');
        notify("E " + std::to_string(err) + " " + msg);
    }

    void notify(const std::string& line) {
        if (a_.notify_fd >= 0) (void)try_write_all(a_.notify_fd, line + "\n");
    }

    MonitorArgs& a_;
    std::optional<ContainerRecord> c_;
    std::unique_ptr<Engine> engine_;
    std::unique_ptr<RuntimeDriver> driver_;
    std::unique_ptr<LogWriter> log_;
    UniqueFd out_, err_, in_, sigfd_;
    Stdio stdio_;
    termios saved_termios_{};
    bool raw_ = false;
};

}  // namespace

sigset_t proxied_signals() {
    sigset_t set;
    sigfillset(&set);
    for (int s : {SIGKILL, SIGSTOP, SIGCHLD, SIGURG, SIGPIPE, SIGWINCH, SIGTSTP, SIGTTIN, SIGTTOU, SIGSEGV, SIGBUS,
                  SIGFPE, SIGILL, SIGTRAP, SIGSYS})
        sigdelset(&set, s);
    return set;
}

void run_monitor(MonitorArgs args) {
    Monitor m(args);
    m.run();
}

void resume_monitor(MonitorArgs args, int exit_code) {
    Monitor m(args);
    m.resume(exit_code);
}

}  // namespace vitro::engine
