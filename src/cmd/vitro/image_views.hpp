// What the image commands show, in podman's shapes: `image inspect`'s JSON,
// `history`'s rows, and the `images` list's filters and references.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "image/import.hpp"

namespace vitro::image {
class Store;
}

namespace vitro::cli {

// One tag of the store with its image read back (an image with two tags is
// two entries with the same id).
struct LocalImage {
    std::string name;  // "registry/repo:tag"
    std::string id;    // config digest, "sha256:<hex>"
    image::StoredImage img;
};
// Every tag of the store, in index order; a tag whose image cannot be read
// is left out with a warning (it cannot be shown, and must not hide the rest).
std::vector<LocalImage> local_images(const image::Store& store);
// The entry `ref` names (a name or an ID, as Store::find_name takes it);
// nullptr when none.
const LocalImage* find_local_image(const image::Store& store, const std::vector<LocalImage>& all,
                                   const std::string& ref);

// The bytes an image takes in the store: manifest, config and layer blobs
// (layers as stored: compressed when pulled so).
int64_t image_size(const image::StoredImage& img);
// podman's sizes for images and history: three significant digits, powers
// of 1000, a space before the unit ("0 B", "2.05 kB", "2.14 MB").
std::string podman_size(uint64_t bytes);

// podman's `image inspect` object for `img`.
nlohmann::json image_inspect_json(const std::vector<LocalImage>& all, const LocalImage& img);

// podman's `history` entries for `img`, newest first, as its JSON names
// them: id, created, CreatedBy, size, comment. The newest entry carries the
// image's ID; an older one the ID of a local image whose layers are exactly
// the layers below it (each ID once), else "<missing>". An empty_layer entry
// has size 0; another the size of the layer it made.
nlohmann::json image_history_json(const std::vector<LocalImage>& all, const LocalImage& img);

// podman's reference match: `pattern` (a glob, "*" stops at "/") against the
// name, its path without the registry, its last component, each with and
// without the tag ("busybox", "localhost/*", "web:1" all match "localhost/web:1").
bool reference_matches(const std::string& pattern, const std::string& name);

// `images --filter KEY=VALUE`: reference=, before=, since= (an image by name
// or ID), label=KEY or label=KEY=VALUE, dangling=true|false. Throws
// Error(EINVAL) naming an unknown filter or a bad value.
using ImageFilter = std::function<bool(const LocalImage&)>;
ImageFilter parse_image_filter(const image::Store& store, const std::vector<LocalImage>& all, const std::string& spec);

// RFC 3339 time as nanoseconds since the epoch (fraction and zone offset
// honoured); nullopt when `t` is none.
std::optional<long long> parse_rfc3339_ns(const std::string& t);

}  // namespace vitro::cli
