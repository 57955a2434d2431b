#include "util/sha256.hpp"

#include <openssl/evp.h>

#include "util/error.hpp"

namespace vitro {

struct Sha256::Ctx {
    EVP_MD_CTX* md = nullptr;
    ~Ctx() { EVP_MD_CTX_free(md); }
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
    ctx_->md = EVP_MD_CTX_new();
    if (!ctx_->md || EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr) != 1) throw Error("sha256: cannot initialise");
}

Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(const void* data, size_t len) {
    if (len && EVP_DigestUpdate(ctx_->md, data, len) != 1) throw Error("sha256: update failed");
}

std::string Sha256::digest() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx_->md, out, &len) != 1) throw Error("sha256: final failed");
    return "sha256:" + hex_of(out, len);
}

std::string hex_of(const unsigned char* p, size_t n) {
    static const char hex[] = "0123456789abcdef";
    std::string s;
    s.reserve(2 * n);
    for (size_t i = 0; i < n; ++i) {
        s += hex[p[i] >> 4];
        s += hex[p[i] & 15];
    }
    return s;
}

std::string sha256_digest(std::string_view data) {
    Sha256 h;
    h.update(data);
    return h.digest();
}

}  // namespace vitro
