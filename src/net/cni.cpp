#include "net/cni.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "net/builtin_bridge.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/subprocess.hpp"

extern char** environ;

namespace vitro::net {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

[[noreturn]] void bad(const std::string& source, const std::string& field, const std::string& expected) {
    throw Error(EINVAL, source + ": " + field + ": " + expected);
}

// Only characters that keep a cache file name a single path component.
bool safe_component(const std::string& s) {
    if (s.empty() || s == "." || s == "..") return false;
    for (char c : s)
        if (c == '/' || c == '\0') return false;
    return true;
}

}  // namespace

NetworkConfigList parse_conflist(std::string_view text, const std::string& source) {
    json doc;
    try {
        doc = json::parse(text);
    } catch (const json::exception& e) {
        throw Error(EINVAL, source + ": not valid JSON: " + e.what());
    }
    if (!doc.is_object()) bad(source, "(top level)", "expected a JSON object");
    NetworkConfigList list;
    list.source = source;
    auto name = doc.find("name");
    if (name == doc.end() || !name->is_string() || name->get<std::string>().empty())
        bad(source, "name", "expected a non-empty string");
    list.name = name->get<std::string>();
    if (!safe_component(list.name)) bad(source, "name", "must not contain '/'");
    auto ver = doc.find("cniVersion");
    if (ver == doc.end() || !ver->is_string() || ver->get<std::string>().empty())
        bad(source, "cniVersion", "expected a version string such as \"1.0.0\"");
    list.cni_version = ver->get<std::string>();
    if (auto dc = doc.find("disableCheck"); dc != doc.end()) {
        if (!dc->is_boolean()) bad(source, "disableCheck", "expected true or false");
        list.disable_check = dc->get<bool>();
    }
    auto plugins = doc.find("plugins");
    if (plugins == doc.end() || !plugins->is_array() || plugins->empty())
        bad(source, "plugins", "expected a non-empty array of plugin objects");
    for (size_t i = 0; i < plugins->size(); ++i) {
        const json& p = (*plugins)[i];
        std::string field = "plugins[" + std::to_string(i) + "]";
        if (!p.is_object()) bad(source, field, "expected an object");
        auto type = p.find("type");
        if (type == p.end() || !type->is_string() || type->get<std::string>().empty())
            bad(source, field + ".type", "expected a non-empty string");
        if (type->get<std::string>().find('/') != std::string::npos)
            bad(source, field + ".type", "must be a plugin name, not a path");
        if (auto caps = p.find("capabilities"); caps != p.end() && !caps->is_object())
            bad(source, field + ".capabilities", "expected an object");
        list.plugins.push_back(p);
    }
    list.raw = std::move(doc);
    return list;
}

NetworkConfigList load_conflist(const fs::path& file) {
    std::string text;
    try {
        text = read_file(file.string());
    } catch (const Error& e) {
        throw e.wrap("network config");
    }
    return parse_conflist(text, file.string());
}

json plugin_stdin(const NetworkConfigList& list, size_t index, const RuntimeConf& rt,
                  const std::optional<json>& prev_result) {
    json conf = list.plugins.at(index);
    conf["name"] = list.name;
    conf["cniVersion"] = list.cni_version;
    // runtimeConfig carries only the capabilities the plugin asks for.
    json runtime_config = json::object();
    if (auto caps = conf.find("capabilities"); caps != conf.end() && caps->is_object()) {
        for (auto& [cap, enabled] : caps->items()) {
            if (!enabled.is_boolean() || !enabled.get<bool>()) continue;
            if (auto v = rt.capability_args.find(cap); v != rt.capability_args.end()) runtime_config[cap] = *v;
        }
    }
    if (!runtime_config.empty()) conf["runtimeConfig"] = std::move(runtime_config);
    else conf.erase("runtimeConfig");
    if (prev_result) conf["prevResult"] = *prev_result;
    else conf.erase("prevResult");
    return conf;
}

std::string describe_plugin_error(std::string_view stdout_text, std::string_view stderr_text) {
    json err = json::parse(stdout_text, nullptr, false);
    if (err.is_object() && err.contains("msg") && err["msg"].is_string()) {
        std::string m = err["msg"].get<std::string>();
        if (auto d = err.find("details"); d != err.end() && d->is_string() && !d->get<std::string>().empty())
            m += ": " + d->get<std::string>();
        if (auto c = err.find("code"); c != err.end() && c->is_number_integer())
            m += " (code " + std::to_string(c->get<long>()) + ")";
        return m;
    }
    std::string s(stderr_text.empty() ? stdout_text : stderr_text);
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s.empty() ? "no error message" : s;
}

