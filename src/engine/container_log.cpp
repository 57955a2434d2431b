#include "engine/container_log.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <deque>
#include <thread>

#include "util/error.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"
#include "util/time.hpp"

namespace vitro::engine {

namespace {
constexpr size_t kMaxPartial = 16 * 1024;
const char* stream_name(LogStream s) { return s == LogStream::Stdout ? "stdout" : "stderr"; }
}  // namespace

LogWriter::LogWriter(const std::string& path)
    : fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640)) {
    if (!fd_) throw_errno("open log", path);
}

void LogWriter::emit(LogStream s, std::string_view content, bool full) {
    std::string line = rfc3339_now();
    line += ' ';
    line += stream_name(s);
    line += full ? " F " : " P ";
    line += content;
    line += '\n';
    (void)try_write_all(fd_.get(), line);  // a full disk must not stop the container
}

void LogWriter::write(LogStream s, std::string_view data) {
    std::string& pending = pending_[static_cast<int>(s)];
    for (;;) {
        size_t nl = data.find('\n');
        if (nl == std::string_view::npos) break;
        if (pending.empty()) {
            emit(s, data.substr(0, nl), true);
        } else {
            pending.append(data.substr(0, nl));
            emit(s, pending, true);
            pending.clear();
        }
        data.remove_prefix(nl + 1);
    }
    pending.append(data);
    if (pending.size() >= kMaxPartial) {
        emit(s, pending, false);
        pending.clear();
    }
}

void LogWriter::flush() {
    for (int i = 0; i < 2; ++i)
        if (!pending_[i].empty()) {
            emit(static_cast<LogStream>(i), pending_[i], false);
            pending_[i].clear();
        }
}

std::optional<LogLine> parse_log_line(std::string_view line) {
    size_t a = line.find(' ');
    if (a == std::string_view::npos) return std::nullopt;
    size_t b = line.find(' ', a + 1);
    if (b == std::string_view::npos) return std::nullopt;
    LogLine l;
    l.time = std::string(line.substr(0, a));
    std::string_view stream = line.substr(a + 1, b - a - 1);
    if (stream == "stdout") l.stream = LogStream::Stdout;
    else if (stream == "stderr") l.stream = LogStream::Stderr;
    else return std::nullopt;
    std::string_view rest = line.substr(b + 1);
    if (rest.size() < 1 || (rest[0] != 'F' && rest[0] != 'P')) return std::nullopt;
    l.partial = rest[0] == 'P';
    l.content = rest.size() >= 2 ? std::string(rest.substr(2)) : std::string();
    return l;
}

namespace {
// Reads whole lines from fd, keeping an unterminated tail for the next call.
struct LineReader {
    int fd;
    std::string buf;
    // Returns false at EOF (nothing more for now).
    bool next(std::string& line) {
        for (;;) {
            size_t nl = buf.find('\n');
            if (nl != std::string::npos) {
                line.assign(buf, 0, nl);
                buf.erase(0, nl + 1);
                return true;
            }
            char chunk[65536];
            ssize_t n = ::read(fd, chunk, sizeof chunk);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            buf.append(chunk, static_cast<size_t>(n));
        }
    }
};

void print_line(const LogLine& l, const LogReadOptions& opts) {
    std::string out;
    if (opts.timestamps) out = l.time + " ";
    out += l.content;
    if (!l.partial) out += '\n';
    (void)try_write_all(l.stream == LogStream::Stdout ? 1 : 2, out);
}

bool in_bounds(const LogLine& l, const LogReadOptions& opts) {
    if (!opts.since.empty() && l.time < opts.since) return false;
    if (!opts.until.empty() && l.time > opts.until) return false;
    return true;
}
}  // namespace

void print_log(const std::string& path, const LogReadOptions& opts, bool follow,
               const std::function<bool()>& still_running) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT && !follow) return;  // nothing logged yet
        throw_errno("open log", path);
    }
    LineReader reader{fd.get(), {}};
    std::string raw;
    if (opts.tail) {
        std::deque<LogLine> last;
        size_t full_lines = 0;
        while (reader.next(raw)) {
            auto l = parse_log_line(raw);
            if (!l || !in_bounds(*l, opts)) continue;
            last.push_back(std::move(*l));
            if (!last.back().partial) ++full_lines;
            // Keep the last N whole lines (with the partial pieces that lead up to them).
            while (full_lines > *opts.tail && !last.empty()) {
                if (!last.front().partial) --full_lines;
                last.pop_front();
            }
        }
        for (const auto& l : last) print_line(l, opts);
    } else {
        while (reader.next(raw))
            if (auto l = parse_log_line(raw); l && in_bounds(*l, opts)) print_line(*l, opts);
    }
    if (!follow) return;
    for (;;) {
        bool running = still_running && still_running();
        bool any = false;
        while (reader.next(raw)) {
            any = true;
            if (auto l = parse_log_line(raw); l && in_bounds(*l, opts)) print_line(*l, opts);
        }
        if (!running && !any) return;
        if (!any) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

std::string parse_time_bound(const std::string& value, const char* flag) {
    using namespace std::chrono;
    auto now = system_clock::now();
    // A duration before now: 10s, 5m, 2h, 1h30m.
    if (!value.empty() && std::isdigit(static_cast<unsigned char>(value[0])) &&
        value.find_first_of("smhd") != std::string::npos && value.find('-') == std::string::npos &&
        value.find(':') == std::string::npos) {
        uint64_t total = 0, num = 0;
        bool have = false;
        for (char c : value) {
            if (std::isdigit(static_cast<unsigned char>(c))) {
                num = num * 10 + static_cast<uint64_t>(c - '0');
                have = true;
                continue;
            }
            uint64_t mult = c == 's' ? 1 : c == 'm' ? 60 : c == 'h' ? 3600 : c == 'd' ? 86400 : 0;
            if (!mult || !have) throw Error(std::string(flag) + ": invalid duration or time '" + value + "'");
            total += num * mult;
            num = 0;
            have = false;
        }
        if (have) throw Error(std::string(flag) + ": invalid duration '" + value + "' (a unit is missing)");
        auto t = now - seconds(total);
        auto secs = time_point_cast<seconds>(t);
        return rfc3339(system_clock::to_time_t(secs), static_cast<long>(duration_cast<nanoseconds>(t - secs).count()));
    }
    // Unix seconds.
    uint64_t unix_s = 0;
    if (parse_u64(value, unix_s)) return rfc3339(static_cast<std::time_t>(unix_s), 0);
    // RFC 3339: normalise "YYYY-MM-DDTHH:MM:SS[.frac]Z" to the log's form.
    std::tm tm{};
    const char* end = ::strptime(value.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end) end = ::strptime(value.c_str(), "%Y-%m-%d", &tm);
    if (!end) throw Error(std::string(flag) + ": invalid time '" + value + "' (use RFC 3339, Unix seconds or a duration like 10m)");
    long nanos = 0;
    if (*end == '.') {
        ++end;
        int digits = 0;
        while (std::isdigit(static_cast<unsigned char>(*end))) {
            if (digits < 9) nanos = nanos * 10 + (*end - '0'), ++digits;
            ++end;
        }
        while (digits++ < 9) nanos *= 10;
    }
    if (*end != 'Z' && *end != '\0') throw Error(std::string(flag) + ": only UTC times (ending in Z) are supported: '" + value + "'");
    return rfc3339(::timegm(&tm), nanos);
}

}  // namespace vitro::engine
