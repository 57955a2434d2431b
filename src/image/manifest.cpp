#include "image/manifest.hpp"

#include "image/digest.hpp"
#include "util/error.hpp"

namespace vitro::image {

using nlohmann::json;

namespace {

[[noreturn]] void field_error(std::string_view what, std::string_view field, std::string_view problem) {
    throw Error(EINVAL, std::string(what) + ": field " + std::string(field) + ": " + std::string(problem));
}

json parse_json(std::string_view text, std::string_view what) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded()) throw Error(EINVAL, std::string(what) + ": not valid JSON");
    if (!j.is_object()) throw Error(EINVAL, std::string(what) + ": expected a JSON object");
    return j;
}

std::string get_string(const json& j, const std::string& key, std::string_view what, const std::string& path,
                       bool required) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
        if (required) field_error(what, path, "missing");
        return {};
    }
    if (!it->is_string()) field_error(what, path, "expected a string");
    return it->get<std::string>();
}

std::vector<std::string> get_strings(const json& j, const std::string& key, std::string_view what,
                                     const std::string& path) {
    std::vector<std::string> out;
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return out;
    if (!it->is_array()) field_error(what, path, "expected an array of strings");
    for (size_t i = 0; i < it->size(); ++i) {
        if (!(*it)[i].is_string()) field_error(what, path + "[" + std::to_string(i) + "]", "expected a string");
        out.push_back((*it)[i].get<std::string>());
    }
    return out;
}

std::map<std::string, std::string> get_string_map(const json& j, const std::string& key, std::string_view what,
                                                  const std::string& path) {
    std::map<std::string, std::string> out;
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return out;
    if (!it->is_object()) field_error(what, path, "expected an object of strings");
    for (auto& [k, v] : it->items()) {
        if (!v.is_string()) field_error(what, path + "." + k, "expected a string");
        out[k] = v.get<std::string>();
    }
    return out;
}

int get_schema_version(const json& j, std::string_view what) {
    auto it = j.find("schemaVersion");
    if (it == j.end()) field_error(what, "schemaVersion", "missing");
    if (!it->is_number_integer()) field_error(what, "schemaVersion", "expected an integer");
    int v = it->get<int>();
    if (v != 2) field_error(what, "schemaVersion", "expected 2, got " + std::to_string(v));
    return v;
}

Descriptor descriptor_at(const json& j, std::string_view what, const std::string& path) {
    if (!j.is_object()) field_error(what, path, "expected an object");
    Descriptor d;
    d.media_type = get_string(j, "mediaType", what, path + ".mediaType", false);
    d.digest = get_string(j, "digest", what, path + ".digest", true);
    if (!is_valid_digest(d.digest)) field_error(what, path + ".digest", "expected sha256:<64 lowercase hex digits>");
    auto sz = j.find("size");
    if (sz == j.end()) field_error(what, path + ".size", "missing");
    if (!sz->is_number_integer() || sz->get<int64_t>() < 0)
        field_error(what, path + ".size", "expected a non-negative integer");
    d.size = sz->get<int64_t>();
    d.annotations = get_string_map(j, "annotations", what, path + ".annotations");
    auto p = j.find("platform");
    if (p != j.end() && !p->is_null()) {
        if (!p->is_object()) field_error(what, path + ".platform", "expected an object");
        Platform pl;
        pl.os = get_string(*p, "os", what, path + ".platform.os", true);
        pl.architecture = get_string(*p, "architecture", what, path + ".platform.architecture", true);
        pl.variant = get_string(*p, "variant", what, path + ".platform.variant", false);
        d.platform = pl;
    }
    return d;
}

}  // namespace

bool is_index_media_type(std::string_view mt) {
    return mt == media::kOciIndex || mt == media::kDockerManifestList;
}
bool is_manifest_media_type(std::string_view mt) {
    return mt == media::kOciManifest || mt == media::kDockerManifest;
}
bool is_layer_media_type(std::string_view mt) {
    return mt == media::kOciLayer || mt == media::kOciLayerGzip || mt == media::kOciLayerZstd ||
           mt == media::kDockerLayer || mt == media::kDockerLayerGzip || mt == media::kDockerLayerForeign ||
           mt == "application/vnd.oci.image.layer.nondistributable.v1.tar" ||
           mt == "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" ||
           mt == "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
}

Descriptor parse_descriptor(const json& j, std::string_view what) { return descriptor_at(j, what, "descriptor"); }

Index parse_index(std::string_view text, std::string_view what) {
    json j = parse_json(text, what);
    Index idx;
    idx.schema_version = get_schema_version(j, what);
    idx.media_type = get_string(j, "mediaType", what, "mediaType", false);
    if (!idx.media_type.empty() && !is_index_media_type(idx.media_type))
        field_error(what, "mediaType", "unexpected media type \"" + idx.media_type + "\" for an index");
    auto m = j.find("manifests");
    if (m == j.end()) field_error(what, "manifests", "missing");
    if (!m->is_array()) field_error(what, "manifests", "expected an array");
    for (size_t i = 0; i < m->size(); ++i)
        idx.manifests.push_back(descriptor_at((*m)[i], what, "manifests[" + std::to_string(i) + "]"));
    idx.annotations = get_string_map(j, "annotations", what, "annotations");
    return idx;
}

