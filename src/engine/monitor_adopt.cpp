#include "engine/monitor_adopt.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <string_view>

#include "linux/procfs.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"

namespace vitro::engine {

namespace {
// The read end of the pipe that is the init's fd `n`, opened again; none
// when that fd is not a pipe.
UniqueFd reopen_pipe(pid_t init, int n) {
    std::string fd = "/proc/" + std::to_string(init) + "/fd/" + std::to_string(n);
    char target[64] = {};
    ssize_t len = ::readlink(fd.c_str(), target, sizeof target - 1);
    if (len <= 0 || std::string_view(target, static_cast<size_t>(len)).rfind("pipe:", 0) != 0) return UniqueFd();
    return UniqueFd(::open(fd.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
}

// A PTRACE_EVENT_STOP for one of these is a group stop; any other (SIGTRAP)
// is the tracee resumed by SIGCONT, or a PTRACE_INTERRUPT.
bool is_group_stop(int sig) { return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU; }

int traced_exit_code(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 1;
}
}  // namespace

void seize_init(pid_t init, uint64_t start_time) {
    std::string what = "container init " + std::to_string(init);
    if (!os::process_alive(init, start_time)) throw Error(ESRCH, what + " is gone");
    if (::ptrace(PTRACE_SEIZE, init, nullptr, nullptr) < 0) throw_errno("ptrace seize", what);
    // The pid checked before the seize may have been reused in between.
    if (!os::process_alive(init, start_time)) {
        ::ptrace(PTRACE_DETACH, init, nullptr, nullptr);
        throw Error(ESRCH, what + " is gone");
    }
}

int trace_until_exit(pid_t init, LogWriter& log, int sigfd) {
    UniqueFd out = reopen_pipe(init, 1), err = reopen_pipe(init, 2);
    int fds_open[2] = {out.get(), err.get()};
    char buf[65536];
    std::optional<int> code;
    auto copy = [&](int i) {
        ssize_t n = ::read(fds_open[i], buf, sizeof buf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
        if (n <= 0) {
            fds_open[i] = -1;
            return;
        }
        log.write(i == 0 ? LogStream::Stdout : LogStream::Stderr, std::string_view(buf, static_cast<size_t>(n)));
    };
    // Stops of the tracee are resumed as if nobody traced it; its exit ends the wait.
    auto reap = [&] {
        int status = 0;
        pid_t p = 0;
        while (!code && (p = ::waitpid(init, &status, WNOHANG | __WALL)) > 0) {
            if (WIFEXITED(status) || WIFSIGNALED(status)) {
                code = traced_exit_code(status);
            } else if (WIFSTOPPED(status)) {
                int sig = WSTOPSIG(status);
                if ((status >> 16) != PTRACE_EVENT_STOP)  // a signal: delivered
                    ::ptrace(PTRACE_CONT, init, nullptr, reinterpret_cast<void*>(static_cast<long>(sig)));
                else if (is_group_stop(sig))  // kill -STOP: stays stopped until SIGCONT
                    ::ptrace(PTRACE_LISTEN, init, nullptr, nullptr);
                else  // the stop SIGCONT ends a group stop with (SIGTRAP): runs on
                    ::ptrace(PTRACE_CONT, init, nullptr, nullptr);
            }
        }
        if (p < 0 && errno == ECHILD && !code) code = 255;  // cannot happen while traced
    };
    reap();
    for (;;) {
        if (code && fds_open[0] < 0 && fds_open[1] < 0) break;
        pollfd fds[3] = {{fds_open[0], POLLIN, 0}, {fds_open[1], POLLIN, 0}, {sigfd, POLLIN, 0}};
        // After the exit, drain without waiting for writers that linger.
        int rc = ::poll(fds, 3, code ? 200 : -1);
        if (rc < 0) {
            if (errno == EINTR) continue;
            throw_errno("poll");
        }
        if (rc == 0 && code) break;
        for (int i = 0; i < 2; ++i)
            if (fds[i].revents) copy(i);
        if (fds[2].revents) {
            signalfd_siginfo si{};
            if (::read(sigfd, &si, sizeof si) != sizeof si) continue;
            if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGHUP) ::kill(init, static_cast<int>(si.ssi_signo));
            else if (si.ssi_signo == SIGCHLD) reap();
        }
    }
    log.flush();
    return *code;
}

}  // namespace vitro::engine
