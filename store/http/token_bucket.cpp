#include "store/http/token_bucket.hpp"

#include <algorithm>
#include <limits>

namespace ferry {

namespace {

// Waits are capped so absurd reservations (or rates) cannot overflow the
// nanosecond count; ten years is "never" for a transfer.
constexpr double max_wait_seconds = 10.0 * 365 * 24 * 3600;

std::chrono::nanoseconds seconds_to_wait(double seconds) {
  if (!(seconds > 0.0))
    return std::chrono::nanoseconds{0};
  seconds = std::min(seconds, max_wait_seconds);
  // Round up: proceeding a nanosecond early would overdraw the bucket.
  return std::chrono::ceil<std::chrono::nanoseconds>(std::chrono::duration<double>{seconds});
}

std::chrono::nanoseconds until(token_bucket::clock::time_point target,
                               token_bucket::clock::time_point now) {
  return target > now ? std::chrono::nanoseconds{target - now} : std::chrono::nanoseconds{0};
}

} // namespace

token_bucket::token_bucket(double rate_per_second, double burst)
    // `!(x > 0)` also catches NaN.
    : rate_(rate_per_second > 0.0 ? rate_per_second : 0.0), burst_(burst > 0.0 ? burst : 0.0),
      tokens_(burst_) {}

void token_bucket::refill(clock::time_point now) {
  if (!started_) {
    started_ = true;
    last_ = now;
    return;
  }
  if (now <= last_)
    return;
  std::chrono::duration<double> elapsed = now - last_;
  tokens_ = std::min(burst_, tokens_ + elapsed.count() * rate_);
  last_ = now;
}

std::chrono::nanoseconds token_bucket::reserve(double tokens, clock::time_point now) {
  if (unlimited())
    return until(paused_until_, now);
  refill(now);
  if (tokens > 0.0)
    tokens_ -= tokens;
  // tokens_ is the level at last_ (>= now); a debt is paid off at `rate_`.
  auto wait = until(last_, now);
  if (tokens_ < 0.0)
    wait += seconds_to_wait(-tokens_ / rate_);
  return std::max(wait, until(paused_until_, now));
}

void token_bucket::pause_until(clock::time_point until_time) {
  paused_until_ = std::max(paused_until_, until_time);
  if (unlimited())
    return;
  // No refill during the pause: move the refill point to its end. Tokens
  // earned since the last reservation are forfeited, which errs on the side
  // of sending less to a server that asked us to back off.
  if (!started_ || last_ < until_time) {
    started_ = true;
    last_ = until_time;
  }
}

void token_bucket::set_rate(double rate_per_second, clock::time_point now) {
  if (unlimited() || !(rate_per_second > 0.0))
    return;
  refill(now);
  rate_ = rate_per_second;
}

double token_bucket::available(clock::time_point now) const {
  if (unlimited())
    return std::numeric_limits<double>::infinity();
  if (!started_ || now <= last_)
    return tokens_;
  std::chrono::duration<double> elapsed = now - last_;
  return std::min(burst_, tokens_ + elapsed.count() * rate_);
}

} // namespace ferry
