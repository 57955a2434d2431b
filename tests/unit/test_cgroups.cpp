// The cgroup layer: pure logic (paths, conversions, mountinfo, BPF program
// shape) and, as root, real cgroups on this host.
//
// This host is hybrid (v1 controllers + a cgroup2 mount with only hugetlb), so
// the host tests drive the hybrid manager. Pure cgroup v2 is covered by
// V2InPrivateMountNs: a child process in its own mount namespace mounts a
// cgroup2 file system at a temporary directory and runs the v2 manager there
// (create, add, pids, freeze, the eBPF device filter, clone3 CLONE_INTO_CGROUP,
// kill, destroy), reporting back through a pipe and its exit status.
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cgroups/cgroup.hpp"
#include "cgroups/detail.hpp"
#include "introspect/metrics/cgroup_metrics.hpp"
#include "testutil.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace {

using namespace vitro::cgroups;
namespace detail = vitro::cgroups::detail;
namespace oci = vitro::oci;

constexpr const char* kRoot = "/sys/fs/cgroup";

// ---------------------------------------------------------------- pure logic

TEST(CgroupPath, DefaultsToVitroAndId) {
    EXPECT_EQ(detail::normalize_cgroups_path("", "abc"), "/vitro/abc");
    EXPECT_THROW(detail::normalize_cgroups_path("", ""), vitro::Error);
    EXPECT_THROW(detail::normalize_cgroups_path("", "a/b"), vitro::Error);
}

TEST(CgroupPath, AbsoluteAndRelativeAreUnderTheRoot) {
    EXPECT_EQ(detail::normalize_cgroups_path("/foo/bar", "x"), "/foo/bar");
    EXPECT_EQ(detail::normalize_cgroups_path("//foo/./bar/", "x"), "/foo/bar");
    EXPECT_EQ(detail::normalize_cgroups_path("testdir/cgrouptest/container", "x"), "/testdir/cgrouptest/container");
}

TEST(CgroupPath, RejectsDotDotAndSystemdPaths) {
    EXPECT_THROW(detail::normalize_cgroups_path("/foo/../bar", "x"), vitro::Error);
    EXPECT_THROW(detail::normalize_cgroups_path("..", "x"), vitro::Error);
    EXPECT_THROW(detail::normalize_cgroups_path("/", "x"), vitro::Error);
    try {
        detail::normalize_cgroups_path("system.slice:vitro:abc", "abc");
        FAIL() << "systemd path accepted";
    } catch (const vitro::Error& e) {
        EXPECT_NE(std::string(e.what()).find("systemd"), std::string::npos) << e.what();
    }
}

TEST(CgroupConvert, SharesToWeight) {
    EXPECT_EQ(detail::shares_to_weight(2), 1u);
    EXPECT_EQ(detail::shares_to_weight(1024), 39u);
    EXPECT_EQ(detail::shares_to_weight(262144), 10000u);
    EXPECT_EQ(detail::shares_to_weight(0), 0u);
}

TEST(CgroupConvert, BlkioWeightToIoWeight) {
    EXPECT_EQ(detail::blkio_weight_to_io_weight(10), 1u);
    EXPECT_EQ(detail::blkio_weight_to_io_weight(1000), 10000u);
    EXPECT_EQ(detail::blkio_weight_to_io_weight(500), 1u + 490u * 9999u / 990u);
}

TEST(CgroupConvert, SwapIsMemoryPlusSwapOnV1) {
    constexpr int64_t G = 1 << 30;
    EXPECT_EQ(detail::swap_to_v2(2 * G, G), std::to_string(G));
    EXPECT_EQ(detail::swap_to_v2(G, G), "0");
    EXPECT_EQ(detail::swap_to_v2(-1, G), "max");
    EXPECT_EQ(detail::swap_to_v2(std::nullopt, -1), "max");
    EXPECT_EQ(detail::swap_to_v2(std::nullopt, G), std::nullopt);
    EXPECT_THROW(detail::swap_to_v2(G / 2, G), vitro::Error);
    EXPECT_THROW(detail::swap_to_v2(G, std::nullopt), vitro::Error);
}

