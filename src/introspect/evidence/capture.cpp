#include "introspect/evidence/capture.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <unordered_map>

#include "introspect/common/cgroup_counters.hpp"
#include "introspect/common/process_snapshot.hpp"
#include "introspect/evidence/evidence_store.hpp"
#include "introspect/evidence/proc_events.hpp"
#include "introspect/evidence/upper_diff.hpp"
#include "linux/namespaces.hpp"
#include "linux/procfs.hpp"
#include "linux/sock_diag.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace vitro::introspect {

namespace {

using Clock = std::chrono::steady_clock;

// The cgroup path that identifies a container: its init's, any hierarchy
// (cgroup v1 hierarchies and v2 use the same path for a container).
std::string cgroup_key(pid_t pid) {
    for (const auto& l : split(proc_text(pid, "cgroup"), '\n')) {
        auto b = l.find(':', l.find(':') + 1);
        if (b == std::string::npos) continue;
        std::string path = l.substr(b + 1);
        if (path != "/" && !path.empty()) return path;
    }
    return "";
}

bool in_cgroup(const std::string& cgroup_text, const std::string& key) {
    for (const auto& l : split(cgroup_text, '\n')) {
        auto b = l.find(':', l.find(':') + 1);
        if (b == std::string::npos) continue;
        std::string_view path(l.c_str() + b + 1);
        if (path == key || (path.size() > key.size() && path.substr(0, key.size()) == key && path[key.size()] == '/'))
            return true;
    }
    return false;
}

int open_dir_beneath(int dirfd, const std::string& rel) {
    if (rel.empty()) return ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    open_how how{};
    how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
    return static_cast<int>(::syscall(SYS_openat2, dirfd, rel.c_str(), &how, sizeof how));
}

}  // namespace

struct Capture::Impl {
    CaptureOptions opts;

    // Shared with other threads.
    mutable std::mutex mu;
    std::vector<WatchTarget> to_add;
    std::vector<std::string> to_remove;
    std::vector<Callback> callbacks;
    Stats stats;
    UniqueFd wake{::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};

    // The run thread's own.
    struct Watched {
        WatchTarget t;
        uint64_t init_start = 0;
        std::string key;
        UniqueFd diag;
        bool shared_net = false;
        std::set<uint64_t> seen_sockets;
        bool polled = false;
        UniqueFd upper;
        Clock::time_point next_sample;
    };
    std::map<std::string, Watched> watched;
    std::unordered_map<pid_t, std::string> owner;  // pid -> container id
    std::unordered_map<pid_t, std::string> comm;   // pid -> comm at exec (for its exit)
    UniqueFd inotify;
    std::map<int, std::pair<std::string, std::string>> wds;  // wd -> (container id, path below upper)
    std::map<std::tuple<dev_t, ino_t, off_t, int64_t>, std::string> exe_hashes;
    std::optional<EvidenceStore> store;
    std::map<uint32_t, std::string> moved_from;  // inotify cookie -> path

    // Events of one loop turn are queued, then appended in one transaction
    // and handed to the subscribers (flush).
    std::vector<Event> pending;

    Clock::time_point first_pending;

    void emit(const std::string& kind, const std::string& id, int64_t time_ns, nlohmann::json data) {
        if (pending.empty()) first_pending = Clock::now();
        pending.push_back(Event{kind, id, time_ns ? time_ns : now_ns(), std::move(data), 0});
        if (pending.size() >= 4096) flush();
    }

    void flush() {
        if (pending.empty()) return;
        std::vector<Event> batch;
        batch.swap(pending);
        if (store) {
            std::vector<EvidenceStore::NewRecord> recs;
            recs.reserve(batch.size());
            for (const auto& e : batch) recs.push_back({e.container_id, e.kind, e.data, e.time_ns});
            auto stored = store->append_all(recs);
            for (size_t i = 0; i < batch.size(); ++i) batch[i].seq = stored[i].seq;
        }
        std::vector<Callback> cbs;
        {
            std::lock_guard lk(mu);
            stats.events += batch.size();
            cbs = callbacks;
        }
        for (const auto& e : batch)
            for (const auto& cb : cbs) cb(e);
    }

