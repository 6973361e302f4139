// The SUPERVISOR's rules, driven directly with explicit time points.

#include "actors/policy/admission.hpp"

#include <catch2/catch.hpp>

#include <vector>

using namespace std::chrono_literals;
using namespace ferry;

namespace {

using start_verdict = admission::start_decision;
using finish_verdict = admission::finish_decision;
using host_change = admission::host_change;

const auto t0 = admission::time_point{} + 1h;
constexpr const char* host_a = "a.test:443";
constexpr const char* host_b = "b.test:443";

const status down{errc::unavailable, "connection refused"};

/// Two failures open a host's circuit for 10 s; backoff up to 1 s.
engine_config settings() {
  engine_config config;
  config.breaker_failures = 2;
  config.breaker_open_for = 10s;
  config.max_attempts = 10;
  config.backoff_base = 1s;
  config.backoff_max = 1s;
  config.max_retry_time = 0ms;
  config.seed = 7;
  return config;
}

admission make_rules(const engine_config& config = settings()) {
  return admission{config, [] { return std::string{"14:03:27"}; }};
}

/// Starts the next attempt of `id` at `now`; it must be admitted.
void run(admission& rules, uint64_t id, admission::time_point now) {
  auto decision = rules.start(id, now);
  REQUIRE(decision.what == start_verdict::start);
  rules.attempt_started(id, now);
}

/// Rules that let one retry run at a time (retry budget 0 %, at least 1),
/// with jobs 1 to `count`, on no host, each failed once and due a retry.
admission one_retry_at_a_time(uint64_t count) {
  auto config = settings();
  config.retry_budget_percent = 0;
  config.retry_budget_min = 1;
  auto rules = make_rules(config);
  for (uint64_t id = 1; id <= count; ++id) {
    rules.add(id, "");
    run(rules, id, t0);
    CHECK(rules.finish(id, down, t0).what == finish_verdict::retry);
  }
  return rules;
}

/// Opens the circuit of host_a at t0 with jobs 1 and 2 failing once each.
void open_host_a(admission& rules) {
  rules.add(1, host_a);
  rules.add(2, host_a);
  run(rules, 1, t0);
  run(rules, 2, t0);
  auto first = rules.finish(1, down, t0);
  CHECK(first.what == finish_verdict::retry);
  CHECK(first.host.what == host_change::none);
  auto second = rules.finish(2, down, t0);
  CHECK(second.what == finish_verdict::retry);
  REQUIRE(second.host.what == host_change::opened);
}

/// host_a's circuit opened at t0 by jobs 1 and 2 (open_host_a()), job 3
/// on the same host, and after the cool-off job 2 probing the host.
void probing_host_a(admission& rules) {
  rules.add(3, host_a);
  open_host_a(rules);
  CHECK(rules.start(1, t0 + 1s).what == start_verdict::wait_for_circuit);
  auto probe = rules.start(2, t0 + 10s);
  REQUIRE(probe.what == start_verdict::start);
  REQUIRE(probe.probe);
  rules.attempt_started(2, t0 + 10s);
}

} // namespace

TEST_CASE("a host's circuit opens after its transient failures; other hosts go on", "[admission]") {
  auto rules = make_rules();
  rules.add(3, host_b);
  open_host_a(rules);

  auto late = rules.start(1, t0 + 1s);
  CHECK(late.what == start_verdict::wait_for_circuit);
  CHECK(late.wait == 9s);
  CHECK(rules.find(1)->waiting_for_circuit);
  // The attempts already made are not repeated by waiting.
  CHECK(rules.find(1)->attempts == 1);

  auto other = rules.start(3, t0 + 1s);
  CHECK(other.what == start_verdict::start);
  CHECK_FALSE(other.probe);
}

TEST_CASE("the circuit's opening is one notice that names the host and the failure",
          "[admission]") {
  auto rules = make_rules();
  rules.add(1, host_a);
  rules.add(2, host_a);
  run(rules, 1, t0);
  run(rules, 2, t0);
  CHECK(rules.finish(1, down, t0).host.notice.empty());
  auto opened =
    rules.finish(2, status{errc::unavailable, "GET https://user:secret@a.test/x: 503"}, t0);
  CHECK(opened.host.what == host_change::opened);
  CHECK(opened.host.error == "unavailable: GET https://a.test/x: 503");
  CHECK(opened.host.notice == "ferry: a.test:443 is failing (2 failures in a row, last: "
                              "unavailable: GET https://a.test/x: 503); pausing transfers to it "
                              "for 10 s");
}

