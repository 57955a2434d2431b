#include "cmd/vitro/common.hpp"

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "util/error.hpp"

namespace vitro::cli {

engine::EngineOptions engine_options(const Globals& g) {
    engine::EngineOptions o;
    o.root = g.root;
    o.runroot = g.runroot;
    o.net_dir = g.net_dir;
    o.cni_path = g.cni_path;
    o.runtime = g.runtime;
    o.self_binary = g.self_path;
    if (!g.self_path.empty()) {
        std::string dir = g.self_path.substr(0, g.self_path.rfind('/') + 1);
        o.monitor_binary = dir + "vitro-monitor";
        o.pause_binary = dir + "vitro-pause";
        o.agent_binary = dir + "vitro-agent";
    }
    return o;
}

std::string human_since(const std::string& t) {
    std::tm tm{};
    if (t.empty() || !::strptime(t.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return "unknown";
    long long secs = static_cast<long long>(std::time(nullptr) - ::timegm(&tm));
    if (secs < 1) return "Less than a second";
    auto plural = [](long long n, const char* unit) {
        return std::to_string(n) + " " + unit + (n == 1 ? "" : "s");
    };
    if (secs < 60) return plural(secs, "second");
    if (secs < 3600) return plural(secs / 60, "minute");
    if (secs < 86400) return plural(secs / 3600, "hour");
    return plural(secs / 86400, "day");
}

std::string human_size(uint64_t b) {
    char buf[32];
    if (b < 1000) std::snprintf(buf, sizeof buf, "%lluB", static_cast<unsigned long long>(b));
    else if (b < 1000000) std::snprintf(buf, sizeof buf, "%.1fkB", b / 1e3);
    else if (b < 1000000000) std::snprintf(buf, sizeof buf, "%.1fMB", b / 1e6);
    else std::snprintf(buf, sizeof buf, "%.2fGB", b / 1e9);
    return buf;
}

namespace {
const nlohmann::json* lookup(const nlohmann::json& v, const std::string& path) {
    const nlohmann::json* cur = &v;
    size_t i = 0;
    while (i < path.size()) {
        if (path[i] != '.') return nullptr;
        size_t j = path.find('.', i + 1);
        std::string key = path.substr(i + 1, j == std::string::npos ? std::string::npos : j - i - 1);
        if (key.empty()) return cur;  // "{{.}}"
        if (!cur->is_object() || !cur->contains(key)) return nullptr;
        cur = &(*cur)[key];
        i = j == std::string::npos ? path.size() : j;
    }
    return cur;
}
}  // namespace

std::string render_format(const std::string& format, const nlohmann::json& v) {
    if (format == "json") return v.dump(4);
    std::string out;
    size_t i = 0;
    while (i < format.size()) {
        size_t open = format.find("{{", i);
        if (open == std::string::npos) {
            out += format.substr(i);
            break;
        }
        out += format.substr(i, open - i);
        size_t close = format.find("}}", open);
        if (close == std::string::npos) throw Error(EINVAL, "--format: unclosed {{ in \"" + format + "\"");
        std::string expr = format.substr(open + 2, close - open - 2);
        while (!expr.empty() && expr.front() == ' ') expr.erase(0, 1);
        while (!expr.empty() && expr.back() == ' ') expr.pop_back();
        bool as_json = expr.rfind("json ", 0) == 0;
        if (as_json) expr = expr.substr(5);
        const nlohmann::json* val = lookup(v, expr);
        if (!val) throw Error(EINVAL, "--format: no field \"" + expr + "\" (fields: " + [&] {
            std::string keys;
            if (v.is_object())
                for (auto it = v.begin(); it != v.end(); ++it) keys += (keys.empty() ? "." : ", .") + it.key();
            return keys;
        }() + ")");
        if (!as_json && val->is_string()) out += val->get<std::string>();
        else if (!as_json && val->is_null()) out += "<no value>";
        else out += val->dump();
        i = close + 2;
    }
    return out + "\n";
}

void print_inspect(const nlohmann::json& found, const std::string& format, const std::vector<std::string>& errors) {
    if (format == "json") std::printf("%s\n", found.dump(4).c_str());
    else
        for (const auto& v : found) std::fputs(render_format(format, v).c_str(), stdout);
    if (errors.empty()) return;
    std::fflush(stdout);
    for (size_t i = 1; i < errors.size(); ++i) std::fprintf(stderr, "error inspecting object: %s\n", errors[i].c_str());
    throw Error(ENOENT, "inspecting object: " + errors.front());
}

std::string tab_table(const std::vector<std::vector<std::string>>& rows) {
    std::vector<size_t> width;
    for (const auto& r : rows)
        for (size_t c = 0; c < r.size(); ++c) {
            if (width.size() <= c) width.push_back(12);
            width[c] = std::max(width[c], r[c].size() + 2);
        }
    std::string out;
    for (const auto& r : rows) {
        for (size_t c = 0; c < r.size(); ++c) {
            out += r[c];
            if (c + 1 < r.size()) out.append(width[c] - r[c].size(), ' ');
        }
        out += '\n';
    }
    return out;
}

std::string signal_name(int sig) {
    switch (sig) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGHUP: return "SIGHUP";
    default: return sig ? "signal " + std::to_string(sig) : "";
    }
}

}  // namespace vitro::cli
