// The monitor: one process per running container, like conmon. It is forked
// by `vitro start`/`run`, creates and starts the container through the
// runtime driver (so the container's init is its child), holds the
// container's stdio and writes the log, records the exit code, applies the
// restart policy, and releases network and rootfs when the container is done.
// The vitro command that started it may exit; the monitor stays.
//
// A detached container's monitor does not wait as a copy of the whole engine:
// once the container runs it execs the small static vitro-monitor (same pid),
// which waits and then execs `vitro container-exited` (resume_monitor) for
// the steps that need the engine again.
#pragma once

#include <signal.h>

#include <string>
#include <vector>

#include "engine/engine.hpp"
#include "util/fd.hpp"

namespace vitro::engine {

struct MonitorArgs {
    EngineOptions engine;
    std::string id;
    bool attach = false;       // the starting command waits: copy output to its stdout/stderr
    bool interactive = false;  // keep stdin open (attached: the caller's stdin)
    bool tty = false;
    int notify_fd = -1;        // to the starting command: "R <pid>\n", "E <errno> <msg>\n", "X <code>\n"
    // Attached with --sig-proxy: the caller passes its signals on to the
    // container itself, and its death (its end of notify_fd closing) stops
    // the container (stop signal, stop timeout, SIGKILL).
    bool stop_with_client = false;
    std::vector<UniqueFd> port_holds;  // published ports held while the container runs
    // A `run --rm`'s claim on the created container (its owner_pid and
    // start time), which the monitor takes over; 0: none.
    pid_t claim_pid = 0;
    uint64_t claim_start_time = 0;
};

// What a foreground client with --sig-proxy passes on to the container:
// every catchable signal but those about the client's own terminal, children
// and faults (CHLD, URG, PIPE, WINCH, TSTP, TTIN, TTOU, SEGV, BUS, FPE, ILL,
// TRAP, SYS).
sigset_t proxied_signals();

// Runs in the forked child; never returns.
[[noreturn]] void run_monitor(MonitorArgs args);
// `vitro container-exited`: vitro-monitor saw the container's init exit with
// `exit_code`; record it, restart or release. Never returns.
[[noreturn]] void resume_monitor(MonitorArgs args, int exit_code);

}  // namespace vitro::engine
