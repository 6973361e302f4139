#include "actors/policy/backoff.hpp"

#include <algorithm>

namespace ferry {

backoff::backoff(duration base, duration max, uint64_t seed)
    : base_(std::max(base, duration{1})), max_(std::max(max, base_)), rng_(seed) {}

backoff::duration backoff::ceiling(int failures) const {
  if (failures < 1)
    failures = 1;
  // Double until the cap; stop early so the shift can never overflow.
  auto wait = base_;
  for (int i = 1; i < failures && wait < max_; ++i)
    wait *= 2;
  return std::min(wait, max_);
}

backoff::duration backoff::next(int failures) {
  std::uniform_int_distribution<int64_t> pick{0, ceiling(failures).count()};
  return duration{pick(rng_)};
}

} // namespace ferry