TEST_CASE("after the cool-off one job probes the host; its success closes the circuit and "
          "wakes the parked jobs",
          "[admission]") {
  auto rules = make_rules();
  probing_host_a(rules);
  // The probe is out: the others wait for its outcome, a full cool-off at most.
  auto parked = rules.start(3, t0 + 10s);
  CHECK(parked.what == start_verdict::wait_for_circuit);
  CHECK(parked.wait == 10s);

  auto closed = rules.finish(2, status::success(), t0 + 11s);
  CHECK(closed.what == finish_verdict::done);
  CHECK(closed.host.what == host_change::closed);
  CHECK(closed.host.notice == "ferry: a.test:443 is answering again; transfers to it go on");
  CHECK(closed.host.wake == std::vector<uint64_t>{1, 3});
  CHECK_FALSE(rules.find(3)->waiting_for_circuit);
  auto next = rules.start(3, t0 + 11s);
  CHECK(next.what == start_verdict::start);
  CHECK_FALSE(next.probe);
}

TEST_CASE("a failed probe makes the host dead: its jobs fail at once with a message that "
          "says why, until the next probe",
          "[admission]") {
  auto rules = make_rules();
  rules.add(3, host_a);
  open_host_a(rules);
  run(rules, 1, t0 + 10s);
  CHECK(rules.start(3, t0 + 10s).what == start_verdict::wait_for_circuit);

  auto probe_failed = rules.finish(1, down, t0 + 11s);
  const std::string message =
    "a.test:443 is not answering (last error: unavailable: connection refused); the circuit "
    "opened after 2 failures and the probe at 14:03:27 failed; run the command again once "
    "a.test:443 is reachable";
  CHECK(probe_failed.what == finish_verdict::fail_dead_host);
  CHECK(probe_failed.code == errc::unavailable);
  CHECK(probe_failed.message == message);
  CHECK(probe_failed.host.what == host_change::reopened);
  CHECK(probe_failed.host.notice ==
        "ferry: a.test:443 is not answering: the probe failed (unavailable: connection "
        "refused); its transfers fail at once, and one more probe goes out in 10 s");
  // The parked job does not wait for a dead host.
  CHECK(probe_failed.host.wake == std::vector<uint64_t>{3});
  auto parked = rules.start(3, t0 + 11s);
  CHECK(parked.what == start_verdict::fail_dead_host);
  CHECK(parked.message == message);

  // A new job during the next cool-off fails too; after it, it is the probe.
  rules.add(4, host_a);
  CHECK(rules.start(4, t0 + 20s).what == start_verdict::fail_dead_host);
  auto next_probe = rules.start(4, t0 + 21s);
  CHECK(next_probe.what == start_verdict::start);
  CHECK(next_probe.probe);
  rules.attempt_started(4, t0 + 21s);
  // A second failed probe tells the user nothing new.
  auto again = rules.finish(4, down, t0 + 22s);
  CHECK(again.host.what == host_change::reopened);
  CHECK(again.host.notice.empty());
}

TEST_CASE("permanent failures end the job at once and say nothing about the host", "[admission]") {
  auto config = settings();
  config.breaker_failures = 1;
  auto rules = make_rules(config);
  rules.add(1, host_a);
  rules.add(2, host_a);
  run(rules, 1, t0);
  auto missing = rules.finish(1, status{errc::not_found, "no such object"}, t0);
  CHECK(missing.what == finish_verdict::give_up);
  CHECK(missing.code == errc::not_found);
  CHECK(missing.message == "not_found: no such object");
  CHECK(missing.host.what == host_change::none);

  // One transient failure opens this circuit; the permanent one did not.
  run(rules, 2, t0);
  auto transient = rules.finish(2, down, t0);
  CHECK(transient.what == finish_verdict::retry);
  CHECK(transient.delay <= 1s);
  CHECK_FALSE(transient.as_asked);
  CHECK(transient.host.what == host_change::opened);
  CHECK(rules.find(2)->retry);
}

