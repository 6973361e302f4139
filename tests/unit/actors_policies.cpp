// The supervisor's per-host policies on the deterministic scheduler:
// Retry-After, the rate limiter's shared cooldown, circuit breakers and the
// retry budget.

#include "actors_fixture.hpp"
#include "fault_store.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace std::chrono_literals;
using namespace ferry;
using namespace ferry::testing;

namespace {

constexpr const char* host = "lfs.test:443";

struct policy_fixture : engine_fixture {
  /// Acquisitions waiting in the rate limiter for `name`.
  int waiting_in_limiter(const std::string& name) {
    auto count = std::make_shared<int>(-1);
    sys.spawn(
      [](caf::event_based_actor* self, rate_limiter_actor limiter, std::string name,
         std::shared_ptr<int> out) {
        self->request(limiter, caf::infinite, atom::get_v, name).then([=](int n) { *out = n; });
      },
      limiter, name, count);
    sched.run();
    return *count;
  }

  /// The attempt errors the journal recorded for the finished transfer of `oid`.
  size_t recorded_errors(const std::string& oid) {
    auto history = db->history(10);
    REQUIRE(history);
    for (auto& record : *history)
      if (record.oid == oid)
        return record.errors.size();
    FAIL("no finished record for " << oid);
    return 0;
  }
};

} // namespace

TEST_CASE_METHOD(policy_fixture, "a Retry-After delays the retry and pauses the whole host",
                 "[policies]") {
  auto faults = std::make_shared<fault_store>(folder, 1, 0);
  faults->host = host;
  faults->failure_code = errc::unavailable;
  faults->failure_retry_after = 30s;
  start(faults);
  auto first = upload_job(1, random_bytes(100 << 10, 11), "first.bin");
  auto first_outcome = submit(first);
  sched.run();
  REQUIRE_FALSE(first_outcome->has_value());
  CHECK(faults->opened == 1);

  // Another object for the same host arrives during the cooldown: it waits
  // in the rate limiter instead of reaching the server.
  auto second = upload_job(2, random_bytes(50 << 10, 12), "second.bin");
  auto second_outcome = submit(second);
  sched.run();
  CHECK(waiting_in_limiter(host) == 1);
  CHECK(faults->opened == 1);

  // The backoff alone would be at most 250 ms; the server asked for 30 s.
  CHECK(sched.clock().advance_time(30s - 1ms) == 0);
  sched.run();
  CHECK(faults->opened == 1);
  CHECK_FALSE(first_outcome->has_value());
  CHECK_FALSE(second_outcome->has_value());

  CHECK(sched.clock().advance_time(1ms) >= 1);
  sched.run();
  REQUIRE(first_outcome->has_value());
  REQUIRE(second_outcome->has_value());
  CHECK((*first_outcome)->ok());
  CHECK((*first_outcome)->attempts == 2);
  CHECK((*second_outcome)->ok());
  CHECK((*second_outcome)->attempts == 1);
  CHECK(faults->opened == 3);
  CHECK(waiting_in_limiter(host) == 0);
}

TEST_CASE_METHOD(policy_fixture, "a Retry-After never makes a permanent failure retryable",
                 "[policies]") {
  auto faults = std::make_shared<fault_store>(folder, 1, 0);
  faults->host = host;
  faults->failure_code = errc::permission_denied;
  faults->failure_retry_after = 30s;
  start(faults);
  auto outcome = submit(upload_job(1, random_bytes(10 << 10, 13), "denied.bin"));
  sched.run();
  REQUIRE(outcome->has_value());
  CHECK((*outcome)->code == errc::permission_denied);
  CHECK((*outcome)->attempts == 1);
  CHECK(faults->opened == 1);
}