    // ---- processes

    std::string exe_hash(pid_t pid) {
        UniqueFd fd(::open(("/proc/" + std::to_string(pid) + "/exe").c_str(), O_RDONLY | O_CLOEXEC));
        struct stat st {};
        if (!fd || ::fstat(fd.get(), &st) < 0) return "";
        auto k = std::make_tuple(st.st_dev, st.st_ino, st.st_size,
                                 static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec);
        auto it = exe_hashes.find(k);
        if (it != exe_hashes.end()) return it->second;
        try {
            std::string h = sha256_fd(fd.get());
            if (exe_hashes.size() > 4096) exe_hashes.clear();
            return exe_hashes[k] = h;
        } catch (const Error&) {
            return "";
        }
    }

    void seed(const Watched& w) {
        DIR* d = ::opendir("/proc");
        if (!d) return;
        while (auto* e = ::readdir(d)) {
            pid_t pid = std::atoi(e->d_name);
            if (pid <= 0) continue;
            if (pid == w.t.init_pid || in_cgroup(proc_text(pid, "cgroup"), w.key)) owner[pid] = w.t.id;
        }
        ::closedir(d);
    }

    void on_proc(const ProcEvent& e) {
        {
            std::lock_guard lk(mu);
            ++stats.proc_events_seen;
        }
        if (e.is_thread()) return;
        switch (e.type) {
            case ProcEvent::Type::Fork: {
                auto it = owner.find(e.parent_tgid);
                if (it == owner.end()) return;
                owner[e.pid] = it->second;
                if (opts.forks) emit("process.fork", it->second, e.time_ns, {{"pid", e.pid}, {"ppid", e.parent_tgid}});
                return;
            }
            case ProcEvent::Type::Exec: {
                auto it = owner.find(e.pid);
                std::string id;
                if (it != owner.end()) {
                    id = it->second;
                } else {
                    std::string cg = proc_text(e.pid, "cgroup");
                    if (cg.empty()) {
                        std::lock_guard lk(mu);
                        ++stats.unattributed_execs;
                        return;
                    }
                    for (const auto& [wid, w] : watched)
                        if (in_cgroup(cg, w.key)) id = wid;
                    if (id.empty()) return;
                    owner[e.pid] = id;
                }
                nlohmann::json data = {{"pid", e.pid}};
                if (auto info = process_info(e.pid, false)) {
                    data = std::move(*info);
                    std::string h = exe_hash(e.pid);
                    if (!h.empty()) data["exe_sha256"] = h;
                    comm[e.pid] = data.value("comm", "");
                } else {
                    data["gone"] = true;  // exited before we could read it: the event itself stands
                }
                emit("process.exec", id, e.time_ns, std::move(data));
                return;
            }
            case ProcEvent::Type::Exit: {
                auto it = owner.find(e.pid);
                if (it == owner.end()) return;
                std::string id = it->second;
                owner.erase(it);
                nlohmann::json data = {{"pid", e.pid}, {"ppid", e.parent_tgid}};
                if (e.exit_signal) data["signal"] = e.exit_signal;
                else data["exit_code"] = e.exit_code;
                if (auto c = comm.find(e.pid); c != comm.end()) {
                    data["comm"] = c->second;
                    comm.erase(c);
                }
                emit("process.exit", id, e.time_ns, std::move(data));
                auto w = watched.find(id);
                if (w != watched.end() && w->second.t.init_pid == e.pid) container_gone(id);
                return;
            }
        }
    }

    void container_gone(const std::string& id) {
        auto w = watched.find(id);
        if (w == watched.end()) return;
        emit("container.exit", id, 0, {{"init_pid", w->second.t.init_pid}});
        drop(id);
    }

    void drop(const std::string& id) {
        for (auto it = wds.begin(); it != wds.end();) {
            if (it->second.first == id) {
                ::inotify_rm_watch(inotify.get(), it->first);
                it = wds.erase(it);
            } else {
                ++it;
            }
        }
        for (auto it = owner.begin(); it != owner.end();) it = it->second == id ? owner.erase(it) : std::next(it);
        watched.erase(id);
    }