TEST_CASE("a Retry-After sets the retry's delay and pauses the whole host", "[admission]") {
  auto rules = make_rules();
  rules.add(1, host_a);
  run(rules, 1, t0);
  auto asked = rules.finish(1, down.with_retry_after(30s), t0);
  CHECK(asked.what == finish_verdict::retry);
  CHECK(asked.delay == 30s);
  CHECK(asked.as_asked);
  CHECK(asked.host.cooldown == 30s);
  CHECK(asked.host.slow_down);
}

TEST_CASE("a 429 or 503 asks the host's rate down; other failures do not", "[admission]") {
  auto config = settings();
  config.breaker_failures = 100;
  auto rules = make_rules(config);
  for (uint64_t id = 1; id <= 4; ++id)
    rules.add(id, host_a);
  run(rules, 1, t0);
  auto throttled = rules.finish(
    1, status{errc::unavailable, "PUT: server is overloaded (HTTP 429 Too Many Requests)"}, t0);
  CHECK(throttled.host.slow_down);
  CHECK(throttled.host.cooldown == 0s);
  run(rules, 2, t0);
  CHECK_FALSE(rules.finish(2, down, t0).host.slow_down);
  run(rules, 3, t0);
  CHECK_FALSE(rules.finish(3, status{errc::not_found, "HTTP 404 Not Found"}, t0).host.slow_down);
  run(rules, 4, t0);
  CHECK_FALSE(rules.finish(4, status::success(), t0).host.slow_down);
}

TEST_CASE("a wait for another writer is neither a retry nor a failure of the host", "[admission]") {
  auto config = settings();
  config.breaker_failures = 1;
  auto rules = make_rules(config);
  rules.add(1, host_a);
  run(rules, 1, t0);
  auto busy = rules.finish(1, status{errc::busy, "locked"}, t0);
  CHECK(busy.what == finish_verdict::retry);
  CHECK(busy.host.what == host_change::none);
  CHECK_FALSE(rules.find(1)->retry);
  CHECK(rules.find(1)->busy_waits == 1);
}

TEST_CASE("a retry over the retry budget waits for a retry in flight and gets its slot when "
          "that one ends",
          "[admission]") {
  auto rules = one_retry_at_a_time(4);

  run(rules, 1, t0 + 1s);
  CHECK(rules.find(1)->retry_slot);
  auto second = rules.start(2, t0 + 1s);
  CHECK(second.what == start_verdict::wait_for_budget);
  CHECK(second.retries_in_flight == 1);
  CHECK(rules.start(3, t0 + 1s).what == start_verdict::wait_for_budget);
  CHECK(rules.start(4, t0 + 1s).what == start_verdict::wait_for_budget);

  // The slot goes to the oldest waiting retry, which then starts at once.
  auto ended = rules.finish(1, status::success(), t0 + 2s);
  CHECK(ended.what == finish_verdict::done);
  CHECK(ended.wake == std::vector<uint64_t>{2});
  CHECK(rules.find(2)->retry_slot);
  CHECK_FALSE(rules.find(3)->retry_slot);
  CHECK(rules.budget().active_retries() == 1);
  run(rules, 2, t0 + 2s);

  // A job concluded while it waited is skipped.
  rules.remove(3);
  CHECK(rules.finish(2, status::success(), t0 + 3s).wake == std::vector<uint64_t>{4});
  run(rules, 4, t0 + 3s);
  CHECK(rules.finish(4, status::success(), t0 + 4s).wake.empty());
  CHECK(rules.budget().active_retries() == 0);
}

TEST_CASE("a retry over the retry budget with no retry in flight starts anyway", "[admission]") {
  auto config = settings();
  config.retry_budget_percent = 0;
  config.retry_budget_min = 0;
  auto rules = make_rules(config);
  rules.add(1, "");
  run(rules, 1, t0);
  CHECK(rules.finish(1, down, t0).what == finish_verdict::retry);
  // Nothing would ever finish to wake it.
  CHECK(rules.start(1, t0 + 1s).what == start_verdict::start);
}

TEST_CASE("however many objects fail at once, each is retried on its own budget", "[admission]") {
  // A big migration meets a few transient failures a second; no engine-wide
  // count of retries may turn them into final failures.
  auto config = settings();
  auto rules = make_rules(config);
  constexpr uint64_t objects = 500;
  for (uint64_t id = 1; id <= objects; ++id) {
    rules.add(id, "");
    run(rules, id, t0);
  }
  for (uint64_t id = 1; id <= objects; ++id) {
    INFO("object " << id);
    CHECK(rules.finish(id, down, t0 + std::chrono::milliseconds{id}).what == finish_verdict::retry);
  }
}

