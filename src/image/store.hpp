// The content store: an OCI image layout under a root directory
// (default /var/lib/vitro, or $VITRO_ROOT):
//   <root>/oci-layout, <root>/index.json, <root>/blobs/sha256/<hex>
//   <root>/tmp/      blobs being written (same filesystem: rename is atomic) and
//                    archives being extracted; each flock()ed by its writer,
//                    so that one a killed writer left is told apart and removed
//                    (remove_orphan_temps: by load, pull and system prune)
//   <root>/layers/   unpacked layers, see unpack.hpp
// Every blob is hashed while it is written; a digest mismatch leaves nothing.
// Tags ("name:tag") live in index.json as org.opencontainers.image.ref.name.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "image/digest.hpp"
#include "image/manifest.hpp"
#include "util/fd.hpp"

namespace vitro::image {

// $VITRO_ROOT when set, else /var/lib/vitro.
std::string default_root();

class Store;

// A blob being written: feed it bytes, then commit(). Destroyed without a
// commit (or when commit() throws), it leaves nothing behind.
class BlobWriter {
public:
    BlobWriter(BlobWriter&&) noexcept;
    BlobWriter& operator=(BlobWriter&&) = delete;
    ~BlobWriter();

    void write(const void* data, size_t len);
    void write(std::string_view s) { write(s.data(), s.size()); }
    int64_t size() const { return size_; }
    // Checks the bytes written against `expected` (digest and, when >= 0,
    // size) and syncs them to disk, as commit() does, but leaves the blob out
    // of the store: for a caller with more to check before the blob may land.
    // commit() then only moves it into place. No write() after.
    void verify(std::string_view expected_digest, int64_t expected_size = -1);
    // Verifies against `expected` (digest and, when >= 0, size) if given, then
    // moves the blob into place. Returns the digest; *added tells whether the
    // blob is new to the store (false when the same content was already there).
    std::string commit(std::string_view expected_digest = {}, int64_t expected_size = -1, bool* added = nullptr);

private:
    friend class Store;
    BlobWriter(const Store& store, std::string tmp_path, UniqueFd fd);
    const Store* store_;
    std::string tmp_;
    UniqueFd fd_;
    const std::string& digest();  // of the bytes written; finishes the hash
    void check_and_sync(std::string_view expected_digest, int64_t expected_size);
    Sha256 hash_;
    std::optional<std::string> digest_;
    int64_t size_ = 0;
    int64_t flushed_ = 0;  // bytes handed to writeback already
    bool synced_ = false;
    bool done_ = false;
};

// What remove_orphan_temps() removed.
struct TempSweep {
    size_t entries = 0;
    uint64_t bytes = 0;
};

struct TagEntry {
    std::string name;  // "name:tag"
    Descriptor manifest;
};

class Store {
public:
    // Creates the layout under `root` if missing.
    explicit Store(std::string root = default_root());

    const std::string& root() const { return root_; }
    std::string blob_path(std::string_view digest) const;
    std::string tmp_dir() const { return root_ + "/tmp"; }
    std::string layers_dir() const { return root_ + "/layers"; }

    BlobWriter begin_blob() const;
    // A new directory <tmp>/<prefix>-XXXXXX, locked as a blob being written
    // is: the lock lives in *owner; remove it before closing that.
    std::string make_temp_dir(const std::string& prefix, UniqueFd* owner) const;
    // Removes what no live writer owns from tmp/ (what a killed load or pull
    // left). Entries being written are never touched.
    TempSweep remove_orphan_temps() const;
    // Copies the stream from fd (to EOF) into the store.
    std::string put_blob(int fd, std::string_view expected_digest = {}, int64_t expected_size = -1) const;
    std::string put_blob_file(const std::string& path, std::string_view expected_digest = {},
                              int64_t expected_size = -1) const;
    std::string put_blob_bytes(std::string_view data, std::string_view expected_digest = {}) const;

    bool has_blob(std::string_view digest) const;
    UniqueFd open_blob(std::string_view digest) const;  // O_RDONLY; throws ENOENT
    // Reads a small blob (manifest, config) and re-verifies its digest.
    std::string read_blob(std::string_view digest, size_t max_size = 16 << 20) const;

    // Records name -> manifest descriptor in index.json (replacing an old entry).
    void tag(const std::string& name, const Descriptor& manifest) const;
    // The same for several names, all or none: one index.json write, as
    // tagging them one by one in order would leave it.
    void tag(const std::vector<TagEntry>& tags) const;
    bool untag(const std::string& name) const;
    std::optional<Descriptor> resolve(const std::string& name) const;
    // The tag a user's name refers to: as given, with ":latest", a short name
    // as a local image ("busybox" -> "localhost/busybox:latest"), or as the
    // full registry reference a pull records ("busybox" ->
    // "docker.io/library/busybox:latest"). nullopt when none is tagged.
    // Also an image ID, as podman takes it: the config digest ("sha256:"
    // optional), or any unique prefix of it; a name wins over an ID prefix.
    // Throws EINVAL when a prefix matches more than one image.
    std::optional<std::string> find_name(const std::string& name) const;
    // find_name without IDs: the tag a name refers to.
    std::optional<std::string> find_tag_by_name(const std::string& name) const;
    // The tags of the one image whose ID `ref` is or begins ("sha256:"
    // optional; hex only); empty when none. Throws EINVAL naming `ref` when
    // it is the prefix of several images' IDs.
    std::vector<std::string> tags_by_id(const std::string& ref) const;
    // A tag's image ID: its config digest ("sha256:<hex>").
    std::string image_id(const Descriptor& manifest) const;
    std::vector<TagEntry> tags() const;

private:
    std::string root_;
};

}  // namespace vitro::image
