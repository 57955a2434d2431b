// vitro monitor: not built yet (registers nothing).
#include "cmd/vitro/cli.hpp"

namespace vitro::cli {
void add_monitor_commands(CLI::App&, Globals&) {}
}  // namespace vitro::cli
