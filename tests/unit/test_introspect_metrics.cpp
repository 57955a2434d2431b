// introspect/: exposition text, kernel stat-file parsing, cgroup location,
// listen addresses. The collector itself runs against real containers in
// tests/introspect/monitor.sh.
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "bpf/object.hpp"
#include "cgroups/cgroup.hpp"
#include "introspect/common/proc_stats.hpp"
#include "introspect/common/stat_file.hpp"
#include "introspect/metrics/cgroup_metrics.hpp"
#include "introspect/metrics/discovery.hpp"
#include "introspect/metrics/exposition.hpp"
#include "introspect/metrics/metrics_server.hpp"
#include "introspect/metrics/scrape_ahead.hpp"
#include "testutil.hpp"
#include "util/error.hpp"

using namespace vitro;
using namespace vitro::introspect;

TEST(Exposition, GroupsSamplesUnderOneHeaderAndEscapes) {
    Exposition e;
    auto a = e.family("a_total", MetricType::counter, "first\\help\nline");
    auto b = e.family("b", MetricType::gauge, "second");
    e.add(a, {{"id", "/x"}}, 1);
    e.add(b, {}, 0.5);
    e.add(e.family("a_total", MetricType::counter, "ignored"), {{"id", "q\"\\\n"}}, {{"cpu", "total"}}, 2);
    e.family("empty", MetricType::gauge, "no samples");
    EXPECT_EQ(e.text(),
              "# HELP a_total first\\\\help\\nline\n# TYPE a_total counter\n"
              "a_total{id=\"/x\"} 1\n"
              "a_total{id=\"q\\\"\\\\\\n\",cpu=\"total\"} 2\n"
              "# HELP b second\n# TYPE b gauge\nb 0.5\n");
    EXPECT_EQ(e.samples(), 3u);
}

TEST(Exposition, Values) {
    auto v = [](double x) {
        std::string s;
        append_value(s, x);
        return s;
    };
    EXPECT_EQ(v(0), "0");
    EXPECT_EQ(v(123456789012.0), "123456789012");
    EXPECT_EQ(v(0.25), "0.25");
    EXPECT_EQ(v(1.0 / 0.0), "+Inf");
    EXPECT_EQ(v(-1.0 / 0.0), "-Inf");
    EXPECT_EQ(v(std::nan("")), "NaN");
}

TEST(StatFile, KeyedAndNumbers) {
    const std::string text = "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n";
    EXPECT_EQ(keyed(text, "usage_usec"), 1500u);
    EXPECT_EQ(keyed(text, "user_usec"), 1000u);
    EXPECT_EQ(keyed(text, "user"), std::nullopt);  // a prefix of a key is not the key
    EXPECT_EQ(keyed("MemTotal:  2048 kB\n", "MemTotal:"), 2048u);
    EXPECT_EQ(first_number("max\n"), std::nullopt);
    EXPECT_EQ(first_number("42\n"), 42u);
}

TEST(StatFile, RereadsFromTheStart) {
    char tmpl[] = "/tmp/vitro-statfile-XXXXXX";
    int fd = ::mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "one\n", 4), 4);
    StatFile f(tmpl);
    std::string buf;
    ASSERT_TRUE(f.read(buf));
    EXPECT_EQ(buf, "one\n");
    ASSERT_EQ(::pwrite(fd, "two!\n", 5, 0), 5);
    ASSERT_TRUE(f.read(buf));
    EXPECT_EQ(buf, "two!\n");
    ::close(fd);
    ::unlink(tmpl);
    EXPECT_FALSE(StatFile("/nonexistent/file"));
    EXPECT_FALSE(StatFile("/nonexistent/file").read(buf));
}

TEST(ProcStats, ParsesStatWithHostileComm) {
    // comm may contain spaces and ")": the last ")" ends it.
    std::string line = "1234 (a) b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 3 0 98765 1000000 256 "
                       "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
    auto p = parse_proc_stat(line);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->pid, 1234);
    EXPECT_EQ(p->comm, "a) b) c");
    EXPECT_EQ(p->state, 'S');
    EXPECT_EQ(p->ppid, 1);
    EXPECT_DOUBLE_EQ(p->cpu_s, 400.0 / clock_ticks_per_second());
    EXPECT_EQ(p->threads, 3u);
    EXPECT_EQ(p->start_ticks, 98765u);
    EXPECT_EQ(p->rss_bytes, 256u * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)));
    EXPECT_FALSE(parse_proc_stat("garbage"));
    EXPECT_FALSE(parse_proc_stat("1 (x) S 1 2"));
}

