// Helpers the unit tests share: a temp dir that removes itself, and the
// message of the vitro::Error a call throws.
#pragma once

#include <stdlib.h>

#include <cerrno>
#include <filesystem>
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

}  // namespace vitro::test
