#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace ferry {

/// Exponential backoff with full jitter: before attempt n+1 (after n failed
/// attempts) wait a uniformly random time in [0, min(max, base * 2^(n-1))].
/// Full jitter spreads restarts of many workers that failed together, so a
/// recovering store is not hit by all of them at once.
class backoff {
public:
  using duration = std::chrono::milliseconds;

  backoff(duration base, duration max, uint64_t seed);

  /// The upper bound of the wait after `failures` failed attempts (>= 1).
  duration ceiling(int failures) const;

  /// A jittered wait after `failures` failed attempts, in [0, ceiling(failures)].
  duration next(int failures);

private:
  duration base_;
  duration max_;
  std::mt19937_64 rng_;
};

} // namespace ferry
