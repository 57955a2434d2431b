#include "introspect/metrics/discovery.hpp"

#include <dirent.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>

#include <nlohmann/json.hpp>

#include "engine/engine.hpp"
#include "engine/state_store.hpp"
#include "introspect/common/proc_stats.hpp"
#include "linux/procfs.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/log.hpp"

namespace vitro::introspect {

namespace {

std::vector<std::string> list_dir(const std::string& dir) {
    std::vector<std::string> out;
    DIR* d = ::opendir(dir.c_str());
    if (!d) return out;
    while (auto* e = ::readdir(d))
        if (e->d_name[0] != '.') out.emplace_back(e->d_name);
    ::closedir(d);
    return out;
}

std::string mtime_of(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) < 0) return "-";
    return std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

// Reads a small JSON file; a file that is absent, too big or not JSON is null.
nlohmann::json read_json(const std::string& path, std::size_t limit = 4 << 20) {
    struct stat st;
    if (::stat(path.c_str(), &st) < 0 || static_cast<std::size_t>(st.st_size) > limit) return nullptr;
    try {
        return nlohmann::json::parse(read_file(path), nullptr, false);
    } catch (const std::exception&) {
        return nullptr;
    }
}

std::string str(const nlohmann::json& j, const char* key) {
    if (!j.is_object()) return {};
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool fill_cgroups(Target& t, const cgroups::CgroupMounts& mounts) {
    auto st = read_process(t.pid);
    if (!st || st->state == 'Z') return false;
    if (t.pid_start_ticks && st->start_ticks != t.pid_start_ticks) return false;  // pid reused
    t.pid_start_ticks = st->start_ticks;
    try {
        t.cgroups = mounts.of_process(t.pid);
    } catch (const Error&) {
        return false;
    }
    if (t.cgroups.path.empty() || t.cgroups.path == "/") return false;  // not in a cgroup of its own
    t.id = t.cgroups.path;
    return true;
}

void vitro_targets(const DiscoveryOptions& o, const cgroups::CgroupMounts& mounts, std::vector<Target>& out,
                   uint64_t* errors) {
    const std::string db = o.vitro_root + "/vitro.db";
    if (!path_exists(db)) return;
    try {
        engine::StateStore store(db);
        std::map<std::string, std::string> pods;
        for (auto& p : store.list_pods()) pods[p.id] = p.name;
        for (auto& c : store.list_containers()) {
            if (!engine::is_running(c)) continue;
            Target t;
            t.container = c.id;
            t.name = c.name;
            t.image = c.image;
            t.image_digest = c.image_digest;
            t.runtime = "vitro";
            t.pid = engine::init_pid(c);
            t.upper_dir = o.vitro_root + "/containers/" + c.id + "/upper";
            if (c.pod_id) t.pod = pods.count(*c.pod_id) ? pods[*c.pod_id] : *c.pod_id;
            if (t.pid > 0 && fill_cgroups(t, mounts)) out.push_back(std::move(t));
        }
    } catch (const std::exception& e) {
        if (errors) ++*errors;
        log::warn(std::string("discovery: reading ") + db + ": " + e.what());
    }
}

// One runtime state directory entry: <root>/<id>/{state.json|status}.
bool runtime_target(const std::string& root, const std::string& id, const std::string& runtime, Target& t) {
    const std::string dir = root + "/" + id;
    nlohmann::json st = read_json(dir + "/state.json");
    std::string bundle;
    if (st.is_object()) {
        if (st.contains("init_process_pid")) {  // runc's libcontainer state
            t.pid = st.value("init_process_pid", 0);
            t.pid_start_ticks = st.value("init_process_start", 0ULL);
            for (auto& l : st["config"].value("labels", nlohmann::json::array()))
                if (l.is_string() && l.get<std::string>().rfind("bundle=", 0) == 0) bundle = l.get<std::string>().substr(7);
        } else {  // an OCI state document (vitro-runtime)
            t.pid = st.value("pid", 0);
            bundle = str(st, "bundle");
        }
    } else if ((st = read_json(dir + "/status")).is_object()) {  // crun
        t.pid = st.value("pid", 0);
        bundle = str(st, "bundle");
    } else {
        return false;
    }
    t.container = id;
    t.runtime = runtime;
    t.name = id.size() == 64 ? id.substr(0, 12) : id;
    if (!bundle.empty()) {
        auto ann = read_json(bundle + "/config.json")["annotations"];
        if (ann.is_object()) {
            if (str(ann, "io.kubernetes.cri.container-type") == "sandbox") return false;  // the pause container
            if (auto n = str(ann, "io.kubernetes.cri.container-name"); !n.empty()) t.name = n;
            t.pod = str(ann, "io.kubernetes.cri.sandbox-name");
            t.ns = str(ann, "io.kubernetes.cri.sandbox-namespace");
            t.image = str(ann, "io.kubernetes.cri.image-name");
            if (t.image.empty()) t.image = str(ann, "org.opencontainers.image.ref.name");
        }
    }
    return t.pid > 0;
}

std::string runtime_of(const std::string& root) {
    if (root.find("containerd") != std::string::npos) return "containerd";
    auto slash = root.find_last_of('/');
    return slash == std::string::npos ? root : root.substr(slash + 1);
}

void runtime_targets(const std::string& root, const cgroups::CgroupMounts& mounts, std::vector<Target>& out,
                     int depth) {
    for (auto& id : list_dir(root)) {
        Target t;
        if (runtime_target(root, id, runtime_of(root), t)) {
            if (fill_cgroups(t, mounts)) out.push_back(std::move(t));
        } else if (depth == 0) {
            runtime_targets(root + "/" + id, mounts, out, 1);  // containerd: <root>/<namespace>/<id>
        }
    }
}

}  // namespace

std::string discovery_fingerprint(const DiscoveryOptions& o) {
    std::string fp = mtime_of(o.vitro_root + "/vitro.db") + mtime_of(o.vitro_root + "/vitro.db-wal");
    for (auto& r : o.runtime_roots) {
        fp += mtime_of(r);
        for (auto& sub : list_dir(r)) fp += mtime_of(r + "/" + sub);
    }
    return fp;
}

DiscoveryWatch::DiscoveryWatch(DiscoveryOptions o) : o_(std::move(o)), fd_(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {
    if (fd_) arm();
}

void DiscoveryWatch::arm() {
    // Entries made, removed or renamed (a runtime's new state.json is a
    // rename) in each directory; in the database's, its files written too.
    constexpr uint32_t entries = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF;
    missing_.clear();
    auto watch = [&](const std::string& dir, uint32_t mask) {
        if (::inotify_add_watch(fd_.get(), dir.c_str(), mask | IN_ONLYDIR) < 0) missing_.push_back(dir);
    };
    root_wd_ = ::inotify_add_watch(fd_.get(), o_.vitro_root.c_str(), entries | IN_MODIFY | IN_ONLYDIR);
    if (root_wd_ < 0) missing_.push_back(o_.vitro_root);
    for (auto& r : o_.runtime_roots) {
        watch(r, entries);
        for (auto& sub : list_dir(r)) ::inotify_add_watch(fd_.get(), (r + "/" + sub).c_str(), entries | IN_ONLYDIR);
    }
}

bool DiscoveryWatch::changed() {
    if (!fd_) {
        std::string fp = discovery_fingerprint(o_);
        bool moved = fp != fingerprint_;
        fingerprint_ = std::move(fp);
        return moved;
    }
    bool moved = std::exchange(first_, false);
    alignas(inotify_event) char buf[4096];
    for (ssize_t n; (n = ::read(fd_.get(), buf, sizeof buf)) > 0;) {
        for (ssize_t off = 0; off < n;) {
            auto* e = reinterpret_cast<const inotify_event*>(buf + off);
            off += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
            // In the database's directory only the database and its WAL: a
            // reader (discovery's own) rewrites the shared-memory index.
            const std::string_view name = e->len ? std::string_view(e->name) : std::string_view();
            if (e->wd != root_wd_ || !(e->mask & (IN_MODIFY | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO)) ||
                name == "vitro.db" || name == "vitro.db-wal")
                moved = true;
        }
    }
    struct stat st;
    for (auto& dir : missing_) moved |= ::stat(dir.c_str(), &st) == 0;
    if (moved) arm();  // new entries to watch; a watch added twice is the same watch
    return moved;
}

std::vector<Target> discover(const DiscoveryOptions& o, const cgroups::CgroupMounts& mounts, uint64_t* errors) {
    std::vector<Target> found;
    vitro_targets(o, mounts, found, errors);
    for (auto& r : o.runtime_roots) runtime_targets(r, mounts, found, 0);
    // One per cgroup: vitro's record first (it knows name and image), then the
    // runtime's; a container vitro ran through vitro-runtime appears in both.
    std::vector<Target> out;
    std::set<std::string> seen;
    for (auto& t : found)
        if (seen.insert(t.id).second) out.push_back(std::move(t));
    return out;
}

}  // namespace vitro::introspect
