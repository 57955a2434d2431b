// vitro's own implementation of the CNI protocol (spec 1.0.0): network
// configuration lists, plugin chaining with prevResult, ADD / DEL (in reverse,
// with the cached result) / CHECK, and a result cache on disk so that DEL works
// from a later process, like libcni's /var/lib/cni/results.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace vitro::net {

// A network configuration list (a .conflist file).
struct NetworkConfigList {
    std::string name;
    std::string cni_version;
    bool disable_check = false;
    std::vector<nlohmann::json> plugins;  // each an object with at least "type"
    nlohmann::json raw;                   // the whole document, as read
    std::string source;                   // file it came from, for messages
};

// Parses and validates a conflist; errors name `source` and the field
// ("net.d/x.conflist: plugins[1].type: expected a non-empty string").
NetworkConfigList parse_conflist(std::string_view text, const std::string& source);
NetworkConfigList load_conflist(const std::filesystem::path& file);

// What the runtime knows about the attachment.
struct RuntimeConf {
    std::string container_id;
    std::string netns;          // path of the network namespace file
    std::string ifname = "eth0";
    std::vector<std::pair<std::string, std::string>> args;  // CNI_ARGS
    nlohmann::json capability_args = nlohmann::json::object();  // e.g. {"portMappings": [...]}
};

// Whether plugins run in-process where vitro has them built in: true unless
// the environment says VITRO_CNI_BUILTIN=0.
bool builtin_plugins_from_env();

struct CniOptions {
    std::vector<std::filesystem::path> plugin_dirs = {"/usr/lib/cni"};  // CNI_PATH
    std::filesystem::path cache_dir = "/var/lib/vitro/cni/results";
    int timeout_s = 60;  // per plugin invocation
    // bridge with host-local IPAM runs in-process (builtin_bridge.hpp) where
    // the built-in can; false: every plugin is exec'd, as the binaries.
    bool builtin_plugins = builtin_plugins_from_env();
};

// The stdin config for plugin `index` of `list`: the plugin object with
// name and cniVersion filled in, runtimeConfig from the capabilities it
// declares, and prevResult when given.
nlohmann::json plugin_stdin(const NetworkConfigList& list, size_t index, const RuntimeConf& rt,
                            const std::optional<nlohmann::json>& prev_result);

// Turns a plugin's stdout on failure into a message: "msg: details (code N)".
// Falls back to `stderr_text` when stdout is not a CNI error object.
std::string describe_plugin_error(std::string_view stdout_text, std::string_view stderr_text);

// A chained plugin that would do nothing for this attachment, and is not run
// (ADD, CHECK or DEL; the same answer each time): portmap without port
// mappings, tuning without settings. A plugin the runtime passes a capability
// it declares, or a runtimeConfig, always runs. Each skipped plugin is two
// program runs (ADD and DEL) saved per container, and portmap's DEL runs
// iptables several times.
bool plugin_is_noop(const nlohmann::json& plugin, const RuntimeConf& rt);

// "K1=V1;K2=V2".
std::string format_cni_args(const std::vector<std::pair<std::string, std::string>>& args);

// The cache file name for an attachment: "<network>-<container>-<ifname>".
std::string cache_key(const std::string& network, const std::string& container_id,
                      const std::string& ifname);

class Cni {
public:
    explicit Cni(CniOptions opts = {});

    // Runs the chain in order; returns the final result. On failure, the
    // plugins already run are deleted again (best effort) and nothing is cached.
    // Throws if this attachment already exists (ADD twice without DEL).
    nlohmann::json add(const NetworkConfigList& list, const RuntimeConf& rt);
    // Runs the chain in reverse with the cached result as prevResult (or none, if
    // never added: plugins tolerate it, as the spec requires); removes the cache.
    void del(const NetworkConfigList& list, const RuntimeConf& rt);
    // Runs the chain in order with the cached result; throws on the first failure.
    void check(const NetworkConfigList& list, const RuntimeConf& rt);

    // The cached ADD result of this attachment, if any.
    std::optional<nlohmann::json> cached_result(const std::string& network, const RuntimeConf& rt) const;
    // The plugin binary for `type`, searched in plugin_dirs; throws if none.
    std::filesystem::path find_plugin(const std::string& type) const;

    const CniOptions& options() const { return opts_; }

private:
    // Runs one plugin (in-process when built in); returns its result (null when
    // it printed nothing).
    nlohmann::json invoke(const NetworkConfigList& list, size_t index, const char* command,
                          const RuntimeConf& rt, const std::optional<nlohmann::json>& prev) const;
    std::filesystem::path cache_path(const std::string& network, const RuntimeConf& rt) const;

    CniOptions opts_;
};

}  // namespace vitro::net
