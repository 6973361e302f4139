#pragma once

// Git LFS pointer files (git-lfs docs/spec.md): the small text git stores
// in place of a large file.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::protocol {

/// Pointer files are never larger than this; bigger blobs are not pointers.
inline constexpr size_t max_pointer_bytes = 1024;

/// What a pointer names.
struct lfs_pointer {
  /// 64 lower-case hex characters.
  std::string oid;
  int64_t size = 0;
};

/// Parses a pointer: `version https://git-lfs.github.com/spec/v1` first,
/// then `key value` lines in key order, among them `oid sha256:<64 hex>`
/// and `size <decimal>`, each line ending in "\n". Also accepts the older
/// version URL `https://hawser.github.com/spec/v1`. Anything else
/// (a regular small file, a malformed pointer) is std::nullopt.
std::optional<lfs_pointer> parse_lfs_pointer(std::string_view text);

} // namespace ferry::protocol
