#include "actors/policy/circuit_breaker.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using ferry::circuit_breaker;
using ferry::circuit_breakers;
using state = circuit_breaker::state;

namespace {
const auto t0 = circuit_breaker::clock::time_point{} + 1h;
}

TEST_CASE("breaker stays closed below the failure threshold", "[circuit_breaker]") {
  circuit_breaker breaker{3, 10s};
  CHECK(breaker.current(t0) == state::closed);
  breaker.on_failure(t0, breaker.allow(t0));
  breaker.on_failure(t0, breaker.allow(t0));
  CHECK(breaker.consecutive_failures() == 2);
  CHECK(breaker.allow(t0));
  // A success resets the count: failures must be consecutive.
  breaker.on_success(t0, breaker.allow(t0));
  CHECK(breaker.consecutive_failures() == 0);
  breaker.on_failure(t0, breaker.allow(t0));
  breaker.on_failure(t0, breaker.allow(t0));
  CHECK(breaker.current(t0) == state::closed);
  CHECK(breaker.allow(t0));
}

TEST_CASE("breaker full cycle: closed, open, half_open, closed", "[circuit_breaker]") {
  circuit_breaker breaker{3, 10s, 1};
  for (int i = 0; i < 3; ++i)
    breaker.on_failure(t0, breaker.allow(t0));
  CHECK(breaker.current(t0) == state::open);
  CHECK_FALSE(breaker.allow(t0));
  CHECK_FALSE(breaker.allow(t0 + 9999ms));
  CHECK(breaker.current(t0 + 9999ms) == state::open);

  // open_for elapsed: one probe goes through, the others wait for it.
  CHECK(breaker.current(t0 + 10s) == state::half_open);
  auto probe = breaker.allow(t0 + 10s);
  CHECK(probe);
  CHECK(probe.probe);
  CHECK(breaker.current(t0 + 10s) == state::half_open);
  CHECK_FALSE(breaker.allow(t0 + 10s));
  CHECK_FALSE(breaker.allow(t0 + 11s));

  breaker.on_success(t0 + 12s, probe);
  CHECK(breaker.current(t0 + 12s) == state::closed);
  CHECK(breaker.allow(t0 + 12s));
  CHECK(breaker.allow(t0 + 12s));
  CHECK(breaker.consecutive_failures() == 0);
}

TEST_CASE("breaker reopens when the probe fails", "[circuit_breaker]") {
  circuit_breaker breaker{2, 10s, 1};
  breaker.on_failure(t0, breaker.allow(t0));
  breaker.on_failure(t0, breaker.allow(t0));
  auto probe = breaker.allow(t0 + 10s);
  REQUIRE(probe);
  breaker.on_failure(t0 + 15s, probe);
  CHECK(breaker.current(t0 + 15s) == state::open);
  // The timer restarts at the probe's failure, not the first opening.
  CHECK_FALSE(breaker.allow(t0 + 20s));
  CHECK_FALSE(breaker.allow(t0 + 24999ms));
  auto second = breaker.allow(t0 + 25s);
  CHECK(second);
  CHECK(breaker.current(t0 + 25s) == state::half_open);
  breaker.on_success(t0 + 26s, second);
  CHECK(breaker.current(t0 + 26s) == state::closed);
  // Closed again with a fresh count: one failure does not reopen it.
  breaker.on_failure(t0 + 27s, breaker.allow(t0 + 27s));
  CHECK(breaker.current(t0 + 27s) == state::closed);
}

TEST_CASE("breaker allows several half-open probes when configured", "[circuit_breaker]") {
  circuit_breaker breaker{1, 5s, 3};
  breaker.on_failure(t0, breaker.allow(t0));
  CHECK(breaker.current(t0) == state::open);
  CHECK(breaker.allow(t0 + 5s));
  CHECK(breaker.allow(t0 + 5s));
  CHECK(breaker.allow(t0 + 5s));
  CHECK_FALSE(breaker.allow(t0 + 5s));
}

