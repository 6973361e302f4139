#include "protocol/http_range.hpp"

#include <algorithm>
#include <limits>

#include "protocol/parsing.hpp"

namespace ferry::protocol {

namespace {

// Reads 1*DIGIT at `at`; fails on no digits or int64_t overflow.
std::optional<int64_t> read_number(std::string_view text, size_t& at) {
  const size_t start = at;
  int64_t value = 0;
  while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
    const int digit = text[at] - '0';
    if (value > (std::numeric_limits<int64_t>::max() - digit) / 10)
      return std::nullopt;
    value = value * 10 + digit;
    ++at;
  }
  if (at == start)
    return std::nullopt;
  return value;
}

} // namespace

std::string range_header(int64_t first, std::optional<int64_t> last) {
  if (first < 0 || (last && *last < first))
    return {};
  std::string header = "bytes=" + std::to_string(first) + "-";
  if (last)
    header += std::to_string(*last);
  return header;
}

std::optional<content_range> parse_content_range(std::string_view value) {
  value = trim_ows(value);
  // Content-Range = range-unit SP ( range-resp / unsatisfied-range )
  const size_t space = value.find(' ');
  if (space == std::string_view::npos || !equals_ci(value.substr(0, space), "bytes")) {
    return std::nullopt;
  }
  size_t at = space + 1;
  content_range range;
  const auto first = read_number(value, at);
  if (!first || at >= value.size() || value[at] != '-')
    return std::nullopt;
  ++at;
  const auto last = read_number(value, at);
  if (!last || at >= value.size() || value[at] != '/')
    return std::nullopt;
  ++at;
  if (*last < *first)
    return std::nullopt;
  range.first = *first;
  range.last = *last;
  if (value.substr(at) == "*")
    return range;
  const auto length = read_number(value, at);
  if (!length || at != value.size() || *last >= *length)
    return std::nullopt;
  range.complete_length = *length;
  return range;
}

range_outcome judge_range_response(long status,
                                   std::optional<std::string_view> content_range_header,
                                   int64_t requested_first, int64_t object_size) {
  switch (status) {
    case 200:
      return range_outcome::restart;
    case 416:
      return range_outcome::fallback_full;
    case 206:
      break;
    default:
      return range_outcome::invalid;
  }
  // A 206 without one Content-Range (e.g. multipart/byteranges) cannot be
  // placed in the file.
  if (!content_range_header || requested_first < 0 || object_size <= 0) {
    return range_outcome::invalid;
  }
  const auto range = parse_content_range(*content_range_header);
  if (!range || range->first != requested_first || range->last > object_size - 1) {
    return range_outcome::invalid;
  }
  // Another length means another object behind the same href.
  if (range->complete_length && *range->complete_length != object_size) {
    return range_outcome::invalid;
  }
  return range_outcome::resume;
}

std::vector<std::pair<int64_t, int64_t>> split_ranges(int64_t size, int streams, int64_t min_part) {
  std::vector<std::pair<int64_t, int64_t>> parts;
  if (size <= 0)
    return parts;
  min_part = std::max<int64_t>(min_part, 1);
  // Fewer parts than streams when the parts would fall below min_part.
  const int64_t count = std::clamp<int64_t>(size / min_part, 1, std::max<int64_t>(streams, 1));
  const int64_t base = size / count;
  const int64_t extra = size % count;
  parts.reserve(static_cast<size_t>(count));
  int64_t first = 0;
  for (int64_t i = 0; i < count; ++i) {
    // The first `extra` parts take one byte more, so lengths differ by <= 1.
    const int64_t length = base + (i < extra ? 1 : 0);
    parts.emplace_back(first, first + length - 1);
    first += length;
  }
  return parts;
}

} // namespace ferry::protocol
