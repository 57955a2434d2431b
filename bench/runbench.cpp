// runbench: runs several commands alternately (A B C A B C ...) and reports,
// for each, the median wall time, CPU time (user+sys of it and everything it
// waited for) and peak RSS, as measured by wait4(). Used by bench/*.sh.
//
//   runbench [-n RUNS] [--setup CMD] -- NAME=CMD NAME=CMD ...
// CMD runs under /bin/sh -c; "{i}" in it is replaced by the run number.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <time.h>
#include <vector>

namespace {

struct Sample {
    double wall_ms, cpu_ms;
    long rss_kb;
};

double now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

std::string expand(std::string cmd, int i) {
    for (size_t p; (p = cmd.find("{i}")) != std::string::npos;) cmd.replace(p, 3, std::to_string(i));
    return cmd;
}

bool run(const std::string& cmd, Sample& s) {
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    int status = 0;
    rusage ru{};
    if (wait4(pid, &status, 0, &ru) < 0) return false;
    s.wall_ms = now_ms() - t0;
    s.cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
    s.rss_kb = ru.ru_maxrss;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

template <typename T>
T median(std::vector<T> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? T{} : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    int runs = 100;
    int i = 1;
    for (; i < argc; ++i) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc) runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--")) { ++i; break; }
        else { fprintf(stderr, "usage: runbench [-n RUNS] -- NAME=CMD...\n"); return 2; }
    }
    std::vector<std::pair<std::string, std::string>> cmds;
    for (; i < argc; ++i) {
        const char* eq = strchr(argv[i], '=');
        if (!eq) { fprintf(stderr, "runbench: expected NAME=CMD, got '%s'\n", argv[i]); return 2; }
        cmds.emplace_back(std::string(argv[i], static_cast<size_t>(eq - argv[i])), eq + 1);
    }
    std::vector<std::vector<Sample>> samples(cmds.size());
    std::vector<double> total_cpu(cmds.size(), 0);
    int failures = 0;
    for (int r = 0; r < runs; ++r)
        for (size_t c = 0; c < cmds.size(); ++c) {
            Sample s{};
            if (!run(expand(cmds[c].second, r), s)) {
                ++failures;
                fprintf(stderr, "runbench: %s run %d failed\n", cmds[c].first.c_str(), r);
                continue;
            }
            samples[c].push_back(s);
            total_cpu[c] += s.cpu_ms;
        }
    printf("| command | runs | median wall (ms) | median CPU (ms) | total CPU (s) | peak RSS (KiB, median) |\n");
    printf("|---|---|---|---|---|---|\n");
    for (size_t c = 0; c < cmds.size(); ++c) {
        std::vector<double> w, cpu;
        std::vector<long> rss;
        for (auto& s : samples[c]) {
            w.push_back(s.wall_ms);
            cpu.push_back(s.cpu_ms);
            rss.push_back(s.rss_kb);
        }
        printf("| %s | %zu | %.2f | %.2f | %.2f | %ld |\n", cmds[c].first.c_str(), samples[c].size(), median(w),
               median(cpu), total_cpu[c] / 1e3, median(rss));
    }
    return failures ? 1 : 0;
}
