// info, version, system df, system prune.
#include <sys/utsname.h>

#include <cstdio>

#include <unistd.h>

#include <iostream>
#include <set>

#include "cgroups/cgroup.hpp"
#include "cmd/vitro/common.hpp"
#include "image/gc.hpp"
#include "image/import.hpp"
#include "net/networks.hpp"
#include "util/error.hpp"

namespace vitro::cli {

namespace {

// The layer dirs (lower dirs) the given containers use.
std::set<std::string> layers_of(const std::vector<engine::ContainerRecord>& cs) {
    std::set<std::string> out;
    for (const auto& c : cs)
        for (const auto& l : c.config.value("layers", std::vector<std::string>{})) out.insert(l);
    return out;
}

void add_system_df(CLI::App* system, Globals& g) {
    auto format = std::make_shared<std::string>("table");
    auto* df = system->add_subcommand("df", "show the disk space images, containers and volumes use");
    df->add_option("--format", *format, "table, json, or a {{.Field}} template");
    df->callback([&g, format] {
        engine::Engine eng(engine_options(g));
        auto containers = eng.list();
        // Images: the store's blobs and unpacked layers; active: used by a container.
        std::set<std::string> used_images;
        for (const auto& c : containers) used_images.insert(c.image_digest);
        auto tags = eng.images().tags();
        size_t active_images = 0;
        for (const auto& t : tags) active_images += used_images.count(t.manifest.digest);
        uint64_t image_bytes = image::disk_usage(g.root + "/blobs") + image::disk_usage(eng.images().layers_dir());
        uint64_t ctr_bytes = 0, ctr_reclaimable = 0;
        size_t running = 0;
        for (const auto& c : containers) {
            uint64_t b = image::disk_usage(c.bundle + "/upper");
            ctr_bytes += b;
            if (engine::is_running(c)) ++running;
            else ctr_reclaimable += b;
        }
        size_t volumes = 0;
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(g.root + "/volumes", ec)) (void)e, ++volumes;
        uint64_t vol_bytes = image::disk_usage(g.root + "/volumes");
        nlohmann::json rows = nlohmann::json::array({
            {{"Type", "Images"}, {"Total", tags.size()}, {"Active", active_images}, {"Size", image_bytes}},
            {{"Type", "Containers"}, {"Total", containers.size()}, {"Active", running}, {"Size", ctr_bytes},
             {"Reclaimable", ctr_reclaimable}},
            {{"Type", "Local Volumes"}, {"Total", volumes}, {"Active", volumes}, {"Size", vol_bytes}},
        });
        if (*format == "json") {
            std::printf("%s\n", rows.dump(4).c_str());
        } else if (*format == "table") {
            std::printf("%-14s %-6s %-7s %-10s %s\n", "TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE");
            for (const auto& r : rows)
                std::printf("%-14s %-6zu %-7zu %-10s %s\n", r["Type"].get<std::string>().c_str(), r["Total"].get<size_t>(),
                            r["Active"].get<size_t>(), human_size(r["Size"]).c_str(),
                            r.contains("Reclaimable") ? human_size(r["Reclaimable"]).c_str() : "-");
        } else {
            for (const auto& r : rows) std::fputs(render_format(*format, r).c_str(), stdout);
        }
    });
}

void add_system_prune(CLI::App* system, Globals& g) {
    struct PruneFlags {
        bool force = false;
        int grace = 3600;
    };
    auto pf = std::make_shared<PruneFlags>();
    auto* prune = system->add_subcommand(
        "prune", "remove stopped containers, unused networks, and image data no image or container uses");
    prune->add_flag("-f,--force", pf->force, "do not ask for confirmation");
    prune->add_option("--grace", pf->grace,
                      "keep store files younger than this many seconds (a pull in flight tags its image last)")
        ->default_str("3600");
    prune->callback([&g, pf] {
        if (!pf->force) {
            std::printf("WARNING! This will remove all stopped containers, unused networks and image data no tag "
                        "or container uses.\nAre you sure you want to continue? [y/N] ");
            std::fflush(stdout);
            std::string answer;
            std::getline(std::cin, answer);
            if (answer != "y" && answer != "Y" && answer != "yes") return;
        }
        engine::Engine eng(engine_options(g));
        std::vector<std::string> removed;
        for (const auto& c : eng.list()) {
            if (engine::is_running(c) || engine::is_infra(c)) continue;  // an infra goes with its pod
            try {
                eng.remove(c.id, false);
                removed.push_back(c.id);
            } catch (const Error& e) {
                std::fprintf(stderr, "Error: %s\n", e.what());
                g.exit_code = 1;
            }
        }
        auto remaining = eng.list();
        std::set<std::string> used_networks;
        for (const auto& c : remaining) used_networks.insert(c.config.value("network", ""));
        std::vector<std::string> removed_nets;
        net::NetworkStore nets(g.net_dir);
        for (const auto& n : nets.list())
            if (n.name != net::kDefaultNetwork && !used_networks.count(n.name)) {
                nets.remove(n.name);
                removed_nets.push_back(n.name);
            }
        auto gc = image::collect_garbage(eng.images(), layers_of(remaining), std::chrono::seconds(std::max(pf->grace, 0)));
        if (!removed.empty()) {
            std::printf("Deleted Containers\n");
            for (const auto& id : removed) std::printf("%s\n", id.c_str());
        }
        if (!removed_nets.empty()) {
            std::printf("Deleted Networks\n");
            for (const auto& n : removed_nets) std::printf("%s\n", n.c_str());
        }
        std::printf("Deleted %zu blobs and %zu unpacked layers\nTotal reclaimed space: %s\n", gc.blobs, gc.layers,
                    human_size(gc.bytes).c_str());
    });
}
}  // namespace

