// Pulling images into the store and pushing them out.
//
// pull: a registry reference ("busybox", "localhost:5000/a:t", "docker://…"),
// or a transport podman knows: "oci:DIR[:TAG]", "oci-archive:PATH[:TAG]",
// "docker-archive:PATH". From a registry, the layers are downloaded a few at a
// time (one connection each) straight into the store and unpacked while they
// download (LayerStream), so that a container starts at once afterwards; a
// blob and its layer land only once both verified. Blobs already in the store
// are not downloaded again (their layers are unpacked from the store). The tag is recorded last: a failed
// pull removes the blobs and layers it added and records no tag. (A pull that
// is killed keeps the verified blobs it has, and the next one starts from them.)
//
// push: a stored image's blobs (those the registry lacks) and its manifest,
// byte for byte, so the manifest digest stays the same.
#pragma once

#include <cstdio>
#include <functional>
#include <string>

#include "image/import.hpp"
#include "image/registry.hpp"

namespace vitro::image {

class Store;

struct ProgressEvent {
    enum class Kind { Message, Blob, Config, Manifest } kind = Kind::Message;
    std::string text;    // Message: "Trying to pull …"
    std::string digest;  // Blob, Config, Manifest
    bool skipped = false;  // the blob was already there
};
using ProgressFn = std::function<void(const ProgressEvent&)>;

// Podman's lines ("Copying blob 1a2b3c4d5e6f done"), one per event, to `out`.
// Safe to call from several threads.
ProgressFn progress_printer(FILE* out);

struct PullOptions {
    RegistryOptions registry;  // TLS, certificates, credentials (--creds)
    std::string authfile;      // where to look for credentials when none are given ("": the default)
    ProgressFn progress;       // may be empty
    int jobs = 6;              // layers downloaded at once (as containers/image: skopeo, podman)
    bool unpack = true;        // unpack the layers after download
};

// Throws vitro::Error naming the reference; nothing is tagged on failure.
ImportedImage pull(const Store& store, const std::string& ref, const PullOptions& opts);

struct PushOptions {
    RegistryOptions registry;
    std::string authfile;
    ProgressFn progress;
};

struct PushResult {
    std::string destination;  // the normalized reference pushed to
    std::string digest;       // the manifest digest
};

// Pushes the stored image `local_name` to `dest_ref` (empty: local_name
// itself, which must then name a registry).
PushResult push(const Store& store, const std::string& local_name, const std::string& dest_ref,
                const PushOptions& opts);

}  // namespace vitro::image
