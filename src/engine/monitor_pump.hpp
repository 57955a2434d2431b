// The monitor's wait, shared by the monitor inside vitro (attached runs) and
// the small static vitro-monitor a detached container's monitor becomes once
// the container runs: copy the container's output into its log (and to an
// attached caller) until its init exits and the output has drained.
// Depends on util/ and container_log only, so vitro-monitor stays small.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include "engine/container_log.hpp"
#include "util/fd.hpp"

namespace vitro::engine {

struct PumpFds {
    int out = -1, err = -1;                // pipes' read ends (no terminal)
    int master = -1;                       // the pty master (terminal)
    int attach_out = -1, attach_err = -1;  // an attached caller's stdout/stderr, or -1
    int attach_in = -1;                    // an attached caller's stdin, copied to the master
    // The write end of a pipe whose reader is the attached caller: when the
    // caller is gone (POLLERR), the init gets stop_signal, and SIGKILL
    // stop_timeout_s later.
    int client = -1;
    int stop_signal = SIGTERM;
    int stop_timeout_s = 10;
};

// Blocks SIGCHLD, SIGTERM, SIGHUP and SIGWINCH and returns a signalfd for
// them; ignores SIGINT, SIGQUIT (a terminal's ^C is the container's) and SIGPIPE.
UniqueFd monitor_signals();

// Waits for `init` (a child of the caller) to exit, copying output meanwhile;
// SIGTERM/SIGHUP are passed on to it, SIGWINCH resizes the master from
// attach_in; the client's going stops it. Returns its exit code (128+signal
// when killed).
int pump_until_exit(pid_t init, const PumpFds& fds, int sigfd, LogWriter& log);

}  // namespace vitro::engine
