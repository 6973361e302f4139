#include "actors/policy/concurrency_control.hpp"

#include <catch2/catch.hpp>

#include <vector>

using namespace std::chrono_literals;
using ferry::concurrency_control;

namespace {

constexpr int64_t mebibyte = 1 << 20;

void succeed(concurrency_control& control, int copies, std::chrono::milliseconds latency,
             int64_t bytes = mebibyte) {
  for (int i = 0; i < copies; ++i)
    control.on_success(latency, bytes);
}

/// `copies` successes of `bytes` each taking `latency`, then the limit
/// expected after them.
struct step {
  int copies;
  std::chrono::milliseconds latency;
  int limit_after;
  int64_t bytes = mebibyte;
};

void run(concurrency_control& control, const std::vector<step>& steps) {
  for (size_t i = 0; i < steps.size(); ++i) {
    succeed(control, steps[i].copies, steps[i].latency, steps[i].bytes);
    INFO("after step " << i);
    CHECK(control.limit() == steps[i].limit_after);
  }
}

void fail(concurrency_control& control, int copies, bool throttled) {
  for (int i = 0; i < copies; ++i)
    control.on_failure(throttled);
}

} // namespace

TEST_CASE("fixed concurrency never changes", "[concurrency]") {
  auto control = concurrency_control::fixed(8);
  CHECK_FALSE(control.is_adaptive());
  CHECK(control.limit() == 8);
  succeed(control, 100, 10ms);
  CHECK(control.limit() == 8);
  fail(control, 10, true);
  fail(control, 10, false);
  CHECK(control.limit() == 8);
  succeed(control, 100, 10s);
  CHECK(control.limit() == 8);

  CHECK(concurrency_control::fixed(0).limit() == 1);
  CHECK(concurrency_control::fixed(-5).limit() == 1);
  CHECK(concurrency_control::fixed(8).ceiling() == 8);
}

TEST_CASE("adaptive concurrency starts within its bounds", "[concurrency]") {
  CHECK(concurrency_control::adaptive().is_adaptive());
  CHECK(concurrency_control::adaptive().limit() == 4);
  CHECK(concurrency_control::adaptive(0, 10).limit() == 1);
  CHECK(concurrency_control::adaptive(100, 10).limit() == 10);
  CHECK(concurrency_control::adaptive(4, 0).limit() == 1);
  CHECK(concurrency_control::adaptive(4, 0).ceiling() == 1);
  CHECK(concurrency_control::adaptive(4, 64).ceiling() == 64);
}

TEST_CASE("adaptive concurrency grows by one per window of steady successes", "[concurrency]") {
  auto control = concurrency_control::adaptive(4, 16);
  for (int expected = 5; expected <= 16; ++expected) {
    // A window is limit() outcomes; nothing changes before it is complete.
    succeed(control, control.limit() - 1, 100ms);
    CHECK(control.limit() == expected - 1);
    succeed(control, 1, 100ms);
    CHECK(control.limit() == expected);
  }
  succeed(control, 16 * 5, 100ms);
  CHECK(control.limit() == 16);
}

TEST_CASE("adaptive concurrency stops growing when copies get slower", "[concurrency]") {
  auto control = concurrency_control::adaptive(4, 64);
  run(control, {
                 {4, 100ms, 5}, // the best window: 100 ms per MiB
                 // Twice as slow: no growth, window after window.
                 {5, 200ms, 5},
                 {5, 200ms, 5},
                 {5, 200ms, 5},
                 // Clearly slower than twice: one less.
                 {5, 201ms, 4},
                 // Back within 1.5x of the best: growth resumes. The window
                 // after the shrink still covers the 5 copies started before it.
                 {5, 150ms, 5},
               });
}

TEST_CASE("adaptive concurrency judges a window by its median", "[concurrency]") {
  auto control = concurrency_control::adaptive(5, 64);
  run(control, {
                 {5, 100ms, 6},
                 // One straggler among six does not make the window slow.
                 {5, 100ms, 6},
                 {1, 5000ms, 7},
                 // Most of a window slow does.
                 {2, 100ms, 7},
                 {5, 500ms, 6},
               });
}

TEST_CASE("adaptive concurrency compares small objects by a 64 KiB floor", "[concurrency]") {
  auto control = concurrency_control::adaptive(2, 64);
  run(control, {
                 {2, 20ms, 3, 64 << 10},
                 // 1 KiB in the same time is not 64 times slower per byte.
                 {3, 20ms, 4, 1 << 10},
                 {4, 20ms, 5, 0},
               });
}

