#include "store/http/token_bucket.hpp"

#include <catch2/catch.hpp>

#include <cmath>

using namespace std::chrono_literals;
using ferry::token_bucket;

namespace {
const auto t0 = token_bucket::clock::time_point{} + 1h;
}

TEST_CASE("bucket serves its burst at once, then paces at the rate", "[token_bucket]") {
  token_bucket bucket{10.0, 5.0};
  CHECK_FALSE(bucket.unlimited());
  for (int i = 0; i < 5; ++i)
    CHECK(bucket.reserve(1, t0) == 0ns);
  // Debt: each further token is served 100 ms after the previous one.
  CHECK(bucket.reserve(1, t0) == 100ms);
  CHECK(bucket.reserve(1, t0) == 200ms);
  CHECK(bucket.reserve(1, t0) == 300ms);
  CHECK(bucket.available(t0) == Approx(-3.0));
}

TEST_CASE("bucket holds a steady rate over time", "[token_bucket]") {
  token_bucket bucket{10.0, 1.0};
  auto now = t0;
  CHECK(bucket.reserve(1, now) == 0ns);
  // Callers that wait as told are always served on time.
  for (int i = 0; i < 50; ++i) {
    auto wait = bucket.reserve(1, now);
    CHECK(wait == 100ms);
    now += wait;
  }
  CHECK(now - t0 == 5s);
  // Arriving exactly on the rate: no wait at all.
  now += 100ms;
  CHECK(bucket.reserve(1, now) == 0ns);
}

TEST_CASE("bucket refills up to the burst only", "[token_bucket]") {
  token_bucket bucket{10.0, 5.0};
  CHECK(bucket.reserve(5, t0) == 0ns);
  CHECK(bucket.available(t0 + 200ms) == Approx(2.0));
  // An hour idle still only gives the burst.
  CHECK(bucket.available(t0 + 1h) == Approx(5.0));
  CHECK(bucket.reserve(5, t0 + 1h) == 0ns);
  CHECK(bucket.reserve(1, t0 + 1h) == 100ms);
}

TEST_CASE("bucket serves requests larger than the burst", "[token_bucket]") {
  token_bucket bucket{1000.0, 100.0};
  // 1000 tokens: 100 from the burst, 900 owed at 1000/s.
  CHECK(bucket.reserve(1000, t0) == 900ms);
  // The next caller queues behind the debt.
  CHECK(bucket.reserve(100, t0) == 1000ms);
  // Once the debt is paid, service is immediate again.
  CHECK(bucket.reserve(50, t0 + 1100ms) == 0ns);
}

TEST_CASE("bucket with zero burst paces every reservation", "[token_bucket]") {
  token_bucket bucket{4.0, 0.0};
  CHECK(bucket.reserve(1, t0) == 250ms);
  CHECK(bucket.reserve(1, t0) == 500ms);
  token_bucket negative{4.0, -3.0};
  CHECK(negative.burst() == 0.0);
  CHECK(negative.reserve(1, t0) == 250ms);
}

TEST_CASE("bucket tolerates out-of-order time points", "[token_bucket]") {
  token_bucket bucket{10.0, 1.0};
  CHECK(bucket.reserve(1, t0 + 1s) == 0ns);
  // A caller whose clock reading is older is served after the newer one.
  CHECK(bucket.reserve(1, t0) == 1100ms);
  CHECK(bucket.reserve(1, t0 + 1s) == 200ms);
}

TEST_CASE("bucket pause holds every reservation until it ends", "[token_bucket]") {
  token_bucket bucket{10.0, 5.0};
  CHECK(bucket.reserve(2, t0) == 0ns); // 3 left
  bucket.pause_until(t0 + 10s);
  CHECK(bucket.reserve(1, t0 + 1s) == 9s);
  CHECK(bucket.reserve(1, t0 + 2s) == 8s);
  CHECK(bucket.reserve(1, t0 + 2s) == 8s);
  // The pause earned no tokens: further callers queue behind it at the rate
  // instead of all rushing in at t0 + 10s.
  CHECK(bucket.reserve(1, t0 + 2s) == 8100ms);
  CHECK(bucket.reserve(1, t0 + 2s) == 8200ms);
  // A shorter pause does not cut the longer one.
  bucket.pause_until(t0 + 5s);
  CHECK(bucket.reserve(0, t0 + 3s) >= 7s);
  // After the pause and the debt, service is immediate.
  CHECK(bucket.reserve(1, t0 + 20s) == 0ns);
}

TEST_CASE("bucket pause before the first reservation", "[token_bucket]") {
  token_bucket bucket{10.0, 2.0};
  bucket.pause_until(t0 + 1s);
  CHECK(bucket.reserve(1, t0) == 1s);
  CHECK(bucket.reserve(1, t0) == 1s);
  CHECK(bucket.reserve(1, t0) == 1100ms);
}

TEST_CASE("unlimited bucket never waits except for a pause", "[token_bucket]") {
  token_bucket bucket{0.0, 0.0};
  CHECK(bucket.unlimited());
  CHECK(token_bucket{-1.0, 5.0}.unlimited());
  CHECK(token_bucket{std::nan(""), 5.0}.unlimited());
  for (int i = 0; i < 1000; ++i)
    REQUIRE(bucket.reserve(1e9, t0) == 0ns);
  CHECK(std::isinf(bucket.available(t0)));
  bucket.pause_until(t0 + 3s);
  CHECK(bucket.reserve(1, t0 + 1s) == 2s);
  CHECK(bucket.reserve(1, t0 + 3s) == 0ns);
}

TEST_CASE("bucket caps absurd waits instead of overflowing", "[token_bucket]") {
  token_bucket bucket{1e-9, 1.0};
  auto wait = bucket.reserve(1e30, t0);
  CHECK(wait > 24h * 365 * 5);
  CHECK(wait <= 24h * 365 * 11);
}

TEST_CASE("bucket changes its rate from the moment it is told", "[token_bucket]") {
  token_bucket bucket{10.0, 1.0};
  CHECK(bucket.reserve(1, t0) == 0ns);
  CHECK(bucket.reserve(1, t0) == 100ms);
  // Half a token earned at the old rate stays; the rest of the debt is paid
  // at the new rate of 5 per second.
  bucket.set_rate(5.0, t0 + 50ms);
  CHECK(bucket.rate() == 5.0);
  CHECK(bucket.available(t0 + 50ms) == Approx(-0.5));
  CHECK(bucket.reserve(0, t0 + 50ms) == 100ms);
  CHECK(bucket.reserve(1, t0 + 150ms) == 200ms);
  // Back to 10 per second.
  bucket.set_rate(10.0, t0 + 350ms);
  CHECK(bucket.reserve(1, t0 + 350ms) == 100ms);
  // Unlimited buckets stay unlimited; nonsense rates are ignored.
  token_bucket unlimited{0.0, 1.0};
  unlimited.set_rate(5.0, t0);
  CHECK(unlimited.unlimited());
  bucket.set_rate(0.0, t0 + 1s);
  bucket.set_rate(-3.0, t0 + 1s);
  CHECK(bucket.rate() == 10.0);
}
