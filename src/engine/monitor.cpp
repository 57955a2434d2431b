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
#include "linux/procfs.hpp"
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

int exit_code_of(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 1;
}

class Monitor {
public:
    explicit Monitor(MonitorArgs& a) : a_(a) {}

    [[noreturn]] void run() {
        bool reported = false;
        int status_code = 0;
        try {
            setup_process();
            engine_ = std::make_unique<Engine>(a_.engine);
            ContainerRecord c = engine_->state().get_container(a_.id);
            // The monitor's own troubles go next to the container's log.
            log::init(c.bundle + "/monitor.log", false, false);
            driver_ = engine_->driver_for(c);
            log_ = std::make_unique<LogWriter>(engine_->log_path(c));
            for (int attempt = 0;; ++attempt) {
                pid_t init = start_container(c);
                if (!reported) {
                    notify("R " + std::to_string(init));
                    reported = true;
                }
                status_code = pump(init);
                log_->flush();
                driver_->remove(a_.id);
                if (!should_restart(c, status_code, attempt)) break;
                std::this_thread::sleep_for(std::chrono::milliseconds(std::min(100 << std::min(attempt, 7), 10000)));
            }
            finish(c, status_code);
        } catch (const std::exception& e) {
            if (!reported) {
                fail(e);
                ::_exit(1);
            }
            log::error(std::string("monitor of ") + a_.id + ": " + e.what());
        }
        ::_exit(0);
    }

private:
    void setup_process() {
        ::prctl(PR_SET_CHILD_SUBREAPER, 1);
        ::prctl(PR_SET_NAME, "vitro-monitor");
        if (!a_.attach) ::setsid();
        std::vector<int> keep = {a_.notify_fd};
        for (const auto& h : a_.port_holds) keep.push_back(h.get());
        close_other_fds(keep);
        if (a_.attach) {
            out_ = dup_cloexec(1);
            err_ = dup_cloexec(2);
            if (a_.interactive) in_ = dup_cloexec(0);
        }
        null_in();
        sigset_t set;
        sigemptyset(&set);
        for (int s : {SIGCHLD, SIGTERM, SIGHUP, SIGWINCH}) sigaddset(&set, s);
        ::sigprocmask(SIG_BLOCK, &set, nullptr);
        sigfd_ = UniqueFd(::signalfd(-1, &set, SFD_CLOEXEC));
        if (!sigfd_) throw_errno("signalfd");
        // A terminal's ^C reaches the container itself (same process group, or its pty).
        ::signal(SIGINT, SIG_IGN);
        ::signal(SIGQUIT, SIG_IGN);
        ::signal(SIGPIPE, SIG_IGN);
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
                resize();
            }
        }
        auto self = os::read_proc_stat(::getpid());
        auto init = os::read_proc_stat(sp.pid);
        engine_->state().update_container(a_.id, [&](ContainerRecord& r) {
            r.state = ContainerState::Running;
            r.pid = ::getpid();
            r.pid_start_time = self ? self->start_time : 0;
            r.exit_code.reset();
            r.started_at = rfc3339_now();
            r.finished_at.reset();
            r.config["init_pid"] = sp.pid;
            r.config["init_start_time"] = init ? init->start_time : 0;
        });
        return sp.pid;
    }

    void resize() {
        winsize ws{};
        if (stdio_.master && in_ && ::ioctl(in_.get(), TIOCGWINSZ, &ws) == 0) ::ioctl(stdio_.master.get(), TIOCSWINSZ, &ws);
    }

    // Copies output to the log (and the attached caller) until the init exits
    // and its output has drained; returns its exit code.
    int pump(pid_t init) {
        char buf[65536];
        std::optional<int> code;
        auto copy = [&](UniqueFd& fd, LogStream s) {
            ssize_t n = ::read(fd.get(), buf, sizeof buf);
            if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
            if (n <= 0) {  // EOF (or EIO: the pty's last slave closed)
                fd.reset();
                return;
            }
            std::string_view data(buf, static_cast<size_t>(n));
            log_->write(s, data);
            if (a_.attach) (void)try_write_all(s == LogStream::Stdout ? out_.get() : err_.get(), data);
        };
        bool in_open = a_.tty && a_.attach && a_.interactive && stdio_.master;
        for (;;) {
            UniqueFd& out = a_.tty ? stdio_.master : stdio_.out_r;
            if (code && !out && !stdio_.err_r) break;
            pollfd fds[4] = {{out ? out.get() : -1, POLLIN, 0},
                             {stdio_.err_r ? stdio_.err_r.get() : -1, POLLIN, 0},
                             {sigfd_.get(), POLLIN, 0},
                             {in_open ? in_.get() : -1, POLLIN, 0}};
            // After the exit, drain without waiting for writers that linger.
            int rc = ::poll(fds, 4, code ? 200 : -1);
            if (rc < 0) {
                if (errno == EINTR) continue;
                throw_errno("poll");
            }
            if (rc == 0 && code) break;
            if (fds[0].revents) copy(out, LogStream::Stdout);
            if (fds[1].revents) copy(stdio_.err_r, LogStream::Stderr);
            if (fds[3].revents) {
                ssize_t n = ::read(in_.get(), buf, sizeof buf);
                if (n <= 0) in_open = false;
                else (void)try_write_all(stdio_.master.get(), std::string_view(buf, static_cast<size_t>(n)));
            }
            if (fds[2].revents) {
                signalfd_siginfo si{};
                if (::read(sigfd_.get(), &si, sizeof si) != sizeof si) continue;
                if (si.ssi_signo == SIGWINCH) {
                    resize();
                } else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGHUP) {
                    ::kill(init, static_cast<int>(si.ssi_signo));
                } else if (si.ssi_signo == SIGCHLD) {
                    int status = 0;
                    pid_t p;
                    while ((p = ::waitpid(-1, &status, WNOHANG)) > 0)
                        if (p == init) code = exit_code_of(status);
                }
            }
        }
        restore_terminal();
        stdio_ = Stdio{};
        return *code;
    }

    void restore_terminal() {
        if (raw_) ::tcsetattr(in_.get(), TCSANOW, &saved_termios_);
        raw_ = false;
    }

    bool should_restart(const ContainerRecord& c, int code, int attempt) {
        auto now = engine_->state().find_container(a_.id);
        if (!now || now->state == ContainerState::Removing || now->config.value("stop_requested", false)) return false;
        const auto& r = c.config.value("restart", nlohmann::json::object());
        std::string policy = r.value("policy", "no");
        int max = r.value("max", 0);  // on-failure:N allows N restarts
        bool again = policy == "always" || policy == "unless-stopped" ||
                     (policy == "on-failure" && code != 0 && (max == 0 || attempt < max));
        if (!again) return false;
        engine_->state().update_container(a_.id, [&](ContainerRecord& rec) {
            rec.exit_code = code;
            rec.config["restart_count"] = attempt + 1;
        });
        return true;
    }

    void finish(const ContainerRecord& c, int code) {
        engine_->release_resources(c);
        a_.port_holds.clear();
        engine_->state().update_container(a_.id, [&](ContainerRecord& r) {
            if (r.state != ContainerState::Removing) r.state = ContainerState::Exited;
            r.pid = 0;
            r.pid_start_time = 0;
            r.exit_code = code;
            r.finished_at = rfc3339_now();
            r.config.erase("init_pid");
            r.config.erase("init_start_time");
        });
        if (c.config.value("auto_remove", false)) {
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
    std::unique_ptr<Engine> engine_;
    std::unique_ptr<RuntimeDriver> driver_;
    std::unique_ptr<LogWriter> log_;
    UniqueFd out_, err_, in_, sigfd_;
    Stdio stdio_;
    termios saved_termios_{};
    bool raw_ = false;
};

}  // namespace

void run_monitor(MonitorArgs args) {
    Monitor m(args);
    m.run();
}

}  // namespace vitro::engine
