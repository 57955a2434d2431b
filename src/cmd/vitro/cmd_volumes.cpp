// volume create|ls|inspect|rm|prune: named volumes under <root>/volumes
// (engine/volumes), the same ones `run -v NAME:/path` mounts; podman's
// flags, output and exit codes (rm: 1 no such volume, 2 in use).
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cmd/vitro/common.hpp"
#include "engine/volumes.hpp"
#include "util/error.hpp"

namespace vitro::cli {

// Named, not anonymous: the unity build puts this file beside network's run_create & co.
namespace volume_cmd {

using nlohmann::json;

// KEY=VALUE (or KEY alone: an empty value) of --label; `what` names the flag.
std::pair<std::string, std::string> key_value(const std::string& s, const char* what) {
    auto eq = s.find('=');
    std::string key = s.substr(0, eq);
    if (key.empty()) throw Error(EINVAL, std::string(what) + " \"" + s + "\": expected KEY=VALUE");
    return {key, eq == std::string::npos ? "" : s.substr(eq + 1)};
}

// --filter KEY=VALUE of ls and prune: the same key given again widens
// (any of its values), different keys narrow (all of them), as podman's.
class VolumeFilter {
public:
    explicit VolumeFilter(const std::vector<std::string>& filters) {
        for (const auto& f : filters) {
            auto eq = f.find('=');
            std::string key = f.substr(0, eq), value = eq == std::string::npos ? "" : f.substr(eq + 1);
            if (eq == std::string::npos || value.empty())
                throw Error(EINVAL, "invalid filter \"" + f + "\": expected KEY=VALUE");
            if (key == "dangling" && value != "true" && value != "false" && value != "1" && value != "0")
                throw Error(EINVAL, "invalid filter \"" + f + "\": dangling takes true or false");
            if (key == "name") {
                try {
                    (void)std::regex(value);
                } catch (const std::regex_error& e) {
                    throw Error(EINVAL, "invalid filter \"" + f + "\": " + e.what());
                }
            } else if (key == "label") {
                (void)key_value(value, "--filter label");
            } else if (key != "dangling" && key != "driver") {
                throw Error(EINVAL, "invalid filter \"" + f + "\": known filters are name, label, dangling and driver");
            }
            by_key_[key].push_back(value);
        }
    }
    bool matches(const engine::VolumeInfo& v) const {
        for (const auto& [key, values] : by_key_) {
            bool any = false;
            for (const auto& value : values) any = any || matches(v, key, value);
            if (!any) return false;
        }
        return true;
    }

private:
    static bool matches(const engine::VolumeInfo& v, const std::string& key, const std::string& value) {
        if (key == "name") return std::regex_search(v.name, std::regex(value));
        if (key == "driver") return v.driver == value;
        if (key == "dangling") return v.users.empty() == (value == "true" || value == "1");
        auto [k, val] = key_value(value, "--filter label");
        auto it = v.labels.find(k);
        return it != v.labels.end() && (value.find('=') == std::string::npos || it->second == val);
    }
    std::map<std::string, std::vector<std::string>> by_key_;
};

// ---- create ---------------------------------------------------------------------------

struct CreateFlags {
    std::string name, driver = "local";
    std::vector<std::string> labels, opts;
    std::string uid, gid;
    bool ignore = false;
};

void run_create(Globals& g, const CreateFlags& f) {
    if (f.driver != "local")
        throw Error(EINVAL, "volume create: driver \"" + f.driver + "\" is not supported (vitro has the local driver only)");
    engine::VolumeCreateRequest req;
    req.name = f.name;
    req.ignore_existing = f.ignore;
    for (const auto& l : f.labels) req.labels.insert(key_value(l, "--label"));
    req.options = f.opts;
    if (!f.uid.empty()) req.options.push_back("uid=" + f.uid);
    if (!f.gid.empty()) req.options.push_back("gid=" + f.gid);
    engine::Engine eng(engine_options(g));
    std::printf("%s\n", eng.volume_create(req).c_str());
}

// ---- ls ---------------------------------------------------------------------------------

struct LsFlags {
    std::vector<std::string> filters;
    std::string format;
    bool quiet = false, noheading = false;
};

void run_ls(Globals& g, const LsFlags& f) {
    if (f.quiet && !f.format.empty()) throw Error(EINVAL, "volume ls: --quiet and --format cannot be used together");
    VolumeFilter filter(f.filters);
    engine::Engine eng(engine_options(g));
    std::vector<engine::VolumeInfo> vols;
    for (auto& v : eng.volume_list())
        if (filter.matches(v)) vols.push_back(std::move(v));
    if (f.format == "json") {
        json out = json::array();
        for (const auto& v : vols) out.push_back(engine::to_json(v));
        std::printf("%s\n", out.dump(4).c_str());
        return;
    }
    if (f.quiet) {
        for (const auto& v : vols) std::printf("%s\n", v.name.c_str());
        return;
    }
    if (!f.format.empty() && f.format != "table") {
        for (const auto& v : vols) std::fputs(render_format(f.format, engine::to_json(v)).c_str(), stdout);
        return;
    }
    if (vols.empty()) return;  // podman prints no header for no volumes
    // podman's columns: at least 12 wide, 2 spaces apart.
    size_t w = 12;
    for (const auto& v : vols) w = std::max(w, v.driver.size() + 2);
    if (!f.noheading) std::printf("%-*s%s\n", static_cast<int>(w), "DRIVER", "VOLUME NAME");
    for (const auto& v : vols) std::printf("%-*s%s\n", static_cast<int>(w), v.driver.c_str(), v.name.c_str());
}

// ---- inspect ------------------------------------------------------------------------------

void run_inspect(Globals& g, const std::vector<std::string>& names, const std::string& format) {
    engine::Engine eng(engine_options(g));
    json out = json::array();
    std::vector<std::string> errors;
    for (const auto& name : names) {
        try {
            out.push_back(engine::to_json(eng.volume_inspect(name)));
        } catch (const engine::NotFoundError&) {
            errors.push_back("no such volume " + name);
        }
    }
    if (format == "json") std::printf("%s\n", out.dump(4).c_str());
    else
        for (const auto& v : out) std::fputs(render_format(format, v).c_str(), stdout);
    if (!errors.empty()) {
        for (size_t i = 0; i + 1 < errors.size(); ++i) std::fprintf(stderr, "Error: %s\n", errors[i].c_str());
        throw Error(ENOENT, errors.back());
    }
}

// ---- rm ---------------------------------------------------------------------------------

void run_rm(Globals& g, std::vector<std::string> names, bool all, bool force) {
    if (all == !names.empty()) throw Error(EINVAL, "volume rm: name one or more volumes, or --all");
    engine::Engine eng(engine_options(g));
    if (all)
        for (const auto& v : eng.volume_list()) names.push_back(v.name);
    // Each on its own, as podman: the removed ones printed, the failures
    // reported; the exit code is the last failure's (1 no such volume,
    // 2 in use, else 125).
    int code = 0;
    for (const auto& name : names) {
        try {
            eng.volume_remove(name, force);
            std::printf("%s\n", name.c_str());
        } catch (const engine::NotFoundError& e) {
            std::fprintf(stderr, "Error: %s\n", e.what());
            code = 1;
        } catch (const engine::VolumeInUseError& e) {
            std::fprintf(stderr, "Error: %s\n", e.what());
            code = 2;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "Error: %s\n", e.what());
            if (code == 0) code = kExitEngine;
        }
    }
    g.exit_code = code;
}

// ---- prune --------------------------------------------------------------------------------

void run_prune(Globals& g, const std::vector<std::string>& filters, bool force) {
    VolumeFilter filter(filters);
    engine::Engine eng(engine_options(g));
    if (!force) {
        std::vector<std::string> unused;
        for (const auto& v : eng.volume_list())
            if (v.users.empty() && filter.matches(v)) unused.push_back(v.name);
        std::printf("WARNING! This will remove all volumes not used by at least one container. The following volumes "
                    "will be removed:\n");
        if (unused.empty()) {
            std::printf("No dangling volumes found\n");
            return;
        }
        for (const auto& n : unused) std::printf("%s\n", n.c_str());
        std::printf("Are you sure you want to continue? [y/N] ");
        std::fflush(stdout);
        std::string answer;
        // No answer at all (stdin empty or closed): an error, as podman's.
        if (!std::getline(std::cin, answer))
            throw Error(EINVAL, "volume prune: no answer on stdin (use -f to prune without asking)");
        if (answer.empty() || (answer[0] != 'y' && answer[0] != 'Y')) return;
    }
    for (const auto& n : eng.volume_prune([&filter](const engine::VolumeInfo& v) { return filter.matches(v); }))
        std::printf("%s\n", n.c_str());
}

}  // namespace volume_cmd

