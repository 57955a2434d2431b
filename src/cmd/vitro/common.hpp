// Helpers shared by the command files: the engine from the global flags,
// docker-style durations, output formats.
#pragma once

#include <string>

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

}  // namespace vitro::cli
