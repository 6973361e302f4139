#include "actors/policy/rate_budget.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace ferry {

namespace {

status usage(std::string message) { return {errc::config_error, std::move(message)}; }

/// A rate as typed back to the user: "200", "33.333".
std::string number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", value);
  std::string out = text;
  out.erase(out.find_last_not_of('0') + 1);
  if (out.back() == '.')
    out.pop_back();
  return out;
}

} // namespace

std::string rate_share::describe(const rate_budget_request& request) const {
  if (!from_total)
    return {};
  std::string line = "rate budget split over " + std::to_string(concurrent) + " shard(s) at once";
  if (clamped)
    line += " (--concurrent-shards " + request.concurrent_shards + " is more than the " +
            std::to_string(request.shard_count) + " shards; taken as " +
            std::to_string(concurrent) + ")";
  line += ": this shard takes";
  if (request.tps_total > 0)
    line +=
      " " + number(requests_per_second) + " requests/s of --tps-total " + number(request.tps_total);
  if (request.tps_total > 0 && request.bytes_total > 0)
    line += " and";
  if (request.bytes_total > 0)
    line += " " + std::to_string(bytes_per_second) + " bytes/s of --bwlimit-total " +
            std::to_string(request.bytes_total) + " bytes/s";
  return line;
}

result<rate_share> share_rate_budget(const rate_budget_request& request) {
  // `!(x >= 0)` also catches NaN.
  if (!(request.tps >= 0) || !(request.tps_total >= 0))
    return usage("--tps and --tps-total must not be negative");
  if (request.bytes_per_second < 0 || request.bytes_total < 0)
    return usage("--bwlimit and --bwlimit-total must not be negative");
  if (request.tps > 0 && request.tps_total > 0)
    return usage(
      "give --tps (this shard's limit) or --tps-total (the whole migration's), not both");
  if (request.bytes_per_second > 0 && request.bytes_total > 0)
    return usage(
      "give --bwlimit (this shard's limit) or --bwlimit-total (the whole migration's), not both");
  bool totals = request.tps_total > 0 || request.bytes_total > 0;

  rate_share share;
  share.requests_per_second = request.tps;
  share.bytes_per_second = request.bytes_per_second;
  uint32_t concurrent = std::max<uint32_t>(request.shard_count, 1);
  const auto& typed = request.concurrent_shards;
  if (!typed.empty()) {
    if (!totals)
      return usage("--concurrent-shards splits --tps-total and --bwlimit-total; give one of them");
    bool digits = typed.size() <= 4 && typed.find_first_not_of("0123456789") == std::string::npos;
    auto k = digits ? std::stoul(typed) : 0;
    if (k < 1 || k > 4096)
      return usage("--concurrent-shards '" + typed + "' is not a number from 1 to 4096");
    if (k > concurrent)
      share.clamped = true;
    else
      concurrent = static_cast<uint32_t>(k);
  }
  if (!totals)
    return share;

  share.from_total = true;
  share.concurrent = concurrent;
  if (request.tps_total > 0) {
    // The epsilon keeps an exact share (200 / 4 = 50) from flooring to
    // 49.999 through the floating-point product.
    constexpr double steps = tps_share_steps_per_request;
    share.requests_per_second = std::floor(request.tps_total / concurrent * steps + 1e-6) / steps;
    if (share.requests_per_second <= 0)
      return usage("--tps-total " + number(request.tps_total) + " split over " +
                   std::to_string(concurrent) + " shards leaves each less than " +
                   number(1 / steps) + " requests/s");
  }
  if (request.bytes_total > 0) {
    share.bytes_per_second = request.bytes_total / concurrent;
    if (share.bytes_per_second < 1)
      return usage("--bwlimit-total " + std::to_string(request.bytes_total) + " split over " +
                   std::to_string(concurrent) + " shards leaves each less than a byte a second");
  }
  return share;
}

} // namespace ferry
