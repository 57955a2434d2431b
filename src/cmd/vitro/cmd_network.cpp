// network create|ls|rm|inspect: CNI conflists under --network-config-dir
// (net/networks), podman's commands and output. A network is in use while a
// container recorded in the state database of any root sharing the config
// dir names it (engine::network_users).
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cmd/vitro/cli.hpp"
#include "engine/container_network.hpp"
#include "net/host_rules.hpp"
#include "net/networks.hpp"
#include "util/error.hpp"
#include "util/file.hpp"

namespace vitro::cli {

namespace {

using nlohmann::json;

// The bridge plugin of a conflist made by net::make_conflist (null when none).
const json* bridge_plugin(const net::NetworkConfigList& n) {
    for (const auto& p : n.plugins)
        if (p.value("type", "") == "bridge") return &p;
    return nullptr;
}

// {subnet, gateway} pairs of the bridge's host-local ranges (or its old-style subnet).
json subnets_json(const net::NetworkConfigList& n) {
    json out = json::array();
    const json* b = bridge_plugin(n);
    if (!b || !b->contains("ipam") || !(*b)["ipam"].is_object()) return out;
    const json& ipam = (*b)["ipam"];
    if (ipam.contains("ranges") && ipam["ranges"].is_array())
        for (const auto& set : ipam["ranges"])
            if (set.is_array())
                for (const auto& r : set)
                    if (r.is_object() && r.contains("subnet"))
                        out.push_back({{"subnet", r.value("subnet", "")}, {"gateway", r.value("gateway", "")}});
    if (ipam.contains("subnet") && ipam["subnet"].is_string())
        out.push_back({{"subnet", ipam["subnet"]}, {"gateway", ipam.value("gateway", "")}});
    return out;
}

// What `network ls --format json` prints for one network (podman's field names).
json summary(const net::NetworkConfigList& n) {
    const json* b = bridge_plugin(n);
    auto rules = net::host_rules_of(n);
    const bool masquerades = rules ? rules->masquerade : b && b->value("ipMasq", false);
    return {{"name", n.name},
            {"driver", b ? "bridge" : "unknown"},
            {"network_interface", net::bridge_of(n)},
            {"subnets", subnets_json(n)},
            {"internal", b ? !masquerades : false},
            {"file", n.source}};
}

// The paths network_users and record_root read: the state root is this command's.
engine::NetworkPaths network_paths(const Globals& g) { return {g.runroot, g.net_dir, g.cni_path, "", g.root}; }

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
    return s;
}

// ---- create ------------------------------------------------------------------------

struct CreateFlags {
    std::string name, subnet, gateway, bridge, driver = "bridge";
    std::vector<std::string> opts;
    bool internal = false, disable_dns = false;
};

void run_create(Globals& g, const CreateFlags& f) {
    if (f.driver != "bridge")
        throw Error(EINVAL, "network create: driver \"" + f.driver + "\" is not supported (only bridge)");
    net::NetworkSpec spec;
    spec.name = f.name;
    spec.bridge = f.bridge;
    spec.gateway = f.gateway;
    spec.ip_masq = !f.internal;
    for (const auto& o : f.opts) {
        auto eq = o.find('=');
        std::string key = o.substr(0, eq), value = eq == std::string::npos ? "" : o.substr(eq + 1);
        if (key == "mtu" && eq != std::string::npos) {
            size_t used = 0;
            int mtu = -1;
            try {
                mtu = std::stoi(value, &used);
            } catch (const std::exception&) {
                used = 0;
            }
            if (value.empty() || used != value.size() || mtu <= 0 || mtu > 65535)
                throw Error(EINVAL, "network create: --opt \"" + o + "\": mtu must be a number in 1..65535");
            spec.mtu = mtu;
        } else {
            throw Error(EINVAL, "network create: --opt \"" + o + "\": unknown option (known: mtu=N)");
        }
    }
    if (f.name == net::kDefaultNetwork)
        throw Error(EEXIST, "network create: \"" + f.name + "\" is the default network's name");
    if (!f.gateway.empty() && f.subnet.empty())
        throw Error(EINVAL, "network create: --gateway " + f.gateway + " needs --subnet");

    net::NetworkStore store(g.net_dir);
    // The default network exists first, so that no new network takes its subnet.
    store.ensure_default();
    spec.subnet = f.subnet;  // empty: create() picks a free one under its lock
    store.create(spec);
    std::printf("%s\n", f.name.c_str());
}

// ---- ls ------------------------------------------------------------------------------

void run_ls(Globals& g, const std::string& format, bool quiet) {
    if (format != "table" && format != "json")
        throw Error(EINVAL, "network ls: --format \"" + format + "\": expected table or json");
    net::NetworkStore store(g.net_dir);
    store.ensure_default();
    auto nets = store.list();
    if (quiet) {
        for (const auto& n : nets) std::printf("%s\n", n.name.c_str());
        return;
    }
    if (format == "json") {
        json out = json::array();
        for (const auto& n : nets) out.push_back(summary(n));
        std::printf("%s\n", out.dump(4).c_str());
        return;
    }
    std::vector<std::vector<std::string>> rows = {{"NAME", "DRIVER", "SUBNET"}};
    for (const auto& n : nets) {
        std::vector<std::string> subnets;
        for (const auto& s : subnets_json(n)) subnets.push_back(s["subnet"].get<std::string>());
        rows.push_back({n.name, bridge_plugin(n) ? "bridge" : "unknown", join(subnets, ",")});
    }
    size_t w0 = 0, w1 = 0;
    for (const auto& r : rows) {
        w0 = std::max(w0, r[0].size());
        w1 = std::max(w1, r[1].size());
    }
    for (const auto& r : rows)
        std::printf("%-*s  %-*s  %s\n", static_cast<int>(w0), r[0].c_str(), static_cast<int>(w1), r[1].c_str(),
                    r[2].c_str());
}

// ---- rm ------------------------------------------------------------------------------

void run_rm(Globals& g, const std::vector<std::string>& names, bool force) {
    net::NetworkStore store(g.net_dir);
    // No container of any root sharing the config dir is created on the
    // network while it is checked and removed.
    UniqueFd held = store.lock();
    const auto roots = engine::roots_sharing(network_paths(g));
    const auto users_of = force ? decltype(engine::network_users(roots)){} : engine::network_users(roots);
    // Every name is checked before any is removed.
    for (const auto& name : names) {
        if (name == net::kDefaultNetwork)
            throw Error(EPERM, "network rm: \"" + name + "\" is the default network and cannot be removed");
        if (!store.exists(name)) throw Error(ENOENT, "network rm: \"" + name + "\": no such network");
        if (!force) {
            if (auto users = users_of.find(name); users != users_of.end())
                throw Error(EBUSY, "network rm: \"" + name + "\" is used by container(s) " + join(users->second) +
                                       " (remove them first, or use -f)");
        }
    }
    std::vector<std::string> rules_dirs;
    for (const auto& r : roots) rules_dirs.push_back(net::host_rules_dir(r.runroot));
    for (const auto& name : names) {
        net::remove_network(store, name, rules_dirs);
        std::printf("%s\n", name.c_str());
    }
}

// ---- inspect ---------------------------------------------------------------------------

void run_inspect(Globals& g, const std::vector<std::string>& names) {
    net::NetworkStore store(g.net_dir);
    if (std::find(names.begin(), names.end(), net::kDefaultNetwork) != names.end()) store.ensure_default();
    json out = json::array();
    for (const auto& name : names) {
        if (!store.exists(name)) throw Error(ENOENT, "network inspect: \"" + name + "\": no such network");
        out.push_back(store.inspect(name).raw);
    }
    std::printf("%s\n", out.dump(4).c_str());
}

}  // namespace