TEST(CgroupMountinfo, FindsV1HierarchiesAndTheCgroup2Mount) {
    const char* text =
        "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
        "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
        "33 31 0:31 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset,clone_children\n"
        "34 31 0:29 / /sys/fs/cgroup/cpu\\040again rw - cgroup cgroup rw,cpuacct,cpu\n"
        "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n"
        "50 23 0:39 / /mnt/other rw - cgroup cgroup rw,memory\n";
    auto m = detail::parse_mountinfo(text, "/sys/fs/cgroup/");
    ASSERT_EQ(m.v1.size(), 3u);  // the second cpu,cpuacct mount is the same hierarchy
    EXPECT_EQ(m.v1[0].mountpoint, "/sys/fs/cgroup/cpu,cpuacct");
    EXPECT_EQ(m.v1[0].controllers, (std::vector<std::string>{"cpu", "cpuacct"}));
    EXPECT_EQ(m.v1[1].controllers, (std::vector<std::string>{"cpuset"}));
    EXPECT_EQ(m.v1[2].controllers, (std::vector<std::string>{"name=systemd"}));
    EXPECT_EQ(m.v2, "/sys/fs/cgroup/unified");
}

TEST(CgroupBpf, LastMatchingRuleDecides) {
    oci::DeviceRule deny_all;  // allow=false, type a, rwm
    oci::DeviceRule null_dev{true, "c", 1, 3, "rwm"};
    auto prog = detail::build_device_program({deny_all, null_dev});
    // prologue (6) + c 1:3 (type, major, minor tests, verdict, exit) + deny-all
    // (verdict, exit); nothing after a rule that matches everything.
    ASSERT_EQ(prog.size(), 13u);
    EXPECT_EQ(prog[6].code, BPF_JMP | BPF_JNE | BPF_K);
    EXPECT_EQ(prog[6].off, 4);  // to the next rule
    EXPECT_EQ(prog[9].imm, 1);  // allow
    EXPECT_EQ(prog[11].imm, 0);  // deny
    EXPECT_EQ(prog[12].code, BPF_JMP | BPF_EXIT);
    // Without a match-all rule, a request no rule matches is allowed (v1 default).
    auto open = detail::build_device_program({null_dev});
    EXPECT_EQ(open[open.size() - 2].imm, 1);
}

// ---------------------------------------------------------------- host cgroups

bool fs_is(const std::string& path, long magic) {
    struct statfs st;
    return ::statfs(path.c_str(), &st) == 0 && static_cast<long>(st.f_type) == magic;
}

bool host_is_hybrid() {
    auto m = detail::find_mounts(kRoot);
    return !m.v1.empty() && !m.v2.empty() && fs_is(m.v2, CGROUP2_SUPER_MAGIC) &&
           fs_is(m.v1.front().mountpoint, CGROUP_SUPER_MAGIC);
}

// Every directory `rel` names, in every hierarchy mounted on this host.
std::vector<std::string> dirs_everywhere(const std::string& rel) {
    std::vector<std::string> out;
    auto m = detail::find_mounts(kRoot);
    for (auto& h : m.v1) out.push_back(h.mountpoint + rel);
    if (!m.v2.empty()) out.push_back(m.v2 + rel);
    return out;
}

// Kills whatever is left in `rel` (thawing first: frozen v1 tasks ignore
// SIGKILL) and removes it from every hierarchy. For test cleanup, failure included.
void force_remove(const std::string& rel) {
    for (auto& dir : dirs_everywhere(rel)) {
        if (!vitro::path_exists(dir)) continue;
        try {
            for (auto& p : detail::read_procs_recursive(dir)) ::kill(p, SIGKILL);
            if (detail::has_knob(dir, "freezer.state")) detail::write_knob(dir, "freezer.state", "THAWED");
            if (detail::has_knob(dir, "cgroup.freeze")) detail::write_knob(dir, "cgroup.freeze", "0");
            detail::remove_cgroup_tree(dir);
        } catch (const std::exception& e) {
            ADD_FAILURE() << "cleanup of " << dir << ": " << e.what();
        }
    }
}

