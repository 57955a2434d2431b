#include "image/reference.hpp"

#include <cctype>

#include "image/digest.hpp"
#include "util/error.hpp"

namespace vitro::image {

namespace {

constexpr size_t kMaxNameLength = 255;
constexpr size_t kMaxTagLength = 128;

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
bool valid_path_component(std::string_view c) {
    size_t i = 0;
    auto run = [&] {
        size_t start = i;
        while (i < c.size() && is_lower_alnum(c[i])) ++i;
        return i > start;
    };
    if (!run()) return false;
    while (i < c.size()) {
        if (c[i] == '.') {
            ++i;
        } else if (c[i] == '_') {
            ++i;
            if (i < c.size() && c[i] == '_') ++i;
        } else if (c[i] == '-') {
            while (i < c.size() && c[i] == '-') ++i;
        } else {
            return false;
        }
        if (!run()) return false;
    }
    return true;
}

// domain-component := [A-Za-z0-9] | [A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]
bool valid_domain_component(std::string_view c) {
    if (c.empty() || !is_alnum(c.front()) || !is_alnum(c.back())) return false;
    for (char ch : c)
        if (!is_alnum(ch) && ch != '-') return false;
    return true;
}

// host[:port], host being dotted domain components or a bracketed IPv6 address.
bool valid_domain(std::string_view d) {
    std::string_view host = d, port;
    if (!d.empty() && d.front() == '[') {
        size_t close = d.find(']');
        if (close == std::string_view::npos || close < 3) return false;
        for (char ch : d.substr(1, close - 1))
            if (!std::isxdigit(static_cast<unsigned char>(ch)) && ch != ':' && ch != '.') return false;
        host = {};
        std::string_view rest = d.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return false;
            port = rest.substr(1);
            if (port.empty()) return false;
        }
    } else {
        size_t colon = d.find(':');
        if (colon != std::string_view::npos) {
            host = d.substr(0, colon);
            port = d.substr(colon + 1);
            if (port.empty()) return false;
        }
        size_t start = 0;
        for (;;) {
            size_t dot = host.find('.', start);
            if (!valid_domain_component(host.substr(start, dot == std::string_view::npos ? dot : dot - start)))
                return false;
            if (dot == std::string_view::npos) break;
            start = dot + 1;
        }
    }
    for (char ch : port)
        if (!std::isdigit(static_cast<unsigned char>(ch))) return false;
    return true;
}

// tag := [\w][\w.-]{0,127}
bool valid_tag(std::string_view t) {
    if (t.empty() || t.size() > kMaxTagLength) return false;
    auto word = [](char c) { return is_alnum(c) || c == '_'; };
    if (!word(t.front())) return false;
    for (char c : t)
        if (!word(c) && c != '.' && c != '-') return false;
    return true;
}

bool is_hex64(std::string_view s) {
    if (s.size() != 64) return false;
    for (char c : s)
        if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
    return true;
}

// A host by its form: a dot, a port, or "localhost" (what podman's
// NormalizeName takes for a registry).
bool looks_like_host(std::string_view first) {
    return first == "localhost" || first.find_first_of(".:") != std::string_view::npos;
}

// The first component names a registry when it looks like a host, or has
// upper case (which a repository cannot have), as docker's parser reads it.
bool looks_like_registry(std::string_view first) {
    if (looks_like_host(first)) return true;
    for (char c : first)
        if (std::isupper(static_cast<unsigned char>(c))) return true;
    return false;
}

}  // namespace

std::string Reference::name() const { return registry + "/" + repository; }

std::string Reference::str() const {
    std::string s = name();
    if (!tag.empty()) s += ":" + tag;
    if (!digest.empty()) s += "@" + digest;
    return s;
}

Reference parse_reference(std::string_view ref) {
    auto fail = [&](const std::string& why) -> Error {
        return Error(EINVAL, "invalid reference format: \"" + std::string(ref) + "\": " + why);
    };
    if (ref.empty()) throw fail("empty reference");
    if (is_hex64(ref)) throw fail("a 64-character hexadecimal string is an image ID, not a reference");

    Reference r;
    std::string_view rest = ref;
    if (size_t at = rest.find('@'); at != std::string_view::npos) {
        std::string_view dig = rest.substr(at + 1);
        if (dig.substr(0, 7) != "sha256:") throw fail("digest \"" + std::string(dig) + "\": only sha256 is supported");
        if (!is_valid_digest(dig)) throw fail("digest \"" + std::string(dig) + "\": expected sha256: and 64 lowercase hex digits");
        r.digest = dig;
        rest = rest.substr(0, at);
    }
    size_t last_slash = rest.rfind('/');
    size_t colon = rest.rfind(':');
    if (colon != std::string_view::npos && (last_slash == std::string_view::npos || colon > last_slash)) {
        std::string_view tag = rest.substr(colon + 1);
        if (!valid_tag(tag))
            throw fail("tag \"" + std::string(tag) + "\": expected letters, digits, '_', '.', '-' (at most 128, not starting with '.' or '-')");
        r.tag = tag;
        rest = rest.substr(0, colon);
    }
    if (rest.empty()) throw fail("empty repository name");
    if (rest.size() > kMaxNameLength) throw fail("name longer than 255 characters");

    std::string_view path = rest;
    size_t slash = rest.find('/');
    if (slash != std::string_view::npos && looks_like_registry(rest.substr(0, slash))) {
        std::string_view domain = rest.substr(0, slash);
        if (!valid_domain(domain)) throw fail("registry \"" + std::string(domain) + "\": not a valid host[:port]");
        r.registry = domain;
        path = rest.substr(slash + 1);
    } else {
        r.registry = kDockerHub;
    }
    if (r.registry == "index.docker.io") r.registry = kDockerHub;

    size_t start = 0;
    for (;;) {
        size_t s = path.find('/', start);
        std::string_view comp = path.substr(start, s == std::string_view::npos ? s : s - start);
        if (!valid_path_component(comp)) {
            std::string lower(comp);
            for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            if (lower != comp && valid_path_component(lower)) throw fail("repository name must be lowercase");
            throw fail("repository path component \"" + std::string(comp) +
                       "\": expected lowercase letters and digits, separated by '.', '_', '__' or '-'");
        }
        if (s == std::string_view::npos) break;
        start = s + 1;
    }
    r.repository = path;
    if (r.registry == kDockerHub && r.repository.find('/') == std::string::npos)
        r.repository = "library/" + r.repository;
    if (r.tag.empty() && r.digest.empty()) r.tag = "latest";
    return r;
}

std::string normalize_local_name(const std::string& name) {
    if (name.find('@') != std::string::npos) return name;
    size_t slash = name.rfind('/');
    size_t colon = name.rfind(':');
    if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) return name;
    return name + ":latest";
}

std::string normalize_image_name(std::string_view name) {
    size_t slash = name.find('/');
    std::string_view first = slash == std::string_view::npos ? std::string_view() : name.substr(0, slash);
    // Not looks_like_registry: upper case is no registry here ("UPPER/x" is
    // refused, as podman refuses it).
    Reference r = parse_reference(looks_like_host(first) ? std::string(name) : "localhost/" + std::string(name));
    if (!r.digest.empty()) r.tag.clear();
    return r.str();
}

}  // namespace vitro::image
