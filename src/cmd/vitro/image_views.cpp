#include "cmd/vitro/image_views.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <iterator>
#include <cstdio>
#include <ctime>
#include <set>

#include "image/store.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

namespace vitro::cli {

using nlohmann::json;

std::vector<LocalImage> local_images(const image::Store& store) {
    std::vector<LocalImage> out;
    for (const auto& t : store.tags()) {
        try {
            auto img = image::load_image(store, t.name);
            std::string id = img.manifest.config.digest;
            out.push_back({t.name, std::move(id), std::move(img)});
        } catch (const Error& e) {
            log::warn(std::string("image ") + t.name + " cannot be read, not shown: " + e.what());
        }
    }
    return out;
}

const LocalImage* find_local_image(const image::Store& store, const std::vector<LocalImage>& all,
                                   const std::string& ref) {
    auto tag = store.find_name(ref);
    if (!tag) return nullptr;
    for (const auto& i : all)
        if (i.name == *tag) return &i;
    return nullptr;
}

int64_t image_size(const image::StoredImage& img) {
    int64_t size = img.descriptor.size + img.manifest.config.size;
    for (const auto& l : img.manifest.layers) size += l.size;
    return size;
}

std::string podman_size(uint64_t bytes) {
    // go-units' HumanSizeWithPrecision(size, 3): "%.3g" of the value in the
    // largest unit (powers of 1000) that keeps it under 1000.
    static const char* units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
    double v = static_cast<double>(bytes);
    size_t u = 0;
    while (v >= 1000 && u + 1 < std::size(units)) {
        v /= 1000;
        ++u;
    }
    char buf[48];
    std::snprintf(buf, sizeof buf, "%.3g %s", v, units[u]);
    return buf;
}

namespace {

// "registry/path/name:tag" (or "...@sha256:...") -> the name without its tag
// or digest, and that suffix (":tag", "@sha256:...", or empty).
std::pair<std::string, std::string> split_tag_suffix(const std::string& name) {
    if (auto at = name.find('@'); at != std::string::npos) return {name.substr(0, at), name.substr(at)};
    auto slash = name.rfind('/');
    auto colon = name.rfind(':');
    if (colon == std::string::npos || (slash != std::string::npos && colon < slash)) return {name, ""};
    return {name.substr(0, colon), name.substr(colon)};
}

// The repository without its registry: docker's rule, a first component with
// a "." or ":" or "localhost" is a registry.
std::string path_of(const std::string& repo) {
    auto slash = repo.find('/');
    if (slash == std::string::npos) return repo;
    std::string first = repo.substr(0, slash);
    if (first.find_first_of(".:") != std::string::npos || first == "localhost") return repo.substr(slash + 1);
    return repo;
}

std::string last_component(const std::string& s) { return s.substr(s.rfind('/') + 1); }

// Labels of an image config, as podman reads them (config.Labels).
const json* labels_of(const LocalImage& i) {
    const json& raw = i.img.config.raw;
    auto c = raw.find("config");
    if (c == raw.end() || !c->is_object()) return nullptr;
    auto l = c->find("Labels");
    if (l == c->end() || !l->is_object()) return nullptr;
    return &*l;
}

long long created_ns(const LocalImage& i) {
    return parse_rfc3339_ns(i.img.config.raw.value("created", "")).value_or(0);
}

bool parse_bool_value(const std::string& key, const std::string& v) {
    if (v == "true" || v == "1") return true;
    if (v == "false" || v == "0") return false;
    throw Error(EINVAL, "--filter " + key + "=" + v + ": want true or false");
}

}  // namespace

std::optional<long long> parse_rfc3339_ns(const std::string& t) {
    std::tm tm{};
    const char* rest = t.empty() ? nullptr : ::strptime(t.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest) return std::nullopt;
    long long secs = static_cast<long long>(::timegm(&tm));
    long long nanos = 0;
    if (*rest == '.') {
        long long scale = 100000000;
        for (++rest; *rest >= '0' && *rest <= '9'; ++rest, scale /= 10) nanos += (*rest - '0') * scale;
    }
    if (*rest == '+' || *rest == '-') {
        int hh = 0, mm = 0;
        if (std::sscanf(rest + 1, "%2d:%2d", &hh, &mm) != 2) return std::nullopt;
        long long off = hh * 3600LL + mm * 60LL;
        secs -= *rest == '+' ? off : -off;
    } else if (*rest != 'Z' && *rest != 'z') {
        return std::nullopt;
    }
    return secs * 1000000000LL + nanos;
}

json image_inspect_json(const std::vector<LocalImage>& all, const LocalImage& img) {
    const auto& si = img.img;
    json repo_tags = json::array(), repo_digests = json::array();
    std::set<std::string> repos;
    for (const auto& o : all) {
        if (o.id != img.id) continue;
        repo_tags.push_back(o.name);
        std::string repo = split_tag_suffix(o.name).first;
        if (repos.insert(repo).second) repo_digests.push_back(repo + "@" + o.img.descriptor.digest);
    }
    const json& raw = si.config.raw;
    json config = raw.value("config", json::object());
    json history = raw.value("history", json::array());
    // podman: the config's own comment (docker's), else the first history entry's.
    std::string comment = raw.value("comment", "");
    if (comment.empty() && history.is_array() && !history.empty() && history[0].is_object())
        comment = history[0].value("comment", "");
    json labels = config.is_object() && config.contains("Labels") ? config["Labels"] : json();
    json annotations = json::object();
    for (const auto& [k, v] : si.manifest.annotations) annotations[k] = v;
    const int64_t size = image_size(si);
    return {{"Id", image::digest_hex(img.id)},
            {"Digest", si.descriptor.digest},
            {"RepoTags", repo_tags},
            {"RepoDigests", repo_digests},
            {"Parent", ""},
            {"Comment", comment},
            {"Created", raw.value("created", "")},
            {"Config", config},
            {"Version", raw.value("docker_version", "")},
            {"Author", raw.value("author", "")},
            {"Architecture", raw.value("architecture", "")},
            {"Os", raw.value("os", "")},
            {"Size", size},
            {"VirtualSize", size},
            {"RootFS", {{"Type", "layers"}, {"Layers", si.config.diff_ids}}},
            {"Labels", labels},
            {"Annotations", annotations},
            {"ManifestType", si.descriptor.media_type.empty() ? si.manifest.media_type : si.descriptor.media_type},
            {"User", config.is_object() ? config.value("User", "") : ""},
            {"History", history},
            {"NamesHistory", repo_tags}};
}

json image_history_json(const std::vector<LocalImage>& all, const LocalImage& img) {
    const auto& diff_ids = img.img.config.diff_ids;
    const auto& layers = img.img.manifest.layers;
    json history = img.img.config.raw.value("history", json::array());
    if (!history.is_array()) history = json::array();
    // The image that ends in exactly the first k layers, for each entry.
    auto image_with_layers = [&](size_t k) -> const LocalImage* {
        for (const auto& o : all)
            if (o.img.config.diff_ids.size() == k && std::equal(diff_ids.begin(), diff_ids.begin() + k,
                                                                o.img.config.diff_ids.begin()))
                return &o;
        return nullptr;
    };
    std::set<std::string> used{img.id};
    size_t k = diff_ids.size();  // layers at and below the current entry
    json out = json::array();
    for (size_t n = history.size(); n-- > 0;) {
        const json& h = history[n].is_object() ? history[n] : json::object();
        std::string id = "<missing>";
        if (n + 1 == history.size()) id = image::digest_hex(img.id);
        else if (k > 0)
            if (const LocalImage* o = image_with_layers(k); o && used.insert(o->id).second) id = image::digest_hex(o->id);
        const bool empty = h.value("empty_layer", false);
        int64_t size = 0;
        if (!empty && k > 0) {
            size = k - 1 < layers.size() ? layers[k - 1].size : 0;
            --k;
        }
        json row = {{"id", id}, {"created", h.value("created", "")}, {"CreatedBy", h.value("created_by", "")},
                    {"size", size}};
        if (std::string c = h.value("comment", ""); !c.empty()) row["comment"] = c;
        out.push_back(std::move(row));
    }
    return out;
}

bool reference_matches(const std::string& pattern, const std::string& name) {
    auto [repo, suffix] = split_tag_suffix(name);
    const std::string path = path_of(repo);
    const std::string candidates[] = {name, path, last_component(name), repo, path + suffix, last_component(repo)};
    for (const auto& c : candidates)
        if (::fnmatch(pattern.c_str(), c.c_str(), FNM_PATHNAME) == 0) return true;
    return false;
}

ImageFilter parse_image_filter(const image::Store& store, const std::vector<LocalImage>& all, const std::string& spec) {
    auto eq = spec.find('=');
    if (eq == std::string::npos || eq == 0)
        throw Error(EINVAL, "--filter \"" + spec + "\": want KEY=VALUE (reference, before, since, label, dangling)");
    const std::string key = spec.substr(0, eq), value = spec.substr(eq + 1);
    if (key == "reference") return [value](const LocalImage& i) { return reference_matches(value, i.name); };
    if (key == "before" || key == "since") {
        const LocalImage* ref = find_local_image(store, all, value);
        if (!ref) throw Error(ENOENT, value + ": image not known");
        const long long t = created_ns(*ref);
        if (key == "before") return [t](const LocalImage& i) { return created_ns(i) < t; };
        return [t](const LocalImage& i) { return created_ns(i) > t; };
    }
    if (key == "label") {
        auto eq2 = value.find('=');
        std::string lk = value.substr(0, eq2);
        std::optional<std::string> lv;
        if (eq2 != std::string::npos) lv = value.substr(eq2 + 1);
        return [lk, lv](const LocalImage& i) {
            const json* l = labels_of(i);
            if (!l || !l->contains(lk)) return false;
            const json& v = (*l)[lk];
            return !lv || (v.is_string() && v.get<std::string>() == *lv);
        };
    }
    if (key == "dangling") {
        // An image without a name: vitro's store keeps none (an image goes
        // with its last tag), so dangling=true lists nothing.
        const bool want = parse_bool_value(key, value);
        return [want](const LocalImage& i) { return i.name.empty() == want; };
    }
    throw Error(EINVAL, "unsupported image filter \"" + key + "\" (reference, before, since, label, dangling)");
}

}  // namespace vitro::cli
