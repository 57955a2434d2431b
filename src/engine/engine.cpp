#include "engine/engine.hpp"

#include <signal.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "engine/log_config.hpp"
#include "engine/monitor.hpp"
#include "engine/names.hpp"
#include "engine/seccomp_profile.hpp"
#include "engine/vm_driver.hpp"
#include "image/import.hpp"
#include "image/snapshot.hpp"
#include "image/unpack.hpp"
#include "linux/mounts.hpp"
#include "linux/procfs.hpp"
#include "net/networks.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"
#include "vm/vmm.hpp"

namespace vitro::engine {

namespace fs = std::filesystem;
using nlohmann::json;

Restart parse_restart(const std::string& value) {
    Restart r;
    std::string policy = value.substr(0, value.find(':'));
    if (policy == "no" || policy.empty()) r.policy = RestartPolicy::No;
    else if (policy == "always") r.policy = RestartPolicy::Always;
    else if (policy == "unless-stopped") r.policy = RestartPolicy::UnlessStopped;
    else if (policy == "on-failure") r.policy = RestartPolicy::OnFailure;
    else throw Error(EINVAL, "invalid restart policy \"" + value + "\": use no, on-failure[:N], always or unless-stopped");
    if (auto colon = value.find(':'); colon != std::string::npos) {
        uint64_t n = 0;
        if (r.policy != RestartPolicy::OnFailure || !parse_u64(value.substr(colon + 1), n) || n > 1000000)
            throw Error(EINVAL, "invalid restart policy \"" + value + "\": only on-failure takes a retry count");
        r.max_retries = static_cast<int>(n);
    }
    return r;
}

std::string random_hex(size_t bytes) {
    std::random_device rd;
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (size_t i = 0; i < bytes; ++i) {
        unsigned v = rd() & 0xff;
        out += digits[v >> 4];
        out += digits[v & 15];
    }
    return out;
}

std::string random_name() {
    static const char* adjectives[] = {"brave", "calm", "eager", "fond", "keen", "lucid", "merry", "nifty",
                                       "proud", "quiet", "sharp", "swift", "tender", "vivid", "wise", "zen"};
    static const char* nouns[] = {"curie", "darwin", "euler", "fermi", "gauss", "hopper", "kepler", "lovelace",
                                  "noether", "pascal", "ritchie", "shannon", "tesla", "turing", "wozniak", "yalow"};
    std::random_device rd;
    return std::string(adjectives[rd() % 16]) + "_" + nouns[rd() % 16] + "_" + random_hex(2);
}

bool valid_name(const std::string& n) {
    if (n.empty() || n.size() > 253 || !std::isalnum(static_cast<unsigned char>(n[0]))) return false;
    for (char ch : n)
        if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '.' && ch != '-') return false;
    return true;
}

namespace {

const char* policy_name(RestartPolicy p) {
    switch (p) {
        case RestartPolicy::No: return "no";
        case RestartPolicy::OnFailure: return "on-failure";
        case RestartPolicy::Always: return "always";
        case RestartPolicy::UnlessStopped: return "unless-stopped";
    }
    return "no";
}

// An exclusive flock on a directory, held while the fd lives.
UniqueFd lock_dir(const std::string& dir) {
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) throw_errno("open", dir);
    if (::flock(fd.get(), LOCK_EX) < 0) throw_errno("lock", dir);
    return fd;
}

image::StoredImage find_image(const image::Store& store, const std::string& name) {
    auto tagged = store.find_name(name);
    if (!tagged) throw Error(ENOENT, name + ": image not known");
    return image::load_image(store, *tagged);
}

// -v SRC:DST[:OPTS]: a host path (must exist) or a named volume (made when
// new, its copy-up added to `copy_ups`, its name to `named`).
MountSpec parse_volume(const VolumeStore& volumes, const std::string& value, std::vector<VolumeCopyUp>& copy_ups,
                       std::vector<std::string>& named) {
    std::vector<std::string> parts = split(value, ':');
    if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty())
        throw Error(EINVAL, "invalid volume \"" + value + "\": expected SRC:DST[:ro|rw]");
    MountSpec m;
    m.destination = parts[1];
    if (m.destination[0] != '/') throw Error(EINVAL, "invalid volume \"" + value + "\": the destination must be absolute");
    std::vector<std::string> opts;
    if (parts.size() == 3) {
        for (const auto& o : split(parts[2], ',')) {
            if (o == "ro" || o == "rw") opts.push_back(o);
            else if (o == "z" || o == "Z") continue;  // SELinux relabel: nothing to do here
            else throw Error(EINVAL, "invalid volume \"" + value + "\": unknown option \"" + o + "\"");
        }
    }
    if (parts[0][0] == '/') {
        struct stat st;
        if (::stat(parts[0].c_str(), &st) < 0)
            throw Error(errno, "volume \"" + value + "\": source " + parts[0] + ": " + std::strerror(errno));
        m.source = parts[0];
    } else {
        m.source = volumes.use(parts[0], m.destination, copy_ups);
        if (std::find(named.begin(), named.end(), parts[0]) == named.end()) named.push_back(parts[0]);
    }
    m.options = {"rbind"};
    m.options.insert(m.options.end(), opts.begin(), opts.end());
    return m;
}

MountSpec parse_tmpfs(const std::string& value) {
    MountSpec m;
    m.type = "tmpfs";
    m.source = "tmpfs";
    auto colon = value.find(':');
    m.destination = value.substr(0, colon);
    if (m.destination.empty() || m.destination[0] != '/')
        throw Error(EINVAL, "invalid --tmpfs \"" + value + "\": the destination must be absolute");
    m.options = {"nosuid", "nodev"};
    if (colon != std::string::npos)
        for (const auto& o : split(value.substr(colon + 1), ',')) m.options.push_back(o);
    return m;
}

std::vector<std::string> layer_paths(const json& cfg) { return cfg.value("layers", std::vector<std::string>{}); }

// Sets the network namespace entry of the spec for the container's mode.
void set_network_namespace(json& spec, const std::string& mode, const std::string& netns) {
    json& nss = spec["linux"]["namespaces"];
    json out = json::array();
    for (const auto& ns : nss)
        if (ns.value("type", "") != "network") out.push_back(ns);
    if (mode != "host") out.push_back({{"type", "network"}, {"path", netns}});
    nss = out;
}

// /etc/hosts and /etc/resolv.conf from net_dir, /etc/hostname from uts_dir
// (a container's bundle, or its pod's infra's); without resolv_conf (--dns
// none) the image's /etc/resolv.conf stays.
void add_etc_mounts(json& spec, const std::string& net_dir, const std::string& uts_dir, bool resolv_conf) {
    for (const char* f : {"hosts", "resolv.conf", "hostname"})
        if (resolv_conf || f != std::string("resolv.conf"))
        spec["mounts"].push_back({{"destination", std::string("/etc/") + f},
                                  {"type", "bind"},
                                  {"source", (f == std::string("hostname") ? uts_dir : net_dir) + "/" + f},
                                  {"options", {"rbind", "rprivate"}}});
}

}  // namespace