TEST(ProcStats, NetDevSkipsLoopback) {
    const char* text =
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
        "    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n"
        "  eth0: 5000 40 1 2 0 0 0 0 7000 50 3 4 0 0 0 0\n";
    auto v = parse_net_dev(text);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].name, "eth0");
    EXPECT_EQ(v[0].rx_bytes, 5000u);
    EXPECT_EQ(v[0].rx_packets, 40u);
    EXPECT_EQ(v[0].rx_errors, 1u);
    EXPECT_EQ(v[0].rx_dropped, 2u);
    EXPECT_EQ(v[0].tx_bytes, 7000u);
    EXPECT_EQ(v[0].tx_packets, 50u);
    EXPECT_EQ(v[0].tx_errors, 3u);
    EXPECT_EQ(v[0].tx_dropped, 4u);
}

TEST(ProcStats, Host) {
    HostSample h;
    parse_proc_stat_host("cpu  10 0 5 100 0 0 0 0 0 0\ncpu0 10 0 5 100 1 2 3 4 0 0\nbtime 1700000000\nprocesses 77\n"
                         "procs_running 2\nprocs_blocked 1\nctxt 999\n",
                         h);
    ASSERT_EQ(h.cpus.size(), 1u);  // the "cpu" total line is not a CPU
    EXPECT_EQ(h.cpus[0].cpu, "0");
    EXPECT_DOUBLE_EQ(h.cpus[0].steal, 4.0 / clock_ticks_per_second());
    EXPECT_EQ(h.boot_time, 1700000000.0);
    EXPECT_EQ(h.forks, 77u);
    EXPECT_EQ(h.procs_running, 2u);
    EXPECT_EQ(h.context_switches, 999u);
    parse_meminfo("MemTotal:       2048 kB\nHugePages_Total:       0\n", h);
    EXPECT_EQ(h.meminfo["MemTotal"], 2048u * 1024);
    EXPECT_EQ(h.meminfo["HugePages_Total"], 0u);
    parse_loadavg("0.50 0.25 0.10 1/100 1234\n", h);
    EXPECT_DOUBLE_EQ(h.load1, 0.5);
    EXPECT_DOUBLE_EQ(h.load15, 0.1);
}

TEST(CgroupLocation, FromProcCgroupText) {
    cgroups::CgroupMounts m;  // this host's mounts
    const std::string text = "4:memory:/vitro/abc\n3:cpu,cpuacct:/vitro/abc\n0::/vitro/abc\n1:name=systemd:/x/../../etc\n";
    auto w = m.from_text(text);
    if (m.mode() == cgroups::Mode::V2) {
        EXPECT_EQ(w.path, "/vitro/abc");
        EXPECT_NE(w.v2.find("/vitro/abc"), std::string::npos);
    } else {
        EXPECT_EQ(w.path, "/vitro/abc");
        ASSERT_TRUE(w.v1.count("memory"));
        const std::string& dir = w.v1["memory"];
        EXPECT_EQ(dir.substr(dir.size() - 10), "/vitro/abc");
    }
    for (auto& [c, dir] : w.v1) EXPECT_EQ(dir.find(".."), std::string::npos) << c;
}

TEST(CgroupCounters, WeightToShares) {
    EXPECT_EQ(weight_to_shares(1), 2u);
    EXPECT_EQ(weight_to_shares(100), 2597u);  // the v2 default weight
    EXPECT_EQ(weight_to_shares(10000), 262144u);
}

TEST(ListenAddress, Parses) {
    auto a = parse_listen_address("127.0.0.1:9323");
    EXPECT_EQ(a.host, "127.0.0.1");
    EXPECT_EQ(a.port, 9323);
    EXPECT_EQ(parse_listen_address(":80").host, "0.0.0.0");
    EXPECT_EQ(parse_listen_address("[::1]:0").host, "::1");
    EXPECT_THROW(parse_listen_address("localhost"), Error);
    EXPECT_THROW(parse_listen_address("127.0.0.1:99999"), Error);
    EXPECT_THROW(parse_listen_address("127.0.0.1:x"), Error);
}

namespace {
// vitro_exporter_scrapes_total of one scrape's text: which collection it is.
double collection_number(const std::string& text) {
    auto at = text.find("\nvitro_exporter_scrapes_total ");
    return at == std::string::npos ? -1 : std::stod(text.substr(at + 30));
}
}  // namespace

