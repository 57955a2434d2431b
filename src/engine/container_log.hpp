// Container logs in the CRI format (what kubelet and crictl read):
//   2026-11-23T10:44:35.123456789Z stdout F a whole line
//   2026-11-23T10:44:35.123456789Z stderr P a partial line (no newline follows)
// The monitor writes them; `vitro logs` reads them back.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "util/fd.hpp"

namespace vitro::engine {

enum class LogStream { Stdout, Stderr };

// Appends output to a log file, split into CRI lines. Bytes without a trailing
// newline are held until one arrives (or 16 KiB gather, or flush()), then
// written as a partial (P) line.
class LogWriter {
public:
    explicit LogWriter(const std::string& path);
    void write(LogStream s, std::string_view data);
    void flush();  // writes held partial lines (at the end of the process)
    int fd() const { return fd_.get(); }

private:
    void emit(LogStream s, std::string_view content, bool full);
    UniqueFd fd_;
    std::string pending_[2];
};

struct LogLine {
    std::string time;  // RFC 3339 with nanoseconds
    LogStream stream = LogStream::Stdout;
    bool partial = false;
    std::string content;
};
// Parses one CRI line (without its newline); nullopt for a malformed one.
std::optional<LogLine> parse_log_line(std::string_view line);

struct LogReadOptions {
    std::optional<size_t> tail;   // only the last N lines
    std::string since, until;     // RFC 3339 bounds (compared as text: same UTC format)
    bool timestamps = false;      // prefix each line with its time
};
// Prints the log to stdout/stderr by stream. With `follow`, keeps reading until
// `still_running()` returns false and the file has no more data.
void print_log(const std::string& path, const LogReadOptions& opts, bool follow,
               const std::function<bool()>& still_running = {});

// "10m", "2h", "30s" before now, or an RFC 3339 / Unix time, as an RFC 3339
// UTC string comparable with log timestamps. Throws Error naming `flag`.
std::string parse_time_bound(const std::string& value, const char* flag);

}  // namespace vitro::engine