    // ---- sockets

    void poll_sockets(Watched& w) {
        if (!w.diag) {
            std::string p = "/proc/" + std::to_string(w.t.init_pid) + "/ns/net";
            UniqueFd ns(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
            if (!ns) return;
            w.diag = os::open_sock_diag(ns.get());
            w.shared_net = os::namespace_inode(w.t.init_pid, "net") == os::namespace_inode(::getpid(), "net");
        }
        std::set<uint64_t> now;
        std::vector<os::InetSocket> fresh;
        for (auto& s : os::dump_inet_sockets(w.diag.get())) {
            if (s.protocol.rfind("tcp", 0) != 0 || s.inode == 0) continue;
            if (s.state != "LISTEN" && s.state != "ESTABLISHED" && s.state != "SYN_SENT") continue;
            now.insert(s.inode);
            if (!w.seen_sockets.count(s.inode)) fresh.push_back(std::move(s));
        }
        w.seen_sockets = std::move(now);
        const bool first = !w.polled;  // sockets open before the watch began: said so
        w.polled = true;
        if (fresh.empty()) return;
        std::vector<pid_t> pids;
        for (const auto& [pid, id] : owner)
            if (id == w.t.id) pids.push_back(pid);
        auto owners = socket_owners(pids);
        for (const auto& s : fresh) {
            auto it = owners.find(s.inode);
            if (w.shared_net && it == owners.end()) continue;  // the host's, not the container's
            nlohmann::json data = {{"protocol", s.protocol},     {"state", s.state},         {"local_addr", s.local_addr},
                                   {"local_port", s.local_port}, {"peer_addr", s.peer_addr}, {"peer_port", s.peer_port},
                                   {"uid", s.uid},               {"inode", s.inode},
                                   {"owners", it == owners.end() ? nlohmann::json::array() : it->second}};
            if (first) data["before_watch"] = true;
            emit(s.state == "LISTEN" ? "net.listen" : "net.connect", w.t.id, 0, std::move(data));
        }
    }

    // ---- files

    void add_watches(const std::string& id, int upper_fd, const std::string& rel, bool report) {
        UniqueFd dir(open_dir_beneath(upper_fd, rel));
        if (!dir) return;
        // Through /proc/self/fd: the directory we opened (beneath the upper
        // dir, no symlinks), not whatever the path names by now. (So no
        // IN_DONT_FOLLOW: the magic link itself must be followed.)
        std::string self = "/proc/self/fd/" + std::to_string(dir.get());
        int wd = ::inotify_add_watch(inotify.get(), self.c_str(),
                                     IN_CREATE | IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |
                                         IN_ONLYDIR | IN_EXCL_UNLINK);
        if (wd < 0) return;
        wds[wd] = {id, rel};
        int dfd = ::dup(dir.get());
        if (dfd < 0) return;
        DIR* d = ::fdopendir(dfd);
        if (!d) {
            ::close(dfd);
            return;
        }
        std::vector<std::pair<std::string, bool>> entries;
        while (auto* e = ::readdir(d)) {
            if (!std::strcmp(e->d_name, ".") || !std::strcmp(e->d_name, "..")) continue;
            entries.emplace_back(e->d_name, e->d_type == DT_DIR);
        }
        ::closedir(d);
        for (const auto& [name, is_dir] : entries) {
            std::string child = rel.empty() ? name : rel + "/" + name;
            // Made before the watch was in place: report it, so nothing slips by.
            if (report) emit("file.create", id, 0, describe_upper_entry(upper_fd, child));
            if (is_dir) add_watches(id, upper_fd, child, report);
        }
    }

    void read_inotify() {
        alignas(inotify_event) char buf[65536];
        for (;;) {
            ssize_t n = ::read(inotify.get(), buf, sizeof buf);
            if (n <= 0) return;
            for (char* p = buf; p < buf + n;) {
                auto* e = reinterpret_cast<inotify_event*>(p);
                p += sizeof(inotify_event) + e->len;
                if (e->mask & IN_Q_OVERFLOW) {
                    emit("capture.lost", "", 0, {{"source", "inotify"}, {"reason", "event queue overflow"}});
                    continue;
                }
                auto it = wds.find(e->wd);
                if (it == wds.end()) continue;
                if (e->mask & IN_IGNORED) {
                    wds.erase(it);
                    continue;
                }
                auto [id, rel] = it->second;
                auto w = watched.find(id);
                if (w == watched.end() || !e->len) continue;
                std::string child = rel.empty() ? std::string(e->name) : rel + "/" + e->name;
                int upper = w->second.upper.get();
                if (e->mask & IN_DELETE) {
                    emit("file.delete", id, 0, {{"path", "/" + child}});
                } else if (e->mask & IN_MOVED_FROM) {
                    moved_from[e->cookie] = "/" + child;
                } else if (e->mask & (IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE)) {
                    auto d = describe_upper_entry(upper, child);
                    std::string kind = e->mask & IN_CLOSE_WRITE ? "file.write" : "file.create";
                    // An overlay whiteout (a 0/0 char device) is how a deletion looks in the upper dir.
                    if (d.value("type", "") == "char" && (e->mask & IN_CREATE)) kind = "file.delete";
                    if (e->mask & IN_MOVED_TO) {
                        auto from = moved_from.find(e->cookie);
                        if (from != moved_from.end()) {
                            d["from"] = from->second;
                            kind = "file.rename";
                            moved_from.erase(from);
                        }
                    }
                    bool is_dir = d.value("type", "") == "dir";
                    emit(kind, id, 0, std::move(d));
                    if (is_dir && !(e->mask & IN_CLOSE_WRITE)) add_watches(id, upper, child, true);
                }
            }
            if (moved_from.size() > 1024) moved_from.clear();
        }
    }

    // ---- targets

    void apply_pending() {
        std::vector<WatchTarget> add;
        std::vector<std::string> remove;
        {
            std::lock_guard lk(mu);
            add.swap(to_add);
            remove.swap(to_remove);
        }
        for (const auto& id : remove) drop(id);
        for (auto& t : add) {
            drop(t.id);
            auto st = os::read_proc_stat(t.init_pid);
            if (!st) {
                log::warn("evidence watch: container " + t.name + " is not running; not watched");
                continue;
            }
            Watched w;
            w.t = t;
            w.init_start = st->start_time;
            w.key = t.cgroup_path.empty() ? cgroup_key(t.init_pid) : t.cgroup_path;
            w.next_sample = Clock::now();
            if (w.key.empty()) {
                log::warn("evidence watch: container " + t.name + " has no cgroup of its own; not watched");
                continue;
            }
            if (opts.file_events && !t.upper_dir.empty()) {
                w.upper.reset(::open(t.upper_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
                if (!w.upper) throw_errno("open upper dir", t.upper_dir);
            }
            auto& ref = watched[t.id] = std::move(w);
            seed(ref);
            if (ref.upper) add_watches(t.id, ref.upper.get(), "", false);
            size_t known = 0;
            for (const auto& [pid, id] : owner) known += id == t.id;
            // Where the record of this container begins: what is watched, from when.
            emit("capture.start", t.id, 0,
                 {{"name", t.name}, {"init_pid", t.init_pid}, {"cgroup", ref.key}, {"processes", known},
                  {"upper_dir", t.upper_dir}});
        }
    }
};

Capture::Capture(CaptureOptions opts) : impl_(std::make_unique<Impl>()) {
    impl_->opts = std::move(opts);
    if (!impl_->wake) throw_errno("eventfd");
}

Capture::~Capture() = default;

void Capture::watch(WatchTarget t) {
    std::lock_guard lk(impl_->mu);
    impl_->to_add.push_back(std::move(t));
    uint64_t one = 1;
    (void)!::write(impl_->wake.get(), &one, sizeof one);
}

void Capture::unwatch(const std::string& id) {
    std::lock_guard lk(impl_->mu);
    impl_->to_remove.push_back(id);
    uint64_t one = 1;
    (void)!::write(impl_->wake.get(), &one, sizeof one);
}

void Capture::subscribe(Callback cb) {
    std::lock_guard lk(impl_->mu);
    impl_->callbacks.push_back(std::move(cb));
}

Capture::Stats Capture::stats() const {
    std::lock_guard lk(impl_->mu);
    return impl_->stats;
}

void Capture::run(std::stop_token stop, bool until_all_gone) {
    Impl& m = *impl_;
    // The store is opened here: its connection belongs to this thread.
    if (!m.opts.store_path.empty()) m.store.emplace(m.opts.store_path);
    std::optional<ProcEvents> procs;
    if (m.opts.process_events) procs.emplace();
    m.inotify.reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!m.inotify) throw_errno("inotify_init1");
    std::stop_callback wake_on_stop(stop, [&m] {
        uint64_t one = 1;
        (void)!::write(m.wake.get(), &one, sizeof one);
    });
    auto next_sockets = Clock::now();
    uint64_t reported_overruns = 0;
    bool had_targets = false;
    while (!stop.stop_requested()) {
        m.apply_pending();
        had_targets |= !m.watched.empty();
        if (until_all_gone && had_targets && m.watched.empty()) break;
        auto now = Clock::now();
        auto next = next_sockets;
        for (const auto& [id, w] : m.watched)
            if (m.opts.sample_interval_ms > 0) next = std::min(next, w.next_sample);
        if (!m.pending.empty()) next = std::min(next, m.first_pending + std::chrono::milliseconds(m.opts.flush_ms));
        int timeout = static_cast<int>(std::max<int64_t>(
            0, std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1));
        pollfd fds[3] = {{m.wake.get(), POLLIN, 0}, {m.inotify.get(), POLLIN, 0}, {procs ? procs->fd() : -1, POLLIN, 0}};
        if (::poll(fds, 3, timeout) < 0 && errno != EINTR) throw_errno("poll", "evidence capture");
        if (fds[0].revents & POLLIN) {
            uint64_t v;
            (void)!::read(m.wake.get(), &v, sizeof v);
        }
        if (procs) {
            // Bounded, so that a fork storm cannot starve the other sources.
            for (int i = 0; i < 4096 && procs->read([&m](const ProcEvent& e) { m.on_proc(e); }); ++i) {
            }
            if (procs->overruns() != reported_overruns) {
                m.emit("capture.lost", "", 0,
                       {{"source", "proc connector"}, {"overruns", procs->overruns() - reported_overruns}});
                reported_overruns = procs->overruns();
                std::lock_guard lk(m.mu);
                m.stats.proc_overruns = reported_overruns;
            }
        }
        if (fds[1].revents & POLLIN) m.read_inotify();
        now = Clock::now();
        if (now >= next_sockets) {
            next_sockets = now + std::chrono::milliseconds(m.opts.socket_poll_ms);
            std::vector<std::string> gone;
            for (auto& [id, w] : m.watched) {
                if (!os::process_alive(w.t.init_pid, w.init_start)) {
                    gone.push_back(id);
                    continue;
                }
                if (m.opts.socket_events) {
                    try {
                        m.poll_sockets(w);
                    } catch (const Error& e) {
                        log::warn("evidence watch: sockets of " + w.t.name + ": " + e.what());
                    }
                }
            }
            for (const auto& id : gone) m.container_gone(id);
        }
        if (m.opts.sample_interval_ms > 0) {
            for (auto& [id, w] : m.watched) {
                if (now < w.next_sample) continue;
                w.next_sample = now + std::chrono::milliseconds(m.opts.sample_interval_ms);
                m.emit("resource.sample", id, 0, sample_usage(w.t.init_pid).to_json());
            }
        }
        // One transaction (one WAL sync) per flush_ms at most, however busy.
        if (!m.pending.empty() && Clock::now() >= m.first_pending + std::chrono::milliseconds(m.opts.flush_ms)) m.flush();
    }
    m.flush();
}

}  // namespace vitro::introspect
