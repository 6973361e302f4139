#include "actors/policy/retry_policy.hpp"

#include <algorithm>

namespace ferry {

std::string retry_decision::explain(const status& failure, int attempts) const {
  if (what == exhausted && failure.code() == errc::busy)
    return "gave up waiting for another writer of the same object; last error: " +
           failure.to_string();
  auto last = failure.to_string();
  switch (what) {
    case retry:
      return {};
    case permanent:
      return last;
    case exhausted:
      return "gave up after " + std::to_string(attempts) + " attempts; last error: " + last;
    case timed_out:
      return "gave up after " + std::to_string(attempts) + " attempt" + (attempts == 1 ? "" : "s") +
             " over " + go_duration(delay) + " (ferry.maxRetryTime): " + last;
  }
  return last;
}

retry_policy::retry_policy(int max_attempts, backoff delays, int max_busy_waits,
                           std::chrono::milliseconds max_retry_time)
    : max_attempts_(std::max(max_attempts, 1)),
      max_retry_time_(std::max(max_retry_time, std::chrono::milliseconds{0})),
      max_busy_waits_(std::max(max_busy_waits, 0)), delays_(std::move(delays)) {}

bool retry_policy::past_retry_time(time_point first_attempt, time_point start_at) const {
  return max_retry_time_ > std::chrono::milliseconds{0} &&
         start_at - first_attempt > max_retry_time_;
}

retry_decision retry_policy::decide(const status& failure, int attempts, int busy_waits,
                                    time_point now, std::optional<time_point> first_attempt) {
  if (classify(failure.code()) == retry_class::permanent)
    return {retry_decision::permanent, {}};
  bool busy = failure.code() == errc::busy;
  if (busy ? busy_waits > max_busy_waits_ : attempts >= max_attempts_)
    return {retry_decision::exhausted, {}};
  // The other writer needs time, not luck: no jitter down to zero.
  auto delay = busy ? delays_.ceiling(busy_waits) : delays_.next(attempts);
  // A wait the other side asked for is a floor, never a reason to retry.
  delay = std::max(delay, failure.retry_after());
  if (!busy && first_attempt && past_retry_time(*first_attempt, now + delay))
    return timed_out();
  return {retry_decision::retry, delay};
}

std::string go_duration(std::chrono::milliseconds value) {
  auto ms = value.count();
  if (ms < 1000)
    return std::to_string(ms) + "ms";
  auto hours = ms / 3'600'000;
  auto minutes = ms / 60'000 % 60;
  auto seconds = ms / 1000 % 60;
  auto millis = ms % 1000;
  std::string out;
  if (hours > 0)
    out += std::to_string(hours) + "h";
  if (hours > 0 || minutes > 0)
    out += std::to_string(minutes) + "m";
  out += std::to_string(seconds);
  if (millis > 0) {
    auto fraction = std::to_string(1000 + millis).substr(1);
    while (fraction.back() == '0')
      fraction.pop_back();
    out += "." + fraction;
  }
  return out + "s";
}

} // namespace ferry