Manifest parse_manifest(std::string_view text, std::string_view what) {
    json j = parse_json(text, what);
    Manifest m;
    m.schema_version = get_schema_version(j, what);
    m.media_type = get_string(j, "mediaType", what, "mediaType", false);
    if (!m.media_type.empty() && !is_manifest_media_type(m.media_type))
        field_error(what, "mediaType", "unexpected media type \"" + m.media_type + "\" for a manifest");
    auto c = j.find("config");
    if (c == j.end()) field_error(what, "config", "missing");
    m.config = descriptor_at(*c, what, "config");
    auto l = j.find("layers");
    if (l == j.end()) field_error(what, "layers", "missing");
    if (!l->is_array()) field_error(what, "layers", "expected an array");
    for (size_t i = 0; i < l->size(); ++i) {
        std::string path = "layers[" + std::to_string(i) + "]";
        Descriptor d = descriptor_at((*l)[i], what, path);
        if (!is_layer_media_type(d.media_type))
            field_error(what, path + ".mediaType", "unsupported layer media type \"" + d.media_type + "\"");
        m.layers.push_back(std::move(d));
    }
    m.annotations = get_string_map(j, "annotations", what, "annotations");
    return m;
}

ImageConfig parse_config(std::string_view text, std::string_view what) {
    json j = parse_json(text, what);
    ImageConfig c;
    c.architecture = get_string(j, "architecture", what, "architecture", false);
    c.os = get_string(j, "os", what, "os", false);
    auto cfg = j.find("config");
    if (cfg != j.end() && !cfg->is_null()) {
        if (!cfg->is_object()) field_error(what, "config", "expected an object");
        c.user = get_string(*cfg, "User", what, "config.User", false);
        c.working_dir = get_string(*cfg, "WorkingDir", what, "config.WorkingDir", false);
        c.env = get_strings(*cfg, "Env", what, "config.Env");
        c.entrypoint = get_strings(*cfg, "Entrypoint", what, "config.Entrypoint");
        c.cmd = get_strings(*cfg, "Cmd", what, "config.Cmd");
        c.labels = get_string_map(*cfg, "Labels", what, "config.Labels");
    }
    auto rootfs = j.find("rootfs");
    if (rootfs == j.end()) field_error(what, "rootfs", "missing");
    if (!rootfs->is_object()) field_error(what, "rootfs", "expected an object");
    std::string type = get_string(*rootfs, "type", what, "rootfs.type", true);
    if (type != "layers") field_error(what, "rootfs.type", "expected \"layers\", got \"" + type + "\"");
    auto ids = rootfs->find("diff_ids");
    if (ids == rootfs->end()) field_error(what, "rootfs.diff_ids", "missing");
    c.diff_ids = get_strings(*rootfs, "diff_ids", what, "rootfs.diff_ids");
    for (size_t i = 0; i < c.diff_ids.size(); ++i)
        if (!is_valid_digest(c.diff_ids[i]))
            field_error(what, "rootfs.diff_ids[" + std::to_string(i) + "]", "expected sha256:<64 lowercase hex digits>");
    c.raw = std::move(j);
    return c;
}

json to_json(const Descriptor& d) {
    json j = {{"mediaType", d.media_type}, {"digest", d.digest}, {"size", d.size}};
    if (!d.annotations.empty()) j["annotations"] = d.annotations;
    if (d.platform) {
        json p = {{"os", d.platform->os}, {"architecture", d.platform->architecture}};
        if (!d.platform->variant.empty()) p["variant"] = d.platform->variant;
        j["platform"] = p;
    }
    return j;
}

json to_json(const Index& i) {
    json j = {{"schemaVersion", i.schema_version}};
    if (!i.media_type.empty()) j["mediaType"] = i.media_type;
    j["manifests"] = json::array();
    for (auto& d : i.manifests) j["manifests"].push_back(to_json(d));
    if (!i.annotations.empty()) j["annotations"] = i.annotations;
    return j;
}

json to_json(const Manifest& m) {
    json j = {{"schemaVersion", m.schema_version}};
    if (!m.media_type.empty()) j["mediaType"] = m.media_type;
    j["config"] = to_json(m.config);
    j["layers"] = json::array();
    for (auto& d : m.layers) j["layers"].push_back(to_json(d));
    if (!m.annotations.empty()) j["annotations"] = m.annotations;
    return j;
}

const Descriptor& select_platform(const Index& index, std::string_view os, std::string_view arch) {
    for (auto& d : index.manifests)
        if (d.platform && d.platform->os == os && d.platform->architecture == arch &&
            (d.media_type.empty() || is_manifest_media_type(d.media_type)))
            return d;
    if (index.manifests.size() == 1 && !index.manifests[0].platform) return index.manifests[0];
    std::string have;
    for (auto& d : index.manifests)
        if (d.platform) have += (have.empty() ? "" : ", ") + d.platform->os + "/" + d.platform->architecture;
    throw Error(ENOENT, "image index: no manifest for " + std::string(os) + "/" + std::string(arch) +
                            (have.empty() ? std::string() : " (has " + have + ")"));
}

}  // namespace vitro::image
