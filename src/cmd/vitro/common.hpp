// Helpers shared by the command files: the engine from the global flags,
// docker-style durations, output formats.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cmd/vitro/cli.hpp"
#include "engine/engine.hpp"

namespace vitro::cli {

engine::EngineOptions engine_options(const Globals& g);
// "3 seconds", "2 minutes", "5 hours", "4 days" between an RFC 3339 time and now.
std::string human_since(const std::string& rfc3339);
// Sizes as docker prints them: "512B", "2.1MB", "1.25GB" (powers of 1000).
std::string human_size(uint64_t bytes);
// Renders `v` for --format: "json" (indented), or a Go-template-like string
// where each {{.A.B}} is replaced by the value at that path ({{json .A}} as JSON).
std::string render_format(const std::string& format, const nlohmann::json& v);
// podman's inspect output: `found` as one JSON array (also when empty), or
// each rendered with `format`; then, when some names were not found, each
// error after the first on stderr ("error inspecting object: ...") and the
// first thrown ("inspecting object: ...", exit 125).
void print_inspect(const nlohmann::json& found, const std::string& format, const std::vector<std::string>& errors);
// Rows as podman's tables print them (Go's tabwriter, min width 12, padding
// 2): every column but the last padded to its widest cell.
std::string tab_table(const std::vector<std::vector<std::string>>& rows);
// What stopped a measurement, for its report: "SIGINT", "SIGTERM",
// "SIGHUP", "signal N", or "" for 0 (it ran to the end).
std::string signal_name(int sig);

}  // namespace vitro::cli