std::string knob(const std::string& dir, const char* file) {
    return vitro::trim(detail::read_knob(dir, file).value_or("<missing>"));
}

// Waits until `pid` sleeps and is off the CPU: from then on it uses no CPU
// until woken. False after 10 s.
bool wait_sleeping(pid_t pid) { return vitro::test::wait_off_cpu(pid); }

// A forked child that waits for "go", burns some CPU and memory, reports
// back and then sleeps until killed.
class Worker {
public:
    Worker() {
        int a[2], b[2];
        if (::pipe2(a, O_CLOEXEC) < 0 || ::pipe2(b, O_CLOEXEC) < 0) vitro::throw_errno("pipe2");
        pid_ = ::fork();
        if (pid_ < 0) vitro::throw_errno("fork");
        if (pid_ == 0) {
            char c;
            if (::read(a[0], &c, 1) != 1) _exit(1);
            volatile uint64_t x = 0;
            for (uint64_t i = 0; i < 50'000'000; ++i) x = x + i;
            std::vector<char> mem(8 << 20);
            for (size_t i = 0; i < mem.size(); i += 4096) mem[i] = 1;
            if (::write(b[1], "d", 1) != 1) _exit(1);
            for (;;) ::pause();
        }
        ::close(a[0]);
        ::close(b[1]);
        go_ = a[1];
        done_ = b[0];
    }
    ~Worker() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            reap();
        }
        ::close(go_);
        ::close(done_);
    }
    pid_t pid() const { return pid_; }
    // Lets it run and waits until it has done its work.
    bool run() {
        char c;
        return ::write(go_, "g", 1) == 1 && ::read(done_, &c, 1) == 1;
    }
    int reap() {
        int status = 0;
        if (pid_ > 0) ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return status;
    }

private:
    pid_t pid_ = -1;
    int go_ = -1, done_ = -1;
};

class HostCgroup : public ::testing::Test {
protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root";
        if (!host_is_hybrid()) GTEST_SKIP() << "host cgroups are not hybrid";
        base_ = "/vitro-test-" + std::to_string(::getpid());
        path_ = base_ + "/c1";
    }
    void TearDown() override {
        if (!base_.empty()) force_remove(base_);
    }

    static oci::Resources limits() {
        oci::Resources r;
        r.memory = oci::Resources::Memory{};
        r.memory->limit = 256 << 20;
        r.memory->swap = 512 << 20;
        r.memory->reservation = 128 << 20;
        r.memory->kernel = 64 << 20;  // ignored, as runc does
        r.memory->kernel_tcp = 64 << 20;
        r.cpu = oci::Resources::Cpu{};
        r.cpu->shares = 512;
        r.cpu->quota = 50000;
        r.cpu->period = 100000;
        r.cpu->cpus = "0";
        r.cpu->mems = "0";
        r.pids = oci::Resources::Pids{64};
        r.devices = {oci::DeviceRule{}, oci::DeviceRule{true, "c", 1, 3, "rwm"}, oci::DeviceRule{true, "c", 1, 5, "r"}};
        return r;
    }

    const std::string* v1_dir(const std::string& controller) const {
        for (auto& h : detail::find_mounts(kRoot).v1)
            for (auto& c : h.controllers)
                if (c == controller) return &(dirs_[controller] = h.mountpoint + path_);
        return nullptr;
    }

    void expect_gone() {
        for (auto& dir : dirs_everywhere(path_)) EXPECT_FALSE(vitro::path_exists(dir)) << dir;
    }

    std::string base_, path_;
    mutable std::map<std::string, std::string> dirs_;
};

TEST_F(HostCgroup, DetectsHybrid) { EXPECT_EQ(detect_mode(), Mode::Hybrid); }

