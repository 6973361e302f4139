#pragma once

// How many copies a migration runs at once: a fixed number, or adaptive
// (`--transfers auto`): more while copies succeed and stay fast, fewer on
// errors and rate limits (additive increase, multiplicative decrease, with
// an optional slow start).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ferry {

class concurrency_control {
public:
  /// How an adaptive limit grows after a steady window.
  enum class growth {
    /// By one.
    additive,
    /// Twice over (up to the ceiling) until the first window that does not
    /// grow or the first failure, then by one: a limit that round trips
    /// set, not bandwidth, is reached in a few windows instead of one
    /// window per copy.
    slow_start,
  };

  /// A fixed limit of `transfers` (at least 1).
  static concurrency_control fixed(int transfers);

  /// Adaptive: starts at `initial`, stays within [1, `ceiling`].
  static concurrency_control adaptive(int initial = 4, int ceiling = 64,
                                      growth start = growth::additive);

  /// Copies allowed in flight now.
  int limit() const { return limit_; }
  /// The most copies ever allowed in flight at once.
  int ceiling() const { return ceiling_; }
  bool is_adaptive() const { return adaptive_; }

  /// A copy of `bytes` succeeded after `latency` (from its start to its
  /// end). Adaptive: once a whole window of `limit()` copies succeeded
  /// since the last change, and their median time per byte stayed within
  /// 1.5x of the best window seen, the limit grows (see growth); a window
  /// that got clearly slower (over 2x) shrinks it by one.
  void on_success(std::chrono::milliseconds latency, int64_t bytes);

  /// A copy failed. `throttled`: the server asked to slow down (429, 503,
  /// a Retry-After). Adaptive: the limit halves (at least 1), at most once
  /// per window, so a burst of failures from one moment counts once.
  void on_failure(bool throttled);

private:
  /// Starts a new window that ends after `outcomes` outcomes.
  void start_window(int outcomes);
  /// Judges a finished window: grows, shrinks or keeps the limit.
  void close_window();

  bool adaptive_ = false;
  int limit_ = 1;
  int ceiling_ = 1;
  /// Still in the slow start: a steady window doubles the limit.
  bool doubling_ = false;
  // The window since the last change (or the last judged window): how many
  // outcomes end it, how many came, whether one failed, whether the limit
  // was already halved for it, and each success's time per MiB.
  int window_size_ = 1;
  int window_outcomes_ = 0;
  bool window_failed_ = false;
  bool window_cut_ = false;
  std::vector<double> window_ms_per_mib_;
  // The best (lowest) window median so far; 0 before the first window.
  double best_ms_per_mib_ = 0;
};

} // namespace ferry
