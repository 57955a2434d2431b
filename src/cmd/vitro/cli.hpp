// The `vitro` command line: global options, docker's exit codes, and one
// registration function per command area (one file each).
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace vitro::cli {

// Docker's exit codes for errors of the engine itself and of the command.
inline constexpr int kExitEngine = 125;     // vitro failed (bad flag, unknown image, ...)
inline constexpr int kExitCannotRun = 126;  // the command exists but cannot be run
inline constexpr int kExitNotFound = 127;   // the command was not found in the container

struct Globals {
    std::string root;        // --root: image store + state database ($VITRO_ROOT, /var/lib/vitro)
    std::string runroot;     // --runroot: runtime state, netns pins ($VITRO_RUNROOT, /run/vitro)
    std::string net_dir;     // --network-config-dir: CNI conflists (/etc/vitro/net.d)
    std::string cni_path;    // --cni-plugin-dir (/usr/lib/cni)
    std::string runtime;     // --runtime: empty = in-process; crun, runc or a path
    std::string log_level = "warn";
    int exit_code = 0;       // what main returns when a command completes
    std::string self_path;   // this binary's path (for the monitor's way back)
    int argc = 0;            // main's, for the sealed re-exec
    char** argv = nullptr;
    bool exporter = false;   // this is vitro-exporter: `monitor` runs here, not exec'ed again
};

// Parses the global flags and the commands `add_commands` registers, runs the
// chosen one, and returns the exit code (125 for an engine error). Shared by
// vitro and vitro-exporter (`exporter`: true), which has `monitor` only.
int run_cli(int argc, char** argv, bool exporter, const std::function<void(CLI::App&, Globals&)>& add_commands);

// Each registers its subcommands on `app`; a callback throws vitro::Error on
// failure (main prints "Error: ..." and exits 125) or sets g.exit_code.
void add_image_commands(CLI::App& app, Globals& g);      // load, save, images, rmi, tag
void add_registry_commands(CLI::App& app, Globals& g);   // pull, push, login, logout
void add_container_commands(CLI::App& app, Globals& g);  // run, create, start, ps, logs, exec, ...
void add_copy_commands(CLI::App& app, Globals& g);       // cp, export, import
void add_system_commands(CLI::App& app, Globals& g);     // info, version, system df|prune
void add_network_commands(CLI::App& app, Globals& g);    // network create|ls|rm|inspect
void add_volume_commands(CLI::App& app, Globals& g);     // volume create|ls|inspect|rm|prune
void add_pod_commands(CLI::App& app, Globals& g);        // pod create|start|stop|rm|ps|inspect
void add_monitor_commands(CLI::App& app, Globals& g);    // monitor (the metrics exporter service)
void add_evidence_commands(CLI::App& app, Globals& g);   // evidence collect|verify|export|watch|bench-append
void add_detect_commands(CLI::App& app, Globals& g);     // baseline learn|show, alerts, detect
void add_netlat_commands(CLI::App& app, Globals& g);     // netlat ping|calibrate
void add_bench_commands(CLI::App& app, Globals& g);      // bench io

// True when stdout is a terminal (progress displays, tables).
bool stdout_is_tty();
// The absolute path of this binary from argv[0] (searched in PATH when bare); "" if unknown.
std::string self_path(const char* argv0);

}  // namespace vitro::cli
