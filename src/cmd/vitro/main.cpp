// vitro: a daemonless container engine with podman's habits and docker's
// flags and exit codes. Argument parsing and exit codes only; the work is in
// engine/, image/ and net/.
#include "cmd/vitro/cli.hpp"

using namespace vitro;

int main(int argc, char** argv) {
    return cli::run_cli(argc, argv, false, [](CLI::App& app, cli::Globals& g) {
        cli::add_container_commands(app, g);
        cli::add_copy_commands(app, g);
        cli::add_image_commands(app, g);
        cli::add_registry_commands(app, g);
        cli::add_system_commands(app, g);
        cli::add_network_commands(app, g);
        cli::add_volume_commands(app, g);
        cli::add_pod_commands(app, g);
        cli::add_monitor_commands(app, g);
        cli::add_evidence_commands(app, g);
        cli::add_detect_commands(app, g);
        cli::add_netlat_commands(app, g);
        cli::add_bench_commands(app, g);
    });
}