TEST_CASE_METHOD(policy_fixture,
                 "an open circuit defers attempts to its probe, and a successful "
                 "probe lets the host's jobs go on",
                 "[policies]") {
  config.breaker_failures = 2;
  config.breaker_open_for = 5s;
  auto faults = std::make_shared<fault_store>(folder, 2, 0);
  faults->host = host;
  start(faults);
  auto first = upload_job(1, random_bytes(100 << 10, 14), "first.bin");
  auto first_outcome = submit(first);
  sched.run();
  REQUIRE(sched.has_pending_timeout());
  sched.trigger_timeouts();
  sched.run();
  // Two transient failures in a row: the circuit opened when the second
  // one came in.
  CHECK(faults->opened == 2);
  auto probe_at = sched.clock().now() + 5s;

  // The retry's backoff ends before the probe time: it is deferred, and so
  // is a new job for the same host. Neither counts as an attempt.
  REQUIRE(sched.has_pending_timeout());
  sched.clock().trigger_timeout();
  sched.run();
  auto second = upload_job(2, random_bytes(30 << 10, 15), "second.bin");
  auto second_outcome = submit(second);
  sched.run();
  CHECK(faults->opened == 2);
  REQUIRE(sched.clock().now() < probe_at - 1ms);
  sched.clock().advance_time(probe_at - 1ms - sched.clock().now());
  sched.run();
  CHECK(faults->opened == 2);
  CHECK_FALSE(first_outcome->has_value());
  CHECK_FALSE(second_outcome->has_value());

  sched.clock().advance_time(1ms);
  sched.run();
  REQUIRE(first_outcome->has_value());
  REQUIRE(second_outcome->has_value());
  CHECK((*first_outcome)->ok());
  CHECK((*first_outcome)->attempts == 3);
  CHECK((*second_outcome)->ok());
  CHECK((*second_outcome)->attempts == 1);
  CHECK(faults->opened == 4);
  // The deferral was not recorded as a failure either.
  CHECK(recorded_errors(first.oid) == 2);
  CHECK(recorded_errors(second.oid) == 0);
}

TEST_CASE_METHOD(policy_fixture, "permanent failures do not open a circuit", "[policies]") {
  config.breaker_failures = 2;
  auto faults = std::make_shared<fault_store>(folder, 0, 0);
  faults->host = host;
  start(faults);
  // Three objects the store does not have (a 404 each), then one it has.
  for (uint64_t id = 1; id <= 3; ++id) {
    auto missing = random_bytes(1000, static_cast<uint32_t>(20 + id));
    auto outcome =
      submit({id, direction::download, sha256::of(missing.data(), missing.size()), 1000, {}, {}});
    sched.run();
    REQUIRE(outcome->has_value());
    CHECK((*outcome)->code == errc::not_found);
  }
  auto bytes = random_bytes(20 << 10, 24);
  auto present = submit(stored_download_job(4, bytes));
  sched.run();
  REQUIRE(present->has_value());
  CHECK((*present)->ok());
  CHECK((*present)->attempts == 1);
  CHECK_FALSE(sched.has_pending_timeout());
}

TEST_CASE_METHOD(policy_fixture,
                 "a retry over the retry budget waits for a running retry to "
                 "finish",
                 "[policies]") {
  config.retry_budget_percent = 0;
  config.retry_budget_min = 1;
  auto faults = std::make_shared<fault_store>(folder, 2, 0);
  start(faults);
  auto a = upload_job(1, random_bytes(200 << 10, 25), "a.bin");
  auto b = upload_job(2, random_bytes(200 << 10, 26), "b.bin");
  auto a_outcome = submit(a);
  auto b_outcome = submit(b);
  sched.run();
  // Both first attempts failed; both retries become due at once.
  REQUIRE(faults->opened == 2);
  sched.trigger_timeouts();
  // One message at a time. The second retry may begin only once the first
  // has come and gone (its writer opened and its worker ended), though the
  // first's record may still wait in the journal for its group's sync.
  bool overlapped = false;
  while (sched.try_run_once()) {
    auto active = db->active();
    REQUIRE(active);
    auto in_flight = std::count_if(active->begin(), active->end(), [](const transfer_record& r) {
      return r.state == transfer_state::in_flight;
    });
    if (in_flight == 2 && faults->opened < 3)
      overlapped = true;
  }
  CHECK_FALSE(overlapped);

  REQUIRE(a_outcome->has_value());
  REQUIRE(b_outcome->has_value());
  CHECK((*a_outcome)->ok());
  CHECK((*b_outcome)->ok());
  CHECK((*a_outcome)->attempts == 2);
  CHECK((*b_outcome)->attempts == 2);
  CHECK(faults->opened == 4);
  // Waiting for the budget was not recorded as a failure.
  CHECK(recorded_errors(a.oid) == 1);
  CHECK(recorded_errors(b.oid) == 1);
}

