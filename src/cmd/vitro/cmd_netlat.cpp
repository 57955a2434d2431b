// vitro netlat: not built yet (registers nothing).
#include "cmd/vitro/cli.hpp"

namespace vitro::cli {
void add_netlat_commands(CLI::App&, Globals&) {}
}  // namespace vitro::cli
