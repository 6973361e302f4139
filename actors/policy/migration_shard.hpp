#pragma once

// `ferry migrate --shard I/N`: which part of the source one run takes, so
// that N runs side by side cover every object exactly once.

#include <cstdint>
#include <optional>
#include <string>

namespace ferry {

/// Takes the oids whose first 32 bits, modulo `count`, are `index`.
struct migration_shard {
  uint32_t index = 0;
  uint32_t count = 1;

  /// "I/N" with 1 <= I <= N <= 4096; empty text is the whole source (1/1).
  /// std::nullopt when the text is not such a shard.
  static std::optional<migration_shard> parse(const std::string& text);

  /// Whether this shard takes `oid` (a valid oid: 64 hex digits).
  bool takes(const std::string& oid) const;

  /// "I/N", or empty for the whole source.
  std::string describe() const;
};

} // namespace ferry
