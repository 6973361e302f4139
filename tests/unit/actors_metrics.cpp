// What the supervisor tells its metrics registry about hosts: Retry-After
// cooldowns and circuit states (docs/metrics.md).

#include "actors_fixture.hpp"
#include "fault_store.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using namespace ferry;
using namespace ferry::testing;

namespace {

constexpr const char* host = "lfs.test:443";

struct metrics_fixture : engine_fixture {
  metrics_fixture() {
    describe_transfer_metrics(*metrics, "test");
    config.metrics = metrics;
  }

  /// The one circuit state that is 1 for `host`, or "" if not exactly one.
  std::string circuit() {
    std::string shown;
    int ones = 0;
    for (const char* state : {"closed", "open", "half_open"})
      if (metrics->value(metric::host_circuit_state, {{"host", host}, {"state", state}}) == 1)
        shown = state, ++ones;
    return ones == 1 ? shown : "";
  }

  std::shared_ptr<metrics_registry> metrics = std::make_shared<metrics_registry>();
};

} // namespace

TEST_CASE_METHOD(metrics_fixture, "a Retry-After is counted as the host's cooldown", "[metrics]") {
  auto faults = std::make_shared<fault_store>(folder, 1, 0);
  faults->host = host;
  faults->failure_code = errc::unavailable;
  faults->failure_retry_after = 30s;
  start(faults);
  auto outcome = submit(upload_job(1, random_bytes(10 << 10, 21), "first.bin"));
  sched.run();
  REQUIRE_FALSE(outcome->has_value());
  CHECK(circuit() == "closed");
  CHECK(metrics->value(metric::host_cooldowns, {{"host", host}}) == 1);
  CHECK(metrics->value(metric::host_cooldown, {{"host", host}}) == 30);
  CHECK(metrics->value(metric::retries, {{"direction", "upload"}, {"store", "folder"}}) == 1);
  sched.clock().advance_time(30s);
  sched.run();
  REQUIRE(outcome->has_value());
  CHECK((*outcome)->ok());
  CHECK(metrics->value(metric::host_cooldowns, {{"host", host}}) == 1);
}

TEST_CASE_METHOD(metrics_fixture, "a host's circuit state goes from closed to open and back",
                 "[metrics]") {
  config.breaker_failures = 2;
  config.breaker_open_for = 5s;
  auto faults = std::make_shared<fault_store>(folder, 2, 0);
  faults->host = host;
  start(faults);
  auto outcome = submit(upload_job(1, random_bytes(10 << 10, 22), "first.bin"));
  sched.run();
  CHECK(circuit() == "closed");
  sched.trigger_timeouts();
  sched.run();
  REQUIRE(faults->opened == 2);
  CHECK(circuit() == "open");
  // The probe goes through once the circuit is half open, and succeeds.
  sched.clock().advance_time(5s);
  sched.run();
  REQUIRE(outcome->has_value());
  CHECK((*outcome)->ok());
  CHECK(circuit() == "closed");
}
