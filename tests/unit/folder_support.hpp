#pragma once

// Helpers for the tests of the folder store: object contents, their oids,
// and a store opened on a directory.

#include "store/folder/folder_store.hpp"
#include "store/os/sha256.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace ferry::testing {

/// `size` pseudo-random bytes (a linear congruential sequence); different
/// seeds give different objects.
inline std::string make_content(size_t size, uint32_t seed) {
  std::string bytes(size, '\0');
  for (auto& b : bytes) {
    seed = seed * 1664525u + 1013904223u;
    b = static_cast<char>(seed >> 24);
  }
  return bytes;
}

inline std::string oid_of(const std::string& content) {
  return sha256::of(content.data(), content.size());
}

inline std::unique_ptr<folder_store> open_store_at(const std::filesystem::path& root) {
  auto store = folder_store::open(root);
  REQUIRE(store.ok());
  return std::move(store).value();
}

/// Publishes what was committed to `store`, as the journal does for each
/// group of finished transfers, and requires that all of it was.
inline void publish(object_store& store) {
  auto published = store.sync_published();
  INFO((published ? std::string{} : published.error().to_string()));
  REQUIRE(published.ok());
  CHECK(published->empty());
}

/// The object's bytes from `offset` on, read through the store.
inline std::string read_object(folder_store& store, const std::string& oid, int64_t offset = 0) {
  auto reader = store.open_read(oid, offset);
  INFO(reader.error().to_string());
  REQUIRE(reader.ok());
  std::string out;
  std::vector<char> buffer(100003);
  for (;;) {
    auto n = (*reader)->read(buffer.data(), buffer.size());
    REQUIRE(n.ok());
    if (*n == 0)
      return out;
    out.append(buffer.data(), static_cast<size_t>(*n));
  }
}

} // namespace ferry::testing
