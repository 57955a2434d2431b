// iobench's parsers: fio's JSON, /proc/stat, /proc/diskstats, the cgroup
// files (v1 and v2), the snapshot sections, and the flags' words.
#include <gtest/gtest.h>

#include <algorithm>

#include "iobench/counters.hpp"
#include "iobench/fio_job.hpp"
#include "iobench/fio_result.hpp"
#include "util/error.hpp"

namespace vitro::iobench {
namespace {

TEST(IoBenchFio, ParsesReadAndWriteAndSkipsWarnings) {
    const char* out = R"(fio: note: both iodepth >= 1 and synchronous I/O engine are selected
{"fio version": "fio-3.33", "jobs": [{"jobname": "vitro-io", "usr_cpu": 2.5, "sys_cpu": 40.0,
  "read": {"io_bytes": 8388608, "bw_bytes": 100000000, "iops": 2000.5, "runtime": 84,
           "clat_ns": {"percentile": {"50.000000": 12000, "99.000000": 90000}}},
  "write": {"io_bytes": 4194304, "bw_bytes": 50000000, "iops": 1000.0, "runtime": 90,
           "clat_ns": {"percentile": {"50.000000": 30000, "99.000000": 150000}}}}]})";
    auto r = parse_fio_json(out);
    EXPECT_EQ(r.version, "fio-3.33");
    EXPECT_EQ(r.bytes(), 12582912u);
    EXPECT_DOUBLE_EQ(r.bandwidth_bytes_per_s, 150000000);
    EXPECT_DOUBLE_EQ(r.iops, 3000.5);
    EXPECT_DOUBLE_EQ(r.runtime_s, 0.09);
    EXPECT_DOUBLE_EQ(r.clat_p50_us, 12);  // the busier direction (reads)
    EXPECT_DOUBLE_EQ(r.sys_cpu_pct, 40);
}

TEST(IoBenchFio, RejectsWhatIsNotFiosJson) {
    EXPECT_THROW(parse_fio_json("fio: failed to open file"), vitro::Error);
    EXPECT_THROW(parse_fio_json("{\"jobs\": []}"), vitro::Error);
    EXPECT_THROW(parse_fio_json("{\"jobs\": [ {"), vitro::Error);
}

TEST(IoBenchJob, WorkloadsAndBlockSizes) {
    EXPECT_EQ(parse_workload("randrw"), Workload::RandRW);
    EXPECT_STREQ(fio_rw(parse_workload("seqread")), "read");
    EXPECT_THROW(parse_workload("seqreed"), vitro::Error);
    EXPECT_EQ(parse_block_size("4k").bytes, 4096u);
    EXPECT_EQ(parse_block_size("1m").given, "1m");
    for (const char* bad : {"4x", "100", "", "-1", "2g", "k"}) EXPECT_THROW(parse_block_size(bad), vitro::Error) << bad;
    Job j{Workload::RandWrite, parse_block_size("64k"), 1 << 20, true, "/bench/f"};
    auto a = fio_args(j);
    EXPECT_NE(std::find(a.begin(), a.end(), "--rw=randwrite"), a.end());
    EXPECT_NE(std::find(a.begin(), a.end(), "--direct=1"), a.end());
    EXPECT_NE(std::find(a.begin(), a.end(), "--bs=65536"), a.end());
}

TEST(IoBenchCounters, ProcStatLikeMpstat) {
    auto a = parse_proc_stat_cpu("cpu  100 0 50 800 10 5 5 0 20 0");
    auto b = parse_proc_stat_cpu("cpu  200 0 100 1000 30 10 10 0 40 0");
    auto c = cpu_breakdown(a, b, 100);
    // total delta: 100+50+200+20+5+5 = 380 ticks; usr excludes guest (20).
    EXPECT_NEAR(c.usr, 100.0 * 80 / 380, 1e-9);
    EXPECT_NEAR(c.guest, 100.0 * 20 / 380, 1e-9);
    EXPECT_NEAR(c.idle, 100.0 * 200 / 380, 1e-9);
    EXPECT_NEAR(c.busy_cpu_s, 1.6, 1e-9);  // 380 - 200 idle - 20 iowait = 160 ticks
    EXPECT_THROW(parse_proc_stat_cpu("cpu0 1 2 3"), vitro::Error);
}

TEST(IoBenchCounters, CgroupFilesV1AndV2) {
    CgroupCounters v1;
    add_cgroup_file(v1, "cpuacct.usage", "1500000000\n", 100);
    add_cgroup_file(v1, "cpuacct.stat", "user 30\nsystem 120\n", 100);
    add_cgroup_file(v1, "blkio.throttle.io_service_bytes_recursive",
                    "254:0 Read 4096\n254:0 Write 16777216\n254:0 Total 16781312\nTotal 16781312\n", 100);
    EXPECT_TRUE(v1.cpu_known && v1.io_known);
    EXPECT_EQ(v1.cpu_ns, 1500000000u);
    EXPECT_EQ(v1.system_ns, 1200000000u);
    EXPECT_EQ(v1.io["254:0"].write_bytes, 16777216u);
    CgroupCounters v2;
    add_cgroup_file(v2, "cpu.stat", "usage_usec 2000\nuser_usec 500\nsystem_usec 1500\n", 100);
    add_cgroup_file(v2, "io.stat", "8:0 rbytes=1024 wbytes=2048 rios=1 wios=1 dbytes=0 dios=0\n", 100);
    EXPECT_EQ(v2.cpu_ns, 2000000u);
    EXPECT_EQ(v2.io["8:0"].read_bytes, 1024u);
    EXPECT_EQ(v2.io["8:0"].write_bytes, 2048u);
}

TEST(IoBenchCounters, SnapshotsAroundFiosOutput) {
    std::string out =
        "@@snap before\n@@stat\ncpu  1 2 3 4 5 6 7 8 0 0\n@@diskstats\n 254 0 vda 10 0 100 0 20 0 200 0 0 0 0\n"
        "@@taskio\nrchar: 1\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n"
        "@@file /sys/fs/cgroup/cpuacct/cpuacct.usage\n10\n@@end\n"
        "{\"jobs\": []}\n"
        "@@snap after\n@@stat\ncpu  2 2 3 4 5 6 7 8 0 0\n@@diskstats\n 254 0 vda 10 0 100 0 30 0 300 0 0 0 0\n@@end\n";
    std::string rest;
    auto s = parse_snapshots(out, rest, 100);
    ASSERT_EQ(s.size(), 2u);
    EXPECT_EQ(rest, "{\"jobs\": []}\n");
    EXPECT_EQ(s["before"].cgroup.cpu_ns, 10u);
    EXPECT_EQ(s["after"].disks["254:0"].write_bytes, 300u * 512);
    EXPECT_EQ(s["after"].cpu.user, 2u);
    EXPECT_EQ(s["before"].task_io.write_bytes, 8192u);
    EXPECT_EQ(s["before"].task_io.read_bytes, 4096u);
}

}  // namespace
}  // namespace vitro::iobench
