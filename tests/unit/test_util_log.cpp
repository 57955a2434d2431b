// util/log: what reaches stderr at each level, for the runtime (errors only:
// its stderr is its caller's) and for vitro (warnings too: a fallback must be
// seen at the default level).
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "util/log.hpp"

using namespace vitro;

namespace {

// What BODY writes to fd 2, through a temp file.
template <typename F>
std::string stderr_of(F body) {
    char path[] = "/tmp/vitro-log-test-XXXXXX";
    int fd = ::mkstemp(path);
    EXPECT_GE(fd, 0);
    std::fflush(stderr);
    int saved = ::dup(2);
    ::dup2(fd, 2);
    body();
    ::dup2(saved, 2);
    ::close(saved);
    std::string out(4096, '\0');
    ssize_t n = ::pread(fd, out.data(), out.size(), 0);
    out.resize(n > 0 ? static_cast<size_t>(n) : 0);
    ::close(fd);
    ::unlink(path);
    return out;
}

}  // namespace

TEST(UtilLog, StderrLevelPerProgram) {
    log::init("", false, false);
    log::to_stderr("vitro-runtime", log::Level::Error);
    EXPECT_EQ(stderr_of([] {
                  log::warn("quiet");
                  log::error("broke");
              }),
              "vitro-runtime: broke\n");
    log::to_stderr("vitro", log::Level::Warn);
    EXPECT_EQ(stderr_of([] {
                  log::info("not shown");
                  log::warn("fell back");
                  log::error("broke");
              }),
              "vitro: warning: fell back\nvitro: broke\n");
    log::init("", false, true);  // --log-level debug shows everything
    EXPECT_EQ(stderr_of([] { log::debug("detail"); }), "vitro: debug: detail\n");
    log::init("", false, false);
    log::to_stderr("vitro-runtime", log::Level::Error);
}