std::vector<std::string> engine_command(const EngineOptions& o) {
    std::vector<std::string> argv = {o.self_binary, "--root", o.root, "--runroot", o.runroot,
                                     "--network-config-dir", o.net_dir, "--cni-plugin-dir", o.cni_path};
    if (!o.runtime.empty()) {
        argv.push_back("--runtime");
        argv.push_back(o.runtime);
    }
    return argv;
}

bool init_alive(const ContainerRecord& c) {
    pid_t init = init_pid(c);
    uint64_t start = c.config.value("init_start_time", uint64_t{0});
    return init > 0 && start > 0 && os::process_alive(init, start);
}

bool is_running(const ContainerRecord& c) {
    return c.state == ContainerState::Running &&
           ((c.pid > 0 && os::process_alive(c.pid, c.pid_start_time)) || init_alive(c));
}

pid_t init_pid(const ContainerRecord& c) { return c.config.value("init_pid", 0); }

bool restart_pending(const ContainerRecord& c) {
    const json mark = c.config.value("restart_pending", json());
    return mark.is_object() && os::process_alive(mark.value("pid", 0), mark.value("start_time", uint64_t{0}));
}

namespace {
std::string record_path(const ContainerRecord& c) { return c.bundle + "/" + kContainerRecordFile; }
}  // namespace

Engine::Engine(EngineOptions opts) : opts_(std::move(opts)), images_(opts_.root) { state(); }
Engine::~Engine() = default;

StateStore& Engine::state() {
    if (!state_) {
        state_ = std::make_unique<StateStore>(opts_.root + "/vitro.db", 5000,
                                              opts_.rebuild_state ? StateStore::Open::Rebuild : StateStore::Open::Normal);
        state_->on_container_written([this](const ContainerRecord& c) { save_record(c); });
    }
    return *state_;
}

void Engine::save_record(const ContainerRecord& c) const {
    // Before its directory exists (create) there is nothing to keep yet.
    if (c.bundle.empty() || ::access(c.bundle.c_str(), F_OK) != 0) return;
    // A removal under way deletes the record first and the row last: no
    // writer (its monitor recording the exit) may put the record back.
    if (c.state == ContainerState::Removing) return;
    try {
        write_file_atomic(record_path(c), to_json(c).dump(), 0600);
    } catch (const Error& e) {
        log::warn("container " + c.name + ": its record outside the state database is not up to date: " + e.what());
    }
}

std::vector<ContainerRecord> Engine::unknown_containers() {
    StateFiles files = probe_state_files(state().path());
    std::vector<std::string> ids = state().container_ids();
    std::vector<ContainerRecord> out;
    for (const auto& file : files.container_records) {
        std::string id = fs::path(file).parent_path().filename().string();
        if (std::binary_search(ids.begin(), ids.end(), id)) continue;
        // Removed (record first, row after) or added (row first, record after)
        // since the listing: not lost.
        if (!path_exists(file) || state().find_container(id)) continue;
        try {
            ContainerRecord c = container_from_json(json::parse(read_file(file)));
            if (c.id == id) out.push_back(std::move(c));
            else log::warn(file + ": names container " + c.id + ", not " + id + ": ignored");
        } catch (const std::exception& e) {
            log::warn(file + ": " + e.what() + ": ignored");
        }
    }
    return out;
}

void Engine::check_nothing_lost() {
    auto lost = unknown_containers();
    if (lost.empty()) return;
    std::string names;
    for (size_t i = 0; i < lost.size() && i < 5; ++i) names += (i ? ", " : "") + lost[i].name;
    if (lost.size() > 5) names += ", ...";
    throw StateLostError("the state database " + state().path() + " does not know " + std::to_string(lost.size()) +
                         " container(s) whose records are in " + opts_.root + "/containers (" + names +
                         "): it lost them; run `vitro system repair` to put them back before making new ones");
}

std::vector<ContainerRecord> Engine::restore_unknown_containers() {
    std::vector<ContainerRecord> restored;
    for (ContainerRecord c : unknown_containers()) {
        if (c.pod_id && !state().find_pod(*c.pod_id)) {
            log::warn("container " + c.name + ": its pod " + c.config.value("pod", *c.pod_id) +
                      " is not in the database either: restored without it");
            c.pod_id.reset();
        }
        try {
            state().add_container(c);
            restored.push_back(c);
        } catch (const ConflictError& e) {
            log::warn("container " + c.id + " not restored: " + e.what());
        }
    }
    repair();
    return restored;
}

NetworkPaths Engine::network_paths() const {
    return {opts_.runroot, opts_.net_dir, opts_.cni_path, opts_.root + "/cni/results", opts_.root};
}

std::unique_ptr<RuntimeDriver> Engine::driver_for(const ContainerRecord& c) const {
    if (c.config.value("isolation", "") == "vm") return make_vm_driver(opts_.runroot, opts_.root, opts_.agent_binary);
    return make_runtime_driver(c.config.value("runtime", opts_.runtime), opts_.runroot);
}

// Podman's floor for --memory: below it the container cannot even start.
constexpr int64_t kMinMemoryLimit = 6 * 1024 * 1024;

// --isolation: what a microVM container cannot do yet is refused here, one
// flag named, before anything is made.
static void validate_isolation(const CreateRequest& req) {
    const std::string& iso = req.isolation;
    if (iso.empty() || iso == "namespaces" || iso == "default" || iso == "process") return;
    if (iso != "vm") throw Error(EINVAL, "invalid --isolation \"" + iso + "\": use namespaces (the default) or vm");
    auto refuse = [](const std::string& flag) {
        throw Error(ENOTSUP, flag + " is not supported with --isolation vm yet");
    };
    const RunOptions& r = req.run;
    if (r.tty) refuse("-t/--tty");
    if (!req.ports.empty()) refuse("-p/--publish");
    if (!req.network.empty() && req.network != "none") refuse("--network " + req.network + " (a VM has no network yet: --network none)");
    if (!req.pod.empty()) refuse("--pod");
    if (!req.security_opts.empty()) refuse("--security-opt");
    // --memory is the guest's RAM (the VMM's overhead is added to the
    // cgroup's limit), --cpus its vCPUs; processes inside are not the host's.
    if (r.memory && *r.memory > 0 && *r.memory < (int64_t{vm::kMinMemoryMib} << 20))
        throw Error(EINVAL, "invalid --memory " + std::to_string(*r.memory) + " bytes: a VM needs at least " +
                                std::to_string(vm::kMinMemoryMib) + "MB (its kernel and agent)");
    if (r.pids_limit) refuse("--pids-limit");
    if (!r.cap_add.empty() || !r.cap_drop.empty()) refuse("--cap-add/--cap-drop");
    if (r.read_only) refuse("--read-only");
    if (!r.ulimits.empty()) refuse("--ulimit");
    if (!req.etc.add_hosts.empty()) refuse("--add-host");
    if (!req.etc.dns_servers.empty() || !req.etc.dns_search.empty() || !req.etc.dns_options.empty()) refuse("--dns");
}

