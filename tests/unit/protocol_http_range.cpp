#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "protocol/http_range.hpp"

using namespace ferry::protocol;

namespace {

constexpr int64_t int64_max = std::numeric_limits<int64_t>::max();

content_range parse_ok(const std::string& value) {
  const auto range = parse_content_range(value);
  INFO(value);
  REQUIRE(range);
  return *range;
}

} // namespace

// ---- Range -------------------------------------------------------------------

TEST_CASE("range_header writes closed and open ranges") {
  CHECK(range_header(0, 499) == "bytes=0-499");
  CHECK(range_header(500, std::nullopt) == "bytes=500-");
  CHECK(range_header(0, std::nullopt) == "bytes=0-");
  CHECK(range_header(7, 7) == "bytes=7-7");
  CHECK(range_header(int64_max, int64_max) == "bytes=9223372036854775807-9223372036854775807");
}

TEST_CASE("range_header refuses impossible ranges") {
  CHECK(range_header(-1, std::nullopt).empty());
  CHECK(range_header(-1, 5).empty());
  CHECK(range_header(10, 9).empty());
}

// ---- Content-Range -----------------------------------------------------------

TEST_CASE("parse_content_range reads satisfied ranges") {
  auto range = parse_ok("bytes 0-499/1234");
  CHECK(range.first == 0);
  CHECK(range.last == 499);
  CHECK(range.complete_length == 1234);

  range = parse_ok("bytes 500-1233/1234");
  CHECK(range.first == 500);
  CHECK(range.last == 1233);
  CHECK(range.complete_length == 1234);

  range = parse_ok("bytes 0-499/*");
  CHECK(range.last == 499);
  CHECK_FALSE(range.complete_length);

  // One byte: the last byte of the object.
  range = parse_ok("bytes 1233-1233/1234");
  CHECK(range.first == 1233);
  CHECK(range.last == 1233);

  range = parse_ok("bytes 0-0/1");
  CHECK(range.first == 0);
  CHECK(range.last == 0);
  CHECK(range.complete_length == 1);
}

TEST_CASE("parse_content_range tolerates case and surrounding whitespace") {
  CHECK(parse_ok("Bytes 0-1/2").last == 1);
  CHECK(parse_ok("BYTES 0-1/*").last == 1);
  CHECK(parse_ok("  bytes 0-1/2\t").complete_length == 2);
  CHECK(parse_ok("bytes 0007-0009/0010").first == 7);
}

TEST_CASE("parse_content_range reads the largest representable values") {
  const auto range = parse_ok("bytes 9223372036854775805-9223372036854775806/9223372036854775807");
  CHECK(range.first == int64_max - 2);
  CHECK(range.last == int64_max - 1);
  CHECK(range.complete_length == int64_max);
}

TEST_CASE("parse_content_range rejects unsatisfied, malformed and overflowing values") {
  for (const std::string& bad : std::initializer_list<std::string>{
         "", " ", "bytes", "bytes ", "bytes */1234", "bytes */*",
         // Other units and missing separators.
         "items 0-1/2", "bytes=0-1/2", "bytes0-1/2", "byte 0-1/2", "bytes  0-1/2", "bytes\t0-1/2",
         // Missing or broken positions.
         "bytes 0-/10", "bytes -1/10", "bytes 0-1", "bytes 0-1/", "bytes 0 1/2", "bytes 0-1-2/3",
         "bytes -0-1/2", "bytes +0-1/2", "bytes 0--1/2", "bytes 0-1/-2", "bytes 0-1/+2",
         "bytes 0x0-0x1/2", "bytes 0-1/2 3", "bytes 0-1/2/3", "bytes 0-1/*x", "bytes 0-1/**",
         "bytes 0.0-1/2", "bytes 0 -1/2", "bytes 0- 1/2", "bytes 0-1 /2",
         // last before first, last past the end.
         "bytes 5-4/10", "bytes 0-10/10", "bytes 0-11/10", "bytes 0-0/0",
         // Overflow of each number.
         "bytes 0-99999999999999999999/100000000000000000000",
         "bytes 99999999999999999999-99999999999999999999/*", "bytes 0-1/99999999999999999999",
         "bytes 0-9223372036854775808/*", "bytes 9223372036854775808-9223372036854775809/*"}) {
    INFO('"' << bad << '"');
    CHECK_FALSE(parse_content_range(bad));
  }
  CHECK_FALSE(parse_content_range(std::string{"bytes 0-1/2\0", 12}));
}

// ---- judging a ranged response -----------------------------------------------

TEST_CASE("judge_range_response resumes only on an aligned 206") {
  CHECK(judge_range_response(206, "bytes 500-1233/1234", 500, 1234) == range_outcome::resume);
  CHECK(judge_range_response(206, "bytes 500-1233/*", 500, 1234) == range_outcome::resume);
  CHECK(judge_range_response(206, "bytes 0-1233/1234", 0, 1234) == range_outcome::resume);
  // The last byte alone.
  CHECK(judge_range_response(206, "bytes 1233-1233/1234", 1233, 1234) == range_outcome::resume);
  // A shorter range than asked for is still aligned; the caller asks again.
  CHECK(judge_range_response(206, "bytes 500-799/1234", 500, 1234) == range_outcome::resume);
}

