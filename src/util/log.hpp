// Log: human text (default) or JSON lines (`--log-format json`, what
// containerd reads from a runtime's --log file). Errors also go to stderr;
// a program whose stderr is its user's (vitro) sends warnings there too.
#pragma once

#include <string>
#include <string_view>

namespace vitro::log {

enum class Level { Debug, Info, Warn, Error };

// path "" means stderr only. Safe to call once, early in main().
void init(const std::string& path, bool json, bool debug);
// Without a log file, messages at FROM and above go to stderr as
// "PROGRAM: LEVEL: MSG" (vitro: warnings, so that a fallback is seen at the
// default level). The default is vitro-runtime's: errors only.
void to_stderr(std::string_view program, Level from);
void write(Level level, std::string_view msg);
inline void debug(std::string_view m) { write(Level::Debug, m); }
inline void info(std::string_view m) { write(Level::Info, m); }
inline void warn(std::string_view m) { write(Level::Warn, m); }
inline void error(std::string_view m) { write(Level::Error, m); }

}  // namespace vitro::log
