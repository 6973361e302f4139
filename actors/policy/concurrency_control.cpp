#include "actors/policy/concurrency_control.hpp"

#include <algorithm>

namespace ferry {

namespace {

// Small objects take about one round trip whatever their size; counting
// them as 64 KiB keeps their time per byte comparable with large ones
// instead of making a 100-byte copy look a thousand times slower.
constexpr int64_t min_sample_bytes = 64 << 10;
// Below 10 ms the millisecond clock and scheduling noise decide the
// ratios, so faster copies all count as 10 ms.
constexpr std::chrono::milliseconds min_sample_latency{10};
// A window whose median stays within 1.5x of the best one still scales:
// the limit grows. Beyond 2x, the copies crowd each other: it shrinks.
constexpr double grow_within = 1.5;
constexpr double shrink_beyond = 2.0;

constexpr double mebibyte = 1024.0 * 1024.0;

double ms_per_mib(std::chrono::milliseconds latency, int64_t bytes) {
  auto ms = std::max(latency, min_sample_latency).count();
  return static_cast<double>(ms) /
         (static_cast<double>(std::max(bytes, min_sample_bytes)) / mebibyte);
}

} // namespace

concurrency_control concurrency_control::fixed(int transfers) {
  concurrency_control control;
  control.limit_ = std::max(transfers, 1);
  control.ceiling_ = control.limit_;
  return control;
}

concurrency_control concurrency_control::adaptive(int initial, int ceiling, growth start) {
  concurrency_control control;
  control.adaptive_ = true;
  control.ceiling_ = std::max(ceiling, 1);
  control.limit_ = std::clamp(initial, 1, control.ceiling_);
  control.doubling_ = start == growth::slow_start;
  control.start_window(control.limit_);
  return control;
}

void concurrency_control::start_window(int outcomes) {
  window_size_ = std::max(outcomes, 1);
  window_outcomes_ = 0;
  window_failed_ = false;
  window_cut_ = false;
  window_ms_per_mib_.clear();
}

void concurrency_control::on_success(std::chrono::milliseconds latency, int64_t bytes) {
  if (!adaptive_)
    return;
  window_ms_per_mib_.push_back(ms_per_mib(latency, bytes));
  if (++window_outcomes_ >= window_size_)
    close_window();
}

void concurrency_control::on_failure(bool throttled) {
  // Errors and rate limits both back off the same way: a server that
  // fails under load is as overloaded as one that says so.
  static_cast<void>(throttled);
  if (!adaptive_)
    return;
  doubling_ = false;
  if (!window_cut_) {
    int before = limit_;
    limit_ = std::max(limit_ / 2, 1);
    // The copies started before the cut (up to `before`) may still fail
    // from the same moment: the window lasts for all of them, so one burst
    // halves once.
    start_window(before);
    window_cut_ = true;
    return;
  }
  window_failed_ = true;
  if (++window_outcomes_ >= window_size_)
    close_window();
}

void concurrency_control::close_window() {
  int before = limit_;
  if (!window_failed_ && !window_ms_per_mib_.empty()) {
    auto middle = window_ms_per_mib_.begin() + window_ms_per_mib_.size() / 2;
    std::nth_element(window_ms_per_mib_.begin(), middle, window_ms_per_mib_.end());
    double median = *middle;
    if (best_ms_per_mib_ <= 0)
      best_ms_per_mib_ = median;
    if (median <= grow_within * best_ms_per_mib_) {
      limit_ = std::min(doubling_ ? 2 * limit_ : limit_ + 1, ceiling_);
    } else if (median > shrink_beyond * best_ms_per_mib_) {
      if (limit_ > 1)
        --limit_;
      else
        // One copy at a time and still slow: the peer itself got slower,
        // not crowded. Measure from here on, or the limit never grows again.
        best_ms_per_mib_ = median;
    }
    best_ms_per_mib_ = std::min(best_ms_per_mib_, median);
  }
  if (limit_ <= before)
    doubling_ = false;
  // After a shrink the copies of the old limit are still finishing.
  start_window(std::max(before, limit_));
}

} // namespace ferry
