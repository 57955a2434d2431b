// Named volumes (podman's "local" driver): <root>/volumes/NAME/ holds
// _data (what containers mount), volume.json (labels, options, creation
// time; absent for volumes made by a `-v NAME:/path` before volume.json
// existed) and, until the first container using it fills it from its
// image, the copy-up mark. `volume create` and `run -v NAME:/path` make
// the same thing (VolumeStore::create).
//
// Concurrency: a volume is in use while a container record names it (its
// config "volumes"). A container is created under the shared volume lock
// (VolumeStore::lock) from the moment its volumes are looked up or made
// until its record is in the state database; `volume rm` and `prune` check
// for users and remove under the exclusive one, so no volume goes from
// under a container being created, and no container is recorded on a
// volume being removed.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/state_store.hpp"
#include "util/fd.hpp"

namespace vitro::engine {

// A volume name that exists already (volume create without --ignore).
class VolumeExistsError : public ConflictError {
public:
    using ConflictError::ConflictError;
};
// A volume some container uses (volume rm without -f): podman's exit 2.
class VolumeInUseError : public ConflictError {
public:
    using ConflictError::ConflictError;
};

struct VolumeCreateRequest {
    std::string name;  // empty: a random 64-hex name
    std::map<std::string, std::string> labels;
    std::vector<std::string> options;  // -o KEY[=VALUE]: uid, gid, copy, nocopy
    bool ignore_existing = false;      // --ignore: the existing volume is the result
};

struct VolumeInfo {
    std::string name, driver = "local", mountpoint, created_at;
    std::map<std::string, std::string> labels, options;
    bool needs_copy_up = false;
    std::vector<std::string> users;  // names of the containers recorded as using it
};
// podman's `volume inspect` object (Name, Driver, Mountpoint, CreatedAt, Labels, Scope, Options, ...).
nlohmann::json to_json(const VolumeInfo& v);

// A named volume new to the host, and where its container sees it: filled
// from the image's content there before its first use (podman's copy-up).
struct VolumeCopyUp {
    std::string volume_dir, destination;
};

class VolumeStore {
public:
    explicit VolumeStore(const std::string& root);
    // Held while containers are created (shared) or volumes checked for
    // users and removed (exclusive); see the top of this file.
    UniqueFd lock(bool shared) const;
    std::string dir(const std::string& name) const { return dir_ + "/" + name; }
    std::string data_dir(const std::string& name) const { return dir(name) + "/_data"; }
    bool exists(const std::string& name) const;
    // Makes the volume whole (data dir, metadata, copy-up mark) under a
    // temporary name, then renames it into place. Throws Error (EINVAL) for
    // a bad name or option, VolumeExistsError when it exists (unless
    // ignore_existing). Returns its name.
    std::string create(const VolumeCreateRequest& req) const;
    // The volume `-v NAME:/path` mounts: made when missing; its copy-up, if
    // it still needs one, added to `copy_ups`. Returns the data dir.
    std::string use(const std::string& name, const std::string& destination, std::vector<VolumeCopyUp>& copy_ups) const;
    // NotFoundError "no volume with name \"X\" found" when missing.
    VolumeInfo get(const std::string& name) const;
    // Every volume, sorted by name (users not filled).
    std::vector<VolumeInfo> list() const;
    // Removes the volume's directory (the caller checked its users).
    void remove(const std::string& name) const;
    // Removes what creations and removals cut short (a kill -9) left under
    // their temporary names; only under the exclusive lock, which no
    // creation in flight lets go of.
    void remove_leftovers() const;

private:
    std::string dir_;
};

// Fills a new volume from the image's content at its destination (once: the
// one that removes the mark copies; a volume filled meanwhile is left as it is).
void copy_up_volume(const std::string& rootfs, const VolumeCopyUp& v);

// The names of the volumes a container uses: its record's config "volumes",
// or for a record from before that was kept, its bundle's mounts.
std::vector<std::string> volumes_of(const ContainerRecord& c, const std::string& root);
// Volume name -> the containers using it.
std::map<std::string, std::vector<ContainerRecord>> volume_users(const std::vector<ContainerRecord>& cs,
                                                                 const std::string& root);

}  // namespace vitro::engine
