// engine/container_log: size rotation in the writer, --log-opt parsing, and
// the reader across rotated files (whole, --tail read backwards, --follow
// through rotations), on real files.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "engine/container_log.hpp"
#include "testutil.hpp"

using namespace vitro;
using namespace vitro::engine;
using vitro::test::error_of;
using vitro::test::TempDir;

namespace {

std::string numbered(int i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "line %06d", i);
    return buf;
}

// "line 000007\n..." for [from, to).
std::string expected_lines(int from, int to) {
    std::string s;
    for (int i = from; i < to; ++i) s += numbered(i) + "\n";
    return s;
}

void write_lines(LogWriter& w, int from, int to) {
    for (int i = from; i < to; ++i) w.write(LogStream::Stdout, numbered(i) + "\n");
}

std::string file_text(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// What print_log writes to stdout, from a file fd 1 points at meanwhile.
std::string capture_stdout(const std::string& file, const std::function<void()>& f) {
    std::fflush(stdout);
    int saved = ::dup(1);
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ::dup2(fd, 1);
    ::close(fd);
    f();
    ::dup2(saved, 1);
    ::close(saved);
    return file_text(file);
}

std::string read_ctr_log(const std::string& path, const std::string& out, std::optional<size_t> tail = std::nullopt) {
    LogReadOptions o;
    o.tail = tail;
    return capture_stdout(out, [&] { print_log(path, o, false); });
}

uint64_t bytes_read_so_far() {
    std::ifstream io("/proc/self/io");
    for (std::string key; io >> key;) {
        uint64_t v = 0;
        io >> v;
        if (key == "rchar:") return v;
    }
    return 0;
}

// Where two long outputs part, for a readable failure.
std::string first_difference(const std::string& got, const std::string& want) {
    size_t i = 0;
    while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
    size_t from = got.rfind('\n', i) == std::string::npos ? 0 : got.rfind('\n', i) + 1;
    return "outputs differ at byte " + std::to_string(i) + " (of " + std::to_string(got.size()) + " got, " +
           std::to_string(want.size()) + " wanted): got \"" + got.substr(from, 40) + "\", wanted \"" +
           want.substr(from, 40) + "\"";
}

// The first line of the output, as a number (the suffix kept starts there).
int first_seq(const std::string& out) { return std::stoi(out.substr(5, 6)); }

}  // namespace

TEST(ContainerLog, ParseLogOpts) {
    LogLimits base{.max_size = 7, .max_file = 2};
    LogLimits l = parse_log_opts({"max-size=10m"}, base);
    EXPECT_EQ(l.max_size, 10u << 20);
    EXPECT_EQ(l.max_file, 2u);
    l = parse_log_opts({"max-size=512k,max-file=3"}, base);
    EXPECT_EQ(l.max_size, 512u << 10);
    EXPECT_EQ(l.max_file, 3u);
    l = parse_log_opts({"max-file=4", "max-size=1g"}, base);
    EXPECT_EQ(l.max_size, 1u << 30);
    EXPECT_EQ(l.max_file, 4u);
    EXPECT_EQ(parse_log_opts({"max-size=-1"}, base).max_size, 0u);  // unbounded
    EXPECT_EQ(parse_log_opts({}, base).max_size, 7u);

    auto err = [&](const std::string& opt) { return error_of([&] { parse_log_opts({opt}, base); }); };
    std::string e = err("max-size=ten");
    EXPECT_NE(e.find("--log-opt max-size"), std::string::npos) << e;
    EXPECT_NE(e.find("ten"), std::string::npos) << e;
    e = err("max-size=10x");
    EXPECT_NE(e.find("10x"), std::string::npos) << e;
    e = err("max-file=0");
    EXPECT_NE(e.find("max-file=0"), std::string::npos) << e;
    EXPECT_NE(e.find("1 to 1000"), std::string::npos) << e;
    EXPECT_NE(err("max-file=two").find("max-file=two"), std::string::npos);
    e = err("colour=red");
    EXPECT_NE(e.find("unknown log option \"colour\""), std::string::npos) << e;
    EXPECT_NE(err("max-size").find("KEY=VALUE"), std::string::npos);
    EXPECT_NE(error_of([&] { parse_log_opts({"max-size=1m"}, base, "$VITRO_LOG_OPTS"); }), "x");
    EXPECT_NE(error_of([&] { parse_log_opts({"max-size=q"}, base, "$VITRO_LOG_OPTS"); }).find("$VITRO_LOG_OPTS"),
              std::string::npos);
}

TEST(ContainerLog, DefaultFromEnvironment) {
    ::unsetenv("VITRO_LOG_OPTS");
    EXPECT_EQ(default_log_limits().max_size, kDefaultLogLimits.max_size);
    EXPECT_EQ(default_log_limits().max_file, kDefaultLogLimits.max_file);
    ::setenv("VITRO_LOG_OPTS", "max-size=1m,max-file=2", 1);
    EXPECT_EQ(default_log_limits().max_size, 1u << 20);
    EXPECT_EQ(default_log_limits().max_file, 2u);
    ::setenv("VITRO_LOG_OPTS", "max-size=big", 1);
    EXPECT_NE(error_of([] { default_log_limits(); }).find("$VITRO_LOG_OPTS"), std::string::npos);
    ::unsetenv("VITRO_LOG_OPTS");
}

