#include "actors/rate_limiter.hpp"

#include "actors/engine.hpp"
#include "deterministic_system.hpp"
#include "store/folder/folder_store.hpp"
#include "store/http/http_engine.hpp"
#include "store/lfs/lfs_store.hpp"
#include "test_support.hpp"

#include <caf/all.hpp>

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using namespace ferry;

namespace Catch {

/// Failed time checks print as nanoseconds rather than "{?}".
template <>
struct StringMaker<caf::timespan> {
  static std::string convert(caf::timespan d) { return std::to_string(d.count()) + "ns"; }
};

} // namespace Catch

namespace {

/// One answered acquisition: who asked, and when the answer arrived
/// (relative to the start of the test).
struct grant {
  std::string label;
  caf::timespan at;
};

using grant_log = std::shared_ptr<std::vector<grant>>;

/// (label, bytes) of one acquisition.
using ask = std::pair<std::string, int64_t>;

struct limiter_fixture : ferry::testing::deterministic_system {
  caf::actor_clock::time_point t0 = sched.clock().now();
  grant_log grants = std::make_shared<std::vector<grant>>();
  /// Labels of acquisitions answered with an error.
  std::shared_ptr<std::vector<std::string>> refused = std::make_shared<std::vector<std::string>>();
  rate_limiter_actor limiter;

  ~limiter_fixture() {
    if (limiter)
      caf::anon_send_exit(limiter, caf::exit_reason::user_shutdown);
    sched.run();
  }

  void start(rate_limits limits) {
    limiter = sys.spawn(rate_limiter, limits);
    sched.run();
  }

  /// One client asks for every acquisition in `asks`, in order, and logs the
  /// answers as they arrive.
  void acquire(const std::string& host, std::vector<ask> asks) {
    // Spawn arguments rather than captures: CAF 0.17 binds a null reference
    // when a function actor is spawned without arguments.
    sys.spawn(
      [](caf::event_based_actor* self, rate_limiter_actor limiter, std::string host,
         std::vector<ask> asks, grant_log log, std::shared_ptr<std::vector<std::string>> refused,
         caf::actor_clock::time_point start) {
        for (const auto& a : asks) {
          auto label = a.first;
          self->request(limiter, caf::infinite, atom::acquire_v, host, a.second)
            .then(
              [=](bool) {
                log->push_back({label, self->clock().now() - start});
              },
              [=](const caf::error&) { refused->push_back(label); });
        }
      },
      limiter, host, std::move(asks), grants, refused, t0);
    sched.run();
  }

  void cooldown(const std::string& host, caf::timespan duration) {
    caf::anon_send(limiter, atom::cooldown_v, host, duration);
    sched.run();
  }

  /// `host` answered 429 or 503.
  void throttled(const std::string& host) {
    caf::anon_send(limiter, atom::throttled_v, host);
    sched.run();
  }

  /// Acquisitions waiting for `host`, as the limiter reports them.
  int pending(const std::string& host) {
    auto out = std::make_shared<int>(-1);
    sys.spawn(
      [](caf::event_based_actor* self, rate_limiter_actor limiter, std::string host,
         std::shared_ptr<int> out) {
        self->request(limiter, caf::infinite, atom::get_v, host).then([=](int n) { *out = n; });
      },
      limiter, host, out);
    sched.run();
    return *out;
  }

  /// Moves the clock forward and delivers whatever became due; returns the
  /// number of timers that fired.
  size_t advance(caf::timespan d) {
    auto fired = sched.clock().advance_time(d);
    sched.run();
    return fired;
  }

  caf::timespan elapsed() const { return sched.clock().now() - t0; }

  std::vector<std::string> labels() const {
    std::vector<std::string> out;
    for (const auto& g : *grants)
      out.push_back(g.label);
    return out;
  }

  /// When `label` was answered; -1 s if it was not.
  caf::timespan at(const std::string& label) const {
    for (const auto& g : *grants)
      if (g.label == label)
        return g.at;
    return -1s;
  }
};

using strings = std::vector<std::string>;

} // namespace