TEST_F(HostCgroup, LifecycleWithLimits) {
    auto mgr = make_manager(path_, "ignored");
    ASSERT_EQ(mgr->mode(), Mode::Hybrid);
    mgr->create(limits());
    for (auto& dir : dirs_everywhere(path_)) EXPECT_TRUE(vitro::path_exists(dir)) << dir;

    // The values the OCI suite reads back, exactly as written.
    EXPECT_EQ(knob(*v1_dir("memory"), "memory.limit_in_bytes"), "268435456");
    EXPECT_EQ(knob(*v1_dir("memory"), "memory.soft_limit_in_bytes"), "134217728");
    if (detail::has_knob(*v1_dir("memory"), "memory.memsw.limit_in_bytes")) {
        EXPECT_EQ(knob(*v1_dir("memory"), "memory.memsw.limit_in_bytes"), "536870912");
    }
    EXPECT_EQ(knob(*v1_dir("cpu"), "cpu.shares"), "512");
    EXPECT_EQ(knob(*v1_dir("cpu"), "cpu.cfs_quota_us"), "50000");
    EXPECT_EQ(knob(*v1_dir("cpu"), "cpu.cfs_period_us"), "100000");
    EXPECT_EQ(knob(*v1_dir("cpuset"), "cpuset.cpus"), "0");
    EXPECT_EQ(knob(*v1_dir("cpuset"), "cpuset.mems"), "0");
    EXPECT_EQ(knob(*v1_dir("pids"), "pids.max"), "64");
    EXPECT_EQ(knob(*v1_dir("devices"), "devices.list"), "c 1:3 rwm\nc 1:5 r");

    Worker w;
    mgr->add_process(w.pid());
    ASSERT_TRUE(w.run());
    auto pids = mgr->pids();
    EXPECT_NE(std::find(pids.begin(), pids.end(), w.pid()), pids.end());
    // Hybrid: the process is in the cgroup2 hierarchy too.
    auto unified = detail::find_mounts(kRoot).v2 + path_;
    EXPECT_EQ(knob(unified, "cgroup.procs"), std::to_string(w.pid()));

    mgr->freeze(true);
    EXPECT_TRUE(mgr->is_frozen());
    EXPECT_EQ(knob(*v1_dir("freezer"), "freezer.state"), "FROZEN");
    mgr->freeze(false);
    EXPECT_FALSE(mgr->is_frozen());
    EXPECT_EQ(knob(*v1_dir("freezer"), "freezer.state"), "THAWED");

    auto st = mgr->stats();
    EXPECT_GT(st.cpu_usage_ns, 0u);
    EXPECT_GT(st.memory_usage, 0u);
    EXPECT_EQ(st.memory_limit, 256u << 20);
    EXPECT_GE(st.pids_current, 1u);
    EXPECT_EQ(st.pids_limit, 64u);
    EXPECT_TRUE(st.to_json()["cpu"]["usage"]["total"].get<uint64_t>() > 0);

    // A later process finds the cgroup again from the saved state.
    auto saved = mgr->to_json();
    EXPECT_EQ(saved["mode"], "hybrid");
    auto again = load_manager(nlohmann::json::parse(saved.dump()));
    EXPECT_EQ(again->mode(), Mode::Hybrid);
    EXPECT_EQ(again->pids(), mgr->pids());
    EXPECT_EQ(again->v2_dir_fd(), -1);

    // A signal other than SIGKILL: freeze, signal, thaw.
    again->kill_all(SIGTERM);
    int status = w.reap();
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << status;
    EXPECT_FALSE(again->is_frozen());
    // SIGKILL: cgroup.kill on the cgroup2 side.
    Worker w2;
    again->add_process(w2.pid());
    again->kill_all(SIGKILL);
    status = w2.reap();
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;

    again->destroy();
    expect_gone();
    EXPECT_NO_THROW(mgr->destroy());  // already gone
}