void add_system_commands(CLI::App& app, Globals& g) {
    auto* system = app.add_subcommand("system", "manage vitro's storage: df, prune");
    system->require_subcommand(1);
    add_system_df(system, g);
    add_system_prune(system, g);

    auto* version = app.add_subcommand("version", "show version information");
    version->callback([] {
        utsname u{};
        ::uname(&u);
        std::printf("Version:      %s\nOS/Arch:      linux/%s\nKernel:       %s\nRuntime:      vitro (built in)\n",
                    VITRO_VERSION, u.machine, u.release);
    });

    auto info_format = std::make_shared<std::string>("table");
    auto* info = app.add_subcommand("info", "show how vitro is set up on this host");
    info->add_option("--format", *info_format, "table, json, or a {{.Field}} template");
    info->callback([&g, info_format] {
        engine::Engine eng(engine_options(g));
        utsname u{};
        ::uname(&u);
        size_t running = 0, total = 0;
        for (const auto& c : eng.list()) {
            ++total;
            if (engine::is_running(c)) ++running;
        }
        nlohmann::json j = {{"Version", VITRO_VERSION},
                            {"Kernel", u.release},
                            {"Arch", u.machine},
                            {"Root", g.root},
                            {"RunRoot", g.runroot},
                            {"NetworkConfigDir", g.net_dir},
                            {"CNIPluginDir", g.cni_path},
                            {"Runtime", g.runtime.empty() ? "vitro (built in)" : g.runtime},
                            {"StateDatabase", eng.state().path()},
                            {"Containers", total},
                            {"ContainersRunning", running},
                            {"Images", eng.images().tags().size()}};
        if (*info_format == "table")
            for (auto it = j.begin(); it != j.end(); ++it)
                std::printf("%-18s %s\n", (it.key() + ":").c_str(),
                            it->is_string() ? it->get<std::string>().c_str() : it->dump().c_str());
        else
            std::fputs(render_format(*info_format, j).c_str(), stdout);
    });
}

}  // namespace vitro::cli
