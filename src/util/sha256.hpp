// SHA-256 (OpenSSL), incremental, as "sha256:<64 hex>": the content digests
// of image/ and the hashes of the evidence store's chain and bundles.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace vitro {

class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(Sha256&&) noexcept;
    Sha256& operator=(Sha256&&) noexcept;
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;

    void update(const void* data, size_t len);
    void update(std::string_view data) { update(data.data(), data.size()); }
    // "sha256:<hex>"; the hasher cannot be updated afterwards.
    std::string digest();

private:
    struct Ctx;
    std::unique_ptr<Ctx> ctx_;
};

// "sha256:<hex>" of `data`.
std::string sha256_digest(std::string_view data);
// Lower-case hex of `n` bytes (a digest's or a MAC's).
std::string hex_of(const unsigned char* p, size_t n);

}  // namespace vitro
