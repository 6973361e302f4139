#include "actors/policy/progress_throttle.hpp"

#include <algorithm>

namespace ferry {

progress_throttle::progress_throttle(int64_t total, clock::time_point start,
                                     std::chrono::milliseconds interval, int64_t min_step)
    : total_(total), step_(std::max<int64_t>(total / 100, min_step)), interval_(interval),
      last_(start) {}

progress_throttle::report progress_throttle::take(clock::time_point now) {
  report r{done_, done_ - reported_};
  reported_ = done_;
  reported_any_ = true;
  last_ = now;
  return r;
}

std::optional<progress_throttle::report> progress_throttle::add(int64_t bytes,
                                                                clock::time_point now) {
  done_ += bytes;
  auto pending = done_ - reported_;
  if (pending <= 0 || done_ >= total_)
    return std::nullopt; // the end is reported by finish()
  if (pending >= step_ || now - last_ >= interval_)
    return take(now);
  return std::nullopt;
}

std::optional<progress_throttle::report> progress_throttle::finish() {
  if (reported_any_ && reported_ == done_)
    return std::nullopt;
  return take(last_);
}

} // namespace ferry
