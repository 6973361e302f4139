#pragma once

#include "actors/interfaces.hpp"
#include "store/http/rate_backoff.hpp"
#include "store/http/token_bucket.hpp"

#include <caf/typed_response_promise.hpp>

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>

namespace ferry {

/// Limits the RATE LIMITER applies to each host on its own. A rate of 0 means
/// unlimited.
struct rate_limits {
  /// Requests per second to one host.
  double requests_per_second = 0;
  /// Requests that may start back to back after an idle spell.
  double request_burst = 1;
  /// Payload bytes per second to one host.
  double bytes_per_second = 0;
  /// Bytes that may go out back to back; 0 means one second's worth.
  double byte_burst = 0;
};

struct rate_limiter_state {
  /// One acquisition waiting for its turn.
  struct waiter {
    int64_t bytes = 0;
    caf::typed_response_promise<bool> promise;
  };

  /// Buckets and waiting acquisitions of one host.
  struct host_state {
    explicit host_state(const rate_limits& limits);

    token_bucket requests;
    token_bucket bytes;
    /// Cuts the rates on 429 and 503 and brings them back over time.
    rate_backoff backoff;
    /// The fraction of `limits` the buckets run at now.
    double factor = 1.0;
    /// Oldest first. Only the front has taken its tokens (see front_due), so
    /// a cooldown reaches every later acquisition before it reserves.
    std::deque<waiter> queue;
    /// Whether the front has reserved its tokens.
    bool front_reserved = false;
    /// When the front may go, once reserved.
    token_bucket::clock::time_point front_due{};
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
