#include "store/os/sha256.hpp"

#include <openssl/evp.h>

#include <cstdlib>

namespace ferry {

namespace {

// Fetched once and never freed: an explicit fetch avoids the provider lookup
// (and its lock) that EVP_sha256() implies on every init.
const EVP_MD* sha256_md() {
  static const EVP_MD* md = [] {
    const EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return fetched != nullptr ? fetched : EVP_sha256();
  }();
  return md;
}

EVP_MD_CTX* new_ctx() {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  // Only fails when out of memory or without a SHA-256 provider; there is no
  // way to hash without it, and this type reports no errors.
  if (ctx == nullptr || EVP_DigestInit_ex2(ctx, sha256_md(), nullptr) != 1)
    std::abort();
  return ctx;
}

} // namespace

sha256::sha256() : ctx_(new_ctx()) {}

sha256::~sha256() { EVP_MD_CTX_free(ctx_); }

sha256::sha256(sha256&& other) noexcept : ctx_(other.ctx_), bytes_(other.bytes_) {
  other.ctx_ = nullptr;
  other.bytes_ = 0;
}

sha256& sha256::operator=(sha256&& other) noexcept {
  if (this != &other) {
    EVP_MD_CTX_free(ctx_);
    ctx_ = other.ctx_;
    bytes_ = other.bytes_;
    other.ctx_ = nullptr;
    other.bytes_ = 0;
  }
  return *this;
}

void sha256::update(const void* data, size_t size) {
  // A moved-from object starts a fresh stream.
  if (ctx_ == nullptr)
    ctx_ = new_ctx();
  if (size == 0)
    return;
  if (EVP_DigestUpdate(ctx_, data, size) != 1)
    std::abort();
  bytes_ += static_cast<int64_t>(size);
}

std::string sha256::hex_digest() {
  if (ctx_ == nullptr)
    ctx_ = new_ctx();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(ctx_, digest, &length) != 1 ||
      EVP_DigestInit_ex2(ctx_, sha256_md(), nullptr) != 1)
    std::abort();
  bytes_ = 0;

  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(hex[digest[i] >> 4]);
    out.push_back(hex[digest[i] & 0x0f]);
  }
  return out;
}

std::string sha256::of(const void* data, size_t size) {
  sha256 hash;
  hash.update(data, size);
  return hash.hex_digest();
}

} // namespace ferry
