// OCI image-spec models (index, manifest, config) and Docker schema 2 media
// types: parsed from untrusted JSON with errors that name the field.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace vitro::image {

namespace media {
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
// Uncompressed: what containerd records for a docker-archive's plain tar layers
// (ctr images import/export, docker save since 25).
inline constexpr std::string_view kDockerLayer = "application/vnd.docker.image.rootfs.diff.tar";
inline constexpr std::string_view kDockerLayerForeign = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
}  // namespace media

inline constexpr std::string_view kRefNameAnnotation = "org.opencontainers.image.ref.name";
// The full image name containerd (ctr images export) and BuildKit record in an index.
inline constexpr std::string_view kContainerdImageNameAnnotation = "io.containerd.image.name";

bool is_index_media_type(std::string_view mt);
bool is_manifest_media_type(std::string_view mt);
bool is_layer_media_type(std::string_view mt);

struct Platform {
    std::string os, architecture, variant;
};

struct Descriptor {
    std::string media_type;
    std::string digest;  // validated: sha256:<hex>
    int64_t size = 0;
    std::map<std::string, std::string> annotations;
    std::optional<Platform> platform;
};

struct Index {
    int schema_version = 2;
    std::string media_type;
    std::vector<Descriptor> manifests;
    std::map<std::string, std::string> annotations;
};

struct Manifest {
    int schema_version = 2;
    std::string media_type;
    Descriptor config;
    std::vector<Descriptor> layers;
    std::map<std::string, std::string> annotations;
};

// The runtime-relevant part of an image config; `raw` keeps the whole document.
struct ImageConfig {
    std::string architecture, os;
    std::string user, working_dir;
    std::vector<std::string> env, entrypoint, cmd;
    std::map<std::string, std::string> labels;
    std::vector<std::string> diff_ids;  // rootfs.diff_ids, validated
    nlohmann::json raw;
};

// Each throws vitro::Error(EINVAL, "<what>: field <path>: <problem>").
Index parse_index(std::string_view text, std::string_view what = "image index");
Manifest parse_manifest(std::string_view text, std::string_view what = "image manifest");
ImageConfig parse_config(std::string_view text, std::string_view what = "image config");
Descriptor parse_descriptor(const nlohmann::json& j, std::string_view what);

nlohmann::json to_json(const Descriptor& d);
nlohmann::json to_json(const Index& i);
nlohmann::json to_json(const Manifest& m);

// The manifest descriptor for os/arch (default linux/amd64) in an index.
// Entries without a platform are taken only when nothing matches and there is
// exactly one manifest. Throws when none fits.
const Descriptor& select_platform(const Index& index, std::string_view os = "linux",
                                  std::string_view arch = "amd64");

}  // namespace vitro::image