TEST_CASE("judge_range_response never accepts misaligned bytes") {
  // Starts elsewhere.
  CHECK(judge_range_response(206, "bytes 0-1233/1234", 500, 1234) == range_outcome::invalid);
  CHECK(judge_range_response(206, "bytes 499-1233/1234", 500, 1234) == range_outcome::invalid);
  CHECK(judge_range_response(206, "bytes 501-1233/1234", 500, 1234) == range_outcome::invalid);
  // Another object length, or bytes past the object's end.
  CHECK(judge_range_response(206, "bytes 500-1233/2000", 500, 1234) == range_outcome::invalid);
  CHECK(judge_range_response(206, "bytes 500-1234/1235", 500, 1234) == range_outcome::invalid);
  CHECK(judge_range_response(206, "bytes 500-1300/*", 500, 1234) == range_outcome::invalid);
  // No, unsatisfied or broken Content-Range.
  CHECK(judge_range_response(206, std::nullopt, 500, 1234) == range_outcome::invalid);
  CHECK(judge_range_response(206, "", 500, 1234) == range_outcome::invalid);
  CHECK(judge_range_response(206, "bytes */1234", 500, 1234) == range_outcome::invalid);
  CHECK(judge_range_response(206, "garbage", 500, 1234) == range_outcome::invalid);
  CHECK(judge_range_response(206, "bytes 500-99999999999999999999/*", 500, 1234) ==
        range_outcome::invalid);
  // A request past the end cannot be resumed.
  CHECK(judge_range_response(206, "bytes 1234-1234/1235", 1234, 1234) == range_outcome::invalid);
  // Nonsense inputs from the caller.
  CHECK(judge_range_response(206, "bytes 0-0/1", -1, 1) == range_outcome::invalid);
  CHECK(judge_range_response(206, "bytes 0-0/1", 0, 0) == range_outcome::invalid);
  CHECK(judge_range_response(206, "bytes 0-0/1", 0, -1) == range_outcome::invalid);
}

TEST_CASE("judge_range_response maps other statuses") {
  CHECK(judge_range_response(200, std::nullopt, 500, 1234) == range_outcome::restart);
  // A 200 is the whole object whatever Content-Range claims.
  CHECK(judge_range_response(200, "bytes 500-1233/1234", 500, 1234) == range_outcome::restart);
  CHECK(judge_range_response(416, "bytes */1234", 500, 1234) == range_outcome::fallback_full);
  CHECK(judge_range_response(416, std::nullopt, 1234, 1234) == range_outcome::fallback_full);
  for (long status : {0L, 100L, 201L, 204L, 301L, 304L, 404L, 500L, 503L, -206L, 2060L}) {
    INFO(status);
    CHECK(judge_range_response(status, "bytes 500-1233/1234", 500, 1234) == range_outcome::invalid);
  }
}

// ---- split_ranges ------------------------------------------------------------

namespace {

// Checks the invariants every split must keep.
void check_split(int64_t size, int streams, int64_t min_part) {
  INFO("size " << size << ", streams " << streams << ", min_part " << min_part);
  const auto parts = split_ranges(size, streams, min_part);
  if (size <= 0) {
    CHECK(parts.empty());
    return;
  }
  REQUIRE_FALSE(parts.empty());
  CHECK(parts.size() <= static_cast<size_t>(std::max(streams, 1)));
  CHECK(parts.front().first == 0);
  CHECK(parts.back().second == size - 1);
  int64_t shortest = int64_max;
  int64_t longest = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const int64_t length = parts[i].second - parts[i].first + 1;
    CHECK(length >= 1);
    shortest = std::min(shortest, length);
    longest = std::max(longest, length);
    if (i > 0)
      CHECK(parts[i].first == parts[i - 1].second + 1);
  }
  CHECK(longest - shortest <= 1);
  // Below min_part only when the whole object is one part.
  if (parts.size() > 1)
    CHECK(shortest >= std::max<int64_t>(min_part, 1));
}

} // namespace

TEST_CASE("split_ranges splits evenly with the remainder up front") {
  using parts = std::vector<std::pair<int64_t, int64_t>>;
  CHECK(split_ranges(100, 4, 1) == parts{{0, 24}, {25, 49}, {50, 74}, {75, 99}});
  CHECK(split_ranges(10, 3, 1) == parts{{0, 3}, {4, 6}, {7, 9}});
  CHECK(split_ranges(1, 1, 1) == parts{{0, 0}});
  CHECK(split_ranges(1, 8, 1) == parts{{0, 0}});
  CHECK(split_ranges(3, 8, 1) == parts{{0, 0}, {1, 1}, {2, 2}});
}

TEST_CASE("split_ranges uses fewer streams for small objects") {
  using parts = std::vector<std::pair<int64_t, int64_t>>;
  CHECK(split_ranges(100, 4, 40) == parts{{0, 49}, {50, 99}});
  CHECK(split_ranges(79, 4, 40) == parts{{0, 78}});
  CHECK(split_ranges(10, 4, 1000) == parts{{0, 9}});
  CHECK(split_ranges(120, 4, 40) == parts{{0, 39}, {40, 79}, {80, 119}});
}

TEST_CASE("split_ranges handles empty sizes and odd arguments") {
  CHECK(split_ranges(0, 4, 1).empty());
  CHECK(split_ranges(-5, 4, 1).empty());
  using parts = std::vector<std::pair<int64_t, int64_t>>;
  CHECK(split_ranges(10, 0, 1) == parts{{0, 9}});
  CHECK(split_ranges(10, -3, 1) == parts{{0, 9}});
  CHECK(split_ranges(4, 2, 0) == parts{{0, 1}, {2, 3}});
  CHECK(split_ranges(4, 2, -7) == parts{{0, 1}, {2, 3}});
}

TEST_CASE("split_ranges keeps its invariants across many shapes") {
  for (int64_t size :
       std::initializer_list<int64_t>{0, 1, 2, 7, 99, 100, 101, 4096, 1000003, int64_max}) {
    for (int streams : {-1, 0, 1, 2, 3, 8, 64, 1000}) {
      for (int64_t min_part : std::initializer_list<int64_t>{0, 1, 3, 100, 1 << 20, int64_max}) {
        check_split(size, streams, min_part);
      }
    }
  }
}
