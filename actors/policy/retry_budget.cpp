#include "actors/policy/retry_budget.hpp"

#include <algorithm>
#include <cmath>

namespace ferry {

retry_budget::retry_budget(double budget_percent, int min_retry_concurrency)
    // NaN fails both comparisons of std::clamp's contract, so map it to 0 first.
    : budget_percent_(std::isnan(budget_percent) ? 0.0 : std::clamp(budget_percent, 0.0, 100.0)),
      min_retry_concurrency_(std::max(min_retry_concurrency, 0)) {}

void retry_budget::request_started() { ++active_requests_; }

void retry_budget::request_finished() {
  if (active_requests_ > 0)
    --active_requests_;
}

int retry_budget::max_active_retries() const {
  // Rounded down like Envoy: 20% of 4 requests allows 0 beyond the minimum.
  // Multiplying before dividing keeps whole percentages exact.
  auto share = static_cast<int>(std::floor(budget_percent_ * active_requests_ / 100.0));
  return std::max(min_retry_concurrency_, share);
}

bool retry_budget::try_start_retry() {
  if (active_retries_ >= max_active_retries())
    return false;
  ++active_retries_;
  return true;
}

void retry_budget::retry_finished() {
  if (active_retries_ > 0)
    --active_retries_;
}

} // namespace ferry