std::string format_cni_args(const std::vector<std::pair<std::string, std::string>>& args) {
    std::string out;
    for (const auto& [k, v] : args) {
        if (!out.empty()) out += ';';
        out += k + "=" + v;
    }
    return out;
}

std::string cache_key(const std::string& network, const std::string& container_id, const std::string& ifname) {
    return network + "-" + container_id + "-" + ifname;
}

Cni::Cni(CniOptions opts) : opts_(std::move(opts)) {}

fs::path Cni::find_plugin(const std::string& type) const {
    if (type.empty() || type.find('/') != std::string::npos) throw Error(EINVAL, "CNI plugin type \"" + type + "\": not a plugin name");
    std::string searched;
    for (const auto& dir : opts_.plugin_dirs) {
        fs::path p = dir / type;
        if (::access(p.c_str(), X_OK) == 0) return p;
        searched += (searched.empty() ? "" : ":") + dir.string();
    }
    throw Error(ENOENT, "CNI plugin \"" + type + "\": not found in " + searched);
}

fs::path Cni::cache_path(const std::string& network, const RuntimeConf& rt) const {
    if (!safe_component(rt.container_id)) throw Error(EINVAL, "CNI container id \"" + rt.container_id + "\": invalid");
    if (!safe_component(rt.ifname)) throw Error(EINVAL, "CNI interface name \"" + rt.ifname + "\": invalid");
    return opts_.cache_dir / cache_key(network, rt.container_id, rt.ifname);
}

std::optional<json> Cni::cached_result(const std::string& network, const RuntimeConf& rt) const {
    fs::path p = cache_path(network, rt);
    if (!path_exists(p.string())) return std::nullopt;
    json doc = json::parse(read_file(p.string()), nullptr, false);
    if (!doc.is_object() || !doc.contains("result")) throw Error(EINVAL, p.string() + ": not a vitro CNI cache entry");
    return doc["result"];
}

bool builtin_plugins_from_env() {
    const char* v = std::getenv("VITRO_CNI_BUILTIN");
    return !(v && std::string_view(v) == "0");
}

namespace {
// A built-in plugin's command; errors read as a binary's, marked [built in].
json run_builtin_plugin(const json& conf, const char* command, const RuntimeConf& rt, const std::string& what) {
    try {
        if (std::string_view(command) == "ADD") return builtin_bridge_add(conf, rt);
        if (std::string_view(command) == "DEL") builtin_bridge_del(conf, rt);
        else builtin_bridge_check(conf, rt);
        return nullptr;
    } catch (const Error& e) {
        throw Error(e.code(), what + ": " + e.what() + " [built in]");
    } catch (const json::exception& e) {
        throw Error(EINVAL, what + ": bad config or prevResult: " + e.what() + " [built in]");
    }
}
}  // namespace

json Cni::invoke(const NetworkConfigList& list, size_t index, const char* command, const RuntimeConf& rt,
                 const std::optional<json>& prev) const {
    const std::string type = list.plugins[index].at("type").get<std::string>();
    const std::string what = std::string("CNI plugin ") + type + " (network " + list.name + ", " + command + ")";
    json conf = plugin_stdin(list, index, rt, prev);
    if (opts_.builtin_plugins && builtin_bridge_handles(conf, rt)) return run_builtin_plugin(conf, command, rt, what);
    fs::path bin;
    try {
        bin = find_plugin(type);
    } catch (const Error& e) {
        throw e.wrap(what);
    }

    std::vector<std::string> env;
    for (char** e = environ; e && *e; ++e) {
        std::string_view v(*e);
        if (v.starts_with("CNI_")) continue;
        env.emplace_back(v);
    }
    bool has_path = false;
    for (const auto& e : env) has_path = has_path || e.starts_with("PATH=");
    if (!has_path) env.emplace_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    std::string cni_path;
    for (const auto& d : opts_.plugin_dirs) cni_path += (cni_path.empty() ? "" : ":") + d.string();
    env.push_back(std::string("CNI_COMMAND=") + command);
    env.push_back("CNI_CONTAINERID=" + rt.container_id);
    env.push_back("CNI_NETNS=" + rt.netns);
    env.push_back("CNI_IFNAME=" + rt.ifname);
    env.push_back("CNI_PATH=" + cni_path);
    if (!rt.args.empty()) env.push_back("CNI_ARGS=" + format_cni_args(rt.args));

    std::string input = conf.dump();
    RunResult r = run_program_capture(bin.string(), {}, env, input, opts_.timeout_s);
    if (r.timed_out) throw Error(ETIMEDOUT, what + ": " + describe_status(r, opts_.timeout_s));
    if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0) {
        std::string msg = describe_plugin_error(r.stdout_data, r.stderr_tail);
        throw Error(0, what + ": " + msg + " [" + describe_status(r, opts_.timeout_s) + "]");
    }
    if (r.stdout_data.find_first_not_of(" \t\r\n") == std::string::npos) return nullptr;
    json out = json::parse(r.stdout_data, nullptr, false);
    if (out.is_discarded() || !out.is_object())
        throw Error(EPROTO, what + ": result is not a JSON object: " + r.stdout_data.substr(0, 200));
    return out;
}

