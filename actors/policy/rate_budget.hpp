#pragma once

// `ferry migrate --tps-total T --bwlimit-total B --concurrent-shards K`: one
// rate budget for a whole sharded migration, split evenly over the shards
// that run at once, so that together they stay under the budget without
// talking to each other.

#include "protocol/status.hpp"

#include <cstdint>
#include <string>

namespace ferry {

/// What the command line says about rates. Zero means "not given".
struct rate_budget_request {
  /// --tps and --bwlimit (bytes, parsed): this shard's own limits.
  double tps = 0;
  int64_t bytes_per_second = 0;
  /// --tps-total and --bwlimit-total (bytes, parsed): the whole migration's.
  double tps_total = 0;
  int64_t bytes_total = 0;
  /// --concurrent-shards as typed; empty when not given.
  std::string concurrent_shards;
  /// N of --shard I/N (1 without --shard).
  uint32_t shard_count = 1;
};

/// The limits this shard applies. Zero means no limit.
struct rate_share {
  double requests_per_second = 0;
  int64_t bytes_per_second = 0;
  /// Whether they are a share of a total (else --tps / --bwlimit as given).
  bool from_total = false;
  /// The shards the totals were split over (K after clamping).
  uint32_t concurrent = 1;
  /// --concurrent-shards asked for more shards than there are; clamped to N.
  bool clamped = false;

  /// One line for stderr naming the split; empty when no total was given.
  std::string describe(const rate_budget_request& request) const;
};

/// Shares of --tps-total are rounded down to a thousandth of a request per
/// second, so that K shares never add up to more than the total.
inline constexpr double tps_share_steps_per_request = 1000;

/// This shard's limits: --tps / --bwlimit as given, or T / K and B / K of
/// the totals, where K is --concurrent-shards (default: the shard count N).
/// K above N is clamped to N: no more than N shards can run at once, so
/// each may take T / N. Shares are rounded down (requests to
/// a thousandth, bytes to whole bytes). A config_error (a usage error)
/// for: both --tps and --tps-total (or both byte limits), a negative rate,
/// K not a whole number from 1 to 4096, K without a total to split, or a
/// total too small to give each shard a share above zero.
result<rate_share> share_rate_budget(const rate_budget_request& request);

} // namespace ferry
