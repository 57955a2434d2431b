// Importing images into the store from an OCI image layout directory or a
// docker-save tarball (manifest.json + config + layer tars). Every blob is
// verified on the way in; a failed import removes the blobs it added and
// records no tag.
#pragma once

#include <map>
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

// The name of an index entry, as podman and containerd read it: the
// io.containerd.image.name annotation (ctr images export, BuildKit, docker
// save), else org.opencontainers.image.ref.name (skopeo, podman save), each
// normalized as podman does (normalize_image_name: "app:1" ->
// "localhost/app:1"; a bare tag "1" -> "localhost/1:latest"). Empty when the
// entry has neither; an Error naming the annotation when it is no image name.
std::string oci_index_name(const std::map<std::string, std::string>& annotations);

// Loads every image an OCI layout's index lists, each tagged with its
// oci_index_name (entries without one are skipped, with a warning; none named
// is an error). With `name`, the index must list one image, tagged `name`.
// All or nothing: a failure leaves no tag and no blob behind.
std::vector<ImportedImage> load_oci_layout(const Store& store, const std::string& dir, const std::string& name = {});
// The same from an oci-archive (extracted under the store's tmp/ first).
std::vector<ImportedImage> load_oci_archive(const Store& store, const std::string& tarball,
                                            const std::string& name = {});

// `vitro load`: an OCI layout directory, an oci-archive, or a docker-archive.
// An archive with an index.json is read as an oci-archive first (podman's
// order), falling back to its manifest.json; the error names both failures.
std::vector<ImportedImage> load_images(const Store& store, const std::string& input, const std::string& name = {});

// Imports every image of a docker-save tarball (plain or compressed) as an OCI
// manifest + config; each RepoTags entry becomes a tag. When `name` is given it
// replaces the tags (the archive must then hold exactly one image).
// With `require_names`, an image without RepoTags (and no `name`) is an
// error before anything is stored; without, it is stored with an empty name.
std::vector<ImportedImage> import_docker_archive(const Store& store, const std::string& tarball,
                                                 const std::string& name = {}, bool require_names = false);

// A stored image: its manifest and config, read back and verified.
struct StoredImage {
    Descriptor descriptor;
    Manifest manifest;
    ImageConfig config;
};
// Throws ENOENT when `name` is not tagged in the store.
StoredImage load_image(const Store& store, const std::string& name);

}  // namespace vitro::image

namespace vitro::image {

// `vitro import`: a tarball of a root file system (plain or compressed, read
// from `fd` to EOF) becomes a one-layer image tagged `name`, its config from
// `changes` (Dockerfile instructions, "CMD ..." or "CMD=...": CMD, ENTRYPOINT,
// ENV, WORKDIR, LABEL, USER, EXPOSE, VOLUME, STOPSIGNAL) and `message` in its
// history. Returns the image ID (the config's digest). A bad change or a
// stream that is no tar archive stores nothing and tags nothing.
std::string import_rootfs_tarball(const Store& store, int fd, const std::string& name,
                                  const std::vector<std::string>& changes, const std::string& message);
// Applies one --change to an image config's "config" object. Throws Error
// naming the change.
void apply_config_change(nlohmann::json& config, const std::string& change);

}  // namespace vitro::image
