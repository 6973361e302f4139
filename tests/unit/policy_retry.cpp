#include "actors/policy/retry_policy.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using namespace ferry;
using clock_type = retry_policy::clock;

TEST_CASE("classification separates transient from permanent failures", "[retry]") {
  CHECK(classify(errc::io_error) == retry_class::transient);
  CHECK(classify(errc::unavailable) == retry_class::transient);
  CHECK(classify(errc::busy) == retry_class::transient);
  CHECK(classify(errc::hash_mismatch) == retry_class::permanent);
  CHECK(classify(errc::size_mismatch) == retry_class::permanent);
  CHECK(classify(errc::not_found) == retry_class::permanent);
  CHECK(classify(errc::invalid_request) == retry_class::permanent);
  CHECK(classify(errc::path_rejected) == retry_class::permanent);
  CHECK(classify(errc::no_space) == retry_class::permanent);
  CHECK(classify(errc::permission_denied) == retry_class::permanent);
  CHECK(classify(errc::internal) == retry_class::permanent);
}

TEST_CASE("retry policy retries transient failures with bounded backoff", "[retry]") {
  retry_policy policy{4, backoff{100ms, 1s, 3}};
  auto now = clock_type::time_point{} + 1h;
  status flaky{errc::io_error, "read failed"};
  for (int attempt = 1; attempt < 4; ++attempt) {
    auto d = policy.decide(flaky, attempt, 0, now);
    REQUIRE(d.what == retry_decision::retry);
    CHECK(d.delay <= backoff{100ms, 1s, 0}.ceiling(attempt));
    CHECK(d.explain(flaky, attempt).empty());
  }
  auto last = policy.decide(flaky, 4, 0, now);
  CHECK(last.what == retry_decision::exhausted);
  auto text = last.explain(flaky, 4);
  CHECK(text.find("gave up after 4 attempts") != std::string::npos);
  CHECK(text.find("read failed") != std::string::npos);
}

TEST_CASE("retry policy reports permanent failures at once", "[retry]") {
  retry_policy policy{5, backoff{100ms, 1s, 3}};
  status bad{errc::hash_mismatch, "source does not hash to its oid"};
  auto d = policy.decide(bad, 1, 0, clock_type::now());
  CHECK(d.what == retry_decision::permanent);
  CHECK(d.explain(bad, 1) == bad.to_string());
}

TEST_CASE("retry policy waits for another writer without using the attempt budget", "[retry]") {
  retry_policy policy{2, backoff{100ms, 1s, 3}, 5};
  auto now = clock_type::time_point{} + 1h;
  status locked{errc::busy, "object is being written by another process"};
  // Five waits, each the full (unjittered) backoff ceiling, none of them
  // counted against the two attempts.
  for (int wait = 1; wait <= 5; ++wait) {
    auto d = policy.decide(locked, 0, wait, now);
    REQUIRE(d.what == retry_decision::retry);
    CHECK(d.delay == backoff{100ms, 1s, 0}.ceiling(wait));
  }
  auto given_up = policy.decide(locked, 0, 6, now);
  CHECK(given_up.what == retry_decision::exhausted);
  CHECK(given_up.explain(locked, 6).find("waiting for another writer") != std::string::npos);
  // Ordinary failures still have their full budget after the waits.
  status flaky{errc::io_error, "read failed"};
  CHECK(policy.decide(flaky, 1, 5, now).what == retry_decision::retry);
  CHECK(policy.decide(flaky, 2, 5, now).what == retry_decision::exhausted);
}

TEST_CASE("retry policy waits at least as long as the server asked", "[retry]") {
  retry_policy policy{3, backoff{100ms, 1s, 3}};
  auto now = clock_type::time_point{} + 1h;
  auto throttled = status{errc::unavailable, "429 Too Many Requests"}.with_retry_after(30s);
  auto d = policy.decide(throttled, 1, 0, now);
  REQUIRE(d.what == retry_decision::retry);
  CHECK(d.delay == 30s);
  // A short wait leaves the jittered backoff in place, as a floor under it.
  auto brief = status{errc::io_error, "reset"}.with_retry_after(1ms);
  for (int attempt = 1; attempt < 3; ++attempt) {
    auto short_wait = policy.decide(brief, attempt, 0, now);
    REQUIRE(short_wait.what == retry_decision::retry);
    CHECK(short_wait.delay >= 1ms);
    CHECK(short_wait.delay <= backoff{100ms, 1s, 0}.ceiling(attempt));
  }
  // A busy wait with a Retry-After also waits for the longer of the two.
  auto locked = status{errc::busy, "locked"}.with_retry_after(5s);
  CHECK(policy.decide(locked, 0, 1, now).delay == 5s);
}

TEST_CASE("retry policy never retries a permanent failure or a spent budget because the server "
          "named a wait",
          "[retry]") {
  retry_policy policy{2, backoff{100ms, 1s, 3}};
  auto now = clock_type::time_point{} + 1h;
  auto forbidden = status{errc::permission_denied, "403 Forbidden"}.with_retry_after(10s);
  auto d = policy.decide(forbidden, 1, 0, now);
  CHECK(d.what == retry_decision::permanent);
  CHECK(d.delay == 0ms);
  auto throttled = status{errc::unavailable, "503 Service Unavailable"}.with_retry_after(10s);
  CHECK(policy.decide(throttled, 2, 0, now).what == retry_decision::exhausted);
}

TEST_CASE("retry policy gives up a retry that would start past the retry time", "[retry]") {
  retry_policy policy{100, backoff{10s, 10s, 3}, 60, 30s};
  auto first = clock_type::time_point{} + 1h;
  status flaky{errc::unavailable, "connection refused"};
  // Without a first attempt there is no bound.
  CHECK(policy.decide(flaky, 1, 0, first + 25s).what == retry_decision::retry);
  auto d = policy.decide(flaky, 4, 0, first + 30s, first);
  REQUIRE(d.what == retry_decision::timed_out);
  CHECK(d.explain(flaky, 4) ==
        "gave up after 4 attempts over 30s (ferry.maxRetryTime): unavailable: connection refused");
  CHECK(policy.decide(flaky, 1, 0, first, first).what == retry_decision::retry);
  // Waiting for another writer keeps its own limit.
  status busy{errc::busy, "locked"};
  CHECK(policy.decide(busy, 0, 1, first + 1h, first).what == retry_decision::retry);
  CHECK(go_duration(std::chrono::minutes{5}) == "5m0s");
  CHECK(go_duration(std::chrono::seconds{20}) == "20s");
  CHECK(go_duration(std::chrono::milliseconds{1500}) == "1.5s");
  CHECK(go_duration(std::chrono::hours{1}) == "1h0m0s");
}