void validate_request(const CreateRequest& req) {
    if (!req.name.empty() && !valid_name(req.name))
        throw Error(EINVAL, "invalid container name \"" + req.name + "\": use [a-zA-Z0-9][a-zA-Z0-9_.-]*");
    // Checked here, not at stop time: a container that cannot be stopped as asked is never made.
    try {
        runtime::parse_signal(req.stop_signal);
    } catch (const Error& e) {
        throw Error(EINVAL, "invalid --stop-signal \"" + req.stop_signal + "\": " + e.what() +
                                " (a name such as SIGTERM or TERM, or a number 1 to 64)");
    }
    if (req.run.memory && *req.run.memory > 0 && *req.run.memory < kMinMemoryLimit)
        throw Error(EINVAL, "invalid --memory " + std::to_string(*req.run.memory) +
                                " bytes: the minimum memory limit allowed is 6MB");
    validate_isolation(req);
    if (!req.run.rootless) check_ulimits_settable(req.run.ulimits);
    for (const auto& h : req.etc.add_hosts) parse_add_host(h);
    for (const auto& d : req.etc.dns_servers) check_dns_server(d);
    if (req.etc.dns_servers.size() > 1 &&
        std::find(req.etc.dns_servers.begin(), req.etc.dns_servers.end(), "none") != req.etc.dns_servers.end())
        throw Error(EINVAL, "invalid --dns: none (the image's own /etc/resolv.conf) cannot be combined with servers");
    for (const auto& d : req.etc.dns_search)
        if (d.empty() || std::any_of(d.begin(), d.end(), [](unsigned char ch) { return std::isspace(ch) || !std::isprint(ch); }))
            throw Error(EINVAL, "invalid --dns-search \"" + d + "\": not a domain name");
    for (const auto& o : req.etc.dns_options)
        if (o.empty() || std::any_of(o.begin(), o.end(), [](unsigned char ch) { return std::isspace(ch) || !std::isprint(ch); }))
            throw Error(EINVAL, "invalid --dns-option \"" + o + "\": empty or with spaces");
    for (const auto& [k, v] : req.labels)
        if (k.empty()) throw Error(EINVAL, "invalid --label \"=" + v + "\": no key");
}

ContainerRecord Engine::create(const CreateRequest& req) {
    validate_request(req);
    std::optional<PodRecord> pod;
    if (!req.pod.empty()) pod = state().get_pod(req.pod);  // before any work: an unknown pod fails fast
    image::StoredImage img = find_image(images_, req.image);
    const auto& layers_desc = img.manifest.layers;
    if (layers_desc.size() != img.config.diff_ids.size())
        throw Error(EINVAL, req.image + ": image config lists " + std::to_string(img.config.diff_ids.size()) +
                                " diff_ids for " + std::to_string(layers_desc.size()) + " layers");
    ImageSource src{req.image, img.descriptor.digest, img.config, {}};
    for (size_t i = 0; i < layers_desc.size(); ++i)
        src.layers.push_back(image::ensure_layer(images_, layers_desc[i].digest, img.config.diff_ids[i]));
    return create_from(req, src, pod ? &*pod : nullptr, false);
}

