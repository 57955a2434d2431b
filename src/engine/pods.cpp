// Pods: see pods.hpp. The pure helpers first, then the Engine's pod methods.
#include "engine/pods.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>

#include "engine/engine.hpp"
#include "engine/names.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace vitro::engine {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<std::string> parse_pod_share(const std::string& value) {
    static const std::set<std::string> known = {"ipc", "net", "pid", "uts"};
    std::set<std::string> out;
    if (value == "none") return {};
    for (const auto& raw : split(value, ',')) {
        std::string kind = trim(raw);
        if (kind.empty()) continue;
        if (!known.count(kind))
            throw Error(EINVAL, "invalid --share \"" + value + "\": unknown namespace \"" + kind +
                                    "\" (use ipc, net, pid, uts, or none)");
        out.insert(kind);
    }
    return {out.begin(), out.end()};
}

void join_pod_namespaces(json& spec, const std::vector<std::string>& share, int infra_pid, const std::string& netns) {
    json& nss = spec["linux"]["namespaces"];
    if (!nss.is_array()) nss = json::array();
    for (const auto& kind : share) {
        std::string type = kind == "net" ? "network" : kind;
        std::string path = kind == "net" ? netns : "/proc/" + std::to_string(infra_pid) + "/ns/" + kind;
        json out = json::array();
        for (const auto& ns : nss)
            if (ns.value("type", "") != type) out.push_back(ns);
        out.push_back({{"type", type}, {"path", path}});
        nss = std::move(out);
    }
}

std::string pod_status(const std::vector<ContainerState>& states) {
    size_t running = 0, exited = 0;
    for (auto s : states) {
        if (s == ContainerState::Running) ++running;
        else if (s == ContainerState::Exited) ++exited;
    }
    if (states.empty()) return "Created";
    if (running == states.size()) return "Running";
    if (running > 0) return "Degraded";
    if (exited == states.size()) return "Exited";
    if (exited > 0) return "Stopped";
    return "Created";
}

// ------------------------------------------------------------------ Engine

std::string Engine::ensure_pause_layer() {
    std::string bin = opts_.pause_binary;
    if (bin.empty() || ::access(bin.c_str(), X_OK) != 0)
        throw Error(ENOENT, "the pause program " + (bin.empty() ? std::string("vitro-pause") : bin) +
                                " is missing: pods need vitro-pause beside the vitro binary");
    std::string rootfs = opts_.root + "/pause/rootfs";
    for (const char* d : {"", "/proc", "/dev", "/sys", "/etc"}) make_dirs(rootfs + d, 0755);
    std::string want = read_file(bin);
    std::string have;
    try {
        have = read_file(rootfs + "/pause");
    } catch (const Error&) {
        // No copy yet, or unreadable: it is (re)written below
    }
    // Replaced by rename: an infra running from the old copy keeps it.
    if (have != want) write_file_atomic(rootfs + "/pause", want, 0755);
    return rootfs;
}

PodRecord Engine::pod_create(const PodCreateRequest& req) {
    repair();
    if (!req.name.empty() && !valid_name(req.name))
        throw Error(EINVAL, "invalid pod name \"" + req.name + "\": use [a-zA-Z0-9][a-zA-Z0-9_.-]*");
    std::vector<std::string> share = parse_pod_share(req.share);
    bool shares_net = std::find(share.begin(), share.end(), "net") != share.end();
    std::string mode = normalize_network_mode(req.network);
    if (!req.ports.empty() && !shares_net)
        throw Error(EINVAL, "published ports (-p) need a pod that shares its network namespace (--share net)");
    if (!req.ports.empty() && !is_cni_mode(mode))
        throw Error(EINVAL, "published ports (-p) need a bridge network, not --network " + mode);
    if (is_joined_mode(mode)) throw Error(EINVAL, "invalid --network \"" + req.network + "\" for a pod");
    // Everything that can be checked is, before anything is made.
    if (is_cni_mode(mode)) check_network(network_paths(), mode);
    check_ports_available(req.ports);
    if (!req.hostname.empty() && !valid_name(req.hostname))
        throw Error(EINVAL, "invalid --hostname \"" + req.hostname + "\"");
    std::string pause_layer = ensure_pause_layer();

    PodRecord p;
    p.id = random_hex(32);
    p.name = req.name.empty() ? random_name() : req.name;
    json labels = json::object();
    for (const auto& [k, v] : req.labels) labels[k] = v;
    json ports = json::array();
    for (const auto& port : req.ports) ports.push_back(to_json(port));
    p.config = {{"labels", labels},
                {"hostname", req.hostname.empty() ? p.name : req.hostname},
                {"share", share},
                {"network", mode},
                {"ports", ports}};
    state().add_pod(p);  // the name is checked here

    std::optional<ContainerRecord> infra;
    try {
        CreateRequest ir;
        ir.name = p.id.substr(0, 12) + "-infra";
        ir.network = shares_net ? req.network : "none";
        ir.ports = req.ports;
        ir.run.hostname = p.config["hostname"].get<std::string>();
        ImageSource src;
        src.image = "vitro-pause";
        src.config.cmd = {"/pause"};
        src.layers = {pause_layer};
        infra = create_from(ir, src, &p, true);
        p = state().update_pod(p.id, [&](PodRecord& r) {
            r.config["infra_id"] = infra->id;
            if (mode != "host" && shares_net) r.netns = netns_path(network_paths(), infra->id);
        });
    } catch (...) {
        if (infra) {
            try {
                remove_container(*infra, true);
            } catch (const std::exception& e) {
                log::warn(std::string("pod ") + p.name + ": removing its infra: " + e.what());
            }
        }
        state().remove_pod(p.id);
        throw;
    }
    return p;
}

