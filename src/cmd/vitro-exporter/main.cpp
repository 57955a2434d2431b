// vitro-exporter: `vitro monitor` as a static binary of its own. `vitro
// monitor` execs it when it lies beside vitro: the long-running exporter then
// maps no shared library (the dynamic vitro's libraries were most of its
// resident memory) and none of the engine's other commands.
#include "cmd/vitro/cli.hpp"

int main(int argc, char** argv) {
    return vitro::cli::run_cli(argc, argv, true, [](CLI::App& app, vitro::cli::Globals& g) {
        vitro::cli::add_monitor_commands(app, g);
    });
}