ContainerRecord Engine::create_from(const CreateRequest& req, const ImageSource& src, const PodRecord* pod,
                                    bool infra) {
    RunOptions run = req.run;
    const bool vm = req.isolation == "vm";
    if (vm && !opts_.runtime.empty()) throw Error(ENOTSUP, "--runtime is not supported with --isolation vm");
    std::string mode = normalize_network_mode(vm && req.network.empty() ? "none" : req.network);
    std::vector<std::string> share;
    std::string infra_id;
    std::optional<ContainerRecord> infra_rec;  // a member's infra
    // A joined network namespace's owner (mode "container:ID"): the pod's
    // infra, or the container given with --network container:X.
    std::string net_owner_id;
    std::optional<ContainerRecord> net_owner;
    if (pod && !infra) {
        share = pod->config.value("share", std::vector<std::string>{});
        infra_id = pod->config.value("infra_id", "");
        infra_rec = infra_id.empty() ? std::nullopt : state().find_container(infra_id);
        if (!infra_rec)
            throw Error(ENOENT, "pod " + pod->name + " has no infra container (its creation was interrupted): "
                                "remove it with `vitro pod rm " + pod->name + "`");
        auto shares = [&](const char* kind) { return std::find(share.begin(), share.end(), kind) != share.end(); };
        if (shares("net")) {
            if (!req.ports.empty())
                throw Error(EINVAL, "invalid config provided: published or exposed ports must be defined when the pod "
                                    "is created: network cannot be configured when it is shared with a pod");
            if (!req.network.empty())
                throw Error(EINVAL, "invalid config provided: --network cannot be set when the container joins the "
                                    "network namespace of pod " + pod->name);
            // A pod on the host's network: its members are too.
            if (infra_rec->config.value("network", "") == "host") {
                mode = "host";
                share.erase(std::find(share.begin(), share.end(), "net"));
            } else {
                mode = "container:" + infra_id;
                net_owner_id = infra_id;
                net_owner = infra_rec;
            }
        }
        if (shares("uts")) {
            if (!run.hostname.empty())
                throw Error(EINVAL, "invalid config provided: cannot set hostname when joining the pod UTS namespace");
            run.hostname = infra_rec->config.value("hostname", "");
        }
    }
    if (is_joined_mode(mode) && !req.network.empty()) {
        // --network container:X: X's namespace, as a pod member has its
        // infra's (net_owner: X, or the container X itself joins).
        const std::string ref = mode.substr(std::strlen("container:"));
        auto target = ref.empty() ? std::nullopt : state().find_container(ref);
        if (!target) throw Error(ENOENT, "--network " + mode + ": no container with name or ID \"" + ref + "\" found");
        const std::string target_mode = target->config.value("network", "");
        if (is_joined_mode(target_mode)) {
            net_owner_id = target_mode.substr(std::strlen("container:"));
            net_owner = state().find_container(net_owner_id);
            if (!net_owner)
                throw Error(ENOENT, "--network " + mode + ": container " + target->name + " joins container " +
                                        net_owner_id.substr(0, 12) + ", which no longer exists");
        } else {
            net_owner_id = target->id;
            net_owner = target;
        }
        mode = target_mode == "host" ? "host" : "container:" + net_owner_id;
    }
    if (!req.ports.empty() && !is_cni_mode(mode))
        throw Error(EINVAL, "published ports (-p) need a bridge network, not --network " + mode);
    const bool own_etc = !req.etc.add_hosts.empty() || !req.etc.dns_servers.empty() || !req.etc.dns_search.empty() ||
                         !req.etc.dns_options.empty();
    if (own_etc && is_joined_mode(mode))
        throw Error(EINVAL, "invalid config provided: --add-host and --dns* cannot be set when the container joins "
                            "another's network namespace (" + (pod ? "pod " + pod->name : mode) +
                            "): it sees that one's /etc/hosts and resolv.conf");
    make_runtime_driver(opts_.runtime, opts_.runroot);  // an unknown --runtime fails here, before anything is made

    // Held until the container is recorded (see volumes.hpp): no volume it
    // uses is removed meanwhile.
    VolumeStore volumes(opts_.root);
    UniqueFd volume_lock;
    if (!req.volumes.empty()) volume_lock = volumes.lock(true);
    std::vector<VolumeCopyUp> copy_ups;
    std::vector<std::string> named_volumes;
    for (const auto& v : req.volumes) run.mounts.push_back(parse_volume(volumes, v, copy_ups, named_volumes));
    for (const auto& t : req.tmpfs) run.mounts.push_back(parse_tmpfs(t));

    ContainerRecord c;
    c.id = random_hex(32);
    c.name = req.name.empty() ? random_name() : req.name;
    c.image = src.image;
    c.image_digest = src.digest;
    c.bundle = opts_.root + "/containers/" + c.id;
    if (pod) c.pod_id = pod->id;
    if (run.hostname.empty()) run.hostname = mode == "host" ? "" : c.id.substr(0, 12);
    json ports = json::array();
    for (const auto& p : req.ports) ports.push_back(to_json(p));
    c.config = {{"command", run.command},
                {"args", container_args(src.config, run)},  // what runs, image defaults resolved (ps)
                {"layers", src.layers},
                {"network", mode},
                {"ports", ports},
                {"tty", run.tty},
                {"interactive", req.interactive},
                {"restart", {{"policy", policy_name(req.restart.policy)}, {"max", req.restart.max_retries}}},
                {"auto_remove", req.auto_remove},
                {"stop_signal", req.stop_signal},
                {"stop_timeout", req.stop_timeout},
                {"hostname", run.hostname},
                {"runtime", opts_.runtime},
                {"restart_count", 0},
                {"volumes", named_volumes},  // what `volume rm` and `prune` look for
                {"log", log_limits_json(req.log)}};
    if (vm) c.config["isolation"] = "vm";
    {
        json labels = json::object();
        for (const auto& [k, v] : src.config.labels) labels[k] = v;
        for (const auto& [k, v] : req.labels) labels[k] = v;
        c.config["labels"] = labels;
        if (own_etc) c.config["etc"] = to_json(req.etc);
        json ulimits = json::array();
        for (const auto& u : run.ulimits) ulimits.push_back({{"Name", rlimit_type(u.name)}, {"Soft", u.soft}, {"Hard", u.hard}});
        if (!ulimits.empty()) c.config["ulimits"] = ulimits;
    }
    if (pod) {
        // Readers (ps, the metrics exporter) get the pod without a lookup.
        c.config["pod"] = pod->name;
        if (infra) c.config["infra"] = true;
        else {
            c.config["pod_infra"] = infra_id;
            c.config["pod_share"] = share;
        }
    }
    {
        // Ours until its bundle is complete, and for `run` until started: if
        // this command dies first, the next repair removes what it left.
        auto self = os::read_proc_stat(::getpid());
        c.owner_pid = ::getpid();
        c.owner_start_time = self ? self->start_time : 0;
    }
    check_nothing_lost();
    {
        // The network is there when the container is recorded: its removal
        // (network rm, any root's system prune) waits on this lock, then sees
        // the container, and this root (record_root) with it.
        UniqueFd network_lock;
        if (is_cni_mode(mode) && mode != net::kDefaultNetwork) {
            network_lock = net::NetworkStore(opts_.net_dir).lock(true);
            check_network(network_paths(), mode);
            record_root(network_paths());
        }
        state().add_container(c);  // the name is checked here, before anything is made
    }
    volume_lock.reset();

    try {
        image::Snapshot snap = image::Snapshot::create(opts_.root, c.id, src.layers);
        snap.mount();
        for (const auto& v : copy_ups) copy_up_volume(snap.merged_dir(), v);
        run.root_path = "merged";
        json spec = build_spec(src.config, run, snap.merged_dir());
        apply_security_opts(spec, req.security_opts);
        if (is_joined_mode(mode)) set_network_namespace(spec, mode, netns_path(network_paths(), net_owner_id));
        else set_network_namespace(spec, mode, netns_path(network_paths(), c.id));
        bool own_uts = std::find(share.begin(), share.end(), "uts") == share.end();
        if (mode == "host" || !own_uts) spec.erase("hostname");  // a joined uts namespace has the infra's
        EtcFiles etc{mode == "host" ? "" : run.hostname, c.name, {}, "", mode == "host", req.etc};
        write_etc_files(c.bundle, etc);
        // A member sharing the pod's network sees the pod's /etc/hosts and
        // resolv.conf (the infra's, written when it starts), and with the uts
        // namespace its /etc/hostname.
        std::string net_dir = is_joined_mode(mode) ? net_owner->bundle : c.bundle;
        add_etc_mounts(spec, net_dir, own_uts ? c.bundle : infra_rec->bundle, !keeps_image_resolv_conf(req.etc));
        write_file_atomic(c.bundle + "/config.json", spec.dump(), 0600);
        if (!req.started_by_creator) {  // `create`: complete now, and the user's to start
            c = state().update_container(c.id, [](ContainerRecord& r) {
                r.owner_pid = 0;
                r.owner_start_time = 0;
            });
        }
        save_record(c);
        snap.release();
    } catch (...) {
        state().remove_container(c.id);
        throw;
    }
    return c;
}

int Engine::start(const std::string& ref, const StartOptions& opts) {
    repair();
    ContainerRecord c = state().get_container(ref);
    // A `run` starting what it created (its claim, see create_from): when
    // the start fails the claim ends, and the container stays `created`, as
    // docker leaves it, instead of being removed as a dead creator's. With
    // --rm the claim stays: its removal is right.
    auto self = os::read_proc_stat(::getpid());
    bool claimed = c.owner_pid == ::getpid() && self && c.owner_start_time == self->start_time;
    if (!claimed || c.config.value("auto_remove", false)) return start_container(c, opts);
    try {
        return start_container(c, opts);
    } catch (...) {
        try {
            state().update_container(c.id, [&](ContainerRecord& r) {
                if (r.state != ContainerState::Created || r.owner_pid != c.owner_pid) return;
                r.owner_pid = 0;
                r.owner_start_time = 0;
            });
        } catch (const std::exception& e) {
            log::warn("container " + c.name + ": could not record that its start failed (" + e.what() +
                      "); the next command removes it");
        }
        throw;
    }
}

