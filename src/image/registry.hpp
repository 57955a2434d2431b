// A client for the distribution (registry v2) HTTP API over libcurl: ping,
// manifests, blobs streamed into the content store, blob upload, manifest
// upload. HTTPS by default; tls_verify=false allows https without
// verification and falls back to plain http, as podman's --tls-verify=false.
// Authentication follows the registry's 401 challenge: Basic sends the
// credentials, Bearer fetches a token from the realm (with the credentials,
// when there are any), cached per scope. 5xx answers and broken connections
// are retried (3 tries, with backoff).
//
// One RegistryClient owns one curl handle (one connection at a time): use one
// per thread, made with fork(), which shares the tokens and what ping learnt.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "image/auth_file.hpp"
#include "image/manifest.hpp"

namespace vitro::image {

class Store;

struct RegistryOptions {
    bool tls_verify = true;
    // Certificates for the registry: <cert_dir>/HOST[:PORT]/ when that exists,
    // else <cert_dir> itself (podman's --cert-dir); empty: the HOST[:PORT]
    // directory under /etc/vitro/certs.d, then /etc/containers/certs.d.
    // *.crt there are trusted CAs (with the system's), a *.cert + *.key pair
    // is the client certificate.
    std::string cert_dir;
    std::optional<Credentials> credentials;
};

// A parsed WWW-Authenticate challenge: `Bearer realm="…",service="…",scope="…"`.
struct AuthChallenge {
    std::string scheme;                         // lower case: "basic", "bearer"
    std::map<std::string, std::string> params;  // keys lower case
};
// The first Basic or Bearer challenge in a WWW-Authenticate value.
std::optional<AuthChallenge> parse_auth_challenge(std::string_view header);

struct FetchedManifest {
    std::string body;        // the exact bytes served (their digest is the manifest's)
    std::string media_type;  // Content-Type, or the document's mediaType when that is generic
    std::string digest;      // sha256 of body, checked against the one asked for
};

// What a blob download also feeds the bytes to as they arrive (an unpacker,
// say). Each try of the download starts with begin(). finish() comes only
// once the whole blob has arrived and its digest and size verified, and may
// still throw to reject it: then the blob does not land either.
class BlobConsumer {
public:
    virtual ~BlobConsumer() = default;
    virtual void begin() = 0;
    virtual void consume(const char* data, size_t len) = 0;
    virtual void finish() = 0;
};

class RegistryClient {
public:
    // `registry` as a reference names it ("localhost:5000", "docker.io").
    RegistryClient(std::string registry, RegistryOptions opts);
    RegistryClient(RegistryClient&&) noexcept;
    RegistryClient& operator=(RegistryClient&&) noexcept;
    ~RegistryClient();

    // Another client (its own curl handle) sharing this one's tokens.
    RegistryClient fork() const;
    const std::string& registry() const;
    // Transfers stop with an error once *flag is true (other workers failed).
    void set_cancel_flag(const std::atomic<bool>* flag);

    // GET /v2/, authenticating when challenged. Throws Error(EACCES,
    // "…: invalid username/password") when the credentials are refused.
    void check_login();

    // The manifest or index `tag_or_digest` of `repo`.
    FetchedManifest get_manifest(const std::string& repo, const std::string& tag_or_digest);
    // Streams blob d into the store, verified (digest and size) before it lands;
    // nothing lands when it fails. Returns true when the blob was new to the store.
    // `also`, when given, is fed the same bytes in the same pass.
    bool fetch_blob(const Store& store, const std::string& repo, const Descriptor& d, BlobConsumer* also = nullptr);

    bool blob_exists(const std::string& repo, const std::string& digest);
    // Uploads the store's blob d unless the registry has it; true when uploaded.
    bool push_blob(const Store& store, const std::string& repo, const Descriptor& d);
    // PUT the manifest under `tag`; returns the digest the registry answers with.
    std::string put_manifest(const std::string& repo, const std::string& tag, const std::string& media_type,
                             const std::string& body);

private:
    struct Shared;
    struct Conn;
    RegistryClient(std::shared_ptr<Shared> shared);
    std::shared_ptr<Shared> shared_;
    std::unique_ptr<Conn> conn_;
};

}  // namespace vitro::image
