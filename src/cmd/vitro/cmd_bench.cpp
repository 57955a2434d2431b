// bench io: fio's throughput, CPU and ground truth per isolation mode and
// runtime (iobench/: the plan, the runner, the report).
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cmd/vitro/cli.hpp"
#include "cmd/vitro/common.hpp"
#include "iobench/bench.hpp"
#include "iobench/plan.hpp"
#include "iobench/report.hpp"
#include "iobench/runner.hpp"
#include "measure/stop_signals.hpp"
#include "util/error.hpp"
#include "util/file.hpp"

namespace vitro::cli {

namespace {

struct IoFlags {
    iobench::Options o;
    std::string format = "text", plot;
};

void run_io(Globals& g, IoFlags f) {
    if (f.format != "text" && f.format != "json" && f.format != "csv")
        throw Error(EINVAL, "--format " + f.format + ": expected text, json or csv");
    f.o.storage_root = g.root;
    iobench::Report rep;
    rep.plan = iobench::make_plan(f.o);
    iobench::Engine eng{g.self_path,
                        {"--root", g.root, "--runroot", g.runroot, "--network-config-dir", g.net_dir, "--cni-plugin-dir",
                         g.cni_path},
                        f.o.image};
    if (rep.plan.needs_engine) {
        if (g.self_path.empty()) throw Error(ENOENT, "cannot find the vitro binary to run containers with");
        engine::Engine e(engine_options(g));
        if (!e.images().find_name(f.o.image))
            throw Error(ENOENT, "image " + f.o.image + " is not in the store of " + g.root +
                                    ": load it first (scripts/make-image.sh /tmp/bb.tar && vitro load -i /tmp/bb.tar)");
    }
    if (!f.plot.empty()) make_dirs(f.plot);
    iobench::describe_machine(rep);

    // Signals before the work directory: from here a Ctrl-C ends the
    // current run, and the runner's owner removes what it made.
    measure::StopOnSignals stop;
    {
        iobench::Runner runner(rep.plan, eng, g.root, stop.flag());
        iobench::run_bench(rep, runner, stop.flag());
    }
    rep.stopped_by = signal_name(stop.signal());

    if (f.format == "json") std::printf("%s\n", iobench::to_json(rep).dump(2).c_str());
    else if (f.format == "csv") std::fputs(iobench::to_csv(rep).c_str(), stdout);
    else std::fputs(iobench::to_text(rep).c_str(), stdout);
    std::fflush(stdout);
    if (!f.plot.empty())
        for (const auto& [name, svg] : iobench::plots(rep)) write_file_atomic(f.plot + "/" + name, svg);
    if (stop.signal()) g.exit_code = 128 + stop.signal();
}

}  // namespace

void add_bench_commands(CLI::App& app, Globals& g) {
    auto* bench = app.add_subcommand("bench", "benchmarks of the isolation modes on this machine");
    bench->require_subcommand(1);
    auto f = std::make_shared<IoFlags>();
    auto* io = bench->add_subcommand("io", "fio's file I/O throughput, CPU split and block-layer ground truth per "
                                           "isolation mode and runtime");
    io->add_option("--isolation", f->o.isolations, "modes, comma-separated: host, namespace (vm: not yet) (default host,namespace)")
        ->delimiter(',');
    io->add_option("--runtime", f->o.runtimes, "runtimes of namespace mode: vitro (built in), crun, runc (default vitro)")
        ->delimiter(',');
    io->add_option("--workload", f->o.workloads, "seqread, seqwrite, randread, randwrite, randrw (default all)")->delimiter(',');
    io->add_option("--bs", f->o.block_sizes, "block sizes, as fio takes them (default 4k,1m)")->delimiter(',');
    io->add_option("--size", f->o.size, "the file fio reads or writes (default 64m)");
    io->add_flag("--direct", f->o.direct, "O_DIRECT (bypass the page cache; buffered reads may never reach the disk)");
    io->add_option("--target", f->o.target,
                   "where the file is: rootfs (the container's overlay; host: a directory on the same file system), "
                   "volume (a bind-mounted directory), tmpfs, or an existing directory bound as the volume (default rootfs)");
    io->add_option("--repeat", f->o.repeat, "runs per cell; medians and CV over them (default 3)");
    io->add_flag("--profile", f->o.profile, "perf profile of the runs (not yet)");
    io->add_option("--image", f->o.image, "the image fio runs in (default localhost/busybox)");
    io->add_option("--format", f->format, "text, json or csv");
    io->add_option("--plot", f->plot, "write SVG plots (one per workload) into this directory");
    io->callback([&g, f] { run_io(g, *f); });
}

}  // namespace vitro::cli
