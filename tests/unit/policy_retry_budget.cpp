#include "actors/policy/retry_budget.hpp"

#include <catch2/catch.hpp>

using ferry::retry_budget;

namespace {

void start(retry_budget& budget, int requests) {
  for (int i = 0; i < requests; ++i)
    budget.request_started();
}

int admit_all(retry_budget& budget) {
  int admitted = 0;
  while (budget.try_start_retry())
    ++admitted;
  return admitted;
}

} // namespace

TEST_CASE("retry budget with no active requests allows the minimum", "[retry_budget]") {
  retry_budget budget{20.0, 3};
  CHECK(budget.active_requests() == 0);
  CHECK(budget.max_active_retries() == 3);
  CHECK(admit_all(budget) == 3);
  CHECK(budget.active_retries() == 3);
  // Releasing one retry makes room for exactly one more.
  budget.retry_finished();
  CHECK(budget.try_start_retry());
  CHECK_FALSE(budget.try_start_retry());
}

TEST_CASE("retry budget with one active request allows the minimum", "[retry_budget]") {
  retry_budget budget{20.0, 3};
  start(budget, 1);
  CHECK(budget.max_active_retries() == 3);
  CHECK(admit_all(budget) == 3);
}

TEST_CASE("retry budget scales with active requests", "[retry_budget]") {
  retry_budget budget{20.0, 3};
  start(budget, 100);
  CHECK(budget.max_active_retries() == 20);
  CHECK(admit_all(budget) == 20);
  // Fewer requests in flight shrink the budget; retries already running are
  // not revoked, but no new ones start until they drop below it.
  for (int i = 0; i < 60; ++i)
    budget.request_finished();
  CHECK(budget.max_active_retries() == 8);
  CHECK_FALSE(budget.try_start_retry());
  for (int i = 0; i < 12; ++i)
    budget.retry_finished();
  CHECK(budget.active_retries() == 8);
  CHECK_FALSE(budget.try_start_retry());
  budget.retry_finished();
  CHECK(budget.try_start_retry());
}

TEST_CASE("retry budget rounds the share down", "[retry_budget]") {
  retry_budget budget{20.0, 0};
  start(budget, 4); // 0.8 retries
  CHECK(budget.max_active_retries() == 0);
  CHECK_FALSE(budget.try_start_retry());
  budget.request_started(); // 1.0
  CHECK(budget.try_start_retry());
  CHECK_FALSE(budget.try_start_retry());
  start(budget, 4); // 9 requests: 1.8
  CHECK_FALSE(budget.try_start_retry());
  budget.request_started(); // 2.0
  CHECK(budget.try_start_retry());
}

TEST_CASE("retry budget clamps its settings", "[retry_budget]") {
  retry_budget none{0.0, 0};
  start(none, 100);
  CHECK_FALSE(none.try_start_retry());

  retry_budget all{250.0, -4}; // 100% at most, minimum 0
  start(all, 5);
  CHECK(admit_all(all) == 5);

  retry_budget negative{-10.0, 1};
  start(negative, 100);
  CHECK(admit_all(negative) == 1);
}

TEST_CASE("retry budget counters never go negative", "[retry_budget]") {
  retry_budget budget{20.0, 1};
  budget.request_finished();
  budget.retry_finished();
  CHECK(budget.active_requests() == 0);
  CHECK(budget.active_retries() == 0);
  // The stray calls handed out no extra budget.
  CHECK(admit_all(budget) == 1);
  budget.request_started();
  CHECK(budget.active_requests() == 1);
}