// The exporter's reads (introspect::CgroupCounters): a cgroup whose process
// has not run since the last read is quiet and keeps its sample; once it runs,
// everything is read again.
TEST_F(HostCgroup, CountersKeepAQuietCgroupsSampleAndReadABusyOne) {
    auto mgr = make_manager(path_, "ignored");
    mgr->create(oci::Resources{});
    std::optional<Worker> w(std::in_place);
    mgr->add_process(w->pid());
    vitro::introspect::CgroupCounters counters(CgroupMounts().of_process(w->pid()));
    ASSERT_TRUE(wait_sleeping(w->pid()));
    vitro::introspect::CgroupSample s;
    ASSERT_TRUE(counters.read(s, true));
    EXPECT_FALSE(s.quiet);
    EXPECT_EQ(s.procs, std::vector<pid_t>{w->pid()});
    const auto first = s;

    // Blocked on a pipe: not a nanosecond of CPU since.
    ASSERT_TRUE(counters.read(s, false));
    EXPECT_TRUE(s.quiet);
    EXPECT_EQ(s.cpu_usage_s, first.cpu_usage_s);
    EXPECT_EQ(s.procs, first.procs);
    EXPECT_EQ(s.pgfault, first.pgfault);

    // It burns CPU and touches 8 MiB (charged here: allocated after the move).
    ASSERT_TRUE(w->run());
    ASSERT_TRUE(counters.read(s, false));
    EXPECT_FALSE(s.quiet);
    EXPECT_GT(s.cpu_usage_s, first.cpu_usage_s);
    EXPECT_GT(s.pgfault, first.pgfault + 1000);  // 2048 pages touched
    EXPECT_GE(s.memory_rss, uint64_t{8} << 20);
    EXPECT_EQ(s.procs, first.procs);

    // A read with the limits is a full one, quiet or not.
    ASSERT_TRUE(counters.read(s, true));
    EXPECT_FALSE(s.quiet);

    // Gone: the read says so.
    w.reset();
    mgr->destroy();
    EXPECT_FALSE(counters.read(s, false));
    EXPECT_FALSE(counters.read(s, true));
}

TEST_F(HostCgroup, UpdateChangesLimits) {
    auto mgr = make_manager(path_, "");
    mgr->create(limits());
    oci::Resources r;
    r.memory = oci::Resources::Memory{};
    r.memory->limit = 1 << 30;  // above the old memsw limit: swap must be raised first
    r.memory->swap = 2LL << 30;
    r.cpu = oci::Resources::Cpu{};
    r.cpu->quota = 200000;
    r.cpu->period = 500000;
    mgr->update(r);
    EXPECT_EQ(knob(*v1_dir("memory"), "memory.limit_in_bytes"), "1073741824");
    EXPECT_EQ(knob(*v1_dir("cpu"), "cpu.cfs_quota_us"), "200000");
    EXPECT_EQ(knob(*v1_dir("cpu"), "cpu.cfs_period_us"), "500000");
    mgr->destroy();
    expect_gone();
}

TEST_F(HostCgroup, HugetlbGoesToTheCgroup2Mount) {
    auto m = detail::find_mounts(kRoot);
    bool v1_hugetlb = false;
    for (auto& h : m.v1)
        for (auto& c : h.controllers) v1_hugetlb |= c == "hugetlb";
    auto ctrls = detail::read_knob(m.v2, "cgroup.controllers").value_or("");
    if (v1_hugetlb || ctrls.find("hugetlb") == std::string::npos ||
        !vitro::path_exists("/sys/kernel/mm/hugepages/hugepages-2048kB"))
        GTEST_SKIP() << "needs hugetlb (2MB pages) on the cgroup2 mount only";
    oci::Resources r;
    r.hugepage_limits = {{"2MB", 4 << 20}};
    // A unified key for a second page size, where the kernel has 1 GB pages.
    const bool gb_pages = vitro::path_exists("/sys/kernel/mm/hugepages/hugepages-1048576kB");
    if (gb_pages) r.unified = {{"hugetlb.1GB.max", "0"}};
    auto mgr = make_manager(path_, "");
    mgr->create(r);
    EXPECT_EQ(knob(m.v2 + path_, "hugetlb.2MB.max"), "4194304");
    if (gb_pages) {
        EXPECT_EQ(knob(m.v2 + path_, "hugetlb.1GB.max"), "0");
    }
    mgr->destroy();
    expect_gone();
}