// --network container:X: X's namespace is pinned while X runs (and gone,
// or another's, once it stops), so X must be running when this one starts.
void Engine::require_net_owner_running(const ContainerRecord& c, const std::string& mode) {
    const std::string owner_id = mode.substr(std::strlen("container:"));
    auto owner = state().find_container(owner_id);
    if (!owner)
        throw Error(ENOENT, "container " + c.name + " joins the network namespace of container " +
                                owner_id.substr(0, 12) + ", which no longer exists");
    if (!is_running(*owner) || !path_exists(netns_path(network_paths(), owner->id)))
        throw ConflictError("container " + c.name + " joins the network namespace of container " + owner->name +
                            ", which is not running (start " + owner->name + " first)");
}

namespace {
// A foreground client's signals (proxied_signals) held blocked and read from
// a signalfd while it waits for its container; those still pending at the
// end are dropped (the container got its own, or is gone).
class SignalProxy {
public:
    SignalProxy() {
        sigset_t set = proxied_signals();
        ::sigprocmask(SIG_BLOCK, &set, &old_);
        fd_ = UniqueFd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
        if (!fd_) {
            log::warn(std::string("signals are not passed on to the container: signalfd: ") + std::strerror(errno));
            ::sigprocmask(SIG_SETMASK, &old_, nullptr);
        }
    }
    ~SignalProxy() {
        if (!fd_) return;
        signalfd_siginfo si{};
        while (::read(fd_.get(), &si, sizeof si) == sizeof si) {
        }
        ::sigprocmask(SIG_SETMASK, &old_, nullptr);
    }
    SignalProxy(const SignalProxy&) = delete;
    SignalProxy& operator=(const SignalProxy&) = delete;

    // Returns when `fd` is readable, giving each signal that comes meanwhile to `forward`.
    template <class F>
    void wait_readable(int fd, F&& forward) {
        if (!fd_) return;
        for (;;) {
            pollfd p[2] = {{fd, POLLIN, 0}, {fd_.get(), POLLIN, 0}};
            if (::poll(p, 2, -1) < 0) {
                if (errno == EINTR) continue;
                throw_errno("poll");
            }
            signalfd_siginfo si{};
            if (p[1].revents)
                while (::read(fd_.get(), &si, sizeof si) == sizeof si) forward(static_cast<int>(si.ssi_signo));
            if (p[0].revents) return;
        }
    }

private:
    sigset_t old_{};
    UniqueFd fd_;
};
}  // namespace

int Engine::start_container(ContainerRecord c, const StartOptions& opts) {
    // One start at a time per container (two `run --pod` starting the pod's
    // infra at once): the second sees the first's result. Held until the
    // monitor reports the container running.
    UniqueFd start_lock = lock_dir(c.bundle);
    c = state().get_container(c.id);
    if (c.state == ContainerState::Removing) throw ConflictError("container " + c.name + " is being removed");
    if (is_running(c)) {
        if (opts.attach) throw ConflictError("container " + c.name + " is already running");
        return 0;
    }
    const json& cfg = c.config;
    std::string mode = cfg.value("network", "none");

    if (cfg.contains("pod_infra")) prepare_pod_member(c);
    else if (is_joined_mode(mode)) require_net_owner_running(c, mode);
    image::Snapshot snap = image::Snapshot::open(opts_.root, c.id, layer_paths(cfg));
    if (!snap.mounted()) snap.mount();
    NetworkAttachment att;
    UniqueFd notify_r, notify_w;
    pid_t monitor = -1;
    std::pair<pid_t, uint64_t> claim{};
    try {
        // A start that died half-way (kill -9) left its network: release it,
        // or the IPAM refuses the address it still holds for this container.
        if (mode != "host" && !is_joined_mode(mode) && path_exists(netns_path(network_paths(), c.id))) {
            log::info("container " + c.name + ": releasing the network an interrupted start left");
            detach_network(network_paths(), c.id, cni_network_of(mode), ports_of(cfg));
        }
        // --network none gets a namespace of its own too (lo up, as docker's).
        if (mode != "host" && !is_joined_mode(mode)) att = attach_network(network_paths(), c.id, cni_network_of(mode), ports_of(cfg));
        if (is_cni_mode(mode)) {
            // host.containers.internal: the host's address on the container's network.
            EtcFiles etc{cfg.value("hostname", ""), c.name, att.ips, att.gateways.empty() ? "" : att.gateways[0], false,
                         etc_options_of(cfg)};
            write_etc_files(c.bundle, etc);
        }
        state().update_container(c.id, [&](ContainerRecord& r) {
            if (is_cni_mode(mode)) r.config["ips"] = att.ips;
            r.config.erase("stop_requested");
            r.config.erase("restart_pending");
            r.config.erase("paused");
            // A `run --rm`'s claim passes to the monitor (it takes it first
            // thing): were it cleared here, this command killed before the
            // fork would leave a created --rm container nobody removes.
            // Other claims end here: the container is the user's to start.
            claim = {r.owner_pid, r.owner_start_time};
            if (cfg.value("auto_remove", false) && r.owner_pid > 0 && r.state == ContainerState::Created) return;
            claim = {};
            r.owner_pid = 0;
            r.owner_start_time = 0;
        });
        int notify[2];
        if (::pipe2(notify, O_CLOEXEC) < 0) throw_errno("pipe");
        notify_r = UniqueFd(notify[0]);
        notify_w = UniqueFd(notify[1]);
        std::fflush(nullptr);
        // SQLite keeps per-process lock bookkeeping that a forked child would
        // inherit and trust; the monitor must start with none, so ours is
        // closed across the fork and opened again after it.
        // Ours opens again only when next used (state()), not while the
        // monitor opens its own: two first opens at once wait on each other
        // (one rebuilds the WAL index, the other sleeps in the busy handler).
        state_.reset();
        monitor = ::fork();
        if (monitor < 0) throw_errno("fork monitor");
    } catch (...) {
        release_resources(c);
        throw;
    }
    if (monitor == 0) {
        notify_r.reset();
        MonitorArgs a;
        a.engine = opts_;
        a.id = c.id;
        a.attach = opts.attach;
        a.interactive = opts.interactive || cfg.value("interactive", false);
        a.tty = cfg.value("tty", false);
        a.notify_fd = notify_w.release();
        a.stop_with_client = opts.attach && opts.sig_proxy;
        a.port_holds = std::move(att.port_holds);
        a.claim_pid = claim.first;
        a.claim_start_time = claim.second;
        run_monitor(std::move(a));
    }
    notify_w.reset();
    att.port_holds.clear();  // the monitor holds them now
    // Attached with --sig-proxy: from here on our signals are the container's
    // (held until it runs, then passed on to its init).
    std::optional<SignalProxy> proxy;
    if (opts.attach && opts.sig_proxy) proxy.emplace();
    bool started = false;
    auto forward = [&](int sig) {
        try {
            auto now = state().find_container(c.id);
            if (now && is_running(*now) && init_alive(*now)) ::kill(init_pid(*now), sig);
        } catch (const std::exception& e) {
            log::warn("container " + c.name + ": signal " + std::to_string(sig) + " not passed on: " + e.what());
        }
    };

    // Messages from the monitor: one line each.
    std::string buf;
    auto next_line = [&]() -> std::optional<std::string> {
        for (;;) {
            if (auto nl = buf.find('\n'); nl != std::string::npos) {
                std::string line = buf.substr(0, nl);
                buf.erase(0, nl + 1);
                return line;
            }
            if (proxy && started) proxy->wait_readable(notify_r.get(), forward);
            char chunk[4096];
            ssize_t n = ::read(notify_r.get(), chunk, sizeof chunk);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return std::nullopt;
            buf.append(chunk, static_cast<size_t>(n));
        }
    };
    auto first = next_line();
    if (!first || first->empty()) {
        int status = 0;
        ::waitpid(monitor, &status, 0);
        throw Error("container " + c.name + ": the monitor process died during start-up");
    }
    start_lock.reset();
    if ((*first)[0] == 'E') {
        ::waitpid(monitor, nullptr, 0);
        std::string rest = first->substr(2);
        size_t sp = rest.find(' ');
        int err = std::atoi(rest.substr(0, sp).c_str());
        throw Error(err, sp == std::string::npos ? rest : rest.substr(sp + 1));
    }
    if (!opts.attach) return 0;
    started = true;
    int code = 0;
    for (;;) {
        auto line = next_line();
        if (!line) break;
        if (!line->empty() && (*line)[0] == 'X') code = std::atoi(line->c_str() + 2);
    }
    int status = 0;
    while (::waitpid(monitor, &status, 0) < 0 && errno == EINTR) {
    }
    return code;
}

