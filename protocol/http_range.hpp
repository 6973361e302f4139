#pragma once

// HTTP byte ranges (RFC 9110 section 14) for resumed and parallel downloads:
// building Range headers, parsing Content-Range, and deciding whether a
// response may be appended to the bytes already on disk.
// Pure functions: no I/O, nothing throws.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::protocol {

/// `bytes=first-last`, or `bytes=first-` (to the end) without `last`.
/// Positions are inclusive. Returns "" when first < 0 or last < first.
std::string range_header(int64_t first, std::optional<int64_t> last);

/// A satisfied Content-Range: bytes first..last (inclusive) of a
/// representation that is complete_length bytes long (absent for "*").
struct content_range {
  int64_t first = 0;
  int64_t last = 0;
  std::optional<int64_t> complete_length;
};

/// Parses `bytes 0-499/1234` or `bytes 0-499/*` (unit case-insensitive,
/// surrounding spaces ignored). Returns nullopt for the unsatisfied form
/// `bytes */1234`, other units, malformed or overflowing numbers,
/// last < first, and last >= complete length.
std::optional<content_range> parse_content_range(std::string_view value);

/// What to do with the body of a ranged GET.
enum class range_outcome {
  /// 206 with exactly the requested start: append the body.
  resume,
  /// 200: the body is the whole object from byte 0; discard partial bytes.
  restart,
  /// 416: the server cannot serve the range; request the whole object.
  fallback_full,
  /// Anything else, including a 206 that does not line up: never write it.
  invalid,
};

/// Judges the response to `Range: bytes=requested_first-` for an object of
/// `object_size` bytes. A 206 resumes only when its Content-Range starts at
/// requested_first, ends within the object and declares object_size (or *)
/// as the complete length; misaligned bytes would corrupt the object.
range_outcome judge_range_response(long status,
                                   std::optional<std::string_view> content_range_header,
                                   int64_t requested_first, int64_t object_size);

/// Splits [0, size) into at most `streams` contiguous parts for parallel
/// ranged downloads, as inclusive (first, last) byte positions ready for
/// range_header. Parts differ in length by at most one byte and are at least
/// `min_part` bytes long, so small objects get fewer parts (one part when
/// size < 2 * min_part). Empty for size <= 0; streams and min_part below 1
/// count as 1.
std::vector<std::pair<int64_t, int64_t>> split_ranges(int64_t size, int streams, int64_t min_part);

} // namespace ferry::protocol
