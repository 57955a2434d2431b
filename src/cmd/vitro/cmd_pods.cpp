// Pod commands: pod create|start|stop|kill|restart|rm|ps|inspect, podman's
// flags and output. The work is in engine/pods.
#include <cstdio>
#include <functional>
#include <memory>

#include "cmd/vitro/common.hpp"
#include "engine/engine.hpp"
#include "linux/sealed_exe.hpp"
#include "runtime/runtime.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

namespace vitro::cli {

namespace {

using engine::ContainerState;
using engine::PodInfo;
using nlohmann::json;

std::string state_word(const engine::ContainerRecord& c) {
    return c.state == ContainerState::Exited ? "exited" : std::string(engine::to_string(c.state));
}

// podman's PortBindings: {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}.
json port_bindings(const json& ports) {
    json out = json::object();
    for (const auto& p : ports) {
        std::string key = std::to_string(p.value("containerPort", 0)) + "/" + p.value("protocol", "tcp");
        out[key].push_back({{"HostIp", p.value("hostIP", "")}, {"HostPort", std::to_string(p.value("hostPort", 0))}});
    }
    return out;
}

// What `pod inspect` prints (podman's field names).
json inspect_json(const PodInfo& info) {
    const json& cfg = info.pod.config;
    json containers = json::array();
    for (const auto& c : info.containers)
        containers.push_back({{"Id", c.id}, {"Name", c.name}, {"State", state_word(c)}});
    std::string network = cfg.value("network", "");
    return {{"Id", info.pod.id},
            {"Name", info.pod.name},
            {"Created", info.pod.created_at},
            {"State", info.status},
            {"Hostname", cfg.value("hostname", "")},
            {"Labels", cfg.value("labels", json::object())},
            {"CreateInfra", !info.infra_id().empty()},
            {"InfraContainerId", info.infra_id()},
            {"InfraConfig",
             {{"PortBindings", port_bindings(cfg.value("ports", json::array()))},
              {"HostNetwork", network == "host"},
              {"Networks", network == "none" || network == "host" ? json::array() : json::array({network})},
              {"NetNS", info.pod.netns}}},
            {"SharedNamespaces", cfg.value("share", json::array())},
            {"NumContainers", info.containers.size()},
            {"Containers", containers}};
}

// One row of `pod ps --format json` (podman's field names).
json ps_json(const PodInfo& info) {
    const json& cfg = info.pod.config;
    json containers = json::array();
    for (const auto& c : info.containers)
        containers.push_back({{"Id", c.id}, {"Names", c.name}, {"Status", state_word(c)}});
    std::string network = cfg.value("network", "");
    return {{"Id", info.pod.id},
            {"Name", info.pod.name},
            {"Status", info.status},
            {"Created", info.pod.created_at},
            {"InfraId", info.infra_id()},
            {"NumberOfContainers", info.containers.size()},
            {"Containers", containers},
            {"Networks", network == "none" || network == "host" ? json::array() : json::array({network})},
            {"Labels", cfg.value("labels", json::object())}};
}

// Runs fn on each pod reference, printing each pod's ID; an error is printed
// and the next one tried. Exit code as podman's: 1 when every failure was a
// pod that does not exist, else 125.
void for_each_pod(Globals& g, engine::Engine& eng, const std::vector<std::string>& refs,
                  const std::function<void(const std::string& id)>& fn) {
    bool engine_error = false, failed = false;
    for (const auto& r : refs) {
        try {
            std::string id = eng.state().get_pod(r).id;
            fn(id);
            std::printf("%s\n", id.c_str());
        } catch (const Error& e) {
            std::fprintf(stderr, "Error: %s\n", e.what());
            failed = true;
            if (!dynamic_cast<const engine::NotFoundError*>(&e)) engine_error = true;
        }
    }
    if (failed) g.exit_code = engine_error ? kExitEngine : 1;
}

}  // namespace

void add_pod_commands(CLI::App& app, Globals& g) {
    auto* pod = app.add_subcommand("pod", "Manage pods: containers sharing network, IPC and UTS namespaces");
    pod->require_subcommand(1);

    struct CreateFlags {
        engine::PodCreateRequest req;
        std::vector<std::string> ports, labels;
        std::string format;
    };
    auto cf = std::make_shared<CreateFlags>();
    auto* create = pod->add_subcommand("create", "create a pod (its infra container holds the shared namespaces)");
    create->add_option("--name,-n", cf->req.name, "pod name");
    create->add_option("-p,--publish", cf->ports, "publish a port of the pod: [HOST_IP:]HOST_PORT:CONTAINER_PORT[/udp]");
    create->add_option("--network,--net", cf->req.network, "none, host, bridge (the default network) or a network name");
    create->add_option("--hostname", cf->req.hostname, "the pod's host name (default: its name)");
    create->add_option("--label,-l", cf->labels, "set a label: KEY=VALUE");
    create->add_option("--share", cf->req.share, "namespaces the containers share: ipc,net,pid,uts or none (default ipc,net,uts)");
    create->add_option("--format", cf->format, "json: print the new pod's details instead of its ID");
    for (auto* o : create->get_options()) o->allow_extra_args(false);
    create->callback([&g, cf] {
        for (const auto& p : cf->ports) cf->req.ports.push_back(engine::parse_port_mapping(p));
        for (const auto& l : cf->labels) {
            auto eq = l.find('=');
            if (eq == 0) throw Error(EINVAL, "invalid --label \"" + l + "\": expected KEY=VALUE");
            cf->req.labels[l.substr(0, eq)] = eq == std::string::npos ? "" : l.substr(eq + 1);
        }
        if (!cf->format.empty() && cf->format != "json")
            throw Error(EINVAL, "invalid --format \"" + cf->format + "\": only json is supported");
        engine::Engine eng(engine_options(g));
        auto p = eng.pod_create(cf->req);
        if (cf->format == "json") std::printf("%s\n", inspect_json(eng.pod_get(p.id)).dump(4).c_str());
        else std::printf("%s\n", p.id.c_str());
    });

    auto refs = std::make_shared<std::vector<std::string>>();
    auto* start = pod->add_subcommand("start", "start pods: the infra, then every container");
    start->add_option("pods", *refs, "pod names or IDs")->required();
    start->callback([&g, refs] {
        engine::Engine eng(engine_options(g));
        for_each_pod(g, eng, *refs, [&](const std::string& id) { eng.pod_start(id); });
    });

    auto timeout = std::make_shared<std::optional<int>>();
    auto* stop = pod->add_subcommand("stop", "stop pods: their containers, then the infra");
    stop->add_option("-t,--time", *timeout, "seconds to wait before killing (default: each container's, 10)");
    stop->add_option("pods", *refs, "pod names or IDs")->required();
    stop->callback([&g, refs, timeout] {
        engine::Engine eng(engine_options(g));
        for_each_pod(g, eng, *refs, [&](const std::string& id) { eng.pod_stop(id, *timeout); });
    });

    auto* restart = pod->add_subcommand("restart", "stop, then start pods");
    restart->add_option("pods", *refs, "pod names or IDs")->required();
    restart->callback([&g, refs] {
        engine::Engine eng(engine_options(g));
        for_each_pod(g, eng, *refs, [&](const std::string& id) {
            eng.pod_stop(id, std::nullopt);
            eng.pod_start(id);
        });
    });

    auto signal = std::make_shared<std::string>("KILL");
    auto* kill = pod->add_subcommand("kill", "send a signal to the running containers of pods (default SIGKILL)");
    kill->add_option("-s,--signal", *signal, "signal name or number");
    kill->add_option("pods", *refs, "pod names or IDs")->required();
    kill->callback([&g, refs, signal] {
        int sig = runtime::parse_signal(*signal);
        engine::Engine eng(engine_options(g));
        for_each_pod(g, eng, *refs, [&](const std::string& id) { eng.pod_kill(id, sig); });
    });

    auto force = std::make_shared<bool>(false), all = std::make_shared<bool>(false);
    auto* rm = pod->add_subcommand("rm", "remove pods and their containers (running ones only with -f)");
    rm->add_flag("-f,--force", *force, "stop running containers and remove them");
    rm->add_flag("-a,--all", *all, "remove every pod");
    rm->add_option("pods", *refs, "pod names or IDs");
    rm->callback([&g, refs, force, all] {
        engine::Engine eng(engine_options(g));
        std::vector<std::string> targets = *refs;
        if (*all)
            for (const auto& p : eng.state().list_pods()) targets.push_back(p.id);
        else if (targets.empty())
            throw Error(EINVAL, "pod rm needs at least one pod name or ID, or --all");
        for_each_pod(g, eng, targets, [&](const std::string& id) { eng.pod_remove(id, *force); });
    });

    auto quiet = std::make_shared<bool>(false), no_trunc = std::make_shared<bool>(false);
    auto format = std::make_shared<std::string>("table");
    auto* ps = pod->add_subcommand("ps", "list pods");
    ps->alias("ls");
    ps->alias("list");
    ps->add_flag("-q,--quiet", *quiet, "only IDs");
    ps->add_flag("--no-trunc", *no_trunc, "full IDs");
    ps->add_option("--format", *format, "table, json, or a {{.Field}} template");
    ps->callback([&g, quiet, no_trunc, format] {
        engine::Engine eng(engine_options(g));
        auto pods = eng.pod_list();
        auto id_of = [&](const std::string& id) { return *no_trunc ? id : id.substr(0, 12); };
        if (*quiet) {
            for (const auto& p : pods) std::printf("%s\n", id_of(p.pod.id).c_str());
            return;
        }
        if (*format == "json") {
            json rows = json::array();
            for (const auto& p : pods) rows.push_back(ps_json(p));
            std::printf("%s\n", rows.dump(4).c_str());
        } else if (*format == "table") {
            std::printf("%-12s  %-24s  %-9s  %-16s  %-12s  %s\n", "POD ID", "NAME", "STATUS", "CREATED", "INFRA ID",
                        "# OF CONTAINERS");
            for (const auto& p : pods)
                std::printf("%-12s  %-24s  %-9s  %-16s  %-12s  %zu\n", id_of(p.pod.id).c_str(), p.pod.name.c_str(),
                            p.status.c_str(), (human_since(p.pod.created_at) + " ago").c_str(),
                            id_of(p.infra_id()).c_str(), p.containers.size());
        } else {
            for (const auto& p : pods) std::fputs(render_format(*format, ps_json(p)).c_str(), stdout);
        }
    });

    auto inspect_format = std::make_shared<std::string>("json");
    auto* inspect = pod->add_subcommand("inspect", "show pods' details as JSON");
    inspect->add_option("-f,--format", *inspect_format, "json, or a {{.Field}} template (e.g. {{.State}})");
    inspect->add_option("pods", *refs, "pod names or IDs")->required();
    inspect->callback([&g, refs, inspect_format] {
        engine::Engine eng(engine_options(g));
        json all = json::array();
        for (const auto& r : *refs) all.push_back(inspect_json(eng.pod_get(r)));
        // podman prints one object for one pod.
        if (*inspect_format == "json") std::printf("%s\n", (all.size() == 1 ? all[0] : all).dump(4).c_str());
        else
            for (const auto& p : all) std::fputs(render_format(*inspect_format, p).c_str(), stdout);
    });

    // `pod start` and `pod restart` put processes in containers: run from the
    // sealed copy of this binary, as run and start do.
    for (auto* c : {start, restart})
        c->preparse_callback([&g](size_t) { os::ensure_sealed_exe(g.argc, g.argv); });
}

}  // namespace vitro::cli
