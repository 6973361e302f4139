#pragma once

#include "actors/policy/backoff.hpp"
#include "protocol/status.hpp"

#include <chrono>
#include <optional>
#include <string>

namespace ferry {

/// A duration as Go prints it, and so git-lfs users know it: "5m0s",
/// "20s", "1h0m0s", "1.5s", "250ms".
std::string go_duration(std::chrono::milliseconds value);

/// What to do after a failed attempt.
struct retry_decision {
  enum verdict {
    /// Restart the transfer after `delay`.
    retry,
    /// The failure is permanent: report it now.
    permanent,
    /// The per-object attempt budget is used up.
    exhausted,
    /// The retry would start later than the object's retry time allows
    /// (ferry.maxRetryTime); `delay` holds that limit.
    timed_out,
  };
  verdict what = permanent;
  std::chrono::milliseconds delay{0};

  /// A sentence for the user explaining the verdict (empty for retry).
  std::string explain(const status& failure, int attempts) const;
};

/// Combines classification, the per-object attempt budget and backoff into
/// one decision. There is no engine-wide cap on retries: each object is
/// bounded by its attempts and its retry time, the retry budget bounds the
/// retries in flight, and a host that keeps failing trips its circuit.
///
/// errc::busy (another writer holds the object) is not a failure of this
/// transfer: it waits for the other writer with growing, unjittered delays
/// and does not use the attempt budget, only its own, larger one.
///
/// A failure that carries status::retry_after() (the server said when to
/// come back) is retried no earlier than that: the delay is the larger of
/// the backoff and the requested wait. The wait never makes a permanent
/// failure retryable, nor extends a spent budget.
///
/// `max_retry_time` bounds the time from an object's first attempt to the
/// start of any retry of it (0: no bound); busy waits keep their own limit.
class retry_policy {
public:
  using clock = std::chrono::steady_clock;
  using time_point = clock::time_point;

  retry_policy(int max_attempts, backoff delays, int max_busy_waits = 60,
               std::chrono::milliseconds max_retry_time = std::chrono::milliseconds{0});

  /// Decides after a failed attempt. `attempts` counts the failed attempts
  /// that were not busy waits (1-based); `busy_waits` the busy ones,
  /// including this one when `failure` is busy. With `first_attempt`, a
  /// retry that would start past max_retry_time from it is `timed_out`.
  retry_decision decide(const status& failure, int attempts, int busy_waits, time_point now,
                        std::optional<time_point> first_attempt = std::nullopt);

  /// Whether an attempt starting at `start_at` would be past max_retry_time
  /// for an object first tried at `first_attempt`.
  bool past_retry_time(time_point first_attempt, time_point start_at) const;

  /// The decision for a retry that would start past max_retry_time.
  retry_decision timed_out() const { return {retry_decision::timed_out, max_retry_time_}; }

  int max_attempts() const { return max_attempts_; }
  std::chrono::milliseconds max_retry_time() const { return max_retry_time_; }

private:
  int max_attempts_;
  std::chrono::milliseconds max_retry_time_;
  int max_busy_waits_;
  backoff delays_;
};

} // namespace ferry
