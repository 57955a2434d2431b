// Helpers the unit tests share: a temp dir that removes itself, the
// message of the vitro::Error a call throws, and a wait for a process to
// be off the CPU.
#pragma once

#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <system_error>

#include "util/error.hpp"

namespace vitro::test {

struct TempDir {
    std::filesystem::path path;
    explicit TempDir(const std::string& tag = "unit") {
        std::string tmpl = "/tmp/vitro-" + tag + "-XXXXXX";
        path = ::mkdtemp(tmpl.data());
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
};

// What f throws as a vitro::Error, or "(no error)".
inline std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

// errno after a raw syscall's result (0 when it succeeded).
inline int errno_of(long rc) { return rc < 0 ? errno : 0; }

// Waits (up to 10 s) until process `pid` is blocked and off its CPU: from
// then on its CPU time (and its cgroup's) stays put until it is woken. Its
// state reads 'S' from before it leaves the CPU, and the last of its run time
// is charged as it leaves; /proc/<pid>/wchan names the wait only once it has
// left (the kernel reads it only for a task off its run queue), "0" before.
inline bool wait_off_cpu(pid_t pid) {
    for (int i = 0; i < 1000; ++i) {
        std::ifstream f("/proc/" + std::to_string(pid) + "/wchan");
        std::string wchan;
        if (!(f >> wchan)) return false;  // gone
        if (wchan != "0") return true;
        ::usleep(10000);
    }
    return false;
}

}  // namespace vitro::test