TEST_CASE_METHOD(policy_fixture,
                 "without a store, a request without a server action is refused "
                 "with a way to configure one",
                 "[policies]") {
  start(nullptr);
  auto outcome = submit(upload_job(1, "abc", "abc.txt"));
  sched.run();
  REQUIRE(outcome->has_value());
  CHECK((*outcome)->code == errc::config_error);
  CHECK_THAT((*outcome)->message, Catch::Contains("no store configured"));
  CHECK_THAT((*outcome)->message, Catch::Contains("ferry install --store"));
  CHECK_THAT((*outcome)->message, Catch::Contains("ferry.store"));
  CHECK_FALSE(newest_history().has_value());
}

TEST_CASE_METHOD(policy_fixture,
                 "bytes damaged on the way from a server are fetched again from "
                 "the start; a damaged local copy is final",
                 "[policies]") {
  auto faults = std::make_shared<fault_store>(folder, 0, 0);
  faults->corrupt_streams = 1;
  auto bytes = random_bytes((1 << 20) + 99, 27);
  auto job = stored_download_job(1, bytes);

  SECTION("from a server") {
    faults->host = host;
    start(faults);
    auto outcome = submit(job);
    sched.run();
    REQUIRE_FALSE(outcome->has_value());
    REQUIRE(sched.has_pending_timeout());
    sched.trigger_timeouts();
    sched.run();
    REQUIRE(outcome->has_value());
    REQUIRE((*outcome)->ok());
    CHECK((*outcome)->attempts == 2);
    CHECK(read_file((*outcome)->path) == bytes);
    // The damaged bytes were not kept: the second attempt started at 0.
    CHECK(faults->read_offsets == std::vector<int64_t>{0, 0});
  }

  SECTION("from a local store") {
    start(faults);
    auto outcome = submit(job);
    sched.run();
    REQUIRE(outcome->has_value());
    CHECK((*outcome)->code == errc::hash_mismatch);
    CHECK((*outcome)->attempts == 1);
  }
}

TEST_CASE_METHOD(policy_fixture,
                 "a job that keeps failing is given up once ferry.maxRetryTime "
                 "has passed, with attempts left",
                 "[policies]") {
  config.max_attempts = 100;
  config.max_retry_time = 3s;
  config.backoff_base = 1s;
  config.backoff_max = 1s;
  config.breaker_failures = 1000;
  auto faults = std::make_shared<fault_store>(folder, 1000, 0);
  faults->host = host;
  start(faults);
  auto started = sched.clock().now();
  auto outcome = submit(upload_job(1, random_bytes(10 << 10, 30), "slow.bin"));
  sched.run();
  for (int i = 0; i < 200 && !outcome->has_value() && sched.has_pending_timeout(); ++i) {
    sched.clock().trigger_timeout();
    sched.run();
  }
  REQUIRE(outcome->has_value());
  CHECK((*outcome)->code == errc::io_error);
  CHECK((*outcome)->attempts > 1);
  CHECK((*outcome)->attempts < 100);
  CHECK((*outcome)->message.find("gave up after " + std::to_string((*outcome)->attempts) +
                                 " attempts over 3s (ferry.maxRetryTime): ") == 0);
  CHECK((*outcome)->message.find("injected write failure") != std::string::npos);
  // No attempt started after the limit, and the job gave up before it.
  CHECK(sched.clock().now() - started <= 3s);
  CHECK(faults->opened == (*outcome)->attempts);
}