// Rotation keeps max_file files of at most max_size bytes; read back, they
// are the newest lines, in order, none twice.
TEST(ContainerLog, RotatesBySizeAndReadsInOrder) {
    TempDir t("ctrlog");
    const std::string log = (t.path / "ctr.log").string();
    {
        LogWriter w(log, {.max_size = 4096, .max_file = 3});
        write_lines(w, 0, 1000);
    }
    EXPECT_TRUE(std::filesystem::exists(log + ".1"));
    EXPECT_TRUE(std::filesystem::exists(log + ".2"));
    EXPECT_FALSE(std::filesystem::exists(log + ".3"));
    EXPECT_EQ(log_files(log), (std::vector<std::string>{log + ".2", log + ".1", log}));
    for (const auto& f : log_files(log)) EXPECT_LE(std::filesystem::file_size(f), 4096u) << f;

    std::string all = read_ctr_log(log, (t.path / "out").string());
    ASSERT_FALSE(all.empty());
    int first = first_seq(all);
    EXPECT_GT(first, 0);
    // A contiguous suffix: nothing lost inside, nothing twice.
    EXPECT_TRUE(all == expected_lines(first, 1000)) << first_difference(all, expected_lines(first, 1000));

    EXPECT_EQ(read_ctr_log(log, (t.path / "out").string(), 2), expected_lines(998, 1000));
    EXPECT_EQ(read_ctr_log(log, (t.path / "out").string(), 0), "");
    // A tail longer than the newest file goes on into the older ones.
    EXPECT_EQ(read_ctr_log(log, (t.path / "out").string(), 150), expected_lines(850, 1000));
    // A tail longer than the whole log is the whole log.
    EXPECT_EQ(read_ctr_log(log, (t.path / "out").string(), 100000), all);

    // A writer opened again (a restart, the detached monitor) goes on where it was.
    {
        LogWriter w(log, {.max_size = 4096, .max_file = 3});
        write_lines(w, 1000, 1010);
    }
    EXPECT_EQ(read_ctr_log(log, (t.path / "out").string(), 20), expected_lines(990, 1010));
}

// A rotation that fails (ctr.log.1 a non-empty directory) is tried again
// after another max_size bytes, not at every line.
TEST(ContainerLog, FailedRotationRetriedAfterMaxSize) {
    TempDir t("ctrlog");
    const std::string log = (t.path / "ctr.log").string();
    std::filesystem::create_directories(log + ".1/blocker");
    LogWriter w(log, {.max_size = 1024, .max_file = 2});
    write_lines(w, 0, 100);  // ~5 KiB: past max_size, the rotation fails
    EXPECT_TRUE(std::filesystem::is_directory(log + ".1"));
    std::filesystem::remove_all(log + ".1");
    write_lines(w, 100, 101);  // under max_size since the failure: no rotation
    EXPECT_FALSE(std::filesystem::exists(log + ".1"));
    write_lines(w, 101, 200);  // past it again: rotated
    EXPECT_TRUE(std::filesystem::is_regular_file(log + ".1"));
    std::string all = read_ctr_log(log, (t.path / "out").string());
    EXPECT_EQ(all, expected_lines(first_seq(all), 200));
}

TEST(ContainerLog, MaxFileOneEmptiesTheFile) {
    TempDir t("ctrlog");
    const std::string log = (t.path / "ctr.log").string();
    {
        LogWriter w(log, {.max_size = 2048, .max_file = 1});
        write_lines(w, 0, 500);
    }
    EXPECT_EQ(log_files(log), std::vector<std::string>{log});
    EXPECT_LE(std::filesystem::file_size(log), 2048u);
    std::string all = read_ctr_log(log, (t.path / "out").string());
    EXPECT_EQ(all, expected_lines(first_seq(all), 500));
}

TEST(ContainerLog, UnboundedWhenMaxSizeIsZero) {
    TempDir t("ctrlog");
    const std::string log = (t.path / "ctr.log").string();
    {
        LogWriter w(log, {.max_size = 0, .max_file = 3});
        write_lines(w, 0, 2000);
    }
    EXPECT_EQ(log_files(log), std::vector<std::string>{log});
    std::string all = read_ctr_log(log, (t.path / "out").string());
    EXPECT_TRUE(all == expected_lines(0, 2000)) << first_difference(all, expected_lines(0, 2000));
}

// --tail reads from the end: the bytes read do not grow with the log.
TEST(ContainerLog, TailReadsBackwardsNotTheWholeFile) {
    TempDir t("ctrlog");
    const std::string log = (t.path / "ctr.log").string();
    {
        LogWriter w(log, {.max_size = 0, .max_file = 1});
        write_lines(w, 0, 400000);  // ~19 MB
    }
    ASSERT_GT(std::filesystem::file_size(log), 16u << 20);
    const std::string out = (t.path / "out").string();
    uint64_t before = bytes_read_so_far();
    std::string got = read_ctr_log(log, out, 2);
    uint64_t read = bytes_read_so_far() - before;
    EXPECT_EQ(got, expected_lines(399998, 400000));
    EXPECT_LT(read, 1u << 20) << "bytes read for --tail 2 of a " << std::filesystem::file_size(log) << "-byte log";
}

// --follow goes through rotations, several between two of its reads
// included: every line once, in order.
TEST(ContainerLog, FollowAcrossRotations) {
    TempDir t("ctrlog");
    const std::string log = (t.path / "ctr.log").string();
    LogWriter w(log, {.max_size = 2048, .max_file = 200});
    write_lines(w, 0, 10);
    std::atomic<bool> writing{true};
    std::string got;
    std::thread reader([&] {
        got = capture_stdout((t.path / "out").string(), [&] {
            print_log(log, {}, true, [&] { return writing.load(); });
        });
    });
    for (int i = 10; i < 3010; i += 100) {
        write_lines(w, i, i + 100);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    writing = false;
    reader.join();
    EXPECT_GT(log_files(log).size(), 20u);
    EXPECT_TRUE(got == expected_lines(0, 3010)) << first_difference(got, expected_lines(0, 3010));
}
