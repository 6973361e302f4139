#include "actors/policy/rate_budget.hpp"

#include <catch2/catch.hpp>

using ferry::errc;
using ferry::rate_budget_request;
using ferry::share_rate_budget;

namespace {

rate_budget_request totals(double tps_total, int64_t bytes_total, uint32_t shards,
                           std::string concurrent = {}) {
  rate_budget_request request;
  request.tps_total = tps_total;
  request.bytes_total = bytes_total;
  request.shard_count = shards;
  request.concurrent_shards = std::move(concurrent);
  return request;
}

/// The message of a refused request; empty when it was accepted.
std::string refusal(const rate_budget_request& request) {
  auto share = share_rate_budget(request);
  if (share)
    return {};
  CHECK(share.error().code() == errc::config_error);
  return share.error().message();
}

} // namespace

TEST_CASE("without totals the shard keeps --tps and --bwlimit as given", "[rate_budget]") {
  rate_budget_request request;
  request.tps = 12.5;
  request.bytes_per_second = 1000;
  request.shard_count = 4;
  auto share = share_rate_budget(request);
  REQUIRE(share);
  CHECK(share->requests_per_second == 12.5);
  CHECK(share->bytes_per_second == 1000);
  CHECK_FALSE(share->from_total);
  CHECK(share->describe(request).empty());
  auto none = share_rate_budget(rate_budget_request{});
  REQUIRE(none);
  CHECK(none->requests_per_second == 0);
  CHECK(none->bytes_per_second == 0);
}

TEST_CASE("totals are split over the shard count by default", "[rate_budget]") {
  auto request = totals(200, 100 << 20, 4);
  auto share = share_rate_budget(request);
  REQUIRE(share);
  CHECK(share->from_total);
  CHECK(share->concurrent == 4);
  CHECK(share->requests_per_second == 50);
  CHECK(share->bytes_per_second == 25 << 20);
  CHECK(share->describe(request) ==
        "rate budget split over 4 shard(s) at once: this shard takes 50 "
        "requests/s of --tps-total 200 and 26214400 bytes/s of "
        "--bwlimit-total 104857600 bytes/s");
}

TEST_CASE("the shards running at once (--concurrent-shards) set the divisor", "[rate_budget]") {
  auto request = totals(200, 0, 16, "4");
  auto share = share_rate_budget(request);
  REQUIRE(share);
  CHECK(share->concurrent == 4);
  CHECK(share->requests_per_second == 50);
  CHECK(share->bytes_per_second == 0);
  CHECK(share->describe(request) ==
        "rate budget split over 4 shard(s) at once: this shard takes 50 requests/s of --tps-total "
        "200");
}

TEST_CASE("shares round down so that they never add up to more than the total", "[rate_budget]") {
  auto share = share_rate_budget(totals(100, 10, 3));
  REQUIRE(share);
  CHECK(share->requests_per_second == Approx(33.333).margin(1e-9));
  CHECK(share->requests_per_second * 3 <= 100);
  CHECK(share->bytes_per_second == 3);
  // Exact shares stay exact.
  for (uint32_t k : {1u, 2u, 4u, 5u, 8u, 10u, 20u, 40u}) {
    auto exact = share_rate_budget(totals(200, 0, k));
    REQUIRE(exact);
    CHECK(exact->requests_per_second == Approx(200.0 / k).epsilon(1e-12));
  }
  for (uint32_t k = 1; k <= 64; ++k) {
    auto split = share_rate_budget(totals(97.3, 1'000'003, k));
    REQUIRE(split);
    CHECK(split->requests_per_second * k <= 97.3 + 1e-9);
    CHECK(split->requests_per_second * k > 97.3 - 0.001 * k);
    CHECK(split->bytes_per_second * k <= 1'000'003);
  }
}

TEST_CASE("more shards at once than there are shards is clamped to the shard count",
          "[rate_budget]") {
  auto request = totals(200, 0, 2, "8");
  auto share = share_rate_budget(request);
  REQUIRE(share);
  CHECK(share->clamped);
  CHECK(share->concurrent == 2);
  CHECK(share->requests_per_second == 100);
  CHECK(share->describe(request).find("(--concurrent-shards 8 is more than the 2 shards; taken "
                                      "as 2)") != std::string::npos);
}

TEST_CASE("nonsense rate budgets are usage errors", "[rate_budget]") {
  CHECK(refusal(totals(200, 0, 4, "0")).find("--concurrent-shards '0' is not a number") == 0);
  CHECK_FALSE(refusal(totals(200, 0, 4, "-1")).empty());
  CHECK_FALSE(refusal(totals(200, 0, 4, "abc")).empty());
  CHECK_FALSE(refusal(totals(200, 0, 4, "4097")).empty());
  CHECK_FALSE(refusal(totals(200, 0, 4, "99999999999999999999")).empty());
  CHECK(refusal(totals(200, 0, 4, "")).empty());

  auto both = totals(200, 0, 4);
  both.tps = 50;
  CHECK(refusal(both).find("not both") != std::string::npos);
  auto both_bytes = totals(0, 1000, 4);
  both_bytes.bytes_per_second = 100;
  CHECK(refusal(both_bytes).find("not both") != std::string::npos);

  rate_budget_request alone;
  alone.shard_count = 4;
  alone.concurrent_shards = "2";
  alone.tps = 10;
  CHECK(refusal(alone).find("--concurrent-shards splits") == 0);

  CHECK_FALSE(refusal(totals(-1, 0, 4)).empty());
  CHECK_FALSE(refusal(totals(0, -1, 4)).empty());
  // Too little to share: each shard would get nothing.
  CHECK(refusal(totals(0.003, 0, 4)).find("leaves each less than 0.001 requests/s") !=
        std::string::npos);
  CHECK(refusal(totals(0, 3, 4)).find("less than a byte a second") != std::string::npos);
}
