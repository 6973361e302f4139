#pragma once

#include <chrono>

namespace ferry {

/// Paces work (requests, bytes) to `rate_per_second` with bursts of up to
/// `burst` tokens. reserve() deducts tokens at once, even into debt, and
/// says how long the caller must wait: callers queue in the order they
/// reserved, each served when the bucket has refilled their share, like a
/// pacer. A reservation larger than the burst is therefore still served, just
/// later, and no caller can be starved.
///
/// pause_until() adds an explicit cooldown (say, after a burst of HTTP 429):
/// refill stops until then, and every reservation waits at least that long;
/// debt built up meanwhile is paid after the pause, so waiting callers do
/// not all stampede the server the moment it ends.
///
/// Time is passed in; calls may carry slightly out-of-order time points
/// (several actors read the clock), which are treated as simultaneous with
/// the latest one seen. Not thread-safe.
class token_bucket {
public:
  using clock = std::chrono::steady_clock;

  /// A rate of 0 (or below) means unlimited. A negative burst counts as 0,
  /// which paces every reservation with no burst at all. The bucket starts
  /// full.
  token_bucket(double rate_per_second, double burst);

  /// Takes `tokens` (negative counts as 0) and returns how long to wait from
  /// `now` before proceeding; zero when they are available now.
  std::chrono::nanoseconds reserve(double tokens, clock::time_point now);

  /// No reservation proceeds before `until`; an earlier pause is never
  /// shortened. Applies to unlimited buckets too.
  void pause_until(clock::time_point until);

  /// From `now` on, refills at `rate_per_second` (tokens earned before `now`
  /// at the old rate are kept; a debt is paid at the new rate). An unlimited
  /// bucket stays unlimited, and a rate of 0 or below is ignored.
  void set_rate(double rate_per_second, clock::time_point now);

  /// Tokens available at `now` (negative while in debt; infinity when
  /// unlimited), without changing anything.
  double available(clock::time_point now) const;

  bool unlimited() const { return rate_ <= 0.0; }
  double rate() const { return rate_; }
  double burst() const { return burst_; }
  /// The end of the latest pause (pause_until()); the epoch when none.
  clock::time_point paused_until() const { return paused_until_; }

private:
  /// Brings `tokens_` up to date for `now` (no-op for times not after last_).
  void refill(clock::time_point now);

  double rate_;
  double burst_;
  double tokens_;
  /// The time up to which refill has been credited; pause_until() moves it
  /// forward so the pause earns no tokens.
  clock::time_point last_{};
  /// Whether last_ holds a real time yet (the first call sets it).
  bool started_ = false;
  clock::time_point paused_until_{};
};

} // namespace ferry
