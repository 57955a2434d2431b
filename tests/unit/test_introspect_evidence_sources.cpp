// introspect/ and linux/ evidence sources against the real kernel: sock_diag
// finds a listener of this process by its inode, the proc connector sees a
// child's fork, exec and exit code (root), the upper-dir reader refuses to
// follow a symlink out of the upper dir, and /proc snapshots of ourselves.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "introspect/common/cgroup_counters.hpp"
#include "introspect/common/process_snapshot.hpp"
#include "introspect/evidence/proc_events.hpp"
#include "introspect/evidence/upper_diff.hpp"
#include "linux/sock_diag.hpp"
#include "testutil.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/sha256.hpp"

using namespace vitro;
using namespace vitro::introspect;
namespace fs = std::filesystem;

namespace {

using vitro::test::TempDir;
}  // namespace

TEST(SockDiag, FindsOurListenerByInode) {
    UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(s);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(s.get(), 1), 0);
    socklen_t len = sizeof a;
    ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len);
    struct stat st {};
    ::fstat(s.get(), &st);
    auto diag = os::open_sock_diag();
    bool found = false;
    for (const auto& x : os::dump_inet_sockets(diag.get()))
        if (x.inode == st.st_ino) {
            found = true;
            EXPECT_EQ(x.protocol, "tcp");
            EXPECT_EQ(x.state, "LISTEN");
            EXPECT_EQ(x.local_addr, "127.0.0.1");
            EXPECT_EQ(x.local_port, ntohs(a.sin_port));
        }
    EXPECT_TRUE(found);
    // ... and the fd scan maps that inode back to us.
    auto owners = socket_owners({::getpid()});
    ASSERT_TRUE(owners.count(st.st_ino));
    EXPECT_EQ(owners[st.st_ino][0]["fd"], s.get());
}

TEST(ProcEvents, SeesAChildsForkExecAndExitCode) {
    if (::geteuid() != 0) GTEST_SKIP() << "the proc connector needs root";
    std::unique_ptr<ProcEvents> pe;
    try {
        pe = std::make_unique<ProcEvents>();
    } catch (const Error& e) {
        GTEST_SKIP() << e.what();  // e.g. not in the initial network namespace
    }
    pid_t child = ::fork();
    if (child == 0) {
        ::execl("/bin/sh", "sh", "-c", "exit 3", nullptr);
        ::_exit(127);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    bool fork = false, exec = false, exit = false;
    int code = -2;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!exit && std::chrono::steady_clock::now() < deadline) {
        pollfd p{pe->fd(), POLLIN, 0};
        ::poll(&p, 1, 200);
        while (pe->read([&](const ProcEvent& e) {
            if (e.pid != child) return;
            if (e.type == ProcEvent::Type::Fork) fork = e.parent_tgid == ::getpid();
            if (e.type == ProcEvent::Type::Exec) exec = true;
            if (e.type == ProcEvent::Type::Exit) {
                exit = true;
                code = e.exit_code;
            }
        })) {
        }
    }
    EXPECT_TRUE(fork);
    EXPECT_TRUE(exec);
    EXPECT_TRUE(exit);
    EXPECT_EQ(code, 3);
}

TEST(UpperDiff, NeverFollowsASymlinkOutOfTheUpperDir) {
    TempDir t{"evsrc-unit"};
    fs::create_directories(t.path / "outside");
    std::ofstream(t.path / "outside" / "secret") << "host data\n";
    fs::create_directories(t.path / "upper" / "dir");
    std::ofstream(t.path / "upper" / "dir" / "f") << "container data\n";
    fs::create_directory_symlink(t.path / "outside", t.path / "upper" / "escape");
    fs::create_symlink(t.path / "outside" / "secret", t.path / "upper" / "link");
    UniqueFd upper(::open((t.path / "upper").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    auto f = describe_upper_entry(upper.get(), "dir/f");
    EXPECT_EQ(f["sha256"], sha256_digest("container data\n"));
    auto through = describe_upper_entry(upper.get(), "escape/secret");
    EXPECT_FALSE(through.contains("sha256")) << through.dump();
    EXPECT_TRUE(through.contains("error"));
    auto link = describe_upper_entry(upper.get(), "link");
    EXPECT_EQ(link["type"], "symlink");
    EXPECT_EQ(link["link"], (t.path / "outside" / "secret").string());
    EXPECT_FALSE(link.contains("sha256"));
    auto up = describe_upper_entry(upper.get(), "../outside/secret");
    EXPECT_FALSE(up.contains("sha256")) << up.dump();
    // The whole diff (no lower layers: everything is added).
    auto diff = upper_diff((t.path / "upper").string(), {});
    bool saw_f = false;
    for (const auto& c : diff) {
        EXPECT_EQ(c["kind"], "A");
        if (c["path"] == "/dir/f") saw_f = c.contains("sha256");
        EXPECT_FALSE(c.dump().find("host data") != std::string::npos);
    }
    EXPECT_TRUE(saw_f);
}

TEST(ProcessSnapshot, DescribesThisProcess) {
    auto me = process_info(::getpid());
    ASSERT_TRUE(me);
    EXPECT_EQ((*me)["pid"], ::getpid());
    EXPECT_EQ((*me)["ppid"], ::getppid());
    UniqueFd exe(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
    EXPECT_EQ((*me)["exe_sha256"], sha256_fd(exe.get()));
    EXPECT_FALSE(namespaces(::getpid())["net"].get<std::string>().empty());
    bool root = false;
    for (const auto& m : mounts(::getpid())) root |= m["mount_point"] == "/";
    EXPECT_TRUE(root);
    EXPECT_FALSE(process_info(0x3ffffff));  // no such pid: nullopt, not an error
}

TEST(CgroupCounters, ReadsThisProcesssCgroup) {
    // Whatever cgroup we run in (v1, v2 or hybrid): its CPU time. (Memory
    // need not be there: a v2 root cgroup has no memory.current, and a
    // private cgroup2 mount on a hybrid host has no memory controller;
    // checked by hand that way: cpu from cpu.stat usage_usec.)
    auto s = sample_usage(::getpid());
    ASSERT_TRUE(s.cpu_ns.has_value()) << cgroup_counters(::getpid()).dump();
    EXPECT_GT(*s.cpu_ns, 0u);
    auto c = cgroup_counters(::getpid());
    EXPECT_FALSE(c["cgroup"].empty());
    EXPECT_FALSE(c["files"].empty());
}
