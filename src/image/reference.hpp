// Docker image references ("busybox", "localhost:5000/a/b:t",
// "quay.io/x/y@sha256:…"), parsed by distribution's grammar and normalized as
// docker and podman do: no registry means docker.io, a one-component docker.io
// repository gets "library/", neither tag nor digest means ":latest".
#pragma once

#include <string>
#include <string_view>

namespace vitro::image {

inline constexpr std::string_view kDockerHub = "docker.io";

struct Reference {
    std::string registry;    // "docker.io", "localhost:5000", "[::1]:5000"
    std::string repository;  // "library/busybox", "a/b"
    std::string tag;         // "latest" when neither tag nor digest was given
    std::string digest;      // "sha256:<hex>" or empty

    // registry/repository: "docker.io/library/busybox".
    std::string name() const;
    // The full normalized name: name[:tag][@digest]. Pulled images are tagged
    // with it in the store.
    std::string str() const;
    // What the manifest URL takes: the digest when there is one, else the tag.
    const std::string& tag_or_digest() const { return digest.empty() ? tag : digest; }
};

// Throws vitro::Error(EINVAL, "invalid reference format: \"REF\": <why>").
Reference parse_reference(std::string_view ref);

// A local image name with ":latest" appended when it carries neither a tag
// nor a digest ("busybox" -> "busybox:latest", "host:5000/a" -> "host:5000/a:latest").
std::string normalize_local_name(const std::string& name);

// A name from an archive, normalized as podman's NormalizeName does: a name
// without a registry is local ("app:1" -> "localhost/app:1", "team/app" ->
// "localhost/team/app:latest"), docker.io names get "library/", a tagged and
// digested name keeps only the digest. Throws like parse_reference.
std::string normalize_image_name(std::string_view name);

}  // namespace vitro::image
