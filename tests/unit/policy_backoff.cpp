#include "actors/policy/backoff.hpp"

#include <catch2/catch.hpp>

#include <set>

using namespace std::chrono_literals;
using ferry::backoff;

TEST_CASE("backoff ceiling doubles from the base and stops at the cap", "[backoff]") {
  backoff b{250ms, 10s, 1};
  CHECK(b.ceiling(1) == 250ms);
  CHECK(b.ceiling(2) == 500ms);
  CHECK(b.ceiling(3) == 1000ms);
  CHECK(b.ceiling(6) == 8000ms);
  CHECK(b.ceiling(7) == 10s);
  // Far beyond the cap the doubling must not overflow.
  CHECK(b.ceiling(1000) == 10s);
  // Nonsense input is treated as the first failure.
  CHECK(b.ceiling(0) == 250ms);
  CHECK(b.ceiling(-5) == 250ms);
}

TEST_CASE("backoff jitter stays within [0, ceiling] and varies", "[backoff]") {
  backoff b{100ms, 5s, 42};
  for (int failures = 1; failures <= 10; ++failures) {
    std::set<int64_t> seen;
    for (int i = 0; i < 200; ++i) {
      auto wait = b.next(failures);
      REQUIRE(wait >= 0ms);
      REQUIRE(wait <= b.ceiling(failures));
      seen.insert(wait.count());
    }
    // Full jitter: 200 draws over a range of >= 100 values are not all equal.
    CHECK(seen.size() > 10);
  }
}

TEST_CASE("backoff with the same seed repeats the same waits", "[backoff]") {
  backoff a{250ms, 10s, 7};
  backoff b{250ms, 10s, 7};
  backoff c{250ms, 10s, 8};
  bool differs = false;
  for (int i = 1; i < 20; ++i) {
    auto x = a.next(i);
    CHECK(x == b.next(i));
    differs = differs || x != c.next(i);
  }
  CHECK(differs);
}

TEST_CASE("backoff repairs a cap below the base", "[backoff]") {
  backoff b{2s, 1s, 1};
  CHECK(b.ceiling(1) == 2s);
  CHECK(b.ceiling(5) == 2s);
}