TEST_CASE("breaker ignores late results while open", "[circuit_breaker]") {
  circuit_breaker breaker{1, 10s};
  auto a = breaker.allow(t0);
  auto b = breaker.allow(t0);
  auto c = breaker.allow(t0);
  breaker.on_failure(t0, a);
  // Requests admitted before the breaker opened report in afterwards.
  breaker.on_success(t0 + 1s, b);
  CHECK(breaker.current(t0 + 1s) == state::open);
  breaker.on_failure(t0 + 5s, c);
  // The late failure did not push the reopening out to t0 + 15s.
  CHECK(breaker.allow(t0 + 10s));
}

TEST_CASE("breaker replaces a probe that never reports", "[circuit_breaker]") {
  circuit_breaker breaker{1, 10s, 1};
  breaker.on_failure(t0, breaker.allow(t0));
  REQUIRE(breaker.allow(t0 + 10s)); // the probe is lost (transfer cancelled)
  CHECK_FALSE(breaker.allow(t0 + 19s));
  CHECK(breaker.allow(t0 + 20s));
  CHECK_FALSE(breaker.allow(t0 + 20s));
}

TEST_CASE("breaker: only the current probe decides half_open", "[circuit_breaker]") {
  circuit_breaker breaker{1, 10ms, 1};
  // A and B are admitted while closed; A fails and opens the breaker.
  auto a = breaker.allow(t0);
  auto b = breaker.allow(t0);
  REQUIRE(a);
  REQUIRE(b);
  breaker.on_failure(t0 + 1ms, a);
  REQUIRE(breaker.current(t0 + 1ms) == state::open);

  SECTION("a late failure of B does not reopen") {
    auto c = breaker.allow(t0 + 21ms);
    REQUIRE(c);
    CHECK(c.probe);
    breaker.on_failure(t0 + 22ms, b);
    CHECK(breaker.current(t0 + 22ms) == state::half_open);
    // The probe still decides.
    breaker.on_success(t0 + 23ms, c);
    CHECK(breaker.current(t0 + 23ms) == state::closed);
  }
  SECTION("a late success of B does not close") {
    auto c = breaker.allow(t0 + 21ms);
    REQUIRE(c);
    breaker.on_success(t0 + 22ms, b);
    CHECK(breaker.current(t0 + 22ms) == state::half_open);
    CHECK_FALSE(breaker.allow(t0 + 22ms));
    breaker.on_failure(t0 + 23ms, c);
    CHECK(breaker.current(t0 + 23ms) == state::open);
  }
  SECTION("a lost probe's late result does not count after it was replaced") {
    auto lost = breaker.allow(t0 + 11ms);
    REQUIRE(lost);
    auto fresh = breaker.allow(t0 + 21ms); // replaces the lost probe
    REQUIRE(fresh);
    breaker.on_failure(t0 + 22ms, lost);
    CHECK(breaker.current(t0 + 22ms) == state::half_open);
    breaker.on_success(t0 + 23ms, fresh);
    CHECK(breaker.current(t0 + 23ms) == state::closed);
    // B's result from before the opening does not touch the closed count.
    breaker.on_failure(t0 + 24ms, b);
    CHECK(breaker.current(t0 + 24ms) == state::closed);
  }
  SECTION("refused requests report nothing") {
    auto refused = breaker.allow(t0 + 2ms);
    REQUIRE_FALSE(refused);
    auto c = breaker.allow(t0 + 21ms);
    REQUIRE(c);
    breaker.on_failure(t0 + 22ms, refused);
    CHECK(breaker.current(t0 + 22ms) == state::half_open);
  }
}

