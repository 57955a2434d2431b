// Content digests ("sha256:<64 hex>"): an incremental SHA-256 (OpenSSL) and
// strict validation, so a digest from outside can be used as a file name.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace vitro::image {

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

std::string sha256_digest(std::string_view data);

// True for "sha256:" followed by exactly 64 lowercase hex digits.
bool is_valid_digest(std::string_view digest);
// Throws vitro::Error naming `what` unless is_valid_digest(digest).
void check_digest(std::string_view digest, std::string_view what);
// The hex part of a valid digest.
std::string digest_hex(std::string_view digest);

}  // namespace vitro::image