// Scrapes at a steady cadence are served from collections made ahead of them,
// and no scrape gets a collection an earlier one got. Loose on time: the
// cadence is what matters, so a loaded machine only makes it poll longer.
TEST(ScrapeAhead, SteadyScrapesAreCollectedAheadNeverTwice) {
    vitro::test::TempDir t{"scrape-ahead-unit"};
    CollectorOptions o;
    o.discovery.vitro_root = t.path.string();  // no state store: no containers, the host only
    Collector c(o);
    ScrapeAhead ahead(c);
    double last = -1;
    for (int i = 0; i < 100 && ahead.served_ahead() < 3; ++i) {
        auto text = ahead.scrape();
        double n = collection_number(*text);
        EXPECT_GT(n, last) << "scrape " << i << " got collection " << n << " again";
        last = n;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    EXPECT_GE(ahead.served_ahead(), 3u);
    EXPECT_GE(ahead.collected_in_request(), 1u);  // the first one: no interval to plan by yet
    ahead.stop();
}

// The BPF walks load beside the scrapes, and the exporter says which path
// runs: vitro_exporter_bpf_walk_loaded is 1 for each walk once loaded (the
// kernel here has both iterators), 0 before and where it cannot load.
TEST(Collector, SaysWhetherItsBpfWalksRun) {
    vitro::test::TempDir t{"walk-gauge-unit"};
    CollectorOptions o;
    o.discovery.vitro_root = t.path.string();
    Collector c(o);
    const std::string first = c.scrape();  // served whether or not the walks are in yet
    for (const char* walk : {"cgroup", "task"})
        EXPECT_NE(first.find(std::string("vitro_exporter_bpf_walk_loaded{walk=\"") + walk + "\"} "), std::string::npos) << walk;
    // Generous: only a hang fails here.
    ASSERT_TRUE(c.wait_for_walks(std::chrono::seconds(120))) << "the walks neither loaded nor failed";
    const std::string text = c.scrape();
    for (const char* walk : {"cgroup", "task"}) {
        const std::string why = bpf::iterator_unavailable_reason(walk);
        const std::string want = std::string("vitro_exporter_bpf_walk_loaded{walk=\"") + walk + "\"} " + (why.empty() ? "1" : "0");
        EXPECT_NE(text.find(want), std::string::npos) << want << (why.empty() ? "" : " (" + why + ")");
    }
}

// What discovery reads changed, as inotify tells it: entries of the runtime
// roots and their containers' directories, the state database and its WAL;
// not the database's shared-memory index, which readers rewrite.
TEST(DiscoveryWatch, SeesStateChangesAndNotReaders) {
    test::TempDir dir("discovery-watch");
    const std::string base = dir.path.string(), root = base + "/vitro", runc = base + "/runc", crun = base + "/crun";
    std::filesystem::create_directories(root);
    std::filesystem::create_directories(runc + "/old");
    DiscoveryOptions o;
    o.vitro_root = root;
    o.runtime_roots = {runc, crun};
    DiscoveryWatch w(o);
    ASSERT_TRUE(w.watching());
    auto write = [](const std::string& path) { std::ofstream(path) << "x"; };
    EXPECT_TRUE(w.changed()) << "the first call";
    EXPECT_FALSE(w.changed());
    write(root + "/vitro.db-shm");
    EXPECT_FALSE(w.changed()) << "a reader's shared-memory index";
    write(root + "/vitro.db-wal");
    EXPECT_TRUE(w.changed()) << "a write to the WAL";
    EXPECT_FALSE(w.changed());
    std::filesystem::create_directories(runc + "/new");
    EXPECT_TRUE(w.changed()) << "a container's directory made";
    write(runc + "/new/state.json.tmp");
    EXPECT_TRUE(w.changed()) << "a file made in the new container's directory";
    std::filesystem::rename(runc + "/new/state.json.tmp", runc + "/new/state.json");
    write(runc + "/old/state.json");
    EXPECT_TRUE(w.changed()) << "state written in a container's directory";
    EXPECT_FALSE(w.changed());
    std::filesystem::create_directories(crun);
    EXPECT_TRUE(w.changed()) << "a runtime root that was missing appeared";
    std::filesystem::create_directories(crun + "/c1");
    EXPECT_TRUE(w.changed()) << "... and is watched from then on";
    std::filesystem::remove_all(runc + "/old");
    EXPECT_TRUE(w.changed()) << "a container's directory removed";
    EXPECT_FALSE(w.changed());
}
