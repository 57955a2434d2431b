#include "engine/container_log.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <thread>

#include "util/error.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"
#include "util/time.hpp"

namespace vitro::engine {

namespace {
constexpr size_t kMaxPartial = 16 * 1024;
const char* stream_name(LogStream s) { return s == LogStream::Stdout ? "stdout" : "stderr"; }
}  // namespace

LogLimits parse_log_opts(const std::vector<std::string>& opts, LogLimits base, const char* flag) {
    for (const auto& opt : opts) {
        for (const auto& item : split(opt, ',')) {
            const std::string what = std::string(flag) + " \"" + item + "\"";
            auto eq = item.find('=');
            if (eq == std::string::npos || eq + 1 == item.size())
                throw Error(EINVAL, what + ": expected KEY=VALUE (max-size=10m, max-file=3)");
            std::string key = item.substr(0, eq), value = item.substr(eq + 1);
            if (key == "max-size") {
                uint64_t v = parse_size(value, std::string(flag) + " max-size");
                base.max_size = v == static_cast<uint64_t>(-1) ? 0 : v;  // -1: unbounded, as podman's log_size_max
            } else if (key == "max-file") {
                uint64_t v = 0;
                if (!parse_u64(value, v) || v < 1 || v > 1000)
                    throw Error(EINVAL, what + ": max-file must be a whole number from 1 to 1000");
                base.max_file = static_cast<unsigned>(v);
            } else {
                throw Error(EINVAL, what + ": unknown log option \"" + key + "\" (known: max-size, max-file)");
            }
        }
    }
    return base;
}

LogLimits default_log_limits() {
    const char* env = std::getenv("VITRO_LOG_OPTS");
    if (!env || !*env) return kDefaultLogLimits;
    return parse_log_opts({env}, kDefaultLogLimits, "$VITRO_LOG_OPTS");
}

LogWriter::LogWriter(const std::string& path, LogLimits limits)
    : path_(path), limits_(limits), fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640)) {
    if (!fd_) throw_errno("open log", path);
    struct stat st;
    if (::fstat(fd_.get(), &st) == 0) size_ = static_cast<uint64_t>(st.st_size);
}

// Best effort throughout: a log that cannot rotate must not stop the container.
void LogWriter::rotate() {
    if (limits_.max_file <= 1) {
        if (::ftruncate(fd_.get(), 0) < 0) return rotate_failed("truncate");
        size_ = 0;  // O_APPEND: the next line lands at 0
        return;
    }
    for (unsigned k = limits_.max_file - 1; k >= 2; --k)
        ::rename((path_ + "." + std::to_string(k - 1)).c_str(), (path_ + "." + std::to_string(k)).c_str());
    if (::rename(path_.c_str(), (path_ + ".1").c_str()) < 0) return rotate_failed("rename");
    UniqueFd fresh(::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
    if (!fresh) return rotate_failed("open");  // keep writing to the renamed file
    fd_ = std::move(fresh);
    size_ = 0;
    rotate_warned_ = false;
}

// Tried again after another max_size bytes, not at every line.
void LogWriter::rotate_failed(const char* op) {
    int err = errno;
    size_ = 0;
    if (rotate_warned_) return;
    rotate_warned_ = true;
    log::warn("log " + path_ + ": cannot rotate (" + op + ": " + std::strerror(err) + "); it grows past its " +
              std::to_string(limits_.max_size) + " bytes until a later rotation succeeds");
}

void LogWriter::emit(LogStream s, std::string_view content, bool full) {
    std::string line = rfc3339_now();
    line += ' ';
    line += stream_name(s);
    line += full ? " F " : " P ";
    line += content;
    line += '\n';
    if (limits_.max_size && size_ > 0 && size_ + line.size() > limits_.max_size) rotate();
    if (try_write_all(fd_.get(), line)) size_ += line.size();  // a full disk must not stop the container
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

std::vector<std::string> log_files(const std::string& path) {
    std::vector<std::string> out;
    for (unsigned k = 1;; ++k) {
        std::string p = path + "." + std::to_string(k);
        if (!path_exists(p)) break;
        out.push_back(p);
    }
    std::reverse(out.begin(), out.end());
    if (path_exists(path)) out.push_back(path);
    return out;
}

namespace {
constexpr size_t kReadChunk = 64 * 1024;

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
            char chunk[kReadChunk];
            ssize_t n = ::read(fd, chunk, sizeof chunk);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            buf.append(chunk, static_cast<size_t>(n));
        }
    }
};

