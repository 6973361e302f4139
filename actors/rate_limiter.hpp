#pragma once

#include "actors/interfaces.hpp"
#include "store/http/host_pacer.hpp"

#include <caf/typed_response_promise.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace ferry {

/// Limits the RATE LIMITER applies to each host on its own: requests
/// (transfer attempts) and payload bytes per second, and their bursts. A
/// rate of 0 means unlimited.
using rate_limits = host_pacer<caf::typed_response_promise<bool>>::rates;

struct rate_limiter_state {
  /// The pace of one host and its waiting acquisitions (each a promise).
  struct host_state {
    explicit host_state(const rate_limits& limits) : pacer(limits) {}

    host_pacer<caf::typed_response_promise<bool>> pacer;
    /// Due time of the latest wake-up sent. Timers cannot be cancelled, so
    /// earlier ones still arrive and simply find nothing to do.
    std::optional<token_bucket::clock::time_point> timer_due;
  };

  rate_limits limits;
  /// Created on first use; a handful of hosts per engine.
  std::map<std::string, host_state> hosts;

  rate_limiter_state() = default;
  rate_limiter_state(const rate_limiter_state&) = delete;
  rate_limiter_state& operator=(const rate_limiter_state&) = delete;

  /// Answers acquisitions still waiting with an error, so callers of a
  /// stopped limiter do not wait forever.
  ~rate_limiter_state();

  /// The state of `name`, created from `limits` on first use.
  host_state& host(const std::string& name);

  static inline const char* name = "rate_limiter";
};

/// Spawns the RATE LIMITER. It reads time only from its actor clock, so the
/// test coordinator's manual clock drives it deterministically.
rate_limiter_actor::behavior_type
rate_limiter(rate_limiter_actor::stateful_pointer<rate_limiter_state> self, rate_limits limits);

} // namespace ferry
