// vitro-monitor: what a detached container's monitor becomes once the
// container runs. The full vitro binary starts the container (so that its
// init is this process's child), then execs this small static program to
// wait: it holds the container's output pipes (or pty), writes the log, and
// when the init exits execs back into vitro to record the exit, apply the
// restart policy and release what the container held. Same pid throughout,
// so the state's monitor pid stays right. Memory held while waiting: this
// binary's, not the engine's.
//
// vitro-monitor --init PID --log FILE [--log-max-size BYTES --log-max-file N]
//               (--out FD --err FD | --master FD) [--keep FD]... -- PROGRAM ARG...
// vitro-monitor --adopt --init PID --init-start TICKS --notify FD --log FILE
//               [--log-max-size BYTES --log-max-file N] -- PROGRAM ARG...
// PROGRAM is run with "--exit-code N" appended; the --keep fds stay open for it.
// --adopt takes over a container whose monitor died (engine/monitor_adopt.hpp)
// and writes "A <its pid> <its start time>" (or "E <why>") and a newline to the --notify fd.
#include <fcntl.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "engine/monitor_adopt.hpp"
#include "engine/monitor_pump.hpp"
#include "linux/procfs.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

using namespace vitro;

namespace {
[[noreturn]] void usage(const char* why) {
    std::fprintf(stderr, "vitro-monitor: %s (it is started by vitro, not by hand)\n", why);
    std::exit(2);
}

int parse_fd(const char* s) {
    char* end = nullptr;
    long v = std::strtol(s, &end, 10);
    if (!*s || *end || v < 0 || v > 1 << 20) usage("bad number");
    return static_cast<int>(v);
}

uint64_t parse_u64_arg(const char* s, uint64_t min = 0, uint64_t max = UINT64_MAX) {
    uint64_t v = 0;
    if (!parse_u64(s, v) || v < min || v > max) usage("bad number");
    return v;
}
}  // namespace

int main(int argc, char** argv) {
    pid_t init = -1;
    bool adopt = false;
    uint64_t init_start = 0;
    int notify = -1;
    std::string log_path;
    engine::LogLimits limits;
    engine::PumpFds fds;
    std::vector<int> keep;
    std::vector<char*> then;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&] {
            if (i + 1 >= argc) usage(("missing value for " + a).c_str());
            return argv[++i];
        };
        if (a == "--adopt") adopt = true;
        else if (a == "--init-start") init_start = parse_u64_arg(value(), 1);
        else if (a == "--notify") notify = parse_fd(value());
        else if (a == "--init") init = static_cast<pid_t>(parse_u64_arg(value(), 1, INT_MAX));  // pid_max: up to 2^22
        else if (a == "--log") log_path = value();
        else if (a == "--log-max-size") limits.max_size = parse_u64_arg(value());
        else if (a == "--log-max-file") limits.max_file = static_cast<unsigned>(parse_u64_arg(value(), 1, 1000));  // as parse_log_opts
        else if (a == "--out") fds.out = parse_fd(value());
        else if (a == "--err") fds.err = parse_fd(value());
        else if (a == "--master") fds.master = parse_fd(value());
        else if (a == "--keep") keep.push_back(parse_fd(value()));
        else if (a == "--") {
            then.assign(argv + i + 1, argv + argc);
            break;
        } else usage(("unknown argument " + a).c_str());
    }
    if (init <= 0 || log_path.empty() || then.empty()) usage("--init, --log and a program after -- are required");
    if (adopt && notify < 0) usage("--adopt needs --notify");

    int code = 1;
    // --adopt: the caller waits for one line on --notify.
    UniqueFd to_caller(adopt ? notify : -1);
    auto tell = [&](const std::string& line) {
        if (!to_caller) return;
        std::string msg = line + "\n";
        (void)!::write(to_caller.get(), msg.data(), msg.size());
        to_caller.reset();
    };
    try {
        UniqueFd sigfd = engine::monitor_signals();
        engine::LogWriter log(log_path, limits);
        if (adopt) {
            // The caller records our pid with its start time (a reused pid
            // must not pass for us).
            auto self = os::read_proc_stat(::getpid());
            if (!self || self->start_time == 0) throw Error("cannot read this process's start time");
            engine::seize_init(init, init_start);
            tell("A " + std::to_string(::getpid()) + " " + std::to_string(self->start_time));
            code = engine::trace_until_exit(init, log, sigfd.get());
        } else {
            code = engine::pump_until_exit(init, fds, sigfd.get(), log);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "vitro-monitor: %s\n", e.what());
        // An adopter that fails before the exit is known records nothing:
        // the init may live on (the next command adopts it again).
        if (adopt) {
            tell(std::string("E ") + e.what());
            return 1;
        }
    }
    for (int fd : {fds.out, fds.err, fds.master})
        if (fd >= 0) ::close(fd);
    for (int fd : keep) ::fcntl(fd, F_SETFD, 0);
    std::string code_text = std::to_string(code);
    then.push_back(const_cast<char*>("--exit-code"));
    then.push_back(code_text.data());
    then.push_back(nullptr);
    ::execv(then[0], then.data());
    std::fprintf(stderr, "vitro-monitor: exec %s: %s\n", then[0], std::strerror(errno));
    return 127;
}
