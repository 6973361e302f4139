#include "store/os/hash_worker.hpp"
#include "store/os/sha256.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

using ferry::hash_worker;
using ferry::sha256;

namespace {

std::vector<char> patterned_bytes(size_t size) {
  std::vector<char> bytes(size);
  uint32_t state = 4242;
  for (auto& b : bytes) {
    state = state * 1103515245u + 12345u;
    b = static_cast<char>(state >> 24);
  }
  return bytes;
}

} // namespace

TEST_CASE("hash_worker hashes each chunk before wait() returns", "[hash_worker]") {
  const auto source = patterned_bytes(5 * (1 << 20) + 122);
  const std::vector<size_t> chunk_sizes{1 << 20, 0, 1, (1 << 20) - 1, 3 << 20, 122};
  sha256 hash;
  hash_worker worker(hash);
  // One buffer, refilled after each wait(): a chunk still being hashed when
  // wait() returned would be hashed with the next chunk's bytes.
  std::vector<char> buffer(3 << 20);
  size_t offset = 0;
  for (size_t size : chunk_sizes) {
    std::copy_n(source.begin() + static_cast<std::ptrdiff_t>(offset), size, buffer.begin());
    worker.start(buffer.data(), size);
    worker.wait();
    offset += size;
    CHECK(hash.bytes() == static_cast<int64_t>(offset));
    std::fill(buffer.begin(), buffer.end(), '\0');
  }
  REQUIRE(offset == source.size());
  CHECK(hash.hex_digest() == sha256::of(source.data(), source.size()));
}

TEST_CASE("hash_worker finishes the chunk handed over when it is destroyed", "[hash_worker]") {
  const auto source = patterned_bytes(2 << 20);
  sha256 hash;
  {
    std::optional<hash_worker> worker;
    worker.emplace(hash);
    worker->start(source.data(), source.size());
    worker.reset();
  }
  CHECK(hash.bytes() == static_cast<int64_t>(source.size()));
  CHECK(hash.hex_digest() == sha256::of(source.data(), source.size()));
}

TEST_CASE("hash_worker without any chunk leaves the hash empty", "[hash_worker]") {
  sha256 hash;
  { hash_worker worker(hash); }
  CHECK(hash.bytes() == 0);
  CHECK(hash.hex_digest() == sha256::of("", 0));
}