void add_volume_commands(CLI::App& app, Globals& g) {
    // A repeatable flag takes one value each time (`--label a=b NAME`: NAME is no label).
    auto one_value_each = [](CLI::App* cmd) {
        for (auto* o : cmd->get_options())
            if (o->nonpositional()) o->allow_extra_args(false);
    };
    auto* volume = app.add_subcommand("volume", "Manage named volumes (the ones -v NAME:/path mounts)");
    volume->require_subcommand(1);
    volume->footer(
        "A volume is a directory under <root>/volumes/NAME/_data. The first container that mounts a volume\n"
        "that was never filled gets it filled from its image's content at the mount point (podman's copy-up);\n"
        "-o nocopy at creation turns that off. A volume is in use while any container (running or not) is\n"
        "recorded with it.");
    {
        auto f = std::make_shared<volume_cmd::CreateFlags>();
        auto* cmd = volume->add_subcommand("create", "Create a volume and print its name");
        cmd->add_option("NAME", f->name,
                        "name of the volume ([a-zA-Z0-9][a-zA-Z0-9_.-]*; default: a random 64-hex name)");
        cmd->add_option("-d,--driver", f->driver, "volume driver (only local)")->default_str("local");
        cmd->add_option("-l,--label", f->labels, "set a label KEY=VALUE on the volume (repeatable)");
        cmd->add_option("-o,--opt", f->opts,
                        "driver option: uid=N or gid=N (owner of the volume's root), nocopy (never filled from an "
                        "image) or copy (the default); repeatable");
        cmd->add_option("--uid", f->uid, "owner UID of the volume's root (as -o uid=N)");
        cmd->add_option("--gid", f->gid, "owner GID of the volume's root (as -o gid=N)");
        cmd->add_flag("--ignore", f->ignore, "succeed (and print the name) when the volume exists already");
        one_value_each(cmd);
        cmd->callback([&g, f] { volume_cmd::run_create(g, *f); });
    }
    {
        auto f = std::make_shared<volume_cmd::LsFlags>();
        auto* cmd = volume->add_subcommand("ls", "List volumes");
        cmd->alias("list");
        cmd->add_option("-f,--filter", f->filters,
                        "show only volumes matching KEY=VALUE: name=REGEX, label=KEY[=VALUE], dangling=true|false "
                        "(used by no container), driver=local; repeatable (same key: any, different keys: all)");
        cmd->add_option("--format", f->format, "table (the default), json, or a {{.Field}} template (e.g. {{.Name}})");
        cmd->add_flag("-q,--quiet", f->quiet, "print the names only");
        cmd->add_flag("-n,--noheading", f->noheading, "print no header line");
        one_value_each(cmd);
        cmd->callback([&g, f] { volume_cmd::run_ls(g, *f); });
    }
    {
        auto names = std::make_shared<std::vector<std::string>>();
        auto format = std::make_shared<std::string>("json");
        auto* cmd = volume->add_subcommand("inspect", "Show volumes' details as a JSON array");
        cmd->add_option("NAME", *names, "volumes to inspect")->required();
        cmd->add_option("-f,--format", *format, "json, or a {{.Field}} template (e.g. {{.Mountpoint}})")
            ->default_str("json");
        one_value_each(cmd);
        cmd->callback([&g, names, format] { volume_cmd::run_inspect(g, *names, *format); });
    }
    {
        auto names = std::make_shared<std::vector<std::string>>();
        auto force = std::make_shared<bool>(false), all = std::make_shared<bool>(false);
        auto* cmd = volume->add_subcommand(
            "rm", "Remove volumes (not while a container uses them); exits 1 when one does not exist, 2 when one is "
                  "in use");
        cmd->alias("remove");
        cmd->add_option("NAME", *names, "volumes to remove");
        cmd->add_flag("-a,--all", *all, "remove every volume (those in use only with -f)");
        cmd->add_flag("-f,--force", *force, "remove the containers using the volume first (running ones are killed)");
        one_value_each(cmd);
        cmd->callback([&g, names, all, force] { volume_cmd::run_rm(g, *names, *all, *force); });
    }
    {
        auto filters = std::make_shared<std::vector<std::string>>();
        auto force = std::make_shared<bool>(false);
        auto* cmd = volume->add_subcommand(
            "prune", "Remove every volume no container uses and print their names (asks first unless -f)");
        cmd->add_option("--filter", *filters, "prune only volumes matching KEY=VALUE (as volume ls --filter)");
        cmd->add_flag("-f,--force", *force, "do not ask for confirmation");
        one_value_each(cmd);
        cmd->callback([&g, filters, force] { volume_cmd::run_prune(g, *filters, *force); });
    }
}

}  // namespace vitro::cli
