// The bench loop: every cell of the plan, repeated, with a progress line per
// run (and the time left, from the runs so far) on stderr; stops between or
// inside runs at SIGINT/SIGTERM and reports what finished.
#pragma once

#include <atomic>
#include <string>

#include "iobench/report.hpp"
#include "iobench/runner.hpp"

namespace vitro::iobench {

// The report's header: machine, kernel, fio's and the runtimes' versions.
void describe_machine(Report& rep);
// Runs the plan; rep.plan must be set. Cells with no finished run are left out.
void run_bench(Report& rep, Runner& runner, const std::atomic<bool>* stop);

}  // namespace vitro::iobench
