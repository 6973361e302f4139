// Fuzzes parse_retry_after (protocol/retry_after.hpp, in ferry_policy): the
// whole input is the value of a server's Retry-After header. Promises
// checked, besides "never throws":
// - a wait is from 0 to max_retry_after;
// - delta-seconds (digits only, spaces and tabs around) give exactly their
//   value, clamped to max_retry_after;
// - an HTTP-date gives a wait that shrinks one for one as "now" advances
//   (within a year, so RFC 850's two-digit years mean the same), and the
//   instant it names, written back as an IMF-fixdate, gives the same wait;
// - names and GMT match without regard to case: upper- and lower-casing the
//   header changes nothing.

#include "fuzz_check.hpp"

#include "protocol/retry_after.hpp"

#include <cstdio>
#include <string>

namespace {

using ferry::fuzz::int128;

using ferry::max_retry_after;
using ferry::parse_retry_after;
using sys_clock = std::chrono::system_clock;
using std::chrono::seconds;

// 2026-05-01T12:00:00.25Z: a fraction, so that rounding matters.
const sys_clock::time_point now =
  sys_clock::time_point{} + seconds{1777636800} + std::chrono::milliseconds{250};

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
    text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t'))
    text.remove_suffix(1);
  return text;
}

std::optional<seconds> delta_seconds(std::string_view text) {
  if (text.empty())
    return std::nullopt;
  int128 value = 0;
  for (char c : text) {
    if (c < '0' || c > '9')
      return std::nullopt;
    if (value <= max_retry_after.count())
      value = value * 10 + (c - '0');
  }
  return seconds{static_cast<int64_t>(std::min<int128>(value, max_retry_after.count()))};
}

std::string imf_fixdate(int64_t epoch_seconds) {
  static const char* const days[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
  static const char* const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const int64_t day_number = epoch_seconds / 86400;
  const int64_t in_day = epoch_seconds % 86400;
  const auto date = ferry::fuzz::civil_from_days(day_number);
  char text[64];
  std::snprintf(text, sizeof text, "%s, %02lld %s %04lld %02lld:%02lld:%02lld GMT",
                days[day_number % 7], static_cast<long long>(date.day), months[date.month - 1],
                static_cast<long long>(date.year), static_cast<long long>(in_day / 3600),
                static_cast<long long>(in_day / 60 % 60), static_cast<long long>(in_day % 60));
  return text;
}

std::string with_case(std::string_view text, bool upper) {
  std::string out{text};
  for (char& c : out) {
    if (upper && c >= 'a' && c <= 'z')
      c = static_cast<char>(c - 'a' + 'A');
    if (!upper && c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view header = ferry::fuzz::as_text(data, size);
  const auto wait = parse_retry_after(header, now);

  if (wait)
    FUZZ_CHECK(*wait >= seconds{0} && *wait <= max_retry_after);
  FUZZ_CHECK(parse_retry_after(with_case(header, true), now) == wait);
  FUZZ_CHECK(parse_retry_after(with_case(header, false), now) == wait);

  const std::string_view value = trim(header);
  if (!value.empty() && value.front() >= '0' && value.front() <= '9') {
    FUZZ_CHECK(wait == delta_seconds(value));
    return 0;
  }
  if (!wait)
    return 0;

  // A date: the instant it names is the same whenever it is read.
  const int64_t now_s = std::chrono::floor<seconds>(now.time_since_epoch()).count();
  for (int64_t later : {int64_t{1}, int64_t{1000}, int64_t{86400}}) {
    const auto then = parse_retry_after(header, now + seconds{later});
    FUZZ_CHECK(then.has_value());
    if (*wait < max_retry_after)
      FUZZ_CHECK(then->count() == std::max<int64_t>(0, wait->count() - later));
  }
  if (*wait > seconds{0} && *wait < max_retry_after && now_s + wait->count() < 253402300800)
    FUZZ_CHECK(parse_retry_after(imf_fixdate(now_s + wait->count()), now) == wait);
  return 0;
}
