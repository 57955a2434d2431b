// Exporting a stored image (`vitro save`): an oci-archive (a tar of an OCI
// image layout: blobs byte for byte, so digests are kept) or a docker-archive
// (manifest.json + config + one file per layer, what `docker load` reads).
// Written to a temp file beside the target and renamed: a failed save leaves
// nothing.
#pragma once

#include <string>

namespace vitro::image {

class Store;

enum class ArchiveFormat { OciArchive, DockerArchive };
// "oci-archive" or "docker-archive"; throws Error naming the value.
ArchiveFormat parse_archive_format(const std::string& name);

// `name` is the stored tag (Store::find_name); the archive records it as the
// image's name (org.opencontainers.image.ref.name / RepoTags).
void save_image(const Store& store, const std::string& name, const std::string& path, ArchiveFormat format);

}  // namespace vitro::image