TEST_CASE_METHOD(limiter_fixture, "an unlimited limiter answers at once", "[rate_limiter]") {
  start({});
  acquire("a", {{"1", 0}, {"2", int64_t{1} << 40}, {"3", 5}});
  CHECK(labels() == strings{"1", "2", "3"});
  CHECK(at("3") == 0s);
  CHECK(pending("a") == 0);
  CHECK_FALSE(sched.has_pending_timeout());
}

TEST_CASE_METHOD(limiter_fixture, "requests per second are paced once the burst is spent",
                 "[rate_limiter]") {
  start({2.0, 1.0, 0.0, 0.0});
  acquire("a", {{"1", 0}, {"2", 0}, {"3", 0}});
  CHECK(labels() == strings{"1"});
  CHECK(at("1") == 0s);
  CHECK(pending("a") == 2);

  CHECK(advance(499ms) == 0);
  CHECK(labels() == strings{"1"});
  CHECK(advance(1ms) == 1);
  CHECK(labels() == strings{"1", "2"});
  CHECK(at("2") == 500ms);
  CHECK(pending("a") == 1);

  advance(499ms);
  CHECK(labels() == strings{"1", "2"});
  advance(1ms);
  CHECK(labels() == strings{"1", "2", "3"});
  CHECK(at("3") == 1000ms);
  CHECK(pending("a") == 0);
  CHECK_FALSE(sched.has_pending_timeout());

  // After an idle spell the bucket is full again, but holds only the burst.
  advance(10s);
  acquire("a", {{"4", 0}, {"5", 0}});
  CHECK(at("4") == elapsed());
  CHECK(grants->size() == 4);
  advance(500ms);
  CHECK(at("5") == at("4") + 500ms);
}

TEST_CASE_METHOD(limiter_fixture, "acquisitions for a host are answered in the order they came",
                 "[rate_limiter]") {
  SECTION("from one caller") {
    start({1.0, 1.0, 0.0, 0.0});
    acquire("a", {{"a", 0}, {"b", 0}, {"c", 0}, {"d", 0}, {"e", 0}});
    for (int i = 0; i < 5; ++i)
      advance(1s);
    CHECK(labels() == strings{"a", "b", "c", "d", "e"});
    CHECK(at("e") == 4s);
  }

  SECTION("from several callers") {
    start({1.0, 1.0, 0.0, 0.0});
    acquire("a", {{"x1", 0}, {"x2", 0}});
    acquire("a", {{"y1", 0}});
    acquire("a", {{"x3", 0}});
    CHECK(pending("a") == 3);
    for (int i = 0; i < 3; ++i)
      advance(1s);
    CHECK(labels() == strings{"x1", "x2", "y1", "x3"});
    CHECK(at("x3") == 3s);
  }

  SECTION("a request without payload does not overtake a large one") {
    // Only bytes are limited, so "b" alone would go at once.
    start({0.0, 1.0, 1000.0, 0.0});
    acquire("a", {{"a", 1500}, {"b", 0}, {"c", 100}});
    CHECK(grants->empty());
    advance(500ms);
    CHECK(labels() == strings{"a", "b"});
    advance(99ms);
    CHECK(labels() == strings{"a", "b"});
    advance(1ms);
    CHECK(labels() == strings{"a", "b", "c"});
    CHECK(at("c") == 600ms);
  }
}

TEST_CASE_METHOD(limiter_fixture, "a byte rate delays in proportion to the bytes",
                 "[rate_limiter]") {
  // 1000 bytes/s with one second's worth (1000 bytes) of burst.
  start({0.0, 1.0, 1000.0, 0.0});
  acquire("a", {{"burst", 1000}, {"half", 500}, {"huge", 3000}, {"free", 0}});
  CHECK(labels() == strings{"burst"});
  CHECK(pending("a") == 3);

  advance(499ms);
  CHECK(labels() == strings{"burst"});
  advance(1ms);
  CHECK(labels() == strings{"burst", "half"});

  // Three times the burst is still granted, three seconds later.
  advance(2999ms);
  CHECK(labels() == strings{"burst", "half"});
  advance(1ms);
  CHECK(labels() == strings{"burst", "half", "huge", "free"});
  CHECK(at("huge") == 3500ms);
  CHECK(at("free") == 3500ms);
  CHECK(pending("a") == 0);
}