TEST_CASE("breaker repairs nonsense settings", "[circuit_breaker]") {
  circuit_breaker breaker{0, -5s, 0};
  breaker.on_failure(t0, breaker.allow(t0)); // threshold raised to 1
  CHECK(breaker.consecutive_failures() == 0);
  // open_for raised to 0: half open at once.
  CHECK(breaker.current(t0) == state::half_open);
  auto probe = breaker.allow(t0);
  CHECK(probe);
  breaker.on_failure(t0, probe);
  CHECK(breaker.current(t0) == state::half_open);
  auto second = breaker.allow(t0);
  CHECK(second);
  breaker.on_success(t0, second);
  CHECK(breaker.current(t0) == state::closed);
}

TEST_CASE("breaker registry keeps one breaker per host", "[circuit_breaker]") {
  circuit_breakers registry{2, 10s};
  auto fail_once = [&](const std::string& host) {
    registry.with(host,
                  [](circuit_breaker& breaker) { breaker.on_failure(t0, breaker.allow(t0)); });
  };
  auto state_of = [&](const std::string& host) {
    return registry.with(host, [](circuit_breaker& breaker) { return breaker.current(t0); });
  };
  fail_once("a.example.com:443");
  CHECK(state_of("b.example.com:443") == state::closed);
  CHECK(registry.size() == 2);
  fail_once("a.example.com:443");
  // Settings are shared, state is not.
  CHECK(state_of("a.example.com:443") == state::open);
  CHECK(state_of("b.example.com:443") == state::closed);
  // A host's state stays as hosts are added.
  for (int i = 0; i < 100; ++i)
    state_of("host" + std::to_string(i));
  CHECK(state_of("a.example.com:443") == state::open);
  CHECK(ferry::to_string(state_of("a.example.com:443")) == std::string{"open"});
}

TEST_CASE("breaker: a failed probe makes the host dead until the next half_open period",
          "[circuit_breaker]") {
  circuit_breaker breaker{2, 10s, 1};
  breaker.on_failure(t0, breaker.allow(t0));
  breaker.on_failure(t0, breaker.allow(t0));
  // Opened by failures: callers wait, the host is not dead yet.
  CHECK(breaker.current(t0) == state::open);
  CHECK_FALSE(breaker.dead(t0));
  CHECK_FALSE(breaker.failed_probe());
  auto probe = breaker.allow(t0 + 10s);
  REQUIRE(probe.probe);
  breaker.on_failure(t0 + 10s, probe);
  CHECK(breaker.dead(t0 + 10s));
  CHECK(breaker.dead(t0 + 19s));
  // Half open again: not dead, the next request is a probe.
  CHECK_FALSE(breaker.dead(t0 + 20s));
  CHECK(breaker.failed_probe());
  auto second = breaker.allow(t0 + 20s);
  REQUIRE(second.probe);
  breaker.on_success(t0 + 20s, second);
  CHECK(breaker.current(t0 + 20s) == state::closed);
  CHECK_FALSE(breaker.failed_probe());
  CHECK_FALSE(breaker.dead(t0 + 20s));
}

TEST_CASE("breaker: an abandoned probe gives its place to another at once", "[circuit_breaker]") {
  circuit_breaker breaker{1, 10s, 1};
  auto closed_ticket = breaker.allow(t0);
  breaker.on_failure(t0, closed_ticket);
  auto probe = breaker.allow(t0 + 10s);
  REQUIRE(probe.probe);
  CHECK_FALSE(breaker.allow(t0 + 10s));
  // A ticket of another generation frees nothing.
  CHECK_FALSE(breaker.abandon(closed_ticket));
  CHECK_FALSE(breaker.allow(t0 + 10s));

  CHECK(breaker.abandon(probe));
  CHECK(breaker.current(t0 + 10s) == state::half_open);
  CHECK_FALSE(breaker.failed_probe());
  auto next = breaker.allow(t0 + 10s);
  REQUIRE(next.probe);
  CHECK_FALSE(breaker.allow(t0 + 10s));
  breaker.on_success(t0 + 11s, next);
  CHECK(breaker.current(t0 + 11s) == state::closed);
}
