// vitro pods: not built yet (registers nothing).
#include "cmd/vitro/cli.hpp"

namespace vitro::cli {
void add_pod_commands(CLI::App&, Globals&) {}
}  // namespace vitro::cli