TEST_CASE_METHOD(limiter_fixture, "hosts are limited independently", "[rate_limiter]") {
  start({1.0, 1.0, 0.0, 0.0});
  acquire("a", {{"a1", 0}, {"a2", 0}});
  acquire("b", {{"b1", 0}, {"b2", 0}});
  CHECK(labels() == strings{"a1", "b1"});
  CHECK(pending("a") == 1);
  CHECK(pending("b") == 1);
  CHECK(pending("never-seen") == 0);
  advance(1s);
  CHECK(grants->size() == 4);
  CHECK(at("a2") == 1s);
  CHECK(at("b2") == 1s);
}

TEST_CASE_METHOD(limiter_fixture, "a cooldown holds pending and new acquisitions of its host",
                 "[rate_limiter]") {
  start({});
  cooldown("a", 2s);
  acquire("a", {{"pending", 0}});
  CHECK(grants->empty());
  CHECK(pending("a") == 1);

  // A longer cooldown extends the one the pending acquisition waits for.
  cooldown("a", 5s);
  advance(1s);
  acquire("a", {{"new", 10}});
  acquire("b", {{"other host", 10}});
  CHECK(labels() == strings{"other host"});
  CHECK(pending("a") == 2);

  advance(1s);
  CHECK(labels() == strings{"other host"});
  advance(2999ms);
  CHECK(labels() == strings{"other host"});
  advance(1ms);
  CHECK(labels() == strings{"other host", "pending", "new"});
  CHECK(at("pending") == 5s);
  CHECK(at("new") == 5s);

  // Once it is over, the host is free again.
  acquire("a", {{"after", 0}});
  CHECK(at("after") == 5s);
  CHECK(pending("a") == 0);
}

TEST_CASE_METHOD(limiter_fixture, "a 429 or 503 halves the host's rate, which then recovers",
                 "[rate_limiter]") {
  start({10.0, 1.0, 0.0, 0.0});
  acquire("a", {{"1", 0}, {"2", 0}, {"3", 0}});
  advance(100ms);
  advance(100ms);
  CHECK(at("3") == 200ms);

  throttled("a");
  acquire("a", {{"4", 0}, {"5", 0}});
  // A second answer of the same burst cuts nothing more.
  throttled("a");
  advance(200ms);
  advance(200ms);
  CHECK(at("4") == 400ms);
  CHECK(at("5") == 600ms);
  // Other hosts keep their rate.
  acquire("b", {{"b1", 0}, {"b2", 0}});
  advance(100ms);
  CHECK(at("b2") == at("b1") + 100ms);

  // Four seconds after the cut: 0.5 + 4 x 0.05 of the limit, 7 a second.
  advance(elapsed() < 4200ms ? 4200ms - elapsed() : 0ms);
  acquire("a", {{"m1", 0}, {"m2", 0}});
  advance(143ms);
  REQUIRE(grants->size() == 9);
  auto spacing = std::chrono::duration<double>(at("m2") - at("m1")).count();
  CHECK(spacing == Approx(1.0 / 7).epsilon(0.001));

  // Ten seconds after the cut the full rate is back.
  advance(10s);
  acquire("a", {{"f1", 0}, {"f2", 0}});
  advance(100ms);
  CHECK(at("f2") == at("f1") + 100ms);
}

TEST_CASE_METHOD(limiter_fixture, "a host without a rate limit has nothing to cut",
                 "[rate_limiter]") {
  start({});
  throttled("a");
  acquire("a", {{"1", 0}, {"2", 0}, {"3", 10}});
  CHECK(labels() == strings{"1", "2", "3"});
  CHECK_FALSE(sched.has_pending_timeout());
}