TEST_F(HostCgroup, UnifiedKeyForAV1ControllerIsRefused) {
    oci::Resources r;
    r.unified = {{"memory.high", "1000000"}};
    auto mgr = make_manager(path_, "");
    try {
        mgr->create(r);
        FAIL() << "memory.high accepted on a hybrid host";
    } catch (const vitro::Error& e) {
        EXPECT_NE(std::string(e.what()).find("memory.high"), std::string::npos) << e.what();
    }
    expect_gone();
}

TEST_F(HostCgroup, MissingKnobNamesTheFileAndLeavesNothing) {
    auto* blkio = v1_dir("blkio");
    if (!blkio) GTEST_SKIP() << "no blkio hierarchy";
    std::string mount = blkio->substr(0, blkio->size() - path_.size());
    if (detail::has_knob(mount, "blkio.leaf_weight")) GTEST_SKIP() << "this kernel has blkio.leaf_weight";
    oci::Resources r;
    r.block_io = oci::Resources::BlockIO{};
    r.block_io->leaf_weight = 300;
    auto mgr = make_manager(path_, "");
    try {
        mgr->create(r);
        FAIL() << "blkio.leaf_weight accepted";
    } catch (const vitro::Error& e) {
        EXPECT_NE(std::string(e.what()).find("blkio.leaf_weight not supported"), std::string::npos) << e.what();
    }
    expect_gone();
}

// ---------------------------------------------------------------- pure v2

// Runs in the forked child; any failure is written to `report` and exits 1.
class ChildCheck {
public:
    explicit ChildCheck(int report) : report_(report) {}
    void require(bool ok, const std::string& what) {
        if (ok) return;
        std::string msg = what + "\n";
        if (::write(report_, msg.data(), msg.size()) < 0) {
        }
        _exit(1);
    }

private:
    int report_;
};

// What the device filter of V2InPrivateMountNs must let through. Its rules:
// deny all; allow c 1:3 rwm; deny c 1:3 w; allow c 1:5 r.
struct DeviceProbe {
    const char* path;
    int flags;
    bool allowed;
};
constexpr DeviceProbe kProbes[] = {
    {"/dev/null", O_RDONLY, true},   // allowed, and the later deny names only w
    {"/dev/null", O_WRONLY, false},  // the later deny w wins
    {"/dev/null", O_RDWR, false},    // asks for w too
    {"/dev/zero", O_RDONLY, true},   // allow c 1:5 r
    {"/dev/zero", O_WRONLY, false},  // not granted by "r"
    {"/dev/full", O_RDONLY, false},  // no rule: the deny-all
};

std::vector<oci::DeviceRule> probe_rules() {
    return {oci::DeviceRule{}, oci::DeviceRule{true, "c", 1, 3, "rwm"}, oci::DeviceRule{false, "c", 1, 3, "w"},
            oci::DeviceRule{true, "c", 1, 5, "r"}};
}

// A process that waits for a byte on `gate`, then tries each probe. Exit
// status 0 when all behave, else 10 + the index of the first that did not.
pid_t device_prober(int gate) {
    pid_t pid = ::fork();
    if (pid != 0) return pid;
    char c;
    if (::read(gate, &c, 1) != 1) _exit(2);
    for (size_t i = 0; i < std::size(kProbes); ++i) {
        int fd = ::open(kProbes[i].path, kProbes[i].flags);
        bool ok = kProbes[i].allowed ? fd >= 0 : fd < 0 && errno == EPERM;
        if (!ok) _exit(static_cast<int>(10 + i));
        if (fd >= 0) ::close(fd);
    }
    _exit(0);
}

std::string wait_status(pid_t pid) {
    int status = 0;
    if (::waitpid(pid, &status, 0) < 0) return "waitpid failed";
    if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
    return "signal " + std::to_string(WTERMSIG(status));
}

// clone3(CLONE_INTO_CGROUP): the child starts life in the cgroup.
pid_t clone_into(int cgroup_fd) {
    clone_args args{};
    args.flags = CLONE_INTO_CGROUP;
    args.exit_signal = SIGCHLD;
    args.cgroup = static_cast<uint64_t>(cgroup_fd);
    return static_cast<pid_t>(::syscall(SYS_clone3, &args, sizeof args));
}

