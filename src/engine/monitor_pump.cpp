#include "engine/monitor_pump.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string_view>

#include "util/error.hpp"
#include "util/file.hpp"

namespace vitro::engine {

UniqueFd monitor_signals() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGCHLD, SIGTERM, SIGHUP, SIGWINCH}) sigaddset(&set, s);
    ::sigprocmask(SIG_BLOCK, &set, nullptr);
    UniqueFd fd(::signalfd(-1, &set, SFD_CLOEXEC));
    if (!fd) throw_errno("signalfd");
    ::signal(SIGINT, SIG_IGN);
    ::signal(SIGQUIT, SIG_IGN);
    ::signal(SIGPIPE, SIG_IGN);
    return fd;
}

namespace {
int exit_code_of(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 1;
}

void resize(int master, int from) {
    winsize ws{};
    if (master >= 0 && from >= 0 && ::ioctl(from, TIOCGWINSZ, &ws) == 0) ::ioctl(master, TIOCSWINSZ, &ws);
}
}  // namespace

int pump_until_exit(pid_t init, const PumpFds& f, int sigfd, LogWriter& log) {
    char buf[65536];
    std::optional<int> code;
    // Streams still open; -1 once at EOF (or EIO: the pty's last slave closed).
    int out = f.master >= 0 ? f.master : f.out;
    int err = f.master >= 0 ? -1 : f.err;
    int in = f.master >= 0 ? f.attach_in : -1;
    if (in >= 0) resize(f.master, in);
    auto copy = [&](int& fd, LogStream s) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
        if (n <= 0) {
            fd = -1;
            return;
        }
        std::string_view data(buf, static_cast<size_t>(n));
        log.write(s, data);
        int to = s == LogStream::Stdout ? f.attach_out : f.attach_err;
        if (to >= 0) (void)try_write_all(to, data);
    };
    auto reap = [&] {
        int status = 0;
        pid_t p;
        while ((p = ::waitpid(-1, &status, WNOHANG)) > 0)
            if (p == init) code = exit_code_of(status);
    };
    using Clock = std::chrono::steady_clock;
    int client = f.client;
    bool killing = false;  // the client is gone: SIGKILL at kill_at
    Clock::time_point kill_at{};
    auto wait_ms = [&]() -> int {
        if (code) return 200;  // after the exit, drain without waiting for writers that linger
        if (!killing) return -1;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(kill_at - Clock::now()).count();
        return static_cast<int>(std::max<long long>(left, 0));
    };
    reap();  // it may have gone before we were here to see its SIGCHLD
    for (;;) {
        if (code && out < 0 && err < 0) break;
        // events 0: a pipe's write end polls POLLERR once its reader is gone.
        pollfd fds[5] = {{out, POLLIN, 0}, {err, POLLIN, 0}, {sigfd, POLLIN, 0}, {in, POLLIN, 0}, {client, 0, 0}};
        int rc = ::poll(fds, 5, wait_ms());
        if (rc < 0) {
            if (errno == EINTR) continue;
            throw_errno("poll");
        }
        if (rc == 0 && code) break;
        if (killing && !code && Clock::now() >= kill_at) {
            ::kill(init, SIGKILL);
            killing = false;
        }
        if (fds[4].revents) {
            client = -1;
            if (!code) {
                ::kill(init, f.stop_signal);
                killing = true;
                kill_at = Clock::now() + std::chrono::seconds(f.stop_timeout_s);
            }
        }
        if (fds[0].revents) copy(out, LogStream::Stdout);
        if (fds[1].revents) copy(err, LogStream::Stderr);
        if (fds[3].revents) {
            ssize_t n = ::read(in, buf, sizeof buf);
            if (n <= 0) in = -1;
            else (void)try_write_all(f.master, std::string_view(buf, static_cast<size_t>(n)));
        }
        if (fds[2].revents) {
            signalfd_siginfo si{};
            if (::read(sigfd, &si, sizeof si) != sizeof si) continue;
            if (si.ssi_signo == SIGWINCH) {
                resize(f.master, f.attach_in);
            } else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGHUP) {
                ::kill(init, static_cast<int>(si.ssi_signo));
            } else if (si.ssi_signo == SIGCHLD) {
                reap();
            }
        }
    }
    log.flush();
    return *code;
}

}  // namespace vitro::engine
