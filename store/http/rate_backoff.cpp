#include "store/http/rate_backoff.hpp"

#include <algorithm>

namespace ferry {

rate_backoff::rate_backoff(options settings) : options_(settings) {}

bool rate_backoff::on_throttled(clock::time_point now) {
  if (cut_ever_ && now < cut_at_ + options_.cut_interval)
    return false;
  cut_to_ = std::max(options_.floor, factor(now) * options_.decrease);
  cut_at_ = now;
  cut_ever_ = true;
  return true;
}

double rate_backoff::factor(clock::time_point now) const {
  if (!cut_ever_ || now <= cut_at_)
    return cut_to_;
  std::chrono::duration<double> since = now - cut_at_;
  return std::min(1.0, cut_to_ + since.count() * options_.recovery_per_second);
}

} // namespace ferry