// Reads a file's lines backwards from offset `end`. The first piece it
// returns is what follows the last newline: empty, or a line being written.
struct ReverseLineReader {
    int fd;
    off_t pos;  // buf holds the file's bytes from pos on, up to what was returned
    std::string buf;
    bool done = false;
    bool prev(std::string& line) {
        for (;;) {
            size_t nl = buf.rfind('\n');
            if (nl != std::string::npos) {
                line.assign(buf, nl + 1);
                buf.resize(nl);
                return true;
            }
            if (pos == 0) {
                if (done) return false;
                done = true;
                line = std::move(buf);
                buf.clear();
                return true;
            }
            size_t n = static_cast<size_t>(std::min<off_t>(pos, static_cast<off_t>(kReadChunk)));
            pos -= static_cast<off_t>(n);
            std::string chunk(n, '\0');
            ssize_t got = ::pread(fd, chunk.data(), n, pos);
            if (got < 0 && errno == EINTR) {
                pos += static_cast<off_t>(n);
                continue;
            }
            if (got != static_cast<ssize_t>(n)) return false;  // shrank under us (a truncating rotation)
            buf.insert(0, chunk);
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

void print_raw(const std::string& raw, const LogReadOptions& opts) {
    if (auto l = parse_log_line(raw); l && in_bounds(*l, opts)) print_line(*l, opts);
}

struct OpenLog {
    UniqueFd fd;
    struct stat st {};
};

// The log's files opened, oldest first (the live one last unless
// rotated_only). Opened newest first, so that a rotation meanwhile makes a
// file appear twice (kept once), never go unseen.
std::vector<OpenLog> open_log_files(const std::string& path, bool rotated_only = false) {
    std::vector<OpenLog> out;
    for (unsigned k = rotated_only ? 1 : 0;; ++k) {
        std::string p = k == 0 ? path : path + "." + std::to_string(k);
        OpenLog f{UniqueFd(::open(p.c_str(), O_RDONLY | O_CLOEXEC)), {}};
        if (!f.fd || ::fstat(f.fd.get(), &f.st) < 0) {
            if (k == 0) continue;  // not written yet, or being rotated
            // A rotation renames .K-1 to .K before .K-2 to .K-1: one name
            // may be missing for a moment, two in a row end the list.
            std::string next = path + "." + std::to_string(k + 1);
            if (::access(next.c_str(), F_OK) == 0) continue;
            break;
        }
        bool seen = false;
        for (const auto& o : out) seen = seen || (o.st.st_ino == f.st.st_ino && o.st.st_dev == f.st.st_dev);
        if (!seen) out.push_back(std::move(f));
    }
    std::reverse(out.begin(), out.end());
    return out;
}

// The last opts.tail whole lines (with the partial pieces that lead up to
// them, and those after the last), newest file first, read backwards. Sets
// *resume to where the newest file's complete lines end.
void print_tail(std::vector<OpenLog>& files, const LogReadOptions& opts, off_t* resume) {
    std::vector<LogLine> picked;  // newest first
    size_t full = 0;
    std::string raw;
    for (size_t i = files.size(); i-- > 0;) {
        ReverseLineReader r{files[i].fd.get(), files[i].st.st_size, {}};
        if (r.prev(raw) && i + 1 == files.size()) *resume = files[i].st.st_size - static_cast<off_t>(raw.size());
        while (r.prev(raw)) {
            auto l = parse_log_line(raw);
            if (!l || !in_bounds(*l, opts)) continue;
            if (!l->partial && full++ == *opts.tail) goto done;
            picked.push_back(std::move(*l));
        }
    }
done:
    for (auto it = picked.rbegin(); it != picked.rend(); ++it) print_line(*it, opts);
}

// The rotated files written after OLDER and before NEWER (both open, so
// known by inode), oldest first: all after OLDER when NEWER is not rotated
// yet, all before NEWER when OLDER has been rotated out of existence.
std::vector<OpenLog> rotated_between(const std::string& path, const struct stat& older, const struct stat& newer) {
    std::vector<OpenLog> rotated = open_log_files(path, true);  // oldest first
    auto is = [](const struct stat& st) {
        return [&st](const OpenLog& f) { return f.st.st_ino == st.st_ino && f.st.st_dev == st.st_dev; };
    };
    auto last = std::find_if(rotated.begin(), rotated.end(), is(newer));
    rotated.erase(last, rotated.end());
    auto first = std::find_if(rotated.begin(), rotated.end(), is(older));
    if (first != rotated.end()) rotated.erase(rotated.begin(), first + 1);
    return rotated;
}
}  // namespace

void print_log(const std::string& path, const LogReadOptions& opts, bool follow,
               const std::function<bool()>& still_running) {
    std::vector<OpenLog> files = open_log_files(path);
    if (files.empty()) {
        if (!follow) return;  // nothing logged yet
        OpenLog f{UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)), {}};
        if (!f.fd) throw_errno("open log", path);
        files.push_back(std::move(f));
    }
    std::string raw;
    if (opts.tail) {
        off_t resume = 0;
        print_tail(files, opts, &resume);
        ::lseek(files.back().fd.get(), resume, SEEK_SET);
    } else {
        for (size_t i = 0; i + 1 < files.size(); ++i) {
            LineReader old{files[i].fd.get(), {}};
            while (old.next(raw)) print_raw(raw, opts);
        }
    }
    OpenLog cur = std::move(files.back());
    LineReader reader{cur.fd.get(), {}};
    if (!opts.tail)
        while (reader.next(raw)) print_raw(raw, opts);
    if (!follow) return;
    for (;;) {
        bool running = still_running && still_running();
        bool any = false;
        while (reader.next(raw)) {
            any = true;
            print_raw(raw, opts);
        }
        // Rotated: what was written to the old file is read (above), then the
        // files rotated out since, then the new file from its start.
        struct stat now, mine;
        if (::fstat(cur.fd.get(), &mine) == 0 && ::stat(path.c_str(), &now) == 0) {
            if (now.st_ino != mine.st_ino || now.st_dev != mine.st_dev) {
                // The writer may have added to the old file between the read
                // above and its rename: it is complete now, so read it to its end.
                while (reader.next(raw)) print_raw(raw, opts);
                // The live file first, then what was rotated between the two:
                // a rotation meanwhile moves the live file, never past us.
                OpenLog fresh{UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)), {}};
                if (fresh.fd && ::fstat(fresh.fd.get(), &fresh.st) == 0) {
                    for (auto& f : rotated_between(path, mine, fresh.st)) {
                        LineReader r{f.fd.get(), {}};
                        while (r.next(raw)) print_raw(raw, opts);
                    }
                    cur = std::move(fresh);
                    reader = LineReader{cur.fd.get(), {}};
                    continue;
                }
            } else if (mine.st_size < ::lseek(cur.fd.get(), 0, SEEK_CUR)) {  // emptied (max-file=1)
                ::lseek(cur.fd.get(), 0, SEEK_SET);
                reader.buf.clear();
                continue;
            }
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