TEST_CASE_METHOD(limiter_fixture, "a shorter cooldown does not shorten a longer one",
                 "[rate_limiter]") {
  start({});
  cooldown("a", 5s);
  advance(1s);
  cooldown("a", 1s);
  acquire("a", {{"x", 0}});
  advance(1s);
  CHECK(grants->empty());
  advance(2999ms);
  CHECK(grants->empty());
  advance(1ms);
  CHECK(labels() == strings{"x"});
  CHECK(at("x") == 5s);
}

TEST_CASE_METHOD(limiter_fixture, "a huge cooldown holds the host instead of overflowing",
                 "[rate_limiter]") {
  start({});
  cooldown("a", caf::timespan::max());
  acquire("a", {{"held", 0}});
  CHECK(grants->empty());
  CHECK(pending("a") == 1);
  advance(24h);
  CHECK(grants->empty());
  // Clamped to a year, not forever.
  advance(24h * 364);
  CHECK(labels() == strings{"held"});
  CHECK(at("held") == 24h * 365);
}

TEST_CASE_METHOD(limiter_fixture, "requests paced before a cooldown resume their pace after it",
                 "[rate_limiter]") {
  start({2.0, 1.0, 0.0, 0.0});
  acquire("a", {{"1", 0}, {"2", 0}});
  CHECK(labels() == strings{"1"});
  cooldown("a", 5s);

  // "2" was due at 500 ms; the wake-up for that time finds it held back.
  advance(500ms);
  CHECK(labels() == strings{"1"});
  acquire("a", {{"3", 0}});
  advance(4499ms);
  CHECK(labels() == strings{"1"});

  // After the pause the queue is paced again, not released all at once.
  advance(1ms);
  CHECK(labels() == strings{"1"});
  advance(499ms);
  CHECK(labels() == strings{"1"});
  advance(1ms);
  CHECK(labels() == strings{"1", "2"});
  CHECK(at("2") == 5500ms);
  advance(500ms);
  CHECK(labels() == strings{"1", "2", "3"});
  CHECK(at("3") == 6000ms);
}

TEST_CASE_METHOD(limiter_fixture, "stopping the limiter refuses the acquisitions still waiting",
                 "[rate_limiter]") {
  start({1.0, 1.0, 0.0, 0.0});
  acquire("a", {{"1", 0}, {"2", 0}, {"3", 0}});
  CHECK(labels() == strings{"1"});
  caf::anon_send_exit(limiter, caf::exit_reason::user_shutdown);
  sched.run();
  CHECK(labels() == strings{"1"});
  CHECK(*refused == strings{"2", "3"});
}

TEST_CASE("the rate limiter counts requests only to stores without HTTP requests",
          "[rate_limiter]") {
  testing::temp_dir dir;
  auto folder_opened = folder_store::open(dir.path / "store");
  REQUIRE(folder_opened);
  std::shared_ptr<object_store> folder = std::move(*folder_opened);
  auto http = std::make_shared<http_engine>();
  auto lfs = make_action_store(http, {std::string(64, 'a'), 1},
                               {"http://127.0.0.1:1/object", {}, std::nullopt}, {});

  engine_config config;
  CHECK_FALSE(requests_paced_by_http(config));
  // Only LFS server actions: the HTTP engine paces each request.
  config.http = http;
  CHECK(requests_paced_by_http(config));
  config.store = folder;
  CHECK_FALSE(requests_paced_by_http(config));
  config.store = lfs;
  CHECK(requests_paced_by_http(config));
  // Copies: by the destination, else by the source.
  config.source = folder;
  CHECK(requests_paced_by_http(config));
  config.store = folder;
  config.source = lfs;
  CHECK(requests_paced_by_http(config));
  config.source = folder;
  CHECK_FALSE(requests_paced_by_http(config));
}
