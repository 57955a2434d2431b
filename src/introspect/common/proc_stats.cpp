#include "introspect/common/proc_stats.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>

#include "introspect/common/stat_file.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"

namespace vitro::introspect {

namespace {

uint64_t to_u64(std::string_view s) {
    uint64_t v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
}

template <typename Fn>
void for_each_line(std::string_view text, Fn fn) {
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t eol = text.find('\n', pos);
        if (eol == std::string_view::npos) eol = text.size();
        fn(text.substr(pos, eol - pos));
        pos = eol + 1;
    }
}

}  // namespace

double clock_ticks_per_second() {
    static const double hz = static_cast<double>(::sysconf(_SC_CLK_TCK));
    return hz;
}

std::optional<ProcessSample> parse_proc_stat(std::string_view text) {
    auto open = text.find('(');
    auto close = text.rfind(')');
    if (open == std::string_view::npos || close == std::string_view::npos || close < open) return std::nullopt;
    ProcessSample p;
    p.pid = static_cast<pid_t>(to_u64(text.substr(0, open)));
    p.comm = std::string(text.substr(open + 1, close - open - 1));
    // Fields from 3 (state) on; f[0] is field 3.
    std::string_view f[24];
    std::size_t n = 0;
    fields(text.substr(close + 1), f, 24, n);
    if (n < 22) return std::nullopt;
    p.state = f[0].empty() ? '?' : f[0][0];
    p.ppid = static_cast<pid_t>(to_u64(f[1]));
    p.cpu_s = static_cast<double>(to_u64(f[11]) + to_u64(f[12])) / clock_ticks_per_second();
    p.threads = to_u64(f[17]);
    p.start_ticks = to_u64(f[19]);
    static const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    p.rss_bytes = to_u64(f[21]) * page;
    return p;
}

std::optional<ProcessSample> read_process(pid_t pid) {
    char path[48];
    std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    char buf[1024];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) return std::nullopt;
    return parse_proc_stat(std::string_view(buf, static_cast<std::size_t>(n)));
}

OpenFiles count_open_files(pid_t pid, bool sockets) {
    OpenFiles out;
    char path[48];
    std::snprintf(path, sizeof path, "/proc/%d/fd", pid);
    if (!sockets) {
        // Linux 6.2 and later report the count as the directory's size: one
        // stat instead of a walk (ours holds ~10 fds per container).
        struct stat st;
        if (::stat(path, &st) == 0 && st.st_size > 0) {
            out.fds = static_cast<uint64_t>(st.st_size);
            return out;
        }
    }
    UniqueFd dir(::open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) return out;
    // getdents64 itself, not opendir: fdopendir's fstat and fcntl are two
    // system calls more for each new process of every container.
    alignas(dirent64) char buf[4096];
    char target[64];
    for (;;) {
        ssize_t n = ::getdents64(dir.get(), buf, sizeof buf);
        if (n <= 0) break;
        for (ssize_t off = 0; off < n;) {
            auto* e = reinterpret_cast<dirent64*>(buf + off);
            off += e->d_reclen;
            if (e->d_name[0] == '.') continue;
            ++out.fds;
            if (!sockets) continue;
            // "socket:[1234]": the link text says what the fd is without a stat.
            ssize_t k = ::readlinkat(dir.get(), e->d_name, target, sizeof target);
            if (k > 7 && std::string_view(target, 7) == "socket:") ++out.sockets;
        }
    }
    return out;
}

std::vector<InterfaceCounters> parse_net_dev(std::string_view text) {
    std::vector<InterfaceCounters> out;
    for_each_line(text, [&](std::string_view line) {
        auto colon = line.find(':');
        if (colon == std::string_view::npos) return;  // the two header lines
        std::string_view name = line.substr(0, colon);
        while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
        if (name == "lo" || name.empty()) return;
        std::string_view f[16];
        std::size_t n = 0;
        fields(line.substr(colon + 1), f, 16, n);
        if (n < 16) return;
        InterfaceCounters c{std::string(name)};
        c.rx_bytes = to_u64(f[0]);
        c.rx_packets = to_u64(f[1]);
        c.rx_errors = to_u64(f[2]);
        c.rx_dropped = to_u64(f[3]);
        c.tx_bytes = to_u64(f[8]);
        c.tx_packets = to_u64(f[9]);
        c.tx_errors = to_u64(f[10]);
        c.tx_dropped = to_u64(f[11]);
        out.push_back(std::move(c));
    });
    return out;
}

void parse_proc_stat_host(std::string_view text, HostSample& out) {
    const double hz = clock_ticks_per_second();
    for_each_line(text, [&](std::string_view line) {
        std::string_view f[12];
        std::size_t n = 0;
        fields(line, f, 12, n);
        if (n < 2) return;
        if (f[0].size() > 3 && f[0].compare(0, 3, "cpu") == 0 && n >= 9) {
            HostSample::Cpu c;
            c.cpu = std::string(f[0].substr(3));
            double* v[] = {&c.user, &c.nice, &c.system, &c.idle, &c.iowait, &c.irq, &c.softirq, &c.steal};
            for (std::size_t i = 0; i < 8; ++i) *v[i] = static_cast<double>(to_u64(f[i + 1])) / hz;
            out.cpus.push_back(std::move(c));
        } else if (f[0] == "btime") {
            out.boot_time = static_cast<double>(to_u64(f[1]));
        } else if (f[0] == "procs_running") {
            out.procs_running = to_u64(f[1]);
        } else if (f[0] == "procs_blocked") {
            out.procs_blocked = to_u64(f[1]);
        } else if (f[0] == "ctxt") {
            out.context_switches = to_u64(f[1]);
        } else if (f[0] == "processes") {
            out.forks = to_u64(f[1]);
        }
    });
}

void parse_meminfo(std::string_view text, HostSample& out) {
    for_each_line(text, [&](std::string_view line) {
        std::string_view f[3];
        std::size_t n = 0;
        fields(line, f, 3, n);
        if (n < 2 || f[0].empty() || f[0].back() != ':') return;
        uint64_t v = to_u64(f[1]);
        if (n == 3 && f[2] == "kB") v *= 1024;
        out.meminfo[std::string(f[0].substr(0, f[0].size() - 1))] = v;
    });
}

void parse_loadavg(std::string_view text, HostSample& out) {
    std::string s(text);
    char* end = nullptr;
    out.load1 = std::strtod(s.c_str(), &end);
    out.load5 = std::strtod(end, &end);
    out.load15 = std::strtod(end, &end);
}

double boot_time() {
    static const double t = [] {
        HostSample h;
        parse_proc_stat_host(read_file("/proc/stat"), h);
        return h.boot_time;
    }();
    return t;
}

}  // namespace vitro::introspect
