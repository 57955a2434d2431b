// What vitro and vitro-exporter share of a command line: the global flags
// (and their environment variables), the parse, and docker's exit codes.
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "cmd/vitro/cli.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/log.hpp"

namespace vitro::cli {

bool stdout_is_tty() { return ::isatty(1) == 1; }

std::string self_path(const char* argv0) {
    // argv[0], not /proc/self/exe: that is the protected copy after the re-exec.
    std::string name = find_program(argv0 ? argv0 : "");
    char buf[PATH_MAX];
    return ::realpath(name.c_str(), buf) ? std::string(buf) : std::string();
}

namespace {
std::string env_or(const char* name, const char* fallback) {
    const char* v = std::getenv(name);
    return v && *v ? v : fallback;
}
// Levenshtein distance, for "Did you mean".
size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diag = up;
        }
    }
    return row[b.size()];
}

// The commands nearest to a mistyped `word` (at most 2 edits, or a prefix
// either way), as cobra suggests them.
std::vector<std::string> suggestions(const CLI::App& parent, const std::string& word) {
    std::vector<std::pair<size_t, std::string>> near;
    for (const CLI::App* sub : parent.get_subcommands([](const CLI::App*) { return true; })) {
        const std::string& name = sub->get_name();
        size_t d = edit_distance(word, name);
        if (d <= 2 || (word.size() >= 2 && name.rfind(word, 0) == 0)) near.emplace_back(d, name);
    }
    std::sort(near.begin(), near.end());
    std::vector<std::string> out;
    for (const auto& n : near) out.push_back(n.second);
    return out;
}

// CLI11 takes an unknown command for an extra argument: `vitro cpp` is "A
// subcommand is required", `vitro cp --help` the top-level help. The words
// before the first option-less argument are walked down the command tree
// here, so that an unknown command is named, with the nearest ones. Options
// of each level are skipped with their values. Throws Error.
void check_command_words(const CLI::App& app, int argc, char** argv) {
    const CLI::App* level = &app;
    std::string path = level->get_name();
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--") return;
        if (arg.size() > 1 && arg[0] == '-') {
            if (arg.find('=') != std::string::npos) continue;
            const CLI::Option* opt = level->get_option_no_throw(arg);
            if (opt && opt->get_items_expected_min() > 0) ++i;  // its value
            continue;
        }
        if (level->get_subcommands([](const CLI::App*) { return true; }).empty()) return;  // a command's arguments
        auto match = level->get_subcommands([&arg](const CLI::App* c) { return c->check_name(arg); });
        if (match.empty()) {
            std::string msg = "unrecognized command \"" + path + " " + arg + "\"";
            auto near = suggestions(*level, arg);
            if (!near.empty()) {
                msg += "\nDid you mean ";
                for (size_t k = 0; k < near.size(); ++k)
                    msg += (k == 0 ? "" : k + 1 == near.size() ? " or " : ", ") + ("\"" + path + " " + near[k] + "\"");
                msg += "?";
            }
            msg += "\nTry '" + path + " --help' for the commands";
            throw Error(EINVAL, msg);
        }
        level = match.front();
        path += " " + level->get_name();
    }
}
}  // namespace

int run_cli(int argc, char** argv, bool exporter, const std::function<void(CLI::App&, Globals&)>& add_commands) {
    CLI::App app{"vitro: run containers without a daemon (podman's habits, docker's flags and exit codes)",
                 "vitro"};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string("vitro version ") + VITRO_VERSION);
    Globals g;
    g.exporter = exporter;
    g.argc = argc;
    g.argv = argv;
    g.self_path = self_path(argv[0]);
    g.root = env_or("VITRO_ROOT", "/var/lib/vitro");
    g.runroot = env_or("VITRO_RUNROOT", "/run/vitro");
    g.net_dir = env_or("VITRO_NETWORK_CONFIG_DIR", "/etc/vitro/net.d");
    g.cni_path = env_or("VITRO_CNI_PATH", "/usr/lib/cni");
    g.runtime = env_or("VITRO_RUNTIME", "");
    app.add_option("--root", g.root, "storage: images, layers, containers, state database ($VITRO_ROOT)")
        ->default_str(g.root);
    app.add_option("--runroot", g.runroot, "runtime state: container processes, network namespaces ($VITRO_RUNROOT)")
        ->default_str(g.runroot);
    app.add_option("--network-config-dir", g.net_dir, "CNI network conflists")->default_str(g.net_dir);
    app.add_option("--cni-plugin-dir", g.cni_path,
                   "directory of the CNI plugin binaries ($VITRO_CNI_PATH; bridge with host-local IPAM runs built "
                   "in unless $VITRO_CNI_BUILTIN=0)")
        ->default_str(g.cni_path);
    app.add_option("--runtime", g.runtime,
                   "OCI runtime binary to use instead of the built-in one: crun, runc or a path");
    app.add_option("--log-level", g.log_level, "debug, info, warn or error (debug: also debug messages)")
        ->check(CLI::IsMember({"debug", "info", "warn", "error"}))
        ->each([](const std::string& level) {
            log::init("", false, level == "debug");
            log::to_stderr("vitro", level == "error" ? log::Level::Error
                                    : level == "info" ? log::Level::Info
                                                      : log::Level::Warn);
        });
    log::to_stderr("vitro", log::Level::Warn);  // podman's default: warnings are shown

    add_commands(app, g);

    try {
        check_command_words(app, argc, argv);
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return kExitEngine;
    } catch (const Error& e) {
        std::fprintf(stderr, "Error: %s\n", e.what());
        return kExitEngine;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "Error: %s\n", e.what());
        return kExitEngine;
    }
    return g.exit_code;
}

}  // namespace vitro::cli
