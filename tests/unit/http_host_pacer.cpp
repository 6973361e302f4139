#include "store/http/host_pacer.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <vector>

using ferry::host_pacer;
using namespace std::chrono_literals;

namespace {

using pacer = host_pacer<int>;
using clock = pacer::clock;

/// Serves `p` at `now`, taking every item offered; returns them in order.
std::vector<int> take_due(pacer& p, clock::time_point now) {
  std::vector<int> taken;
  p.serve(now, [&](int& item) {
    taken.push_back(item);
    return true;
  });
  return taken;
}

} // namespace

TEST_CASE("host_pacer lets items go in order at the request rate", "[host_pacer]") {
  pacer p{{10.0, 1.0, 0, 0}};
  auto t0 = clock::time_point{} + 1h;
  for (int i = 1; i <= 3; ++i)
    p.push(i, 0);
  CHECK(take_due(p, t0) == std::vector<int>{1});
  auto due = p.serve(t0, [](int&) { return true; });
  REQUIRE(due);
  CHECK(*due == t0 + 100ms);
  CHECK(take_due(p, t0 + 100ms) == std::vector<int>{2});
  CHECK(take_due(p, t0 + 200ms) == std::vector<int>{3});
  CHECK(p.empty());
}

TEST_CASE("host_pacer keeps a refused item at the front with its tokens", "[host_pacer]") {
  pacer p{{10.0, 1.0, 0, 0}};
  auto t0 = clock::time_point{} + 1h;
  p.push(1, 0);
  p.push(2, 0);
  // Refused (no permit): it stays first and is not charged a second time.
  CHECK_FALSE(p.serve(t0, [](int&) { return false; }));
  CHECK(p.size() == 2);
  CHECK(take_due(p, t0) == std::vector<int>{1});
  CHECK(take_due(p, t0 + 100ms) == std::vector<int>{2});
}

TEST_CASE("host_pacer holds every waiting item through a cooldown", "[host_pacer]") {
  pacer p{{0, 1.0, 0, 0}}; // no rate: only the cooldown holds
  auto t0 = clock::time_point{} + 1h;
  p.push(1, 0);
  p.push(2, 0);
  p.pause_until(t0 + 3s, t0);
  CHECK(take_due(p, t0 + 2999ms).empty());
  CHECK(take_due(p, t0 + 3s) == std::vector<int>{1, 2});
}

TEST_CASE("host_pacer cuts its rates when asked to slow down, not without a rate", "[host_pacer]") {
  auto t0 = clock::time_point{} + 1h;
  pacer limited{{10.0, 1.0, 1000.0, 0}};
  CHECK(limited.slow_down(t0));
  CHECK(limited.factor() == Approx(0.5));
  // One burst of such answers counts once.
  CHECK_FALSE(limited.slow_down(t0 + 10ms));
  pacer unlimited{{0, 1.0, 0, 0}};
  CHECK_FALSE(unlimited.slow_down(t0));
  CHECK(unlimited.factor() == 1.0);
}

TEST_CASE("host_pacer takes a waiting item out by a match", "[host_pacer]") {
  pacer p{{0, 1.0, 0, 0}};
  p.push(1, 0);
  p.push(2, 0);
  auto taken = p.take_if([](int item) { return item == 2; });
  REQUIRE(taken);
  CHECK(*taken == 2);
  CHECK_FALSE(p.take_if([](int item) { return item == 2; }));
  CHECK(p.size() == 1);
  CHECK(p.front() == 1);
}
