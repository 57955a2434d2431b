// Adopting a container whose monitor died (kill -9): the container's init
// lives on, reparented to the host's init, so no new process can wait(2) for
// it. A new vitro-monitor traces it instead (PTRACE_SEIZE): a tracer is told
// the tracee's exit status, so the exit code is the real one. Signals sent to
// the init pass through the tracer unchanged (each signal-delivery stop is
// resumed with its signal; a group stop is left in place with PTRACE_LISTEN).
// Output: the dead monitor held the read ends of the container's stdout and
// stderr pipes; the adopter opens them again through /proc/<init>/fd (a pipe
// opened there is the same pipe). Between the death and the adoption a write
// to those pipes fails (EPIPE, SIGPIPE); a terminal (pty) is not taken over.
// Depends on util/, linux/procfs and container_log only (vitro-monitor is small).
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "engine/container_log.hpp"

namespace vitro::engine {

// Traces `init` (started at `start_time`); Error when it is gone, is another
// process by now, or cannot be traced (another tracer: another adopter).
void seize_init(pid_t init, uint64_t start_time);
// Copies the seized init's output to `log` until it exits; returns its exit
// code (128+signal when killed). SIGTERM/SIGHUP on `sigfd` are passed on.
int trace_until_exit(pid_t init, LogWriter& log, int sigfd);

}  // namespace vitro::engine