TEST_CASE_METHOD(policy_fixture,
                 "after a failed probe a host's jobs fail at once until a later "
                 "probe succeeds; other hosts go on; one notice per change",
                 "[policies]") {
  config.breaker_failures = 2;
  config.breaker_open_for = 5s;
  config.max_attempts = 10;
  auto notices = std::make_shared<std::vector<std::string>>();
  config.notice = [notices](const std::string& text) { notices->push_back(text); };
  auto faults = std::make_shared<fault_store>(folder, 1000, 0);
  faults->host = host;
  start(faults);
  auto contains = [](const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
  };

  // Two failures in a row open the circuit: one notice.
  auto first = submit(upload_job(1, random_bytes(10 << 10, 31), "first.bin"));
  sched.run();
  REQUIRE(sched.has_pending_timeout());
  sched.clock().trigger_timeout();
  sched.run();
  CHECK(faults->opened == 2);
  auto probe_at = sched.clock().now() + 5s;
  REQUIRE(notices->size() == 1);
  CHECK(contains(notices->at(0), "ferry: lfs.test:443 is failing (2 failures in a row"));
  CHECK(contains(notices->at(0), "pausing transfers to it for 5 s"));

  // A second job waits for the circuit; the first one's retry too.
  auto second = submit(upload_job(2, random_bytes(10 << 10, 32), "second.bin"));
  sched.run();
  sched.clock().advance_time(probe_at - sched.clock().now());
  sched.run();
  // One probe went out at the probe time and failed: both jobs failed at
  // once, without another wait.
  CHECK(faults->opened == 3);
  REQUIRE(first->has_value());
  REQUIRE(second->has_value());
  for (auto* outcome : {first.get(), second.get()}) {
    CHECK((*outcome)->code == errc::unavailable);
    CHECK(contains((*outcome)->message, "lfs.test:443 is not answering (last error: "));
    CHECK(contains((*outcome)->message, "injected write failure"));
    CHECK(contains((*outcome)->message, "the circuit opened after 2 failures and the probe at"));
  }
  REQUIRE(notices->size() == 2);
  CHECK(contains(notices->at(1), "ferry: lfs.test:443 is not answering: the probe failed"));

  // A new job for the dead host fails at once, without an attempt.
  auto third = submit(upload_job(3, random_bytes(10 << 10, 33), "third.bin"));
  sched.run();
  REQUIRE(third->has_value());
  CHECK((*third)->code == errc::unavailable);
  CHECK((*third)->attempts == 0);
  CHECK(contains((*third)->message, "lfs.test:443 is not answering"));
  CHECK(faults->opened == 3);

  // Another host is not affected.
  faults->heal();
  faults->host = "other.test:443";
  auto other = submit(upload_job(4, random_bytes(10 << 10, 34), "other.bin"));
  sched.run();
  REQUIRE(other->has_value());
  CHECK((*other)->ok());
  CHECK((*other)->attempts == 1);
  faults->host = host;
  auto still_dead = submit(upload_job(5, random_bytes(10 << 10, 35), "fifth.bin"));
  sched.run();
  REQUIRE(still_dead->has_value());
  CHECK((*still_dead)->code == errc::unavailable);

  // Once the circuit is half open again, the next job is the probe; its
  // success closes the circuit and the host's jobs go on.
  sched.clock().advance_time(5s);
  sched.run();
  auto probe = submit(upload_job(6, random_bytes(10 << 10, 36), "sixth.bin"));
  sched.run();
  REQUIRE(probe->has_value());
  CHECK((*probe)->ok());
  auto after = submit(upload_job(7, random_bytes(10 << 10, 37), "seventh.bin"));
  sched.run();
  REQUIRE(after->has_value());
  CHECK((*after)->ok());
  REQUIRE(notices->size() == 3);
  CHECK(notices->at(2) == "ferry: lfs.test:443 is answering again; transfers to it go on");
}