TEST_CASE("a wait for the circuit that would end past maxRetryTime gives up", "[admission]") {
  auto config = settings();
  config.max_retry_time = 5s;
  auto rules = make_rules(config);
  open_host_a(rules);
  auto timed_out = rules.start(1, t0 + 1s);
  CHECK(timed_out.what == start_verdict::give_up);
  CHECK(timed_out.code == errc::unavailable);
  CHECK(timed_out.message == "gave up after 1 attempt over 5s (ferry.maxRetryTime): "
                             "unavailable: connection refused");
}

TEST_CASE("waits read the way a person reads them", "[admission]") {
  CHECK(describe_wait(250ms) == "250 ms");
  CHECK(describe_wait(30s) == "30 s");
  CHECK(describe_wait(4500ms) == "4.5 s");
  CHECK(redact("see https://me:pw@host/x and http://h/y") == "see https://host/x and http://h/y");
}

TEST_CASE("a cancelled job gives back its place in flight and its retry slot", "[admission]") {
  auto rules = one_retry_at_a_time(2);
  run(rules, 1, t0 + 1s);
  CHECK(rules.budget().active_requests() == 1);
  CHECK(rules.start(2, t0 + 1s).what == start_verdict::wait_for_budget);

  CHECK(rules.cancel(1) == std::vector<uint64_t>{2});
  CHECK(rules.find(1) == nullptr);
  CHECK(rules.budget().active_requests() == 0);
  CHECK(rules.find(2)->retry_slot);
  CHECK(rules.budget().active_retries() == 1);
  // A job cancelled again, or never known, changes nothing.
  CHECK(rules.cancel(1).empty());
  CHECK(rules.budget().active_retries() == 1);
}

TEST_CASE("a cancelled probe lets a parked job probe the host at once, and says nothing about it",
          "[admission]") {
  auto rules = make_rules();
  probing_host_a(rules);
  CHECK(rules.start(3, t0 + 10s).what == start_verdict::wait_for_circuit);

  CHECK(rules.cancel(2) == std::vector<uint64_t>{1, 3});
  auto next = rules.start(1, t0 + 10s);
  REQUIRE(next.what == start_verdict::start);
  CHECK(next.probe);
  rules.attempt_started(1, t0 + 10s);
  CHECK(rules.start(3, t0 + 10s).what == start_verdict::wait_for_circuit);
  auto closed = rules.finish(1, status::success(), t0 + 11s);
  CHECK(closed.host.what == host_change::closed);
}

TEST_CASE("engines given one circuit registry share each host's circuit", "[admission]") {
  auto config = settings();
  config.circuits =
    std::make_shared<circuit_breakers>(config.breaker_failures, config.breaker_open_for);
  auto first = make_rules(config);
  auto second = make_rules(config);
  second.add(7, host_a);
  second.add(8, host_b);
  open_host_a(first);

  // The other engine's job to that host waits for the circuit; to another
  // host it goes on.
  CHECK(second.start(7, t0 + 1s).what == start_verdict::wait_for_circuit);
  CHECK(second.start(8, t0 + 1s).what == start_verdict::start);

  // Its job is the probe after the cool-off, and when that fails, the
  // first engine's jobs fail at once too.
  auto probe = second.start(7, t0 + 10s);
  REQUIRE(probe.what == start_verdict::start);
  CHECK(probe.probe);
  second.attempt_started(7, t0 + 10s);
  CHECK(second.finish(7, down, t0 + 11s).what == finish_verdict::fail_dead_host);
  auto dead = first.start(1, t0 + 12s);
  CHECK(dead.what == start_verdict::fail_dead_host);
  CHECK(dead.message ==
        "a.test:443 is not answering (last error: unavailable: connection refused); its circuit "
        "opened after 2 failures and a probe sent for another repository failed; run the command "
        "again once a.test:443 is reachable");

  // Without a shared registry each engine has its own.
  auto alone = make_rules();
  alone.add(9, host_a);
  CHECK(alone.start(9, t0 + 12s).what == start_verdict::start);
}