void v2_child(const std::string& path, int report) {
    ChildCheck check(report);
    check.require(::unshare(CLONE_NEWNS) == 0, "unshare(CLONE_NEWNS)");
    check.require(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0, "make / private");
    char tmp[] = "/tmp/vitro-cg2-XXXXXX";
    check.require(::mkdtemp(tmp) != nullptr, "mkdtemp");
    std::string root = tmp;
    check.require(::mount("cgroup2", tmp, "cgroup2", 0, nullptr) == 0, "mount cgroup2");
    try {
        check.require(detect_mode(root) == Mode::V2, "detect_mode is not V2");
        auto mgr = make_manager(path, "", root);
        check.require(mgr->mode() == Mode::V2, "manager is not V2");
        oci::Resources r;
        r.devices = probe_rules();
        mgr->create(r);
        std::string dir = root + path;
        check.require(vitro::path_exists(dir), "no cgroup dir " + dir);

        // Device filter, on a process added with cgroup.procs.
        int gate[2];
        check.require(::pipe(gate) == 0, "pipe");
        pid_t prober = device_prober(gate[0]);
        mgr->add_process(prober);
        auto pids = mgr->pids();
        check.require(pids.size() == 1 && pids[0] == prober, "pids() does not list the prober");

        // Freezing works without any controller enabled.
        mgr->freeze(true);
        check.require(mgr->is_frozen(), "is_frozen() after freeze");
        check.require(detail::read_keyed(dir, "cgroup.events")["frozen"] == 1, "cgroup.events not frozen");
        mgr->freeze(false);
        check.require(!mgr->is_frozen(), "is_frozen() after thaw");
        check.require(::write(gate[1], "g", 1) == 1, "write gate");
        std::string st = wait_status(prober);
        check.require(st == "exit 0", "device prober: " + st + " (exit 10 + N: kProbes[N] went wrong)");

        // clone3(CLONE_INTO_CGROUP) with v2_dir_fd().
        int fd = mgr->v2_dir_fd();
        check.require(fd >= 0, "v2_dir_fd() is -1");
        pid_t born = clone_into(fd);
        if (born == 0) {
            std::string self = vitro::read_file("/proc/self/cgroup");
            if (self.find("0::" + path + "\n") == std::string::npos) _exit(1);
            _exit(::open("/dev/full", O_RDONLY) < 0 && errno == EPERM ? 0 : 2);
        }
        check.require(born > 0, std::string("clone3: ") + strerror(errno));
        st = wait_status(born);
        check.require(st == "exit 0", "clone3 child (1: not born in the cgroup, 2: /dev/full allowed): " + st);

        // update() replaces the device program: allow-all must really allow.
        oci::Resources open_all;
        open_all.devices = {oci::DeviceRule{true, "a", std::nullopt, std::nullopt, "rwm"}};
        mgr->update(open_all);
        born = clone_into(fd);
        if (born == 0) _exit(::open("/dev/full", O_RDONLY) >= 0 ? 0 : 1);
        check.require(born > 0, std::string("clone3: ") + strerror(errno));
        st = wait_status(born);
        check.require(st == "exit 0", "after update to allow-all, /dev/full is still refused: " + st);

        // kill_all (cgroup.kill) reaches a process we never signal ourselves.
        pid_t sleeper = ::fork();
        if (sleeper == 0) {
            for (;;) ::pause();
        }
        mgr->add_process(sleeper);

        // The exporter's reads of a v2 cgroup (cpu.stat is always there; the
        // memory controller is not, on this hybrid host): a full read finds
        // the process, and a sleeping process's cgroup is quiet.
        vitro::cgroups::ProcessCgroups where;
        where.v2 = dir;
        vitro::introspect::CgroupCounters counters(where);
        vitro::introspect::CgroupSample sample;
        check.require(wait_sleeping(sleeper), "sleeper never sleeps");
        check.require(counters.read(sample, true) && !sample.quiet, "v2 counters: first read");
        check.require(sample.procs == std::vector<pid_t>{sleeper}, "v2 counters: procs");
        check.require(counters.read(sample, false) && sample.quiet, "v2 counters: a sleeping cgroup is not quiet");

        mgr->kill_all(SIGKILL);
        st = wait_status(sleeper);
        check.require(st == "signal 9", "kill_all: sleeper " + st);

        auto saved = load_manager(mgr->to_json());
        check.require(saved->mode() == Mode::V2, "load_manager mode");
        saved->destroy();
        check.require(!vitro::path_exists(dir), "cgroup dir left after destroy");
        mgr->destroy();  // already gone: no error
    } catch (const std::exception& e) {
        check.require(false, std::string("exception: ") + e.what());
    }
    ::umount2(tmp, MNT_DETACH);
    ::rmdir(tmp);
}