void add_network_commands(CLI::App& app, Globals& g) {
    auto* network = app.add_subcommand("network", "Manage networks (CNI bridge networks under --network-config-dir)");
    network->require_subcommand(1);
    network->footer(
        "Containers join a network through its CNI plugins. A bridge plugin with host-local IPAM runs inside\n"
        "vitro (the same config, result and /var/lib/cni/networks files as the binaries, without their ~20 ms\n"
        "per exec); other plugins, and bridge configs asking for what the built-in does not do (ipMasq, vlan,\n"
        "a requested IP or MAC, ...), run from --cni-plugin-dir.\n"
        "Environment: VITRO_CNI_BUILTIN=0 runs the bridge and host-local binaries too; VITRO_CNI_PATH is\n"
        "--cni-plugin-dir; VITRO_NETWORK_CONFIG_DIR is --network-config-dir.");

    {
        auto f = std::make_shared<CreateFlags>();
        auto* cmd = network->add_subcommand("create", "Create a bridge network and print its name");
        cmd->add_option("NAME", f->name, "name of the network (letters, digits, '-', '_', '.')")->required();
        cmd->add_option("-d,--driver", f->driver, "network driver (only bridge)")->default_str("bridge");
        cmd->add_option("--subnet", f->subnet,
                        std::string("subnet in CIDR form, e.g. 10.90.0.0/24, that no other network and no route "
                                    "of the host covers (default: the first free /24 of ") +
                            net::kSubnetPool + ")");
        cmd->add_option("--gateway", f->gateway, "gateway address in the subnet (default: its first address); needs --subnet");
        cmd->add_option("--interface-name", f->bridge, "name of the bridge interface (default: vitroN)");
        cmd->add_flag("--internal", f->internal, "no masquerading to the outside (ipMasq false)");
        cmd->add_flag("--disable-dns", f->disable_dns, "accepted for podman compatibility (vitro runs no DNS server)");
        cmd->add_option("-o,--opt", f->opts, "driver option KEY=VALUE; known: mtu=N (repeatable)");
        cmd->callback([&g, f] { run_create(g, *f); });
    }
    {
        auto format = std::make_shared<std::string>("table");
        auto quiet = std::make_shared<bool>(false);
        auto* cmd = network->add_subcommand("ls", "List networks (the default network \"vitro\" is created if missing)");
        cmd->alias("list");
        cmd->add_option("--format", *format, "output format: table or json")->default_str("table");
        cmd->add_flag("-q,--quiet", *quiet, "print the names only");
        cmd->callback([&g, format, quiet] { run_ls(g, *format, *quiet); });
    }
    {
        auto names = std::make_shared<std::vector<std::string>>();
        auto force = std::make_shared<bool>(false);
        auto* cmd = network->add_subcommand("rm", "Remove networks (not the default one; not while a container uses it)");
        cmd->alias("remove");
        cmd->add_option("NAME", *names, "networks to remove")->required();
        cmd->add_flag("-f,--force", *force,
                      "remove even while containers are recorded as using the network (its bridge goes: "
                      "running ones lose their connection)");
        cmd->callback([&g, names, force] { run_rm(g, *names, *force); });
    }
    {
        auto names = std::make_shared<std::vector<std::string>>();
        auto* cmd = network->add_subcommand("inspect", "Print networks' CNI conflists as a JSON array");
        cmd->add_option("NAME", *names, "networks to inspect")->required();
        cmd->callback([&g, names] { run_inspect(g, *names); });
    }
}

}  // namespace vitro::cli
