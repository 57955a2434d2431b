#include "util/subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "util/error.hpp"
#include "util/file.hpp"
#include "util/fd.hpp"

namespace vitro {

namespace {
std::vector<char*> to_argv(std::vector<std::string>& v) {
    std::vector<char*> out;
    for (auto& s : v) out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

int64_t now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
}  // namespace

namespace {
// Reads what is there now (non-blocking); false at EOF.
bool drain(UniqueFd& fd, std::string& out, size_t keep, bool tail, bool* truncated) {
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n == 0) {
            fd.reset();
            return false;
        }
        if (n < 0) return true;  // EAGAIN: nothing more for now
        size_t len = static_cast<size_t>(n);
        if (tail) {
            out.append(buf, len);
            if (out.size() > keep) out.erase(0, out.size() - keep);
        } else {
            size_t room = keep > out.size() ? keep - out.size() : 0;
            if (len > room && truncated) *truncated = true;
            out.append(buf, std::min(len, room));
        }
    }
}

RunResult run_impl(const std::string& path, const std::vector<std::string>& args_in,
                   const std::vector<std::string>& env_in, const std::string& input,
                   std::optional<int> timeout_s, bool capture, size_t max_stdout) {
    std::vector<std::string> args = args_in.empty() ? std::vector<std::string>{path} : args_in;
    std::vector<std::string> env = env_in;
    auto argv = to_argv(args);
    auto envp = to_argv(env);

    int in[2], err[2], out[2] = {-1, -1};
    if (::pipe2(in, O_CLOEXEC) < 0) throw_errno("pipe");
    UniqueFd in_r(in[0]), in_w(in[1]);
    if (::pipe2(err, O_CLOEXEC) < 0) throw_errno("pipe");
    UniqueFd err_r(err[0]), err_w(err[1]);
    if (capture && ::pipe2(out, O_CLOEXEC) < 0) throw_errno("pipe");
    UniqueFd out_r(out[0]), out_w(out[1]);

    pid_t pid = ::fork();
    if (pid < 0) throw_errno("fork for", path);
    if (pid == 0) {
        ::dup2(in_r.get(), 0);
        ::dup2(err_w.get(), 2);
        if (out_w) {
            ::dup2(out_w.get(), 1);
        } else {
            int devnull = ::open("/dev/null", O_WRONLY);
            if (devnull >= 0) ::dup2(devnull, 1);
        }
        ::signal(SIGPIPE, SIG_DFL);
        ::execve(path.c_str(), argv.data(), envp.data());
        dprintf(2, "exec %s: %s", path.c_str(), strerror(errno));
        ::_exit(127);
    }
    in_r.reset();
    err_w.reset();
    out_w.reset();
    // A pidfd lets poll() wake the moment the program exits.
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));

    // Feed stdin; a program that does not read it must not block us.
    ::fcntl(in_w.get(), F_SETFL, O_NONBLOCK);
    ::fcntl(err_r.get(), F_SETFL, O_NONBLOCK);
    if (out_r) ::fcntl(out_r.get(), F_SETFL, O_NONBLOCK);
    size_t off = 0;
    if (input.empty()) in_w.reset();
    RunResult res;
    auto read_outputs = [&] {
        if (err_r) drain(err_r, res.stderr_tail, 4096, true, nullptr);
        if (out_r) drain(out_r, res.stdout_data, max_stdout, false, &res.stdout_truncated);
    };
    int64_t deadline = timeout_s ? now_ms() + int64_t{*timeout_s} * 1000 : -1;
    sighandler_t old = ::signal(SIGPIPE, SIG_IGN);
    for (;;) {
        int st = 0;
        pid_t w = ::waitpid(pid, &st, WNOHANG);
        if (w == pid) {
            res.status = st;
            break;
        }
        if (deadline >= 0 && now_ms() >= deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &res.status, 0);
            res.timed_out = true;
            break;
        }
        pollfd fds[4] = {{err_r ? err_r.get() : -1, POLLIN, 0},
                         {in_w ? in_w.get() : -1, POLLOUT, 0},
                         {pidfd.get(), POLLIN, 0},
                         {out_r ? out_r.get() : -1, POLLIN, 0}};
        int wait_ms = pidfd ? 1000 : 10;
        if (deadline >= 0) wait_ms = static_cast<int>(std::min<int64_t>(wait_ms, std::max<int64_t>(deadline - now_ms(), 0)));
        ::poll(fds, 4, wait_ms);
        read_outputs();
        if (in_w && off < input.size()) {
            ssize_t wn = ::write(in_w.get(), input.data() + off, input.size() - off);
            if (wn > 0) off += static_cast<size_t>(wn);
            else if (wn < 0 && errno != EAGAIN) in_w.reset();
        }
        if (in_w && off >= input.size()) in_w.reset();
    }
    // What the program wrote before it exited is still in the pipes.
    read_outputs();
    ::signal(SIGPIPE, old);
    return res;
}
}  // namespace

RunResult run_program(const std::string& path, const std::vector<std::string>& args,
                      const std::vector<std::string>& env, const std::string& input,
                      std::optional<int> timeout_s) {
    return run_impl(path, args, env, input, timeout_s, false, 0);
}

RunResult run_program_capture(const std::string& path, const std::vector<std::string>& args,
                              const std::vector<std::string>& env, const std::string& input,
                              std::optional<int> timeout_s, size_t max_stdout) {
    return run_impl(path, args, env, input, timeout_s, true, max_stdout);
}

std::string describe_status(const RunResult& r, std::optional<int> timeout_s) {
    if (r.timed_out) return "timed out after " + std::to_string(timeout_s.value_or(0)) + "s";
    if (WIFEXITED(r.status)) return "exited with status " + std::to_string(WEXITSTATUS(r.status));
    if (WIFSIGNALED(r.status)) return std::string("killed by signal ") + strsignal(WTERMSIG(r.status));
    return "ended with wait status " + std::to_string(r.status);
}

void run_checked(const std::vector<std::string>& argv, int timeout_s) {
    RunResult r = run_program(require_program(argv.at(0)), argv, {}, "", timeout_s);
    if (r.timed_out || !WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0) {
        std::string cmd;
        for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
        while (!r.stderr_tail.empty() && r.stderr_tail.back() == '\n') r.stderr_tail.pop_back();
        throw Error(cmd + ": " + describe_status(r, timeout_s) + (r.stderr_tail.empty() ? "" : ": " + r.stderr_tail));
    }
}

}  // namespace vitro
