// Running a helper program (OCI hooks): argv, env, data on stdin, a timeout.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace vitro {

struct RunResult {
    int status = 0;         // waitpid status
    bool timed_out = false;
    std::string stderr_tail;  // last bytes the program wrote to stderr
    std::string stdout_data;  // all of stdout (run_program_capture only)
    bool stdout_truncated = false;  // stdout went past the capture limit
};

// Runs `path` with argv/envp (args[0] is argv[0]; empty args => {path}),
// writes `input` to its stdin, waits at most timeout_s seconds (none: no limit),
// killing it with SIGKILL on time-out. Throws only if it cannot start.
RunResult run_program(const std::string& path, const std::vector<std::string>& args,
                      const std::vector<std::string>& env, const std::string& input,
                      std::optional<int> timeout_s);

// Like run_program, but captures stdout into RunResult::stdout_data (at most
// `max_stdout` bytes; beyond that it is read and dropped, and stdout_truncated
// set). stderr is kept apart, as stderr_tail. For protocols that answer on
// stdout (CNI plugins).
RunResult run_program_capture(const std::string& path, const std::vector<std::string>& args,
                              const std::vector<std::string>& env, const std::string& input,
                              std::optional<int> timeout_s, size_t max_stdout = size_t{16} << 20);

// Runs argv[0] (looked up on PATH) with argv, nothing on stdin; throws an
// Error naming the command line, how it ended and its stderr unless it
// exits 0. For the host tools vitro drives (iptables, ip).
void run_checked(const std::vector<std::string>& argv, int timeout_s = 30);

// "exited with status 3", "killed by signal 9", "timed out after 2s".
std::string describe_status(const RunResult& r, std::optional<int> timeout_s);

}  // namespace vitro