// Runs body in a forked child; returns "" when it exits 0, else its status
// and whatever it reported.
template <typename Body>
std::string run_in_child(Body body) {
    int report[2];
    if (::pipe2(report, O_CLOEXEC) < 0) return "pipe2 failed";
    pid_t child = ::fork();
    if (child < 0) return "fork failed";
    if (child == 0) {
        ::close(report[0]);
        body(report[1]);
        _exit(0);
    }
    ::close(report[1]);
    std::string status = wait_status(child);
    // Grandchildren left behind by a failure hold the pipe open: read only
    // what is there now (TearDown kills them).
    std::string msg;
    ::fcntl(report[0], F_SETFL, O_NONBLOCK);
    char buf[4096];
    for (ssize_t n; (n = ::read(report[0], buf, sizeof buf)) > 0;) msg.append(buf, static_cast<size_t>(n));
    ::close(report[0]);
    return status == "exit 0" && msg.empty() ? "" : status + ": " + msg;
}

TEST_F(HostCgroup, V2InPrivateMountNs) {
    base_ = "/vitro-test-v2-" + std::to_string(::getpid());
    path_ = base_ + "/c1";
    EXPECT_EQ(run_in_child([&](int report) { v2_child(path_, report); }), "");
    // On this host the private cgroup2 mount is the same hierarchy as the
    // host's cgroup2 mount: check nothing is left there.
    expect_gone();
}

// A pure v1 host, as the OCI suite shows this one to runtimes: the cgroup2
// mount hidden in a private mount namespace.
TEST_F(HostCgroup, V1OnlyWhenTheCgroup2MountIsHidden) {
    std::string v2 = detail::find_mounts(kRoot).v2;
    std::string path = path_;
    auto result = run_in_child([&](int report) {
        ChildCheck check(report);
        check.require(::unshare(CLONE_NEWNS) == 0, "unshare(CLONE_NEWNS)");
        check.require(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0, "make / private");
        check.require(::umount2(v2.c_str(), MNT_DETACH) == 0, "umount " + v2);
        try {
            check.require(detect_mode() == Mode::V1, "detect_mode is not V1");
            auto mgr = make_manager(path, "");
            check.require(mgr->mode() == Mode::V1, "manager is not V1");
            mgr->create(limits());
            pid_t sleeper = ::fork();
            if (sleeper == 0) {
                for (;;) ::pause();
            }
            mgr->add_process(sleeper);
            auto pids = mgr->pids();
            check.require(pids.size() == 1 && pids[0] == sleeper, "pids() does not list the sleeper");
            mgr->freeze(true);
            check.require(mgr->is_frozen(), "is_frozen() after freeze");
            mgr->freeze(false);
            mgr->kill_all(SIGKILL);
            std::string st = wait_status(sleeper);
            check.require(st == "signal 9", "kill_all: sleeper " + st);
            auto saved = mgr->to_json();
            check.require(saved["mode"] == "v1", "to_json mode " + saved["mode"].dump());
            load_manager(saved)->destroy();
        } catch (const std::exception& e) {
            check.require(false, std::string("exception: ") + e.what());
        }
    });
    EXPECT_EQ(result, "");
    expect_gone();
}

}  // namespace
