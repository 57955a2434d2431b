// Registry credentials in podman's (and docker's) auth.json:
//   {"auths": {"HOST[:PORT]": {"auth": "base64(user:password)"}}}
// Default path: $REGISTRY_AUTH_FILE, else /run/containers/0/auth.json for root
// (podman's own default, so `vitro login` and `podman login` share logins),
// else $XDG_RUNTIME_DIR/containers/auth.json. Keys vitro does not know
// (credHelpers, other hosts' fields) are kept as they were.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace vitro::image {

struct Credentials {
    std::string username, password;
};

// "user:pass" (as --creds takes it; the password may contain ':').
Credentials parse_credentials(const std::string& user_colon_pass);

class AuthFile {
public:
    static std::string default_path();

    // Reads `path` when it exists (an empty file set otherwise).
    explicit AuthFile(std::string path = default_path());

    const std::string& path() const { return path_; }
    // The entry for a registry host ("localhost:5000"; "docker.io" also finds
    // docker's "https://index.docker.io/v1/"). Throws on a malformed entry.
    std::optional<Credentials> get(const std::string& registry) const;
    void set(const std::string& registry, const Credentials& c);
    bool remove(const std::string& registry);  // false when there was no entry
    void clear();
    // Writes the file atomically with mode 0600 (parent made 0700 if missing).
    void save() const;

private:
    std::string path_;
    nlohmann::json doc_;
};

// Credentials for `registry`: from `authfile` when given (empty: the default
// path, then docker's $DOCKER_CONFIG/config.json or ~/.docker/config.json).
std::optional<Credentials> find_credentials(const std::string& registry, const std::string& authfile = {});

std::string base64_encode(std::string_view data);
// Throws vitro::Error(EINVAL) on invalid input.
std::string base64_decode(std::string_view data);

}  // namespace vitro::image
