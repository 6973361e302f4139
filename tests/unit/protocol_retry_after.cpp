#include "protocol/retry_after.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using ferry::max_retry_after;
using ferry::parse_retry_after;
using sys = std::chrono::system_clock;

namespace {

// 1994-11-06 08:49:37 UTC, the date of RFC 9110's examples.
constexpr int64_t rfc_example = 784111777;

sys::time_point at(int64_t epoch_seconds) {
  return sys::time_point{std::chrono::seconds{epoch_seconds}};
}

} // namespace

TEST_CASE("Retry-After delta-seconds", "[retry_after]") {
  auto now = at(rfc_example);
  CHECK(parse_retry_after("120", now) == 120s);
  CHECK(parse_retry_after("0", now) == 0s);
  CHECK(parse_retry_after("007", now) == 7s);
  CHECK(parse_retry_after(" \t7 \t", now) == 7s);
  CHECK(parse_retry_after("2147483647", now) == 2147483647s);
}

TEST_CASE("Retry-After delta-seconds too large to represent are clamped", "[retry_after]") {
  auto now = at(rfc_example);
  CHECK(parse_retry_after("2147483648", now) == max_retry_after);
  CHECK(parse_retry_after("2147483649", now) == max_retry_after);
  CHECK(parse_retry_after("99999999999999999999999999999999999999", now) == max_retry_after);
  // Clamping must not stop validation of the rest.
  CHECK_FALSE(parse_retry_after("99999999999999999999999999x", now));
}

TEST_CASE("Retry-After rejects junk", "[retry_after]") {
  auto now = at(rfc_example);
  for (const char* junk : {"", "   ", "-5", "+5", "5.0", "5s", "5 5", "abc", "0x10", "1e3", "-0",
                           "\xef\xbc\x95" /* fullwidth 5 */, "5\n"}) {
    INFO("header: '" << junk << "'");
    CHECK_FALSE(parse_retry_after(junk, now));
  }
}

TEST_CASE("Retry-After IMF-fixdate gives the time until the date", "[retry_after]") {
  const char* date = "Sun, 06 Nov 1994 08:49:37 GMT";
  CHECK(parse_retry_after(date, at(rfc_example - 60)) == 60s);
  CHECK(parse_retry_after(date, at(rfc_example - 86400)) == 86400s);
  // Now or in the past: no wait.
  CHECK(parse_retry_after(date, at(rfc_example)) == 0s);
  CHECK(parse_retry_after(date, at(rfc_example + 1)) == 0s);
  CHECK(parse_retry_after(date, at(rfc_example + 10 * 365 * 86400)) == 0s);
  // Fractions of a second round up, so the retry is never early.
  CHECK(parse_retry_after(date, at(rfc_example - 10) + 250ms) == 10s);
  CHECK(parse_retry_after(date, at(rfc_example) - 1ms) == 1s);
  CHECK(parse_retry_after(date, at(rfc_example) + 999ms) == 0s);
  CHECK(parse_retry_after("  Sun, 06 Nov 1994 08:49:37 GMT\t", at(rfc_example - 5)) == 5s);
  CHECK(parse_retry_after("sun, 06 nov 1994 08:49:37 gmt", at(rfc_example - 5)) == 5s);
}

TEST_CASE("Retry-After obsolete date forms", "[retry_after]") {
  auto now = at(rfc_example - 30);
  SECTION("RFC 850") {
    CHECK(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now) == 30s);
    CHECK_FALSE(parse_retry_after("Sun, 06-Nov-94 08:49:37 GMT", now));
    CHECK_FALSE(parse_retry_after("Sunday, 06-Nov-1994 08:49:37 GMT", now));
  }
  SECTION("asctime") {
    CHECK(parse_retry_after("Sun Nov  6 08:49:37 1994", now) == 30s);
    CHECK(parse_retry_after("Wed Nov 16 08:49:37 1994", at(784975777 - 3)) == 3s);
    CHECK_FALSE(parse_retry_after("Sun Nov 6 08:49:37 1994", now));
    CHECK_FALSE(parse_retry_after("Sun Nov  6 08:49:37 1994 GMT", now));
    CHECK_FALSE(parse_retry_after("Sun Nov 06 08:49:37 94", now));
  }
}

TEST_CASE("Retry-After RFC 850 two-digit years pivot around now", "[retry_after]") {
  // Now is 2024-06-01: "30" is 2030 (not more than 50 years ahead), "94"
  // would be 2094, more than 50 years ahead, so it is 1994.
  auto now = at(1717200000);
  CHECK(parse_retry_after("Tuesday, 01-Jan-30 00:00:00 GMT", now) ==
        std::chrono::seconds{1893456000 - 1717200000});
  CHECK(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now) == 0s);
}

TEST_CASE("Retry-After rejects impossible or malformed dates", "[retry_after]") {
  auto now = at(rfc_example - 30);
  for (const char* bad : {
         "Sun, 31 Feb 1994 08:49:37 GMT", // no 31 February
         "Tue, 29 Feb 1900 00:00:00 GMT", // 1900 is not a leap year
         "Sun, 00 Nov 1994 08:49:37 GMT",
         "Sun, 06 Nov 1994 24:00:00 GMT",
         "Sun, 06 Nov 1994 08:60:00 GMT",
         "Sun, 06 Nov 1994 08:49:61 GMT",
         "Sun, 06 Nov 1994 08:49:37 UTC",
         "Sun, 06 Nov 1994 08:49:37 +0000",
         "Sun, 06 Nov 1994 08:49:37 GMT junk",
         "Sun, 6 Nov 1994 08:49:37 GMT",
         "Sun,  06 Nov 1994 08:49:37 GMT",
         "Foo, 06 Nov 1994 08:49:37 GMT",
         "Sun, 06 Noe 1994 08:49:37 GMT",
         "Sun, 06 Nov 94 08:49:37 GMT",
         "Sun, 06 Nov 1994 8:49:37 GMT",
         "Sun, 06 Nov 1994",
         "Sun, 06 Nov 1994 08:49:37 GM",
         "Sun, ",
       }) {
    INFO("header: '" << bad << "'");
    CHECK_FALSE(parse_retry_after(bad, now));
  }
}

TEST_CASE("Retry-After accepts leap days and leap seconds", "[retry_after]") {
  CHECK(parse_retry_after("Thu, 29 Feb 2024 12:00:00 GMT", at(1709208000 - 2)) == 2s);
  CHECK(parse_retry_after("Tue, 29 Feb 2000 00:00:00 GMT", at(951782400 - 1)) == 1s);
  // 23:59:60 is the leap second, one second after 23:59:59.
  CHECK(parse_retry_after("Sat, 31 Dec 2016 23:59:60 GMT", at(1483228799 - 1)) == 2s);
}

TEST_CASE("Retry-After far-future dates are clamped", "[retry_after]") {
  CHECK(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", at(rfc_example)) == max_retry_after);
}
