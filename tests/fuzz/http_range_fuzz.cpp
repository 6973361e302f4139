// Fuzzes HTTP byte ranges (protocol/http_range.hpp): the whole input is a
// Content-Range header value as a server sends it; its bytes also feed
// range_header and split_ranges. Promises checked, besides "never throws":
// - a parsed range has 0 <= first <= last, and last < complete length when
//   that is given;
// - written back as "bytes first-last/length" (or "/*") it parses the same;
// - judge_range_response resumes a 206 exactly when the range starts at the
//   requested byte, ends inside the object and declares its length (or *);
//   200 always restarts, 416 always falls back;
// - range_header gives "bytes=first-[last]" for a valid pair, "" otherwise;
// - split_ranges covers [0, size) with contiguous parts that differ by at
//   most one byte, no more parts than streams, each at least min_part long
//   when there is more than one.

#include "fuzz_check.hpp"

#include "protocol/http_range.hpp"

#include <cstring>
#include <string>

namespace {

using namespace ferry::protocol;

int64_t read_int64(std::string_view& bytes) {
  uint64_t value = 0;
  const size_t n = std::min<size_t>(8, bytes.size());
  std::memcpy(&value, bytes.data(), n);
  bytes.remove_prefix(n);
  return static_cast<int64_t>(value);
}

// a + b, or a when that overflows.
int64_t plus(int64_t a, int64_t b) {
  int64_t sum = 0;
  return __builtin_add_overflow(a, b, &sum) ? a : sum;
}

void check_judge(const content_range& range) {
  for (int64_t object_size : {range.complete_length.value_or(plus(range.last, 1)),
                              plus(range.last, 1), range.last, plus(range.last, 2)}) {
    for (int64_t requested : {range.first, plus(range.first, 1), range.first - 1}) {
      const std::string header =
        "bytes " + std::to_string(range.first) + "-" + std::to_string(range.last) + "/" +
        (range.complete_length ? std::to_string(*range.complete_length) : std::string{"*"});
      const bool lines_up = requested >= 0 && object_size > 0 && range.first == requested &&
                            range.last <= object_size - 1 &&
                            (!range.complete_length || *range.complete_length == object_size);
      const auto outcome = judge_range_response(206, header, requested, object_size);
      FUZZ_CHECK((outcome == range_outcome::resume) == lines_up);
      FUZZ_CHECK(outcome == range_outcome::resume || outcome == range_outcome::invalid);
    }
  }
}

void check_split(int64_t size, int streams, int64_t min_part) {
  const auto parts = split_ranges(size, streams, min_part);
  if (size <= 0) {
    FUZZ_CHECK(parts.empty());
    return;
  }
  FUZZ_CHECK(!parts.empty());
  FUZZ_CHECK(static_cast<int64_t>(parts.size()) <= std::max(streams, 1));
  int64_t next = 0;
  int64_t shortest = INT64_MAX, longest = 0;
  for (const auto& [first, last] : parts) {
    FUZZ_CHECK(first == next);
    FUZZ_CHECK(last >= first);
    const int64_t length = last - first + 1;
    shortest = std::min(shortest, length);
    longest = std::max(longest, length);
    next = last + 1;
    FUZZ_CHECK(range_header(first, last) ==
               "bytes=" + std::to_string(first) + "-" + std::to_string(last));
  }
  FUZZ_CHECK(next == size);
  FUZZ_CHECK(longest - shortest <= 1);
  if (parts.size() > 1)
    FUZZ_CHECK(shortest >= std::max<int64_t>(min_part, 1));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view value = ferry::fuzz::as_text(data, size);

  const auto range = parse_content_range(value);
  if (range) {
    FUZZ_CHECK(range->first >= 0 && range->first <= range->last);
    if (range->complete_length)
      FUZZ_CHECK(range->last < *range->complete_length);
    const std::string again =
      "bytes " + std::to_string(range->first) + "-" + std::to_string(range->last) + "/" +
      (range->complete_length ? std::to_string(*range->complete_length) : std::string{"*"});
    const auto reparsed = parse_content_range(again);
    FUZZ_CHECK(reparsed && reparsed->first == range->first && reparsed->last == range->last &&
               reparsed->complete_length == range->complete_length);
    check_judge(*range);
  }
  for (long status : {200L, 416L, 404L, 206L}) {
    const auto outcome = judge_range_response(status, value, 0, 1000);
    if (status == 200)
      FUZZ_CHECK(outcome == range_outcome::restart);
    if (status == 416)
      FUZZ_CHECK(outcome == range_outcome::fallback_full);
    if (status == 404)
      FUZZ_CHECK(outcome == range_outcome::invalid);
  }
  FUZZ_CHECK(judge_range_response(206, std::nullopt, 0, 1000) == range_outcome::invalid);

  // The same bytes as numbers: range_header and split_ranges.
  std::string_view bytes = value;
  const int64_t first = read_int64(bytes);
  const int64_t last = read_int64(bytes);
  const std::string header = range_header(first, last);
  if (first < 0 || last < first)
    FUZZ_CHECK(header.empty());
  else
    FUZZ_CHECK(header == "bytes=" + std::to_string(first) + "-" + std::to_string(last));
  FUZZ_CHECK(range_header(first, std::nullopt) ==
             (first < 0 ? std::string{} : "bytes=" + std::to_string(first) + "-"));
  // Streams as the settings allow (1-16) and around them; more would only
  // measure how much memory a vector of parts may take.
  const int streams = static_cast<int>(static_cast<uint64_t>(last) % 40) - 3;
  check_split(first, streams, read_int64(bytes));
  return 0;
}
