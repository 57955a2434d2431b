#include "linux/procfs.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "util/fd.hpp"

namespace vitro::os {

std::optional<ProcStat> read_proc_stat(pid_t pid) {
    std::string path = "/proc/" + std::to_string(pid) + "/stat";
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return std::nullopt;
    char buf[1024];
    ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
    if (n <= 0) return std::nullopt;
    buf[n] = 0;
    // comm may hold spaces and parens: fields start after the last ')'.
    std::string s(buf, static_cast<size_t>(n));
    size_t rp = s.rfind(')');
    if (rp == std::string::npos || rp + 2 >= s.size()) return std::nullopt;
    ProcStat st;
    st.state = s[rp + 2];
    // Fields after state: ppid is #4, starttime is #22 (1-based, state is #3).
    const char* p = s.c_str() + rp + 3;
    int field = 4;
    while (*p && field <= 22) {
        char* end = nullptr;
        unsigned long long v = std::strtoull(p, &end, 10);
        if (field == 4) st.ppid = static_cast<pid_t>(v);
        if (field == 22) st.start_time = v;
        p = end;
        while (*p == ' ') ++p;
        ++field;
    }
    return st;
}

bool process_alive(pid_t pid, uint64_t start_time) {
    if (pid <= 0) return false;
    auto st = read_proc_stat(pid);
    if (!st || st->state == 'Z' || st->state == 'X') return false;
    return start_time == 0 || st->start_time == start_time;
}

}  // namespace vitro::os