PodInfo Engine::pod_get(const std::string& ref) {
    repair();
    PodInfo info;
    info.pod = state().get_pod(ref);
    auto containers = state().list_containers(info.pod.id);
    // A pod create killed after making the infra, before recording it.
    if (info.infra_id().empty())
        for (const auto& c : containers)
            if (is_infra(c)) info.pod.config["infra_id"] = c.id;
    std::string infra_id = info.infra_id();
    std::vector<ContainerState> states;
    for (auto& c : containers) {
        if (c.state == ContainerState::Running && !is_running(c)) c.state = ContainerState::Exited;
        states.push_back(c.state);
        if (c.id == infra_id) info.containers.insert(info.containers.begin(), std::move(c));
        else info.containers.push_back(std::move(c));
    }
    info.status = pod_status(states);
    return info;
}

std::vector<PodInfo> Engine::pod_list() {
    std::vector<PodInfo> out;
    for (const auto& p : state().list_pods()) {
        try {
            out.push_back(pod_get(p.id));
        } catch (const NotFoundError&) {  // removed meanwhile
        }
    }
    return out;
}

std::optional<PodRecord> Engine::pod_of(const ContainerRecord& c) {
    if (!c.pod_id) return std::nullopt;
    return state().find_pod(*c.pod_id);
}

void Engine::prepare_pod_member(const ContainerRecord& c) {
    std::string infra_id = c.config.value("pod_infra", "");
    ContainerRecord infra = state().get_container(infra_id);
    if (!is_running(infra)) {
        start(infra.id, {});
        infra = state().get_container(infra.id);
    }
    pid_t pid = init_pid(infra);
    if (!is_running(infra) || pid <= 0)
        throw Error(ESRCH, "container " + c.name + ": the infra container of pod " + c.config.value("pod", "") +
                               " is not running");
    std::string config_path = c.bundle + "/config.json";
    json spec = json::parse(read_file(config_path));
    join_pod_namespaces(spec, c.config.value("pod_share", std::vector<std::string>{}), pid,
                        netns_path(network_paths(), infra.id));
    write_file_atomic(config_path, spec.dump(), 0600);
}

void Engine::stop_pod_members(const std::string& pod_id, std::optional<int> timeout) {
    std::vector<ContainerRecord> running;
    for (const auto& c : state().list_containers(pod_id))
        if (!is_infra(c) && is_running(c)) running.push_back(c);
    // All at once: each gets its stop signal now and its own timeout from
    // now, not after the previous one has gone.
    using clock = std::chrono::steady_clock;
    std::vector<clock::time_point> deadlines;
    for (const auto& c : running) {
        deadlines.push_back(clock::now() + std::chrono::seconds(timeout.value_or(c.config.value("stop_timeout", 10))));
        send_stop_signal(c);
    }
    for (size_t i = 0; i < running.size(); ++i) {
        auto left = std::chrono::duration_cast<std::chrono::seconds>(deadlines[i] - clock::now()).count();
        stop(running[i].id, static_cast<int>(std::max<long long>(left, 0)));
    }
}

void Engine::pod_start(const std::string& ref) {
    PodInfo info = pod_get(ref);
    // The infra first (a member's start would start it too), then the members.
    for (const auto& c : info.containers)
        if (!is_running(c)) start(c.id, {});
}

void Engine::pod_stop(const std::string& ref, std::optional<int> timeout) {
    PodInfo info = pod_get(ref);
    stop_pod_members(info.pod.id, timeout);
    if (!info.infra_id().empty()) stop(info.infra_id(), timeout);
}

void Engine::pod_kill(const std::string& ref, int signal) {
    PodInfo info = pod_get(ref);
    size_t sent = 0;
    // Members first: the infra's death would stop them gracefully instead.
    for (auto it = info.containers.rbegin(); it != info.containers.rend(); ++it)
        if (is_running(*it)) {
            kill(it->id, signal);
            ++sent;
        }
    if (sent == 0) throw ConflictError("pod " + info.pod.name + " has no running containers");
}

void Engine::pod_remove(const std::string& ref, bool force) {
    PodInfo info = pod_get(ref);
    std::vector<std::string> running;
    for (const auto& c : info.containers)
        if (is_running(c)) running.push_back(c.name);
    if (!running.empty() && !force)
        throw ConflictError("pod " + info.pod.name + " has running containers (" + join(running, ", ") +
                            "): stop the pod or remove it with -f");
    // Members, then the infra (its exit would otherwise stop them), then the row.
    for (auto it = info.containers.rbegin(); it != info.containers.rend(); ++it) {
        auto c = state().find_container(it->id);
        if (c) remove_container(*c, true);
    }
    state().remove_pod(info.pod.id);
}

}  // namespace vitro::engine
