#pragma once

// Additive increase, multiplicative decrease of a host's own rate: when a
// server answers 429 or 503 ("slow down"), the pace Ferry keeps to it drops
// to a fraction at once and then climbs back linearly with time, so many
// independent processes sharing one server settle below its limit without
// talking to each other (as TCP flows share a link).

#include <chrono>

namespace ferry {

class rate_backoff {
public:
  using clock = std::chrono::steady_clock;

  struct options {
    /// Each cut multiplies the current factor by this.
    double decrease = 0.5;
    /// The factor never drops below this (five cuts in a row).
    double floor = 1.0 / 32;
    /// Factor regained per second after a cut: from half back to the
    /// full rate in 10 s.
    double recovery_per_second = 0.05;
    /// Cuts closer together than this count once: the answers to one
    /// burst of requests sent at the old rate arrive together.
    clock::duration cut_interval = std::chrono::seconds{1};
  };

  rate_backoff() : rate_backoff(options{}) {}
  explicit rate_backoff(options settings);

  /// The server asked to slow down at `now`. Cuts the factor unless the last
  /// cut was less than cut_interval ago; returns whether it cut.
  bool on_throttled(clock::time_point now);

  /// The fraction of the full rate allowed at `now`, in [floor, 1]. Times
  /// before the last cut count as the moment of the cut.
  double factor(clock::time_point now) const;

private:
  options options_;
  /// The factor right after the last cut; 1 before any.
  double cut_to_ = 1.0;
  clock::time_point cut_at_{};
  bool cut_ever_ = false;
};

} // namespace ferry