bool plugin_is_noop(const json& plugin, const RuntimeConf& rt) {
    // Capabilities it declares and the runtime fills make it do something.
    if (plugin.contains("capabilities") && plugin["capabilities"].is_object())
        for (const auto& [cap, on] : plugin["capabilities"].items())
            if (on == true && rt.capability_args.contains(cap) && !rt.capability_args[cap].empty()) return false;
    if (plugin.contains("runtimeConfig")) return false;
    const std::string type = plugin.value("type", "");
    if (type == "portmap") return true;  // no mappings: ADD passes prevResult on, DEL finds no chain
    if (type == "tuning") {              // no setting: ADD passes prevResult on, DEL has nothing to undo
        for (const auto& [key, value] : plugin.items())
            if (key != "type" && key != "name" && key != "cniVersion" && key != "capabilities") return false;
        return true;
    }
    return false;
}

json Cni::add(const NetworkConfigList& list, const RuntimeConf& rt) {
    fs::path cache = cache_path(list.name, rt);
    if (path_exists(cache.string()))
        throw Error(EEXIST, "CNI ADD of container " + rt.container_id + " to network " + list.name + " (" + rt.ifname +
                                "): already attached; DEL it first");
    std::optional<json> prev;
    size_t done = 0;
    try {
        for (; done < list.plugins.size(); ++done) {
            if (plugin_is_noop(list.plugins[done], rt) && prev) continue;
            json out = invoke(list, done, "ADD", rt, prev);
            if (out.is_null()) {
                const std::string type = list.plugins[done].at("type").get<std::string>();
                throw Error(EPROTO, "CNI plugin " + type + " (network " + list.name + ", ADD): printed no result");
            }
            prev = std::move(out);
        }
        make_dirs(opts_.cache_dir.string(), 0700);
        json entry = {{"kind", "cniCacheV1"},       {"containerId", rt.container_id},
                      {"ifName", rt.ifname},         {"networkName", list.name},
                      {"netns", rt.netns},           {"config", list.raw},
                      {"result", *prev}};
        write_file_atomic(cache.string(), entry.dump(), 0600);
    } catch (...) {
        // Undo: DEL every plugin that may have done something, in reverse,
        // including the one that failed (a plugin must tolerate DEL of a partial ADD).
        for (size_t i = std::min(done + 1, list.plugins.size()); i-- > 0;) {
            if (plugin_is_noop(list.plugins[i], rt)) continue;
            try {
                invoke(list, i, "DEL", rt, prev);
            } catch (const Error&) {
                // Undo is best effort: the ADD's own error is rethrown below
            }
        }
        throw;
    }
    return *prev;
}

void Cni::del(const NetworkConfigList& list, const RuntimeConf& rt) {
    fs::path cache = cache_path(list.name, rt);
    std::optional<json> prev = cached_result(list.name, rt);
    std::optional<Error> first;
    for (size_t i = list.plugins.size(); i-- > 0;) {
        if (plugin_is_noop(list.plugins[i], rt)) continue;
        try {
            invoke(list, i, "DEL", rt, prev);
        } catch (const Error& e) {
            if (!first) first = e;
        }
    }
    // Keep the cache when a plugin failed, so that a retry has the prevResult.
    if (first) throw *first;
    if (::unlink(cache.c_str()) < 0 && errno != ENOENT) throw_errno("unlink", cache.string());
}

void Cni::check(const NetworkConfigList& list, const RuntimeConf& rt) {
    if (list.disable_check) return;
    if (list.cni_version.starts_with("0.1.") || list.cni_version.starts_with("0.2.") ||
        list.cni_version.starts_with("0.3."))
        throw Error(ENOTSUP, "CNI CHECK on network " + list.name + ": needs cniVersion 0.4.0 or later, not " +
                                 list.cni_version);
    std::optional<json> prev = cached_result(list.name, rt);
    if (!prev)
        throw Error(ENOENT, "CNI CHECK of container " + rt.container_id + " on network " + list.name +
                                ": no cached result (was it added?)");
    for (size_t i = 0; i < list.plugins.size(); ++i)
        if (!plugin_is_noop(list.plugins[i], rt)) invoke(list, i, "CHECK", rt, prev);
}

}  // namespace vitro::net
