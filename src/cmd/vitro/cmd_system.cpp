// info, version.
#include <sys/utsname.h>

#include <cstdio>

#include "cgroups/cgroup.hpp"
#include "cmd/vitro/common.hpp"

namespace vitro::cli {

void add_system_commands(CLI::App& app, Globals& g) {
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