TEST_CASE("adaptive concurrency halves once for a burst of failures", "[concurrency]") {
  bool throttled = GENERATE(true, false);
  CAPTURE(throttled);
  auto control = concurrency_control::adaptive(16, 64);
  fail(control, 1, throttled);
  CHECK(control.limit() == 8);
  // The other 15 copies in flight at that moment fail too: still one cut.
  fail(control, 15, throttled);
  CHECK(control.limit() == 8);
  // Failures that go on after the window (16 outcomes) halve again.
  fail(control, 1, throttled);
  CHECK(control.limit() == 8);
  fail(control, 1, throttled);
  CHECK(control.limit() == 4);
}

TEST_CASE("adaptive concurrency grows again after a cut", "[concurrency]") {
  auto control = concurrency_control::adaptive(16, 64);
  fail(control, 1, true);
  REQUIRE(control.limit() == 8);
  run(control, {{15, 100ms, 8}, {1, 100ms, 9}});
}

TEST_CASE("adaptive concurrency never goes below one", "[concurrency]") {
  auto control = concurrency_control::adaptive(2, 8);
  for (int i = 0; i < 100; ++i) {
    control.on_failure(i % 2 == 0);
    CHECK(control.limit() == 1);
  }
  // It grows again once copies succeed steadily.
  succeed(control, 2, 100ms);
  CHECK(control.limit() == 2);
}

TEST_CASE("adaptive concurrency recovers when the peer itself got slower", "[concurrency]") {
  auto control = concurrency_control::adaptive(1, 8);
  run(control, {
                 {1, 100ms, 2},
                 {2, 300ms, 1},
                 // At one copy the slowness is the peer's: the new measure.
                 {2, 300ms, 1},
                 {1, 300ms, 2},
               });
}

TEST_CASE("adaptive concurrency with a slow start doubles until a window does not grow",
          "[concurrency]") {
  auto control = concurrency_control::adaptive(4, 64, concurrency_control::growth::slow_start);
  run(control, {
                 // Nothing changes before a window is complete.
                 {3, 100ms, 4},
                 {1, 100ms, 8},
                 {8, 100ms, 16},
                 // Within 1.5x of the best window: still steady.
                 {16, 140ms, 32},
                 // Twice as slow: no growth, and the slow start is over.
                 {32, 200ms, 32},
                 // Fast again: one more per window from here on.
                 {32, 100ms, 33},
                 {33, 100ms, 34},
               });
}

TEST_CASE("adaptive concurrency with a slow start stops doubling at its ceiling", "[concurrency]") {
  auto control = concurrency_control::adaptive(4, 20, concurrency_control::growth::slow_start);
  run(control, {{4, 100ms, 8}, {8, 100ms, 16}, {16, 100ms, 20}, {20, 100ms, 20}});
  CHECK(control.ceiling() == 20);
}

TEST_CASE("adaptive concurrency ends its slow start at the first failure", "[concurrency]") {
  bool throttled = GENERATE(true, false);
  CAPTURE(throttled);
  auto control = concurrency_control::adaptive(8, 64, concurrency_control::growth::slow_start);
  fail(control, 1, throttled);
  REQUIRE(control.limit() == 4);
  // The window after the cut covers the 8 copies started before it; then
  // the limit grows by one per window.
  run(control, {{7, 100ms, 4}, {1, 100ms, 5}, {5, 100ms, 6}});
}

TEST_CASE("adaptive concurrency is deterministic", "[concurrency]") {
  auto first = concurrency_control::adaptive(4, 32);
  auto second = concurrency_control::adaptive(4, 32);
  std::vector<int> first_limits;
  std::vector<int> second_limits;
  uint32_t seed = 12345;
  for (int i = 0; i < 2000; ++i) {
    seed = seed * 1664525u + 1013904223u;
    auto latency = std::chrono::milliseconds{50 + seed % 400};
    auto bytes = static_cast<int64_t>(seed % (8 << 20));
    bool failure = seed % 37 == 0;
    for (auto* control : {&first, &second}) {
      if (failure)
        control->on_failure(seed % 2 == 0);
      else
        control->on_success(latency, bytes);
    }
    first_limits.push_back(first.limit());
    second_limits.push_back(second.limit());
    REQUIRE(first.limit() >= 1);
    REQUIRE(first.limit() <= 32);
  }
  CHECK(first_limits == second_limits);
}
