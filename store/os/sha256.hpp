#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

struct evp_md_ctx_st;

namespace ferry {

/// Incremental SHA-256 over OpenSSL 3's EVP interface. The algorithm is
/// fetched once per process (implicit fetching on every init takes a lock).
class sha256 {
public:
  sha256();
  ~sha256();
  sha256(const sha256&) = delete;
  sha256& operator=(const sha256&) = delete;
  sha256(sha256&& other) noexcept;
  sha256& operator=(sha256&& other) noexcept;

  void update(const void* data, size_t size);

  /// Bytes fed so far.
  int64_t bytes() const { return bytes_; }

  /// Finishes the digest and returns it as 64 lower-case hex characters.
  /// The object is reset afterwards and can hash a new stream.
  std::string hex_digest();

  /// Convenience: the hex digest of one buffer.
  static std::string of(const void* data, size_t size);

private:
  evp_md_ctx_st* ctx_ = nullptr;
  int64_t bytes_ = 0;
};

} // namespace ferry
