#include "util/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <ctime>

#include <nlohmann/json.hpp>

#include "util/time.hpp"

namespace vitro::log {

namespace {
struct Sink {
    int fd = -1;  // log file, or -1
    bool json = false;
    bool debug = false;
    Level stderr_from = Level::Error;
};
Sink& sink() {
    static Sink s;
    return s;
}

const char* level_name(Level l) {
    switch (l) {
        case Level::Debug: return "debug";
        case Level::Info: return "info";
        case Level::Warn: return "warning";
        case Level::Error: return "error";
    }
    return "info";
}

void put(int fd, const std::string& line) {
    // One write per line so concurrent writers do not interleave.
    [[maybe_unused]] ssize_t n = ::write(fd, line.data(), line.size());
}
}  // namespace

void init(const std::string& path, bool json, bool debug) {
    Sink& s = sink();
    s.json = json;
    s.debug = debug;
    if (!path.empty()) s.fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

void set_stderr_level(Level level) { sink().stderr_from = level; }

void write(Level level, std::string_view msg) {
    Sink& s = sink();
    if (level == Level::Debug && !s.debug) return;
    if (s.fd >= 0) {
        std::string line;
        if (s.json) {
            nlohmann::json j = {{"level", level_name(level)}, {"msg", msg}, {"time", rfc3339_now()}};
            line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
        } else {
            line = rfc3339_now() + " " + level_name(level) + ": " + std::string(msg) + "\n";
        }
        put(s.fd, line);
    }
    // stderr gets errors always (one clear line), everything with --debug,
    // and what a service asked for.
    if (level >= s.stderr_from || (s.debug && s.fd < 0))
        put(2, "vitro-runtime: " + std::string(level == Level::Error ? "" : std::string(level_name(level)) + ": ") +
                   std::string(msg) + "\n");
}

}  // namespace vitro::log
