// info, version, system df, system prune, system check, system repair.
#include <sys/utsname.h>

#include <cstdio>

#include <unistd.h>

#include <iostream>
#include <map>
#include <set>

#include "cgroups/cgroup.hpp"
#include "cmd/vitro/common.hpp"
#include "image/fsutil.hpp"
#include "image/gc.hpp"
#include "image/import.hpp"
#include "engine/container_network.hpp"
#include "net/host_rules.hpp"
#include "net/networks.hpp"
#include "linux/procfs.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/time.hpp"

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
        size_t active_volumes = 0;
        uint64_t vol_bytes = 0, vol_reclaimable = 0;
        auto volumes = eng.volume_list();
        for (const auto& v : volumes) {
            uint64_t b = image::disk_usage(v.mountpoint);
            vol_bytes += b;
            if (v.users.empty()) vol_reclaimable += b;
            else ++active_volumes;
        }
        nlohmann::json rows = nlohmann::json::array({
            {{"Type", "Images"}, {"Total", tags.size()}, {"Active", active_images}, {"Size", image_bytes}},
            {{"Type", "Containers"}, {"Total", containers.size()}, {"Active", running}, {"Size", ctr_bytes},
             {"Reclaimable", ctr_reclaimable}},
            {{"Type", "Local Volumes"}, {"Total", volumes.size()}, {"Active", active_volumes}, {"Size", vol_bytes},
             {"Reclaimable", vol_reclaimable}},
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
        bool force = false, volumes = false;
        int grace = 3600;
    };
    auto pf = std::make_shared<PruneFlags>();
    auto* prune = system->add_subcommand(
        "prune", "remove stopped containers, unused networks, and image data no image or container uses (--volumes: "
                   "unused volumes too)");
    prune->add_flag("-f,--force", pf->force, "do not ask for confirmation");
    prune->add_flag("--volumes", pf->volumes, "also remove the volumes no container uses (as volume prune)");
    prune->add_option("--grace", pf->grace,
                      "keep store files younger than this many seconds (a pull in flight tags its image last)")
        ->default_str("3600");
    prune->callback([&g, pf] {
        if (!pf->force) {
            std::printf("WARNING! This will remove all stopped containers, unused networks%s and image data no tag "
                        "or container uses.\nAre you sure you want to continue? [y/N] ",
                        pf->volumes ? ", volumes no container uses" : "");
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
        // Networks no container of any root sharing the config dir uses
        // (engine::network_users), with their host rules and bridges; no
        // container is created on one meanwhile (the store's lock).
        std::vector<std::string> removed_nets;
        {
            net::NetworkStore nets(g.net_dir);
            UniqueFd held = nets.lock();
            const auto roots = engine::roots_sharing(eng.network_paths());
            std::vector<std::string> rules_dirs;
            for (const auto& r : roots) rules_dirs.push_back(net::host_rules_dir(r.runroot));
            std::map<std::string, std::vector<std::string>> users;
            std::vector<net::NetworkConfigList> candidates;
            try {
                users = engine::network_users(roots);
                candidates = nets.list();
            } catch (const Error& e) {  // what that root uses is unknown: every network stays
                std::fprintf(stderr, "Error: no network pruned: %s\n", e.what());
                g.exit_code = 1;
            }
            for (const auto& n : candidates) {
                if (n.name == net::kDefaultNetwork || users.count(n.name)) continue;
                try {
                    net::remove_network(nets, n.name, rules_dirs);
                    removed_nets.push_back(n.name);
                } catch (const Error& e) {
                    std::fprintf(stderr, "Error: %s\n", e.what());
                    g.exit_code = 1;
                }
            }
        }
        // After the containers: the volumes only they used are unused now.
        std::vector<std::string> removed_vols;
        if (pf->volumes) {
            try {
                removed_vols = eng.volume_prune();
            } catch (const Error& e) {
                std::fprintf(stderr, "Error: %s\n", e.what());
                g.exit_code = 1;
            }
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
        if (!removed_vols.empty()) {
            std::printf("Deleted Volumes\n");
            for (const auto& v : removed_vols) std::printf("%s\n", v.c_str());
        }
        std::printf("Deleted %zu blobs, %zu unpacked layers and %zu temp files\nTotal reclaimed space: %s\n", gc.blobs,
                    gc.layers, gc.temps, human_size(gc.bytes).c_str());
    });
}
std::string short_id(const std::string& id) { return id.substr(0, 12); }

// "running (init 1234)" or "not running": what a container's record says of its process.
std::string liveness(const engine::ContainerRecord& c) {
    if (engine::init_alive(c)) return "running (init " + std::to_string(engine::init_pid(c)) + ")";
    return "not running";
}

// Every container record file, for when the database cannot be read.
void print_records(const engine::StateFiles& f) {
    for (const auto& file : f.container_records) {
        try {
            auto c = engine::container_from_json(nlohmann::json::parse(read_file(file)));
            std::printf("  container %s %s: %s\n", short_id(c.id).c_str(), c.name.c_str(), liveness(c).c_str());
        } catch (const std::exception& e) {
            std::printf("  %s: unreadable (%s)\n", file.c_str(), e.what());
        }
    }
}

void add_system_check(CLI::App* system, Globals& g) {
    auto* check = system->add_subcommand(
        "check", "check the state database against the containers' own records and processes (changes nothing); "
                 "exits 1 when it finds a problem");
    check->callback([&g] {
        engine::EngineOptions o = engine_options(g);
        std::string db = o.root + "/vitro.db";
        engine::StateFiles f = engine::probe_state_files(db);
        std::printf("state database %s: %lld bytes, write-ahead log %lld bytes, %zu container record(s)\n", db.c_str(),
                    static_cast<long long>(f.db_size), static_cast<long long>(f.wal_size), f.container_records.size());
        int problems = 0;
        auto problem = [&](const std::string& what) {
            std::printf("problem: %s\n", what.c_str());
            ++problems;
        };
        std::unique_ptr<engine::Engine> eng;
        if (std::string why = f.problem(db); !why.empty()) {
            problem("the database " + why);
        } else {
            try {
                eng = std::make_unique<engine::Engine>(o);
            } catch (const engine::StateLostError& e) {
                problem(e.what());
            }
        }
        if (!eng) {
            std::printf("the containers' records:\n");
            print_records(f);
        } else {
            for (const auto& c : eng->unknown_containers())
                problem("container " + short_id(c.id) + " " + c.name + " is not in the database: " + liveness(c));
            for (const auto& c : eng->state().list_containers()) {
                bool monitor = c.pid > 0 && os::process_alive(c.pid, c.pid_start_time);
                if (c.state == engine::ContainerState::Running && !monitor)
                    problem("container " + short_id(c.id) + " " + c.name + " is recorded running but its monitor is gone: " +
                            (engine::init_alive(c) ? liveness(c) + ", the next command adopts it"
                                                   : "not running, the next command records its exit"));
                if (!path_exists(c.bundle)) problem("container " + short_id(c.id) + " " + c.name + ": " + c.bundle + " is missing");
            }
        }
        if (problems == 0) std::printf("no problems found\n");
        else std::printf("%d problem(s) found; `vitro system repair` fixes what it can\n", problems);
        g.exit_code = problems ? 1 : 0;
    });
}

void add_system_repair(CLI::App* system, Globals& g) {
    auto* repair = system->add_subcommand(
        "repair", "rebuild the state database from the containers' own records: a lost, empty, damaged or foreign "
                  "database is set aside (renamed *.lost-TIME), containers it does not know are put back, and "
                  "running containers without a monitor get one");
    repair->callback([&g] {
        engine::EngineOptions o = engine_options(g);
        std::string db = o.root + "/vitro.db";
        std::string stamp = std::to_string(static_cast<long long>(clock_seconds(CLOCK_REALTIME)));
        auto set_aside = [&](std::initializer_list<const char*> suffixes, const std::string& why) {
            for (const char* sfx : suffixes) {
                std::string from = db + sfx, to = from + ".lost-" + stamp;
                if (::rename(from.c_str(), to.c_str()) == 0) std::printf("set aside %s as %s\n", from.c_str(), to.c_str());
            }
            std::printf("  (%s)\n", why.c_str());
        };
        engine::StateFiles f = engine::probe_state_files(db);
        if (f.wal_damaged) set_aside({"-wal", "-shm"}, "the write-ahead log is damaged");
        std::unique_ptr<engine::Engine> eng;
        try {
            if (std::string why = engine::probe_state_files(db).problem(db); !why.empty())
                throw engine::StateLostError("the database " + why);
            eng = std::make_unique<engine::Engine>(o);
        } catch (const engine::StateLostError& e) {
            set_aside({"", "-wal", "-shm"}, e.what());
            o.rebuild_state = true;
            eng = std::make_unique<engine::Engine>(o);
        }
        auto restored = eng->restore_unknown_containers();
        for (const auto& c : restored) {
            auto now = eng->state().find_container(c.id);
            std::printf("restored container %s %s: %s\n", short_id(c.id).c_str(), c.name.c_str(),
                        now ? std::string(engine::to_string(now->state)).c_str() : "removed");
        }
        std::printf("%zu container(s) restored\n", restored.size());
    });
}
}  // namespace

void add_system_commands(CLI::App& app, Globals& g) {
    auto* system = app.add_subcommand("system", "manage vitro's storage and state: df, prune, check, repair");
    system->require_subcommand(1);
    add_system_df(system, g);
    add_system_prune(system, g);
    add_system_check(system, g);
    add_system_repair(system, g);

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
