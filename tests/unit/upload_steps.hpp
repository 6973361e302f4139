#pragma once

// For the tests of the S3 writers: sizes, and an object_writer driven the
// way the upload task drives it (actors/policy/transfer_task.cpp).

#include "store/object_store.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

namespace ferry::testing {

/// One MiB.
inline constexpr int64_t mib = int64_t{1} << 20;

/// The part size of the S3 writer tests: S3's smallest.
inline constexpr int64_t part_bytes = 5 * mib;

/// The task's chunk size.
inline constexpr size_t upload_chunk_bytes = static_cast<size_t>(mib);

/// Shows the writer the prefix it kept, [0, offset()), through
/// check_resumed(), then writes `content` from there up to `end`, both in
/// 1 MiB pieces. Returns the first failure.
inline status feed_writer(object_writer& writer, const std::string& content, size_t end) {
  const auto kept = static_cast<size_t>(writer.offset());
  for (size_t at = 0; at < kept; at += upload_chunk_bytes) {
    size_t piece = std::min(upload_chunk_bytes, kept - at);
    if (auto checked = writer.check_resumed(content.data() + at, piece); !checked)
      return checked;
  }
  for (size_t at = kept; at < end; at += upload_chunk_bytes) {
    size_t piece = std::min(upload_chunk_bytes, end - at);
    if (auto written = writer.write(content.data() + at, piece); !written)
      return written;
  }
  return status::success();
}

/// feed_writer() to the end of `content`, then commit().
inline status upload_through(object_writer& writer, const std::string& content) {
  if (auto fed = feed_writer(writer, content, content.size()); !fed)
    return fed;
  return writer.commit();
}

} // namespace ferry::testing
