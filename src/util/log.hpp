// Runtime log: human text (default) or JSON lines (`--log-format json`, what
// containerd reads from a runtime's --log file). Errors also go to stderr.
#pragma once

#include <string>
#include <string_view>

namespace vitro::log {

enum class Level { Debug, Info, Warn, Error };

// path "" means stderr only. Safe to call once, early in main().
void init(const std::string& path, bool json, bool debug);
// stderr also gets messages at `level` and above (by default errors only;
// everything with debug): for services, whose stderr is their log.
void set_stderr_level(Level level);
void write(Level level, std::string_view msg);
inline void debug(std::string_view m) { write(Level::Debug, m); }
inline void info(std::string_view m) { write(Level::Info, m); }
inline void warn(std::string_view m) { write(Level::Warn, m); }
inline void error(std::string_view m) { write(Level::Error, m); }

}  // namespace vitro::log
