// introspect::CgroupActivity on this host's real cgroups (root only): the
// BPF walk tells a cgroup whose task ran from one whose task slept, and
// reads the memory charge and peak its files print; CgroupCounters, given
// the walk, reads a quiet cgroup as its files would. ProcessActivity, the
// task walk, lists the cgroup's processes as cgroup.procs does and reads
// each as /proc does. The processes read are off the CPU (wait_off_cpu):
// their counters do not move between two reads. A walk that does not load
// where the kernel has its iterator is a failure, not a skip.
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "bpf/object.hpp"
#include "cgroups/cgroup.hpp"
#include "introspect/common/proc_stats.hpp"
#include "introspect/common/stat_file.hpp"
#include "introspect/metrics/cgroup_activity.hpp"
#include "introspect/metrics/cgroup_metrics.hpp"
#include "introspect/metrics/process_activity.hpp"
#include "testutil.hpp"
#include "util/error.hpp"
#include "util/file.hpp"

namespace vitro::introspect {
namespace {

// A child that burns ~10 ms of CPU and touches 4 MiB each time it is told
// to, then blocks on its pipe: between bursts it does not run at all. It
// holds its pipe's read end also at each of `fds` (fd numbers).
class Burner {
public:
    explicit Burner(const std::vector<int>& fds = {}) {
        int a[2], b[2];
        if (::pipe2(a, O_CLOEXEC) < 0 || ::pipe2(b, O_CLOEXEC) < 0) throw_errno("pipe2");
        pid_ = ::fork();
        if (pid_ < 0) throw_errno("fork");
        if (pid_ == 0) {
            for (int fd : fds)
                if (::dup2(a[0], fd) < 0) _exit(2);
            char c;
            static char mem[4 << 20];
            volatile char* touch = mem;  // stores the compiler must keep
            unsigned round = 0;
            while (::read(a[0], &c, 1) == 1) {
                volatile uint64_t x = 0;
                for (uint64_t i = 0; i < 20'000'000; ++i) x = x + i;
                for (size_t i = 0; i < sizeof mem; i += 4096) touch[i] = static_cast<char>(++round);
                if (::write(b[1], "d", 1) != 1) _exit(1);
            }
            _exit(0);
        }
        ::close(a[0]);
        ::close(b[1]);
        go_ = a[1];
        done_ = b[0];
    }
    ~Burner() {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        ::close(go_);
        ::close(done_);
    }
    pid_t pid() const { return pid_; }
    // One burst, returning once the child is blocked again and off the CPU.
    bool burst() {
        char c;
        return ::write(go_, "g", 1) == 1 && ::read(done_, &c, 1) == 1 && test::wait_off_cpu(pid_);
    }

private:
    pid_t pid_ = -1;
    int go_ = -1, done_ = -1;
};

uint64_t file_number(const std::string& path) {
    StatFile f(path);
    std::string b;
    EXPECT_TRUE(f.read(b)) << path;
    return first_number(b).value_or(0);
}

class CgroupWalk : public ::testing::Test {
protected:
    void SetUp() override {
        if (std::string why = bpf::iterator_unavailable_reason("cgroup"); !why.empty()) GTEST_SKIP() << why;
        try {
            walk_ = std::make_unique<CgroupActivity>();
        } catch (const Error& e) {
            FAIL() << "the kernel has cgroup iterators, and vitro's cgroup walk does not load: " << e.what();
        }
        mgr_ = cgroups::make_manager("/vitro-test-walk-" + std::to_string(::getpid()), "walk");
        mgr_->create(std::nullopt);
        mgr_->add_process(burner_.pid());
        where_ = cgroups::CgroupMounts().of_process(burner_.pid());
    }
    void TearDown() override {
        if (mgr_) {
            ::kill(burner_.pid(), SIGKILL);
            mgr_->destroy();
        }
    }
    // What the last walk saw of the cgroup's cpu and memory directories.
    const CgroupActivity::Seen* cpu() const { return walk_->seen(CgroupActivity::id_of(cpu_dir())); }
    const CgroupActivity::Seen* mem() const { return walk_->seen(CgroupActivity::id_of(mem_dir())); }
    std::string cpu_dir() const { return where_.v1.count("cpu") ? where_.v1.at("cpu") : where_.v2; }
    std::string mem_dir() const { return where_.v1.count("memory") ? where_.v1.at("memory") : where_.v2; }
    std::string usage_file() const { return mem_dir() + (where_.v1.count("memory") ? "/memory.usage_in_bytes" : "/memory.current"); }
    // The task walk; null, and the test failed, where it does not load
    // though the kernel has task iterators.
    std::unique_ptr<ProcessActivity> process_walk() {
        if (std::string why = bpf::iterator_unavailable_reason("task"); !why.empty()) {
            ADD_FAILURE() << "the kernel has cgroup iterators but not task iterators: " << why;
            return nullptr;
        }
        try {
            return std::make_unique<ProcessActivity>();
        } catch (const Error& e) {
            ADD_FAILURE() << "the kernel has task iterators, and vitro's process walk does not load: " << e.what();
            return nullptr;
        }
    }
    std::string peak_file() const { return mem_dir() + (where_.v1.count("memory") ? "/memory.max_usage_in_bytes" : "/memory.peak"); }

