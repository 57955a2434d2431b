// A container's log limits (container_log.hpp) as its state record keeps
// them: config "log": {"max_size": bytes, "max_file": n}.
#pragma once

#include <nlohmann/json.hpp>

#include "engine/container_log.hpp"

namespace vitro::engine {

inline nlohmann::json log_limits_json(const LogLimits& l) {
    return {{"max_size", l.max_size}, {"max_file", l.max_file}};
}

// kDefaultLogLimits for a record without them (made before logs were bounded).
inline LogLimits log_limits_of(const nlohmann::json& config) {
    LogLimits l = kDefaultLogLimits;
    auto it = config.is_object() ? config.find("log") : config.end();
    if (it == config.end() || !it->is_object()) return l;
    l.max_size = it->value("max_size", l.max_size);
    l.max_file = it->value("max_file", l.max_file);
    return l;
}

}  // namespace vitro::engine
