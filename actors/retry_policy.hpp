#pragma once

#include "actors/backoff.hpp"
#include "store/status.hpp"

#include <chrono>
#include <deque>
#include <string>

namespace ferry {

/// Whether trying again can change the outcome.
enum class retry_class {
  /// The failure may go away by itself (I/O hiccup, backend unavailable).
  transient,
  /// Trying again gives the same answer (bad request, content does not match
  /// its oid, object missing, out of space, no permission).
  permanent,
};

/// The error taxonomy: what each code means for a transfer.
retry_class classify(errc code);

/// A supervisor-wide cap on restarts within a sliding time window (Erlang's
/// restart intensity). When the whole store is failing, restarting every
/// worker again and again only adds load; past the cap, failures are final.
class restart_budget {
public:
  using clock = std::chrono::steady_clock;

  restart_budget(int max_restarts, std::chrono::milliseconds window);

  /// Records a restart at `now` if the window has room; false when full.
  bool try_acquire(clock::time_point now);

  /// Restarts counted in the window ending at `now`.
  int used(clock::time_point now);

private:
  void expire(clock::time_point now);

  int max_restarts_;
  std::chrono::milliseconds window_;
  std::deque<clock::time_point> restarts_;
};

/// What to do after a failed attempt.
struct retry_decision {
  enum verdict {
    /// Restart the transfer after `delay`.
    retry,
    /// The failure is permanent: report it now.
    permanent,
    /// The per-object attempt budget is used up.
    exhausted,
    /// The supervisor-wide restart budget is used up.
    overloaded,
  };
  verdict what = permanent;
  std::chrono::milliseconds delay{0};

  /// A sentence for the user explaining the verdict (empty for retry).
  std::string explain(const status& failure, int attempts) const;
};

/// Combines classification, the per-object attempt budget, backoff and the
/// restart budget into one decision.
///
/// errc::busy (another writer holds the object) is not a failure of this
/// transfer: it waits for the other writer with growing, unjittered delays
/// and does not use the attempt budget, only its own, larger one.
///
/// A failure that carries status::retry_after() (the server said when to
/// come back) is retried no earlier than that: the delay is the larger of
/// the backoff and the requested wait. The wait never makes a permanent
/// failure retryable, nor extends a spent budget.
class retry_policy {
public:
  retry_policy(int max_attempts, backoff delays, restart_budget budget, int max_busy_waits = 60);

  /// Decides after a failed attempt. `attempts` counts the failed attempts
  /// that were not busy waits (1-based); `busy_waits` the busy ones,
  /// including this one when `failure` is busy.
  retry_decision decide(const status& failure, int attempts, int busy_waits,
                        restart_budget::clock::time_point now);

  int max_attempts() const { return max_attempts_; }

private:
  int max_attempts_;
  int max_busy_waits_;
  backoff delays_;
  restart_budget budget_;
};

} // namespace ferry
