#include "measure/trace_tracefs.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>

#include "measure/icmp_prober.hpp"
#include "measure/netns.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/subprocess.hpp"

namespace vitro::measure {
namespace {

bool has_events(const std::string& dir) { return std::filesystem::exists(dir + "/events/net/net_dev_queue"); }

}  // namespace

std::string route_device(int netns_fd, const std::string& target) {
    std::string out;
    run_in_netns(netns_fd, [&] {
        RunResult r = run_program_capture("/usr/sbin/ip", {"ip", "-o", "route", "get", target}, {}, "", 10);
        if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
            throw Error(EHOSTUNREACH, "ip route get " + target + ": " + r.stderr_tail);
        out = r.stdout_data;
    });
    auto pos = out.find(" dev ");
    if (pos == std::string::npos) throw Error(EHOSTUNREACH, "ip route get " + target + ": no device in \"" + out + "\"");
    pos += 5;
    return out.substr(pos, out.find(' ', pos) - pos);
}

bool TracefsTracer::parse_line(const std::string& line, Record& r) {
    // "  task-123  [001] ..s1.  4711.000123: net_dev_queue: dev=eth0 skbaddr=0000000012345678 len=98"
    size_t ev = line.find(": net_dev_queue: ");
    size_t evlen = 17;
    r.xmit = true;
    if (ev == std::string::npos) {
        ev = line.find(": netif_rx: ");
        evlen = 12;
        r.xmit = false;
    }
    if (ev == std::string::npos) return false;
    size_t ts_start = line.rfind(' ', ev);
    if (ts_start == std::string::npos) return false;
    std::string ts = line.substr(ts_start + 1, ev - ts_start - 1);
    size_t dot = ts.find('.');
    if (dot == std::string::npos) return false;
    try {
        uint64_t sec = std::stoull(ts.substr(0, dot));
        std::string frac = ts.substr(dot + 1);
        uint64_t sub = std::stoull(frac);
        for (size_t i = frac.size(); i < 9; ++i) sub *= 10;
        r.ts_ns = sec * 1'000'000'000 + sub;
        std::string rest = line.substr(ev + evlen);
        auto field = [&](const char* key) {
            size_t p = rest.find(key);
            if (p == std::string::npos) return std::string();
            p += std::strlen(key);
            return rest.substr(p, rest.find(' ', p) - p);
        };
        r.dev = field("dev=");
        r.skb = field("skbaddr=");
        r.len = std::stoul(field("len="));
    } catch (const std::exception&) {
        return false;
    }
    return !r.dev.empty() && !r.skb.empty();
}

std::vector<TraceEvent> TracefsTracer::attribute(const std::deque<Record>& records, const Config& cfg, int64_t from_ns,
                                                 int64_t to_ns, uint16_t icmp_id, uint16_t seq, std::string& why) {
    auto in_window = [&](const Record& r) {
        return static_cast<int64_t>(r.ts_ns) >= from_ns && static_cast<int64_t>(r.ts_ns) <= to_ns &&
               (r.len == cfg.ip_len || r.len == cfg.ip_len + 14);
    };
    // Request: an skb handed to the container's device and later to the
    // host's egress device. Reply: an skb received on the host's device and
    // later on the container's.
    std::map<std::string, std::pair<const Record*, const Record*>> req, rep;
    for (const auto& r : records) {
        if (!in_window(r)) continue;
        if (r.xmit) {
            auto& c = req[r.skb];
            if (!c.first && r.dev == cfg.container_dev) c.first = &r;
            else if (c.first && r.dev == cfg.host_dev) c.second = &r;  // the last one
        } else {
            auto& c = rep[r.skb];
            if (!c.first && r.dev == cfg.host_dev) c.first = &r;
            else if (c.first && !c.second && r.dev == cfg.container_dev) c.second = &r;
        }
    }
    std::vector<std::pair<const Record*, const Record*>> rq, rp;
    for (auto& [k, v] : req)
        if (v.first && v.second) rq.push_back(v);
    for (auto& [k, v] : rep)
        if (v.first && v.second && (rq.empty() || v.first->ts_ns > rq.front().second->ts_ns)) rp.push_back(v);
    if (rq.size() != 1 || rp.size() != 1) {
        why = "tracefs: " + std::to_string(rq.size()) + " request and " + std::to_string(rp.size()) +
              " reply paths of this length on " + cfg.container_dev + "/" + cfg.host_dev +
              " in the probe's window (trace events carry no ICMP id: not guessing)";
        return {};
    }
    auto mk = [&](const Record* r, uint32_t ns, uint8_t type) {
        TraceEvent e;
        e.ts_ns = r->ts_ns;
        e.netns = ns;
        e.icmp_id = icmp_id;
        e.icmp_seq = seq;
        e.icmp_type = type;
        e.hook = r->xmit ? Hook::Xmit : Hook::Recv;
        e.ifname = r->dev;
        return e;
    };
    return {mk(rq[0].first, cfg.ns_container, 8), mk(rq[0].second, cfg.ns_host, 8), mk(rp[0].first, cfg.ns_host, 0),
            mk(rp[0].second, cfg.ns_container, 0)};
}

void TracefsTracer::write(const std::string& file, const std::string& value) const {
    try {
        write_file(instance_ + "/" + file, value);
    } catch (const Error& e) {
        throw e.wrap("tracefs fallback");
    }
}

TracefsTracer::TracefsTracer(const Config& cfg) : cfg_(cfg) {
    if (cfg.container_dev == cfg.host_dev)
        throw Error(EINVAL, "tracefs fallback: the container's device and the host's egress device are both named " +
                                cfg.host_dev + ": trace events cannot tell them apart");
    for (const char* d : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"})
        if (has_events(d)) {
            mount_point_ = d;
            break;
        }
    if (mount_point_.empty()) {
        // Not mounted: mount it for the run, and take it away again.
        if (::mount("nodev", "/sys/kernel/tracing", "tracefs", 0, nullptr) != 0 || !has_events("/sys/kernel/tracing"))
            throw Error(errno, "tracefs fallback: no tracefs with net events at /sys/kernel/tracing (and it cannot be mounted)");
        mount_point_ = "/sys/kernel/tracing";
        mounted_here_ = true;
    }
    instance_ = mount_point_ + "/instances/vitro-netlat-" + std::to_string(::getpid());
    if (::mkdir(instance_.c_str(), 0700) != 0) {
        int e = errno;
        if (mounted_here_) ::umount(mount_point_.c_str());
        throw Error(e, "tracefs fallback: create instance " + instance_ + ": " + std::strerror(e));
    }
    try {
        write("trace_clock", "mono");
        write("buffer_size_kb", "1024");
        std::string lens = "(len == " + std::to_string(cfg.ip_len) + " || len == " + std::to_string(cfg.ip_len + 14) + ")";
        std::string filter = "(name == \"" + cfg.container_dev + "\" || name == \"" + cfg.host_dev + "\") && " + lens;
        for (const char* ev : {"net_dev_queue", "netif_rx"}) {
            write(std::string("events/net/") + ev + "/filter", filter);
            write(std::string("events/net/") + ev + "/enable", "1");
        }
        write("tracing_on", "1");
        pipe_ = UniqueFd(::open((instance_ + "/trace_pipe").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
        if (!pipe_) throw_errno("open", instance_ + "/trace_pipe");
    } catch (...) {
        pipe_.reset();
        ::rmdir(instance_.c_str());
        if (mounted_here_) ::umount(mount_point_.c_str());
        throw;
    }
}

TracefsTracer::~TracefsTracer() {
    pipe_.reset();
    // Removing the instance disables its events and frees its buffers.
    ::rmdir(instance_.c_str());
    if (mounted_here_) ::umount(mount_point_.c_str());
}

void TracefsTracer::collect(const ProbeResult& probe, uint16_t icmp_id, std::vector<TraceEvent>& out) {
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(pipe_.get(), buf, sizeof(buf));
        if (n <= 0) break;
        partial_.append(buf, static_cast<size_t>(n));
    }
    size_t start = 0;
    for (size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
        Record r;
        if (parse_line(partial_.substr(start, nl - start), r)) records_.push_back(std::move(r));
    }
    partial_.erase(0, start);
    const int64_t from = probe.tx_mono_ns - 1'000'000;
    while (!records_.empty() && static_cast<int64_t>(records_.front().ts_ns) < from) records_.pop_front();
    if (!probe.replied) return;
    // The window ends with the reply's arrival (receive stamp, realtime ->
    // monotonic via the send stamps of both clocks), plus rounding slack.
    int64_t to = probe.tx_mono_ns + (probe.rx_real_ns - probe.tx_real_ns) + 2'000;
    std::string why;
    auto evs = attribute(records_, cfg_, from, to, icmp_id, probe.seq, why);
    last_why_ = why;
    out.insert(out.end(), evs.begin(), evs.end());
}

}  // namespace vitro::measure
