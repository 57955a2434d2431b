#include "introspect/detect/detector.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <tuple>

#include "introspect/common/cgroup_counters.hpp"
#include "introspect/common/process_snapshot.hpp"
#include "introspect/evidence/evidence_store.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/log.hpp"

namespace vitro::introspect {

using nlohmann::json;

namespace {

template <class T>
json set_json(const std::set<T>& s) {
    json a = json::array();
    for (const auto& v : s) a.push_back(v);
    return a;
}

json pairs_json(const std::set<std::pair<std::string, std::string>>& s, const char* k1, const char* k2) {
    json a = json::array();
    for (const auto& [x, y] : s) a.push_back({{k1, x}, {k2, y}});
    return a;
}

std::string basename_of(const std::string& p) {
    auto s = p.rfind('/');
    return s == std::string::npos ? p : p.substr(s + 1);
}

std::string link_of(pid_t pid, int fd) {
    std::string p = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
    char buf[256];
    ssize_t n = ::readlink(p.c_str(), buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

std::string comm_of(pid_t pid) {
    std::string c = proc_text(pid, "comm");
    while (!c.empty() && (c.back() == '\n' || c.back() == ' ')) c.pop_back();
    return c;
}

std::string cmdline_text(const json& cmdline) {
    std::string s;
    if (!cmdline.is_array()) return s;
    for (const auto& a : cmdline) {
        if (!a.is_string()) continue;
        if (!s.empty()) s += ' ';
        s += a.get<std::string>();
    }
    return s;
}

// Not an outbound endpoint: the accepted side of a connection to a port the
// container listens on, or a loopback connection to one of its baseline
// listening ports (its own service, e.g. a health check).
bool is_inbound(const std::set<int>& listening, const std::set<int>& baseline, const json& d) {
    int lp = d.value("local_port", 0);
    if (listening.count(lp) || baseline.count(lp)) return true;
    std::string peer = d.value("peer_addr", "");
    bool loopback = peer.rfind("127.", 0) == 0 || peer == "::1" || peer.rfind("::ffff:127.", 0) == 0;
    return loopback && baseline.count(d.value("peer_port", 0));
}

std::string endpoint(const json& d) {
    return d.value("peer_addr", "") + ":" + std::to_string(d.value("peer_port", 0));
}

// What the rules compare against (when and how long it was learned aside).
bool judges_alike(const Baseline& a, const Baseline& b) {
    auto rules = [](const Baseline& x) {
        return std::tie(x.image_digest, x.executables, x.lineage, x.shell_parents, x.listen, x.outbound, x.written,
                        x.cpu_max_cores, x.memory_max_bytes, x.pids_max);
    };
    return rules(a) == rules(b);
}

}  // namespace

// ---- Baseline

json Baseline::to_json() const {
    json lin = json::array();
    for (const auto& [p, c] : lineage) lin.push_back(p + " -> " + c);
    return {{"container", {{"id", container_id}, {"name", container_name}}},
            {"image", image},
            {"image_digest", image_digest},
            {"learned_at_ns", learned_at_ns},
            {"duration_s", duration_s},
            {"executables", pairs_json(executables, "path", "sha256")},
            {"lineage", pairs_json(lineage, "parent", "child")},
            {"lineage_text", lin},
            {"shell_parents", set_json(shell_parents)},
            {"listen", set_json(listen)},
            {"outbound", set_json(outbound)},
            {"written", set_json(written)},
            {"resources", {{"cpu_max_cores", cpu_max_cores}, {"memory_max_bytes", memory_max_bytes}, {"pids_max", pids_max}}}};
}

Baseline Baseline::from_json(const json& j) {
    try {
        Baseline b;
        b.container_id = j.at("container").value("id", "");
        b.container_name = j.at("container").value("name", "");
        b.image = j.at("image").get<std::string>();
        b.image_digest = j.at("image_digest").get<std::string>();
        b.learned_at_ns = j.value("learned_at_ns", int64_t{0});
        b.duration_s = j.value("duration_s", 0.0);
        for (const auto& e : j.at("executables"))
            b.executables.emplace(e.at("path").get<std::string>(), e.at("sha256").get<std::string>());
        for (const auto& e : j.at("lineage"))
            b.lineage.emplace(e.at("parent").get<std::string>(), e.at("child").get<std::string>());
        for (const auto& e : j.at("shell_parents")) b.shell_parents.insert(e.get<std::string>());
        for (const auto& e : j.at("listen")) b.listen.insert(e.get<int>());
        for (const auto& e : j.at("outbound")) b.outbound.insert(e.get<std::string>());
        for (const auto& e : j.at("written")) b.written.insert(e.get<std::string>());
        const auto& r = j.at("resources");
        b.cpu_max_cores = r.at("cpu_max_cores").get<double>();
        b.memory_max_bytes = r.at("memory_max_bytes").get<uint64_t>();
        b.pids_max = r.at("pids_max").get<uint64_t>();
        return b;
    } catch (const json::exception& e) {
        throw Error(EINVAL, std::string("baseline: malformed: ") + e.what());
    }
}

Baseline Baseline::load(const std::string& path) {
    if (!path_exists(path)) throw Error(ENOENT, "baseline " + path + ": no such file (learn one with `vitro baseline learn`)");
    json j;
    try {
        j = json::parse(read_file(path));
    } catch (const json::exception& e) {
        throw Error(EINVAL, "baseline " + path + ": not JSON: " + e.what());
    }
    try {
        return from_json(j);
    } catch (const Error& e) {
        throw Error(EINVAL, path + ": " + e.what());
    }
}

void Baseline::save(const std::string& path) const {
    auto slash = path.rfind('/');
    if (slash != std::string::npos && slash > 0) make_dirs(path.substr(0, slash));
    write_file_atomic(path, to_json().dump(2) + "\n", 0600);
}

std::string default_baseline_path(const std::string& root, const std::string& container_id) {
    return root + "/baselines/" + container_id + ".json";
}

// ---- BaselineWatch

BaselineWatch::BaselineWatch(const std::string& root, std::function<void(const std::string&)> changed)
    : dir_(root + "/baselines"),
      changed_(std::move(changed)),
      inotify_(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)),
      wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (!inotify_) throw_errno("inotify_init1", "baselines " + dir_);
    if (!wake_) throw_errno("eventfd", "baselines " + dir_);
    arm();
}

std::unique_ptr<BaselineWatch> BaselineWatch::unless_exhausted(const std::string& root,
                                                               std::function<void(const std::string&)> changed) {
    try {
        return std::make_unique<BaselineWatch>(root, std::move(changed));
    } catch (const Error& e) {
        if (e.code() != EMFILE && e.code() != ENFILE && e.code() != ENOSPC) throw;
        log::warn(std::string("baseline files are not followed (") + e.what() +
                  "): a baseline is applied only when its container is (re)discovered");
        return nullptr;
    }
}

void BaselineWatch::arm() {
    if (wd_ >= 0) ::inotify_rm_watch(inotify_.get(), wd_);  // the old directory, when it was moved away
    wd_ = -1;
    // Made here when it can be; a root mounted read-only (a DaemonSet's) gets
    // it from the host, and until then its parent is watched for it.
    try {
        make_dirs(dir_);
    } catch (const Error&) {
        // A read-only root: the parent is watched below until the directory appears
    }
    const std::string parent = dir_.substr(0, dir_.rfind('/'));
    for (int tries = 0; tries < 2; ++tries) {
        // Written in place (closed after writing), renamed in or out, removed;
        // and the directory itself going away.
        wd_ = ::inotify_add_watch(inotify_.get(), dir_.c_str(),
                                  IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_DELETE_SELF |
                                      IN_MOVE_SELF | IN_ONLYDIR);
        if (wd_ >= 0 || errno != ENOENT) break;
        parent_wd_ = ::inotify_add_watch(inotify_.get(), parent.c_str(), IN_CREATE | IN_MOVED_TO | IN_ONLYDIR);
        if (parent_wd_ < 0) throw_errno("inotify_add_watch", parent);
        struct stat st{};
        if (::stat(dir_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return;  // else made meanwhile: watch it after all
    }
    if (wd_ < 0) throw_errno("inotify_add_watch", dir_);
    if (parent_wd_ >= 0) ::inotify_rm_watch(inotify_.get(), parent_wd_);
    parent_wd_ = -1;
}

void BaselineWatch::drain() {
    std::set<std::string> ids;
    const std::string_view leaf = std::string_view(dir_).substr(dir_.rfind('/') + 1);  // its name in <root>
    alignas(inotify_event) char buf[16384];
    for (ssize_t n; (n = ::read(inotify_.get(), buf, sizeof buf)) > 0;) {
        for (ssize_t off = 0; off < n;) {
            auto* e = reinterpret_cast<const inotify_event*>(buf + off);
            off += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
            const std::string_view name = e->len ? std::string_view(e->name) : std::string_view();
            if (e->mask & IN_Q_OVERFLOW) {
                ids.insert("");
            } else if (e->wd == wd_ && (e->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))) {
                if (e->mask & IN_IGNORED) wd_ = -1;  // gone with the directory
                arm();
                ids.insert("");
            } else if (e->wd == parent_wd_ && name == leaf) {
                arm();
                ids.insert("");
            } else if (e->wd == wd_ && name.size() > 5 && name.ends_with(".json") && name[0] != '.') {
                ids.insert(std::string(name.substr(0, name.size() - 5)));
            }
        }
    }
    if (ids.count("")) {
        changed_("");  // covers each id too
        return;
    }
    for (const auto& id : ids) changed_(id);
}

std::jthread BaselineWatch::start() {
    return std::jthread([this](std::stop_token st) {
        std::stop_callback wake(st, [this] {
            uint64_t one = 1;
            [[maybe_unused]] auto n = ::write(wake_.get(), &one, sizeof one);
        });
        try {
            while (!st.stop_requested()) {
                pollfd fds[2] = {{inotify_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
                if (::poll(fds, 2, -1) < 0 && errno != EINTR) throw_errno("poll", "baselines " + dir_);
                if (fds[1].revents) break;
                if (fds[0].revents) drain();
            }
        } catch (const std::exception& e) {
            // E.g. the directory removed and not made again: what was applied stays.
            log::error("baselines in " + dir_ + " are no longer followed (changes apply at restart): " + e.what());
        }
    });
}

// ---- classification

bool is_shell(const std::string& comm, const json& cmdline) {
    static const std::set<std::string> shells = {"sh", "bash", "ash", "dash", "zsh", "ksh", "mksh", "hush"};
    if (shells.count(comm)) return true;
    if (cmdline.is_array() && !cmdline.empty() && cmdline[0].is_string()) {
        std::string a0 = basename_of(cmdline[0].get<std::string>());
        if (!a0.empty() && a0[0] == '-') a0 = a0.substr(1);  // login shell
        if (shells.count(a0)) return true;
        if (a0 == "busybox" && cmdline.size() > 1 && cmdline[1].is_string() && shells.count(cmdline[1].get<std::string>()))
            return true;
    }
    return false;
}

std::string mining_marker(const json& cmdline) {
    static const char* markers[] = {"stratum+tcp://", "stratum+ssl://", "stratum2+tcp://", "stratum://", "xmrig",
                                    "--donate-level", "cryptonight", "randomx", "minerd", "cpuminer",
                                    "--coin", "nicehash", "xmr-stak", "ethminer"};
    std::string s = cmdline_text(cmdline);
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    for (const char* m : markers)
        if (s.find(m) != std::string::npos) return m;
    return "";
}

double CpuWindow::add(int64_t t_ns, uint64_t cpu_ns, int64_t window_ns) {
    s_.emplace_back(t_ns, cpu_ns);
    // Keep the newest sample at least a window old (the base), drop older ones.
    while (s_.size() > 2 && s_[1].first <= t_ns - window_ns) s_.pop_front();
    const auto& [t0, c0] = s_.front();
    if (t_ns - t0 < window_ns || cpu_ns < c0) return -1;
    return static_cast<double>(cpu_ns - c0) / static_cast<double>(t_ns - t0);
}

// ---- BaselineLearner

std::string BaselineLearner::parent_comm(pid_t ppid) const {
    auto it = comm_.find(ppid);
    if (it != comm_.end()) return it->second;
    std::string c = comm_of(ppid);
    return c.empty() ? "?" : c;
}

void BaselineLearner::note_exec(const json& d, const std::string& pc) {
    std::string exe = d.value("exe", ""), hash = d.value("exe_sha256", ""), comm = d.value("comm", "");
    if (!exe.empty()) b_.executables.insert({exe, hash});
    if (comm.empty()) return;
    b_.lineage.insert({pc, comm});
    if (is_shell(comm, d.value("cmdline", json::array()))) b_.shell_parents.insert(pc);
}

void BaselineLearner::add_process(const json& info, const std::string& pc) {
    std::lock_guard lk(mu_);
    pid_t pid = info.value("pid", 0);
    comm_[pid] = info.value("comm", "");
    note_exec(info, pc);
}

void BaselineLearner::on_event(const Event& e) {
    std::lock_guard lk(mu_);
    const json& d = e.data;
    if (e.kind == "process.fork") {
        pid_t pid = d.value("pid", 0), ppid = d.value("ppid", 0);
        comm_[pid] = parent_comm(ppid);
    } else if (e.kind == "process.exec") {
        if (d.value("gone", false)) return;
        pid_t pid = d.value("pid", 0);
        note_exec(d, parent_comm(d.value("ppid", 0)));
        comm_[pid] = d.value("comm", "");
    } else if (e.kind == "process.exit") {
        comm_.erase(d.value("pid", 0));
    } else if (e.kind == "net.listen") {
        b_.listen.insert(d.value("local_port", 0));
    } else if (e.kind == "net.connect") {
        if (!is_inbound({}, b_.listen, d)) b_.outbound.insert(endpoint(d));
    } else if (e.kind == "file.create" || e.kind == "file.write" || e.kind == "file.rename") {
        if (d.value("type", "file") != "dir") b_.written.insert(d.value("path", ""));
    } else if (e.kind == "resource.sample") {
        b_.memory_max_bytes = std::max(b_.memory_max_bytes, d.value("memory_bytes", uint64_t{0}));
        b_.pids_max = std::max(b_.pids_max, d.value("pids", uint64_t{0}));
    }
}

void BaselineLearner::on_sample(int64_t t_ns, uint64_t cpu_ns, uint64_t memory_bytes, uint64_t pids) {
    std::lock_guard lk(mu_);
    double r = cpu_.add(t_ns, cpu_ns);
    if (r > b_.cpu_max_cores) b_.cpu_max_cores = r;
    b_.memory_max_bytes = std::max(b_.memory_max_bytes, memory_bytes);
    b_.pids_max = std::max(b_.pids_max, pids);
}

Baseline BaselineLearner::result() const {
    std::lock_guard lk(mu_);
    return b_;
}

// ---- Alert / Detector

json Alert::to_json() const {
    return {{"rule", rule},       {"severity", severity},       {"container", container_name},
            {"container_id", container_id}, {"details", details}, {"trigger_seq", trigger_seq}};
}

struct Detector::StoreHolder {
    EvidenceStore store;
};

Detector::Detector(Options opts) : opts_(std::move(opts)) {
    if (!opts_.store_path.empty()) store_ = std::make_shared<StoreHolder>(StoreHolder{EvidenceStore(opts_.store_path)});
}

void Detector::watch(const WatchTarget& t, Baseline b, const std::string& image, const std::string& image_digest) {
    if (!b.image_digest.empty() && !image_digest.empty() && b.image_digest != image_digest)
        throw Error(EINVAL, "baseline was learned on image " + b.image + " (" + b.image_digest + "), but container " +
                                t.name + " runs " + image + " (" + image_digest + "): learn a new baseline");
    std::lock_guard lk(mu_);
    Watched w;
    if (auto it = watched_.find(t.id); it != watched_.end()) {
        if (judges_alike(it->second.b, b)) {
            // The same baseline applied again (its file rewritten or touched,
            // the events overflowed): the alerts raised stay raised.
            it->second.t = t;
            it->second.b = std::move(b);
            return;
        }
        // A new baseline: what was observed still holds, what was judged not.
        w.comm = std::move(it->second.comm);
        w.written = std::move(it->second.written);
        w.listening = std::move(it->second.listening);
    }
    w.t = t;
    w.b = std::move(b);
    watched_[t.id] = std::move(w);
}

bool Detector::unwatch(const std::string& container_id) {
    std::lock_guard lk(mu_);
    return watched_.erase(container_id) > 0;
}

void Detector::on_alert(std::function<void(const Alert&)> cb) {
    std::lock_guard lk(mu_);
    callbacks_.push_back(std::move(cb));
}

void Detector::attach(Capture& cap) {
    cap.subscribe([this](const Event& e) { on_event(e); });
}

void Detector::raise(Watched& w, const std::string& rule, const std::string& key, const std::string& severity,
                     const std::string& details, uint64_t trigger_seq) {
    if (!w.raised.insert(rule + "\x1f" + key).second) return;
    Alert a{rule, severity, w.t.id, w.t.name, details, trigger_seq, 0, now_ns()};
    if (store_) {
        auto rec = store_->store.append(w.t.id, "alert", a.to_json(), a.time_ns);
        a.seq = rec.seq;
    }
    ++counts_[{w.t.name, rule}];
    alerts_.push_back(a);
    for (const auto& cb : callbacks_) cb(a);
}

std::string Detector::parent_comm(const Watched& w, pid_t ppid) const {
    auto it = w.comm.find(ppid);
    if (it != w.comm.end()) return it->second;
    std::string c = comm_of(ppid);
    return c.empty() ? "?" : c;
}

void Detector::check_exec(Watched& w, const Event& e) {
    const json& d = e.data;
    pid_t pid = d.value("pid", 0);
    if (d.value("gone", false)) return;  // nothing left to compare
    std::string exe = d.value("exe", ""), hash = d.value("exe_sha256", ""), comm = d.value("comm", "");
    json cmdline = d.value("cmdline", json::array());
    std::string pc = parent_comm(w, d.value("ppid", 0));
    w.comm[pid] = comm;
    std::string cmd = cmdline_text(cmdline);
    if (cmd.size() > 200) cmd = cmd.substr(0, 200) + "...";
    std::string who = "pid " + std::to_string(pid) + " " + exe + " [" + cmd + "]";

    if (!exe.empty() && !w.b.executables.count({exe, hash})) {
        bool dropped = w.written.count(exe) > 0;
        if (!dropped && !w.t.upper_dir.empty()) {
            struct stat st{};
            dropped = ::lstat((w.t.upper_dir + exe).c_str(), &st) == 0 && S_ISREG(st.st_mode);
        }
        if (dropped)
            raise(w, "drop-and-execute", exe + "@" + hash, "critical",
                  who + " runs a file written in the container after it started (" + hash + ")", e.seq);
        else
            raise(w, "exec-not-in-baseline", exe + "@" + hash, "high",
                  who + ": executable not in the baseline (" + hash + ")", e.seq);
    }
    if (is_shell(comm, cmdline)) {
        if (!w.b.shell_parents.count(pc))
            raise(w, "unexpected-shell", pc + ">" + std::to_string(pid), "high",
                  who + ": shell spawned by " + pc + ", which never spawned one in the baseline", e.seq);
        std::string in = link_of(pid, 0), out = link_of(pid, 1);
        if (in.rfind("socket:", 0) == 0 || out.rfind("socket:", 0) == 0)
            raise(w, "reverse-shell", std::to_string(pid), "critical",
                  who + ": shell with stdin " + (in.empty() ? "?" : in) + ", stdout " + (out.empty() ? "?" : out), e.seq);
    }
    std::string m = mining_marker(cmdline);
    if (!m.empty())
        raise(w, "mining-command-line", std::to_string(pid), "critical", who + ": command line has \"" + m + "\"", e.seq);
}

void Detector::on_event(const Event& e) {
    std::lock_guard lk(mu_);
    auto it = watched_.find(e.container_id);
    if (it == watched_.end()) return;
    Watched& w = it->second;
    const json& d = e.data;
    if (e.kind == "process.exec") {
        check_exec(w, e);
    } else if (e.kind == "process.fork") {
        w.comm[d.value("pid", 0)] = parent_comm(w, d.value("ppid", 0));
    } else if (e.kind == "process.exit") {
        w.comm.erase(d.value("pid", 0));
    } else if (e.kind == "file.create" || e.kind == "file.write" || e.kind == "file.rename") {
        w.written.insert(d.value("path", ""));
    } else if (e.kind == "net.listen") {
        int port = d.value("local_port", 0);
        w.listening.insert(port);
        if (!w.b.listen.count(port))
            raise(w, "unseen-listen", std::to_string(port), "medium",
                  "listening on " + d.value("local_addr", "") + ":" + std::to_string(port) + ", not in the baseline",
                  e.seq);
    } else if (e.kind == "net.connect") {
        if (is_inbound(w.listening, w.b.listen, d)) return;
        std::string ep = endpoint(d);
        if (!w.b.outbound.count(ep)) {
            std::string owners;
            for (const auto& o : d.value("owners", json::array()))
                if (o.is_object()) owners += " " + o.value("comm", "") + "[" + std::to_string(o.value("pid", 0)) + "]";
            raise(w, "unseen-outbound", ep, "medium", "connection to " + ep + " not in the baseline" +
                                                          (owners.empty() ? "" : " (by" + owners + ")"), e.seq);
        }
    }
}

void Detector::on_cpu(const std::string& container_id, int64_t t_ns, uint64_t cpu_ns) {
    std::lock_guard lk(mu_);
    auto it = watched_.find(container_id);
    if (it == watched_.end()) return;
    Watched& w = it->second;
    double limit = std::max(2 * w.b.cpu_max_cores, w.b.cpu_max_cores + 0.5);
    double window = w.cpu.add(t_ns, cpu_ns, opts_.cpu_window_ns);
    // Sustained: every sample interval since above_since over the limit, for
    // at least a window, and the window's average too.
    bool above = false;
    if (w.last_t && t_ns > w.last_t && cpu_ns >= w.last_cpu)
        above = static_cast<double>(cpu_ns - w.last_cpu) / static_cast<double>(t_ns - w.last_t) > limit;
    if (above && !w.above_since) w.above_since = w.last_t;
    if (!above) {
        w.above_since = 0;
        w.cpu_high = false;
    }
    w.last_t = t_ns;
    w.last_cpu = cpu_ns;
    if (above && !w.cpu_high && t_ns - w.above_since >= opts_.cpu_window_ns && window > limit) {
        w.cpu_high = true;
        char buf[200];
        std::snprintf(buf, sizeof buf,
                      "CPU %.2f cores over the last 1 s (above %.2f for %.1f s), envelope %.2f (baseline max %.2f)",
                      window, limit, static_cast<double>(t_ns - w.above_since) / 1e9, limit, w.b.cpu_max_cores);
        // A new episode may alert again: the key counts episodes.
        raise(w, "cpu-above-envelope", std::to_string(t_ns), "high", buf, 0);
    }
}

std::jthread Detector::start_sampler() {
    return std::jthread([this](std::stop_token st) {
        while (!st.stop_requested()) {
            std::vector<std::pair<std::string, pid_t>> ids;
            {
                std::lock_guard lk(mu_);
                for (const auto& [id, w] : watched_) ids.emplace_back(id, w.t.init_pid);
            }
            for (const auto& [id, pid] : ids) {
                auto s = sample_usage(pid);
                if (s.cpu_ns) on_cpu(id, now_ns(), *s.cpu_ns);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(opts_.cpu_sample_ms));
        }
    });
}

void Detector::add_metrics(Exposition& e) const {
    std::lock_guard lk(mu_);
    auto f = e.family("vitro_alerts_total", MetricType::counter, "Detection alerts raised, by container and rule.");
    for (const auto& [k, v] : counts_) e.add(f, {{"container", k.first}, {"rule", k.second}}, static_cast<double>(v));
}

std::vector<Alert> Detector::alerts() const {
    std::lock_guard lk(mu_);
    return alerts_;
}

}  // namespace vitro::introspect
