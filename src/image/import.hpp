// Importing images into the store from an OCI image layout directory or a
// docker-save tarball (manifest.json + config + layer tars). Every blob is
// verified on the way in; a failed import removes the blobs it added and
// records no tag.
#pragma once

#include <string>
#include <vector>

#include "image/manifest.hpp"

namespace vitro::image {

class Store;

struct ImportedImage {
    std::string name;     // the tag recorded in the store
    Descriptor manifest;  // the (single-platform) manifest it points to
};

// Imports the manifest tagged `ref` (org.opencontainers.image.ref.name) from the
// layout at `dir`, or its only manifest when ref is empty; an index there is
// narrowed to linux/amd64. Tagged `name` in the store (ref when name is empty).
ImportedImage import_oci_layout(const Store& store, const std::string& dir, const std::string& ref,
                                const std::string& name = {});

// Imports from an oci-archive (a tarball of an OCI layout, possibly compressed):
// extracted with the hostile-path-safe layer unpacker into a temp dir under
// the store, then imported as import_oci_layout does.
ImportedImage import_oci_archive(const Store& store, const std::string& tarball, const std::string& ref,
                                 const std::string& name = {});

// Imports every image of a docker-save tarball (plain or compressed) as an OCI
// manifest + config; each RepoTags entry becomes a tag. When `name` is given it
// replaces the tags (the archive must then hold exactly one image).
std::vector<ImportedImage> import_docker_archive(const Store& store, const std::string& tarball,
                                                 const std::string& name = {});

// A stored image: its manifest and config, read back and verified.
struct StoredImage {
    Descriptor descriptor;
    Manifest manifest;
    ImageConfig config;
};
// Throws ENOENT when `name` is not tagged in the store.
StoredImage load_image(const Store& store, const std::string& name);

}  // namespace vitro::image
