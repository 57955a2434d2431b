#include "image/auth_file.hpp"

#include <openssl/evp.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "util/error.hpp"
#include "util/file.hpp"

namespace vitro::image {

using nlohmann::json;

namespace {

std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string();
}

std::string parent_dir(const std::string& path) {
    size_t slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

// The keys a registry may be stored under: "host", docker's URL forms.
std::vector<std::string> keys_for(const std::string& registry) {
    std::vector<std::string> keys{registry, "https://" + registry, "http://" + registry};
    if (registry == "docker.io") {
        keys.push_back("https://index.docker.io/v1/");
        keys.push_back("index.docker.io");
    }
    return keys;
}

json read_doc(const std::string& path) {
    if (!path_exists(path)) return json::object();
    std::string text = read_file(path);
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) return json::object();
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw Error(EINVAL, path + ": not a JSON object");
    return j;
}

std::optional<Credentials> lookup(const json& doc, const std::string& path, const std::string& registry) {
    auto auths = doc.find("auths");
    if (auths == doc.end() || !auths->is_object()) return std::nullopt;
    for (auto& key : keys_for(registry)) {
        auto it = auths->find(key);
        if (it == auths->end()) continue;
        auto a = it->is_object() ? it->find("auth") : it->end();
        if (a == it->end() || !a->is_string() || a->get<std::string>().empty()) continue;
        try {
            return parse_credentials(base64_decode(a->get<std::string>()));
        } catch (const Error& e) {
            throw e.wrap(path + ": field auths." + key + ".auth");
        }
    }
    return std::nullopt;
}

}  // namespace

Credentials parse_credentials(const std::string& s) {
    size_t colon = s.find(':');
    if (colon == std::string::npos || colon == 0)
        throw Error(EINVAL, "credentials: expected user:password");
    return {s.substr(0, colon), s.substr(colon + 1)};
}

std::string AuthFile::default_path() {
    if (std::string p = env("REGISTRY_AUTH_FILE"); !p.empty()) return p;
    if (::geteuid() == 0) return "/run/containers/0/auth.json";
    if (std::string xdg = env("XDG_RUNTIME_DIR"); !xdg.empty()) return xdg + "/containers/auth.json";
    return "/run/user/" + std::to_string(::geteuid()) + "/containers/auth.json";
}

AuthFile::AuthFile(std::string path) : path_(std::move(path)), doc_(read_doc(path_)) {}

std::optional<Credentials> AuthFile::get(const std::string& registry) const { return lookup(doc_, path_, registry); }

void AuthFile::set(const std::string& registry, const Credentials& c) {
    if (!doc_.contains("auths") || !doc_["auths"].is_object()) doc_["auths"] = json::object();
    for (auto& key : keys_for(registry)) doc_["auths"].erase(key);
    doc_["auths"][registry] = json{{"auth", base64_encode(c.username + ":" + c.password)}};
}

bool AuthFile::remove(const std::string& registry) {
    auto auths = doc_.find("auths");
    if (auths == doc_.end() || !auths->is_object()) return false;
    bool found = false;
    for (auto& key : keys_for(registry)) found |= auths->erase(key) > 0;
    return found;
}

void AuthFile::clear() { doc_["auths"] = json::object(); }

void AuthFile::save() const {
    make_dirs(parent_dir(path_), 0700);
    write_file_atomic(path_, doc_.dump(1, '\t') + "\n", 0600);
}

std::optional<Credentials> find_credentials(const std::string& registry, const std::string& authfile) {
    if (!authfile.empty()) return AuthFile(authfile).get(registry);
    if (auto c = AuthFile().get(registry)) return c;
    std::string docker_dir = env("DOCKER_CONFIG");
    if (docker_dir.empty() && !env("HOME").empty()) docker_dir = env("HOME") + "/.docker";
    if (docker_dir.empty()) return std::nullopt;
    std::string path = docker_dir + "/config.json";
    try {
        return lookup(read_doc(path), path, registry);
    } catch (const Error&) {
        return std::nullopt;  // docker's file is a fallback only: never fail a pull over it
    }
}

std::string base64_encode(std::string_view data) {
    std::string out(4 * ((data.size() + 2) / 3), '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

std::string base64_decode(std::string_view in) {
    std::string s(in);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    if (s.size() % 4 != 0) throw Error(EINVAL, "invalid base64: length not a multiple of 4");
    std::string out(3 * (s.size() / 4), '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
    if (n < 0) throw Error(EINVAL, "invalid base64");
    size_t pad = 0;
    if (!s.empty() && s.back() == '=') ++pad;
    if (s.size() > 1 && s[s.size() - 2] == '=') ++pad;
    out.resize(static_cast<size_t>(n) - pad);
    return out;
}

}  // namespace vitro::image