void Engine::kill(const std::string& ref, int signal) {
    ContainerRecord c = state().get_container(ref);
    if (!is_running(c) || init_pid(c) <= 0) throw ConflictError("container " + c.name + " is not running");
    if (::kill(init_pid(c), signal) < 0) throw_errno("kill", "container " + c.name);
}

namespace {
// Waits until `pid` (started at start_time) is gone, at most timeout_ms; true when gone.
bool wait_pid_gone(pid_t pid, uint64_t start_time, int timeout_ms) {
    if (pid <= 0) return true;
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd) return !os::process_alive(pid, start_time);
    if (!os::process_alive(pid, start_time)) return true;
    pollfd p{pidfd.get(), POLLIN, 0};
    int rc;
    do {
        rc = ::poll(&p, 1, timeout_ms);
    } while (rc < 0 && errno == EINTR);
    return rc > 0 || !os::process_alive(pid, start_time);
}
}  // namespace

void Engine::wait_exited(const std::string& id, int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        auto c = state().find_container(id);
        if (!c || c->state != ContainerState::Running) return;
        bool monitor_gone = !os::process_alive(c->pid, c->pid_start_time) && !init_alive(*c);
        if (monitor_gone || std::chrono::steady_clock::now() > deadline) {
            repair();  // the monitor is gone: fix the record ourselves
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

namespace {
// Marks a stop as asked for (the monitor then does not restart it). A full
// file system must not keep a container from being stopped: a failure (after
// the store's reserve) is a warning, and the signal goes anyway.
void record_stop_requested(StateStore& state, const ContainerRecord& c) {
    try {
        state.update_container(c.id, [](ContainerRecord& r) { r.config["stop_requested"] = true; });
    } catch (const Error& e) {
        log::warn("container " + c.name + ": could not record the stop (" + e.what() +
                  "); stopping it anyway, a restart policy may start it again");
    }
}
}  // namespace

void Engine::send_stop_signal(const ContainerRecord& c) {
    record_stop_requested(state(), c);
    int sig = SIGTERM;
    try {
        sig = runtime::parse_signal(c.config.value("stop_signal", "SIGTERM"));
    } catch (const Error&) {
        // A stored stop signal that no longer parses: SIGTERM, the default
    }
    if (init_pid(c) > 0) ::kill(init_pid(c), sig);
}

void Engine::thaw(const ContainerRecord& c) {
    if (!is_paused(c)) return;
    try {
        driver_for(c)->resume(c.id);
    } catch (const std::exception& e) {
        log::warn("container " + c.name + ": thawing its processes: " + e.what());
    }
    try {
        state().update_container(c.id, [](ContainerRecord& r) { r.config.erase("paused"); });
    } catch (const std::exception& e) {
        log::warn("container " + c.name + ": could not record that it is no longer paused: " + e.what());
    }
}

ContainerRecord Engine::stop(const std::string& ref, std::optional<int> timeout) {
    repair();
    ContainerRecord c = state().get_container(ref);
    if (is_infra(c) && c.pod_id) stop_pod_members(*c.pod_id, timeout);  // the pod stops with its infra
    if (!is_running(c)) return c;  // docker: stopping a stopped container is fine
    int t = timeout.value_or(c.config.value("stop_timeout", 10));
    send_stop_signal(c);
    thaw(c);  // paused: the signal waits for the thaw (podman stops paused containers)
    pid_t init = init_pid(c);
    uint64_t init_start = c.config.value("init_start_time", uint64_t{0});
    if (!wait_pid_gone(init, init_start, t * 1000)) {
        try {
            driver_for(c)->kill(c.id, SIGKILL, true);
        } catch (const Error&) {
            ::kill(init, SIGKILL);
        }
        wait_pid_gone(init, init_start, 10000);
    }
    wait_exited(c.id, 10000);
    // --rm: its monitor may have removed it already; it stopped all the same.
    if (auto now = state().find_container(c.id)) return *now;
    c.state = ContainerState::Exited;
    return c;
}

void Engine::restart(const std::string& ref, std::optional<int> timeout) {
    repair();
    ContainerRecord c = state().get_container(ref);
    if (is_running(c)) {
        // --rm: the monitor leaves the exited container to this start
        // (start_container clears the mark; a failed start removes it).
        auto self = os::read_proc_stat(::getpid());
        json mark = {{"pid", ::getpid()}, {"start_time", self ? self->start_time : 0}};
        state().update_container(c.id, [&](ContainerRecord& r) { r.config["restart_pending"] = mark; });
        try {
            c = stop(c.id, timeout);
        } catch (...) {
            try {
                state().update_container(c.id, [](ContainerRecord& r) { r.config.erase("restart_pending"); });
            } catch (const std::exception& e) {
                log::warn("container " + c.name + ": " + e.what());
            }
            throw;
        }
    }
    start(c.id, {});
}

void Engine::pause(const std::string& ref) {
    repair();
    ContainerRecord c = state().get_container(ref);
    UniqueFd lock = lock_dir(c.bundle);  // no start meanwhile
    c = state().get_container(c.id);
    if (is_paused(c)) throw ConflictError("container " + c.name + " is already paused: container state improper");
    if (!is_running(c))
        throw ConflictError("container " + c.name + " is not running, can't pause: container state improper");
    driver_for(c)->pause(c.id);
    try {
        state().update_container(c.id, [](ContainerRecord& r) { r.config["paused"] = true; });
    } catch (...) {
        driver_for(c)->resume(c.id);  // not recorded: not left frozen
        throw;
    }
}

void Engine::unpause(const std::string& ref) {
    repair();
    ContainerRecord c = state().get_container(ref);
    UniqueFd lock = lock_dir(c.bundle);
    c = state().get_container(c.id);
    if (!is_paused(c))
        throw ConflictError("container " + c.name + " is not paused, can't unpause: container state improper");
    driver_for(c)->resume(c.id);
    state().update_container(c.id, [](ContainerRecord& r) { r.config.erase("paused"); });
}

ContainerRecord Engine::rename(const std::string& ref, const std::string& name) {
    if (!valid_name(name))
        throw Error(EINVAL, "invalid container name \"" + name + "\": use [a-zA-Z0-9][a-zA-Z0-9_.-]*");
    repair();
    ContainerRecord c = state().get_container(ref);
    if (is_infra(c))
        throw ConflictError("container " + c.name + " is the infra container of pod " + c.config.value("pod", "") +
                            ": its name goes with the pod's");
    // update_container checks that no other container has the name.
    return state().update_container(c.id, [&](ContainerRecord& r) { r.name = name; });
}

int Engine::wait(const std::string& ref) {
    ContainerRecord c = state().get_container(ref);
    std::optional<int> last_code = c.exit_code;
    for (;;) {
        auto now = state().find_container(c.id);
        if (!now) return last_code.value_or(0);  // removed (--rm) after it exited
        last_code = now->exit_code;
        if (now->state == ContainerState::Created) return 0;
        if (now->state != ContainerState::Running) return now->exit_code.value_or(-1);
        if (!os::process_alive(now->pid, now->pid_start_time)) {
            repair();  // the monitor died without recording the exit
            continue;
        }
        pid_t init = init_pid(*now);
        uint64_t start = now->config.value("init_start_time", uint64_t{0});
        if (init > 0 && os::process_alive(init, start)) wait_pid_gone(init, start, 1000);
        else std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

ContainerRootfs::~ContainerRootfs() {
    root_.reset();
    if (!mounted_) return;
    try {
        mounted_->unmount();
    } catch (const std::exception& e) {
        log::warn("container " + c_.name + ": unmount its rootfs: " + e.what());
    }
}

ContainerRootfs Engine::open_rootfs(const std::string& ref) {
    repair();
    ContainerRecord c = state().get_container(ref);
    for (int attempt = 0;; ++attempt) {
        UniqueFd lock = lock_dir(c.bundle);
        c = state().get_container(c.id);
        if (c.state == ContainerState::Removing) throw ConflictError("container " + c.name + " is being removed");
        image::Snapshot snap = image::Snapshot::open(opts_.root, c.id, layer_paths(c.config));
        const bool ours = !snap.mounted();
        if (ours) snap.mount();
        UniqueFd root(::open(snap.merged_dir().c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        struct statfs fs {};
        const bool overlay = root && ::fstatfs(root.get(), &fs) == 0 && fs.f_type == OVERLAYFS_SUPER_MAGIC;
        if (overlay) {
            if (!ours) return ContainerRootfs(std::move(c), std::move(root), UniqueFd(), std::nullopt);
            return ContainerRootfs(std::move(c), std::move(root), std::move(lock), std::move(snap));
        }
        int err = root ? ENXIO : errno;
        if (ours) snap.unmount();
        // Running when asked, gone before the open: its exit unmounted it.
        if (attempt == 2) throw_errno(err, "open the rootfs of container " + c.name, snap.merged_dir());
    }
}

void Engine::release_resources(const ContainerRecord& c) {
    std::string mode = c.config.value("network", "none");
    try {
        driver_for(c)->remove(c.id);
    } catch (const std::exception& e) {
        log::warn(std::string("container ") + c.name + ": runtime delete: " + e.what());
    }
    if (mode != "host" && !is_joined_mode(mode)) detach_network(network_paths(), c.id, cni_network_of(mode), ports_of(c.config));
    try {
        image::Snapshot::open(opts_.root, c.id, layer_paths(c.config)).unmount();
    } catch (const Error&) {
        // No snapshot, or not mounted: nothing left to unmount
    }
}

void Engine::remove(const std::string& ref, bool force) {
    repair();
    ContainerRecord c = state().get_container(ref);
    if (is_infra(c))
        throw ConflictError("container " + c.name + " is the infra container of pod " + c.config.value("pod", "") +
                            " and cannot be removed without removing the pod (vitro pod rm)");
    remove_container(std::move(c), force);
}

// --rm: the monitor removes the container once it has exited, maybe while
// a `stop`/`rm -f` waits: true when that removal is done (what ours would do).
bool Engine::removed_by_its_monitor(const std::string& id) {
    auto now = state().find_container(id);
    if (now && now->state == ContainerState::Removing && now->owner_pid > 0 && now->owner_pid != ::getpid())
        wait_pid_gone(now->owner_pid, now->owner_start_time, 15000);
    return !state().find_container(id);
}

void Engine::remove_container(ContainerRecord c, bool force) {
    if (is_running(c)) {
        if (!force)
            throw ConflictError("cannot remove container " + c.name +
                                " as it is running - stop the container before removing or force remove (-f)");
        record_stop_requested(state(), c);
        try {
            driver_for(c)->kill(c.id, SIGKILL, true);
        } catch (const Error&) {
            if (init_pid(c) > 0) ::kill(init_pid(c), SIGKILL);
        }
        thaw(c);  // a v1 freezer holds even SIGKILL until the thaw
        // The monitor records the exit and releases what it can; wait for it
        // so that its teardown and ours do not interleave.
        wait_pid_gone(c.pid, c.pid_start_time, 15000);
        wait_pid_gone(init_pid(c), c.config.value("init_start_time", uint64_t{0}), 5000);
    }
    if (c.config.value("auto_remove", false) && removed_by_its_monitor(c.id)) return;
    try {
        c = state().begin_remove(c.id);
    } catch (const sql::SqliteError& e) {
        if (e.primary_code() != SQLITE_FULL) throw;
        // A container that filled the state's file system: its own files go
        // first (idempotent steps), and the record after, in the room they leave.
        log::warn("container " + c.name + ": the state file system is full; removing its files before recording it");
        release_resources(c);
        image::Snapshot::open(opts_.root, c.id, layer_paths(c.config)).remove();
        c = state().begin_remove(c.id);
    }
    release_resources(c);
    try {
        image::Snapshot::open(opts_.root, c.id, layer_paths(c.config)).remove();
    } catch (const Error& e) {
        if (e.code() != ENOENT) throw;
    }
    // The record file before the row: a record without a row is a lost container.
    ::unlink(record_path(c).c_str());
    fs::remove_all(c.bundle);
    state().remove_container(c.id);
}

ContainerRecord Engine::get(const std::string& ref) {
    repair();
    return state().get_container(ref);
}

std::vector<ContainerRecord> Engine::list() {
    repair();
    if (auto lost = unknown_containers(); !lost.empty())
        // A list that silently leaves out running containers is what this prevents.
        log::warn("the state database " + state().path() + " does not know " + std::to_string(lost.size()) +
                  " container(s) whose records are in " + opts_.root + "/containers (" + lost.front().name +
                  (lost.size() > 1 ? ", ..." : "") + "): see `vitro system check`, and `vitro system repair`");
    return state().list_containers();
}

std::vector<pid_t> Engine::pids(const std::string& ref) {
    ContainerRecord c = state().get_container(ref);
    if (!is_running(c)) throw ConflictError("container " + c.name + " is not running");
    return driver_for(c)->pids(c.id);
}

nlohmann::json Engine::stats(const std::string& ref) {
    ContainerRecord c = state().get_container(ref);
    if (!is_running(c)) throw ConflictError("container " + c.name + " is not running");
    return driver_for(c)->stats(c.id);
}

int Engine::exec(const std::string& ref, const ExecOptions& opts) {
    ContainerRecord c = state().get_container(ref);
    if (!is_running(c)) throw ConflictError("container " + c.name + " is not running");
    if (is_paused(c))
        throw ConflictError("container " + c.name + " is paused (vitro unpause it first): container state improper");
    ExecOptions o = opts;
    if (!opts.user.empty()) {
        ResolvedUser ru = resolve_user(c.bundle + "/merged", opts.user);
        oci::User u;
        u.uid = ru.uid;
        u.gid = ru.gid;
        u.additional_gids = ru.additional_gids;
        o.req.user = u;
    }
    return driver_for(c)->exec(c.id, o.req);
}

void Engine::repair() {
    // A container whose monitor died but whose init lives keeps running.
    RepairReport r = state().repair(default_is_alive, [](const ContainerRecord& c) { return init_alive(c); });
    for (const auto& c : r.exited) release_resources(c);
    for (const auto& c : r.removing) {
        release_resources(c);
        try {
            image::Snapshot::open(opts_.root, c.id, layer_paths(c.config)).remove();
        } catch (const Error&) {
            // The snapshot is gone or busy: the record is removed anyway
        }
        ::unlink(record_path(c).c_str());
        fs::remove_all(c.bundle);
        state().remove_container(c.id);
    }
    for (const auto& c : state().list_containers()) {
        // A --rm container whose `vitro restart` died between its stop and its start.
        if (c.state == ContainerState::Exited && c.config.value("auto_remove", false) &&
            c.config.contains("restart_pending") && !restart_pending(c)) {
            try {
                remove_container(c, true);
            } catch (const std::exception& e) {
                log::warn("--rm of " + c.name + " (its restart died): " + e.what());
            }
            continue;
        }
        if (c.state == ContainerState::Running && !os::process_alive(c.pid, c.pid_start_time) && init_alive(c)) {
            // One container that cannot be adopted must not fail a command about another.
            try {
                adopt(c);
            } catch (const std::exception& e) {
                log::warn("container " + c.name + ": its monitor died and a new one could not take it over (" +
                          e.what() + "); it runs on without one");
            }
        }
    }
}

void Engine::adopt(const ContainerRecord& orphan) {
    const EngineOptions& o = opts_;
    if (o.monitor_binary.empty() || o.self_binary.empty() || ::access(o.monitor_binary.c_str(), X_OK) != 0) {
        log::warn("container " + orphan.name + " runs without a monitor, and no vitro-monitor is there to adopt it");
        return;
    }
    // One adopter at a time (and no start meanwhile): the second sees the first's.
    UniqueFd lock = lock_dir(orphan.bundle);
    auto c = state().find_container(orphan.id);
    if (!c || c->state != ContainerState::Running || os::process_alive(c->pid, c->pid_start_time) || !init_alive(*c))
        return;
    int p[2];
    if (::pipe2(p, O_CLOEXEC) < 0) throw_errno("pipe", "monitor for container " + c->name);
    UniqueFd rd(p[0]), wr(p[1]);
    std::vector<std::string> argv = {o.monitor_binary, "--adopt", "--init", std::to_string(init_pid(*c)),
                                     "--init-start", std::to_string(c->config.value("init_start_time", uint64_t{0})),
                                     "--notify", std::to_string(wr.get()), "--log", log_path(*c)};
    const LogLimits limits = log_limits_of(c->config);  // the rotation the first waiter did
    argv.insert(argv.end(), {"--log-max-size", std::to_string(limits.max_size), "--log-max-file",
                             std::to_string(limits.max_file), "--"});
    for (auto& a : engine_command(o)) argv.push_back(a);
    argv.push_back("container-exited");
    argv.push_back(c->id);
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    std::fflush(nullptr);
    // Twice forked: the new monitor is nobody's child but init's, as the first was.
    pid_t child = ::fork();
    if (child < 0) throw_errno("fork", "monitor for container " + c->name);
    if (child == 0) {
        ::setsid();
        if (::fork() != 0) ::_exit(0);
        int null = ::open("/dev/null", O_RDWR);
        for (int fd = 0; fd < 3 && null >= 0; ++fd) ::dup2(null, fd);
        ::fcntl(wr.get(), F_SETFD, 0);
        ::execv(cargv[0], cargv.data());
        ::_exit(127);
    }
    wr.reset();
    while (::waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
    }
    std::string line;
    char ch;
    while (::read(rd.get(), &ch, 1) == 1 && ch != '\n') line += ch;
    // "A <pid> <start time>" of the new monitor, or "E <why>".
    std::vector<std::string> f = split(line, ' ');
    uint64_t adopter = 0, adopter_start = 0;
    if (f.size() != 3 || f[0] != "A" || !parse_u64(f[1], adopter) || !parse_u64(f[2], adopter_start) ||
        adopter == 0 || adopter > INT_MAX || adopter_start == 0) {
        std::string why = line.empty() ? "it exited"
                          : line.rfind("E ", 0) == 0 ? line.substr(2)
                                                     : "it answered \"" + line + "\"";
        log::warn("container " + c->name + ": its monitor died and a new one could not take it over (" + why +
                  "); it runs on without one");
        return;
    }
    // Only over the dead monitor this adoption replaces.
    bool recorded = false;
    state().update_container(c->id, [&](ContainerRecord& r) {
        if (r.state != ContainerState::Running || r.pid != c->pid || r.pid_start_time != c->pid_start_time) return;
        r.pid = static_cast<pid_t>(adopter);
        r.pid_start_time = adopter_start;
        recorded = true;
    });
    if (!recorded) {
        log::warn("container " + c->name + ": changed while process " + std::to_string(adopter) +
                  " took it over; that process is not recorded as its monitor");
        return;
    }
    log::info("container " + c->name + ": its monitor died; process " + std::to_string(adopter) + " took it over");
}

}  // namespace vitro::engine