    Burner burner_;
    std::unique_ptr<CgroupActivity> walk_;
    std::unique_ptr<cgroups::Manager> mgr_;
    cgroups::ProcessCgroups where_;
};

TEST_F(CgroupWalk, TellsRunFromSleepAndReadsTheMemoryCounter) {
    CgroupCounters counters(where_);
    walk_->watch(counters.activity_dirs());
    ASSERT_TRUE(burner_.burst());
    walk_->sample();
    ASSERT_NE(cpu(), nullptr) << cpu_dir();
    ASSERT_NE(mem(), nullptr) << mem_dir();
    if (!cpu()->cpu) GTEST_SKIP() << "no cpu controller on " << cpu_dir();
    EXPECT_TRUE(cpu()->ran) << "first sight counts as having run";

    // Asleep between two walks: not run. Its memory as its files print it
    // (read before and after the walk: equal unless the kernel moved a
    // charge between, e.g. a per-CPU batch drained).
    bool compared = false;
    for (int i = 0; i < 5 && !compared; ++i) {
        const uint64_t before = file_number(usage_file()), peak = file_number(peak_file());
        walk_->sample();
        if (file_number(usage_file()) != before) continue;
        compared = true;
        ASSERT_NE(cpu(), nullptr);
        EXPECT_FALSE(cpu()->ran);
        ASSERT_TRUE(mem()->memory);
        EXPECT_EQ(mem()->memory_bytes, before);
        EXPECT_EQ(mem()->memory_peak_bytes, peak);
        EXPECT_GE(mem()->memory_bytes, uint64_t{4} << 20) << "the burner's 4 MiB are charged here";
    }
    EXPECT_TRUE(compared) << "the cgroup's memory charge moved during every walk, its process asleep";

    // A burst between two walks: run; and not again after it.
    ASSERT_TRUE(burner_.burst());
    walk_->sample();
    EXPECT_TRUE(cpu()->ran);
    walk_->sample();
    EXPECT_FALSE(cpu()->ran);

    // Read through the walk, a quiet cgroup reads as through its files.
    CgroupSample by_files, by_walk;
    ASSERT_TRUE(counters.read(by_files, CgroupCounters::What{true, true}));
    CgroupCounters counters2(where_);
    ASSERT_TRUE(counters2.read(by_walk, CgroupCounters::What{true, true, walk_.get()}));
    walk_->sample();
    ASSERT_TRUE(counters2.read(by_walk, CgroupCounters::What{false, false, walk_.get()}));
    EXPECT_TRUE(by_walk.quiet);
    EXPECT_EQ(by_walk.cpu_usage_s, by_files.cpu_usage_s);
    EXPECT_EQ(by_walk.procs, by_files.procs);
    // After a burst the walk sends the read to the files: the CPU time moved.
    ASSERT_TRUE(burner_.burst());
    walk_->sample();
    ASSERT_TRUE(counters2.read(by_walk, CgroupCounters::What{false, false, walk_.get()}));
    EXPECT_FALSE(by_walk.quiet);
    EXPECT_GT(by_walk.cpu_usage_s, by_files.cpu_usage_s);
}

TEST_F(CgroupWalk, ForgetsWhatIsNoLongerWatchedOrGone) {
    CgroupCounters counters(where_);
    walk_->watch(counters.activity_dirs());
    walk_->sample();
    ASSERT_NE(mem(), nullptr);
    walk_->watch({});
    walk_->sample();
    EXPECT_EQ(mem(), nullptr);

    walk_->watch(counters.activity_dirs());
    const uint64_t id = CgroupActivity::id_of(mem_dir());
    ::kill(burner_.pid(), SIGKILL);
    ::waitpid(burner_.pid(), nullptr, 0);
    mgr_->destroy();
    mgr_.reset();
    walk_->sample();
    EXPECT_EQ(walk_->seen(id), nullptr) << "a removed cgroup is not seen";
    EXPECT_EQ(CgroupActivity::id_of(mem_dir()), 0u);
}

TEST_F(CgroupWalk, ProcessWalkListsAndReadsTheCgroupsProcesses) {
    std::unique_ptr<ProcessActivity> procs = process_walk();
    ASSERT_TRUE(procs);
    CgroupCounters counters(where_);
    procs->watch(counters.activity_dirs());
    ASSERT_TRUE(burner_.burst());
    procs->sample();

    // Listed under its cgroup (the cpu controller's where there is one),
    // and nothing else is: this test process is not in it.
    const uint64_t id = CgroupActivity::id_of(where_.v1.count("cpu") ? cpu_dir() : mem_dir());
    const std::vector<pid_t>* listed = procs->processes(id);
    ASSERT_NE(listed, nullptr);
    EXPECT_EQ(*listed, std::vector<pid_t>{burner_.pid()});
    EXPECT_EQ(procs->process(::getpid()), nullptr) << "not in a watched cgroup";

    // Read as /proc reads it (the burner is off the CPU: nothing moves between).
    const ProcessActivity::Process* p = procs->process(burner_.pid());
    ASSERT_NE(p, nullptr);
    auto by_proc = read_process(burner_.pid());
    ASSERT_TRUE(by_proc);
    EXPECT_EQ(p->sample.pid, burner_.pid());
    EXPECT_EQ(p->sample.comm, by_proc->comm);
    EXPECT_EQ(p->sample.threads, by_proc->threads);
    EXPECT_EQ(p->sample.start_ticks, by_proc->start_ticks);
    EXPECT_EQ(p->sample.rss_bytes, by_proc->rss_bytes);
    EXPECT_GE(p->sample.rss_bytes, uint64_t{4} << 20) << "the burner touched 4 MiB";
    // /proc rounds down to ticks; the walk has the nanoseconds.
    EXPECT_GE(p->sample.cpu_s, by_proc->cpu_s);
    EXPECT_LT(p->sample.cpu_s, by_proc->cpu_s + 2.0 / clock_ticks_per_second());
    EXPECT_GT(p->sample.cpu_s, 0.001) << "it burned ~10 ms";
    ASSERT_TRUE(p->files);
    EXPECT_EQ(p->fds, count_open_files(burner_.pid()).fds) << "as /proc/<pid>/fd lists them";
    struct stat exe;
    ASSERT_EQ(::stat(("/proc/" + std::to_string(burner_.pid()) + "/exe").c_str(), &exe), 0);
    ASSERT_TRUE(p->exe);
    EXPECT_EQ(p->exe_ino, exe.st_ino);
    EXPECT_EQ(p->exe_size, static_cast<uint64_t>(exe.st_size));
    EXPECT_EQ(p->exe_mtime_ns, static_cast<uint64_t>(exe.st_mtim.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(exe.st_mtim.tv_nsec));
    EXPECT_EQ(p->exe_dev >> 20, major(exe.st_dev));
    EXPECT_EQ(p->exe_dev & 0xfffff, minor(exe.st_dev));

    // CgroupCounters takes the list from the walk: the same as cgroup.procs.
    CgroupSample by_files, by_walk;
    ASSERT_TRUE(counters.read(by_files, CgroupCounters::What{true, true}));
    CgroupCounters counters2(where_);
    ASSERT_TRUE(counters2.read(by_walk, CgroupCounters::What{true, true, nullptr, procs.get()}));
    EXPECT_EQ(by_walk.procs, by_files.procs);

    // Gone once reaped; a cgroup no longer watched is not listed.
    ::kill(burner_.pid(), SIGKILL);
    ::waitpid(burner_.pid(), nullptr, 0);
    procs->sample();
    ASSERT_NE(procs->processes(id), nullptr);
    EXPECT_TRUE(procs->processes(id)->empty());
    EXPECT_EQ(procs->process(burner_.pid()), nullptr);
    procs->watch({});
    procs->sample();
    EXPECT_EQ(procs->processes(id), nullptr);
}

// The fd count reads the whole file table: fds in several bitmap words, in
// the high bytes of a word, with gaps, as /proc/<pid>/fd lists them.
TEST_F(CgroupWalk, ProcessWalkCountsFdsAcrossTheFileTable) {
    std::unique_ptr<ProcessActivity> procs = process_walk();
    ASSERT_TRUE(procs);
    Burner holder({63, 64, 100, 127, 128, 200, 255, 256, 700, 1023});
    mgr_->add_process(holder.pid());
    ASSERT_TRUE(holder.burst());  // its dup2s done, and asleep
    CgroupCounters counters(where_);
    procs->watch(counters.activity_dirs());
    procs->sample();
    const ProcessActivity::Process* p = procs->process(holder.pid());
    ASSERT_NE(p, nullptr);
    ASSERT_TRUE(p->files);
    const uint64_t by_proc = count_open_files(holder.pid()).fds;
    EXPECT_EQ(p->fds, by_proc) << "as /proc/<pid>/fd lists them";
    EXPECT_GE(by_proc, 10u + 3) << "the ten placed, and stdio";
}

}  // namespace
}  // namespace vitro::introspect
