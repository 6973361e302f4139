#include "store/http/rate_backoff.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using ferry::rate_backoff;

namespace {
const auto t0 = rate_backoff::clock::time_point{} + 1h;
}

TEST_CASE("backoff allows the full rate until a server asks to slow down", "[rate_backoff]") {
  rate_backoff backoff;
  CHECK(backoff.factor(t0) == 1.0);
  CHECK(backoff.factor(t0 + 1h) == 1.0);
}

TEST_CASE("a 429 halves the rate, which comes back linearly", "[rate_backoff]") {
  rate_backoff backoff;
  CHECK(backoff.on_throttled(t0));
  CHECK(backoff.factor(t0) == 0.5);
  CHECK(backoff.factor(t0 + 2s) == Approx(0.6));
  CHECK(backoff.factor(t0 + 5s) == Approx(0.75));
  CHECK(backoff.factor(t0 + 10s) == 1.0);
  CHECK(backoff.factor(t0 + 1h) == 1.0);
  // An out-of-order time counts as the moment of the cut.
  CHECK(backoff.factor(t0 - 1s) == 0.5);
}

TEST_CASE("answers to one burst cut once", "[rate_backoff]") {
  rate_backoff backoff;
  CHECK(backoff.on_throttled(t0));
  CHECK_FALSE(backoff.on_throttled(t0 + 10ms));
  CHECK_FALSE(backoff.on_throttled(t0 + 999ms));
  CHECK_FALSE(backoff.on_throttled(t0 - 5ms));
  CHECK(backoff.factor(t0) == 0.5);
  // A second later it is a new signal: halves what has recovered by then.
  CHECK(backoff.on_throttled(t0 + 1s));
  CHECK(backoff.factor(t0 + 1s) == Approx(0.275));
}

TEST_CASE("cuts stop at the floor", "[rate_backoff]") {
  rate_backoff::options settings;
  settings.cut_interval = 10ms;
  rate_backoff backoff{settings};
  auto now = t0;
  for (int i = 0; i < 20; ++i) {
    CHECK(backoff.on_throttled(now));
    now += 10ms;
  }
  auto last = now - 10ms;
  CHECK(backoff.factor(last) == 1.0 / 32);
  // And from the floor it still comes back.
  CHECK(backoff.factor(last + 19s) < 1.0);
  CHECK(backoff.factor(last + 20s) == 1.0);
}

TEST_CASE("backoff takes its settings", "[rate_backoff]") {
  rate_backoff::options settings;
  settings.decrease = 0.8;
  settings.floor = 0.5;
  settings.recovery_per_second = 0.1;
  settings.cut_interval = 100ms;
  rate_backoff backoff{settings};
  CHECK(backoff.on_throttled(t0));
  CHECK(backoff.factor(t0) == Approx(0.8));
  CHECK(backoff.on_throttled(t0 + 100ms));
  CHECK(backoff.factor(t0 + 100ms) == Approx(0.81 * 0.8));
  for (int i = 2; i < 10; ++i)
    backoff.on_throttled(t0 + i * 100ms);
  CHECK(backoff.factor(t0 + 900ms) == 0.5);
  CHECK(backoff.factor(t0 + 5900ms) == 1.0);
}
