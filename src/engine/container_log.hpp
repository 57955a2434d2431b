// Container logs in the CRI format (what kubelet and crictl read):
//   2026-11-23T10:44:35.123456789Z stdout F a whole line
//   2026-11-23T10:44:35.123456789Z stderr P a partial line (no newline follows)
// The monitor writes them, rotating by size; `vitro logs` reads them back,
// the rotated files (ctr.log.N, ..., ctr.log.1) before the current one.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/fd.hpp"

namespace vitro::engine {

enum class LogStream { Stdout, Stderr };

// How much log a container keeps (--log-opt max-size=...,max-file=...,
// docker's and podman's names). A line that would take the file past
// max_size starts a new one: with max_file > 1 the file becomes <log>.1
// (.1 becomes .2, ...; max_file files in all, the current one included),
// with max_file 1 it is emptied. max_size 0: unbounded.
struct LogLimits {
    uint64_t max_size = 20 << 20;
    unsigned max_file = 5;
};
// The limits when neither --log-opt nor $VITRO_LOG_OPTS says otherwise (the
// struct's defaults: 20 MiB x 5, docker's "local" driver's).
inline constexpr LogLimits kDefaultLogLimits{};
// Applies options "max-size=10m" (k/m/g suffixes; -1 or 0: unbounded) and
// "max-file=3", each given alone or comma-separated, on top of `base`.
// Throws Error naming `flag`, the option and what was wrong.
LogLimits parse_log_opts(const std::vector<std::string>& opts, LogLimits base, const char* flag = "--log-opt");
// kDefaultLogLimits with $VITRO_LOG_OPTS (the same syntax) applied.
LogLimits default_log_limits();

// Appends output to a log file, split into CRI lines. Bytes without a trailing
// newline are held until one arrives (or 16 KiB gather, or flush()), then
// written as a partial (P) line. Each line is one write(), so that a reader
// never sees half of one, and lands whole in one file.
class LogWriter {
public:
    explicit LogWriter(const std::string& path, LogLimits limits = {});
    void write(LogStream s, std::string_view data);
    void flush();  // writes held partial lines (at the end of the process)

private:
    void emit(LogStream s, std::string_view content, bool full);
    void rotate();
    void rotate_failed(const char* op);
    std::string path_;
    LogLimits limits_;
    UniqueFd fd_;
    uint64_t size_ = 0;
    bool rotate_warned_ = false;  // since the last rotation that worked
    std::string pending_[2];
};

// The files of the log at `path`, oldest first: <path>.N ... <path>.1, <path>
// (those that exist).
std::vector<std::string> log_files(const std::string& path);

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
// Prints the log (its rotated files first) to stdout/stderr by stream. A
// tail is read backwards from the end of the newest file, then older ones as
// needed: the cost is that of the lines printed, not of the log's size. With
// `follow`, keeps reading, across rotations, until `still_running()` returns
// false and the file has no more data.
void print_log(const std::string& path, const LogReadOptions& opts, bool follow,
               const std::function<bool()>& still_running = {});

// "10m", "2h", "30s" before now, or an RFC 3339 / Unix time, as an RFC 3339
// UTC string comparable with log timestamps. Throws Error naming `flag`.
std::string parse_time_bound(const std::string& value, const char* flag);

}  // namespace vitro::engine
