#include "actors/rate_limiter.hpp"

#include "actors/logging.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <cstdio>
#include <type_traits>

namespace ferry {

namespace {

using limiter_pointer = rate_limiter_actor::stateful_pointer<rate_limiter_state>;
using time_point = token_bucket::clock::time_point;

// The buckets take the actor clock's time points as they are; if CAF ever
// changes its clock type, this needs a conversion.
static_assert(std::is_same_v<caf::actor_clock::time_point, time_point>,
              "the actor clock and token_bucket must share a time point type");

time_point now_of(limiter_pointer self) { return self->clock().now(); }

/// Takes the front acquisition's tokens from both buckets and notes when it
/// may go. Requests without payload leave the byte bucket alone.
void reserve_front(rate_limiter_state::host_state& h, time_point now) {
  auto bytes = h.queue.front().bytes;
  auto wait = h.requests.reserve(1.0, now);
  if (bytes > 0)
    wait = std::max(wait, h.bytes.reserve(static_cast<double>(bytes), now));
  h.front_due = now + wait;
  h.front_reserved = true;
}

/// "25 requests/s and 1048576 bytes/s": `limits` at `factor`.
std::string describe_rates(const rate_limits& limits, double factor) {
  std::string out;
  char number[32];
  if (limits.requests_per_second > 0) {
    std::snprintf(number, sizeof number, "%.3g", limits.requests_per_second * factor);
    out = number + std::string{" requests/s"};
  }
  if (limits.bytes_per_second > 0) {
    std::snprintf(number, sizeof number, "%.0f", limits.bytes_per_second * factor);
    out += (out.empty() ? "" : " and ") + std::string{number} + " bytes/s";
  }
  return out;
}

/// Runs the buckets of `name` at the fraction of the limits its backoff
/// allows at `now`; says so once the full rate is back.
void follow_backoff(limiter_pointer self, const std::string& name,
                    rate_limiter_state::host_state& h, time_point now) {
  auto factor = h.backoff.factor(now);
  if (factor == h.factor)
    return;
  const auto& limits = self->state.limits;
  h.requests.set_rate(limits.requests_per_second * factor, now);
  h.bytes.set_rate(limits.bytes_per_second * factor, now);
  h.factor = factor;
  if (factor == 1.0)
    log()->info("rate to {} back to the full {}", name, describe_rates(limits, 1.0));
}

/// Answers every acquisition of `name` whose turn has come, then makes sure a
/// wake-up arrives when the next one is due.
void serve(limiter_pointer self, const std::string& name) {
  auto& h = self->state.host(name);
  auto now = now_of(self);
  follow_backoff(self, name, h, now);
  while (!h.queue.empty()) {
    if (!h.front_reserved)
      reserve_front(h, now);
    if (h.front_due > now)
      break;
    auto promise = std::move(h.queue.front().promise);
    h.queue.pop_front();
    h.front_reserved = false;
    promise.deliver(true);
  }
  if (h.queue.empty())
    return;
  // Due times of successive wake-ups never decrease, so an equal one is
  // already on its way.
  if (h.timer_due && *h.timer_due == h.front_due)
    return;
  h.timer_due = h.front_due;
  self->delayed_send(self, h.front_due - now, atom::wake_v, name);
}

/// Holds `name` back until now + `duration` (never earlier than before).
void cool_down(limiter_pointer self, const std::string& name, caf::timespan duration) {
  auto& h = self->state.host(name);
  auto now = now_of(self);
  // Clamped: a Retry-After of absurd size (or caf::timespan::max()) must not
  // overflow the time point; a year is "for the rest of this run".
  constexpr caf::timespan longest = std::chrono::hours(24 * 365);
  auto until = now + std::clamp(duration, caf::timespan{0}, longest);
  h.requests.pause_until(until);
  h.bytes.pause_until(until);
  if (h.front_reserved) {
    // The front took its tokens before the pause; the buckets now pay that
    // debt after the pause, and a zero reservation reads the new wait.
    auto wait = std::max(h.requests.reserve(0.0, now), h.bytes.reserve(0.0, now));
    h.front_due = std::max(h.front_due, now + wait);
  }
  serve(self, name);
}

/// `name` answered 429 or 503: its rates drop (at most once per burst of
/// such answers). Hosts without a rate limit have nothing to cut; the
/// concurrency control (--transfers auto) and Retry-After cover them.
void slow_down(limiter_pointer self, const std::string& name) {
  const auto& limits = self->state.limits;
  if (limits.requests_per_second <= 0 && limits.bytes_per_second <= 0)
    return;
  auto& h = self->state.host(name);
  auto now = now_of(self);
  if (!h.backoff.on_throttled(now))
    return;
  follow_backoff(self, name, h, now);
  log()->info("{} asked to slow down (HTTP 429 or 503): rate to it cut to {}, back to the full "
              "{} step by step",
              name, describe_rates(limits, h.factor), describe_rates(limits, 1.0));
}

} // namespace

rate_limiter_state::host_state::host_state(const rate_limits& limits)
    : requests(limits.requests_per_second, limits.request_burst),
      bytes(limits.bytes_per_second,
            limits.byte_burst > 0.0 ? limits.byte_burst : limits.bytes_per_second) {}

rate_limiter_state::~rate_limiter_state() {
  for (auto& [name, h] : hosts)
    for (auto& w : h.queue)
      if (w.promise.pending())
        w.promise.deliver(caf::make_error(caf::sec::request_receiver_down));
}

rate_limiter_state::host_state& rate_limiter_state::host(const std::string& name) {
  auto i = hosts.find(name);
  if (i == hosts.end())
    i = hosts.emplace(name, host_state{limits}).first;
  return i->second;
}

rate_limiter_actor::behavior_type rate_limiter(limiter_pointer self, rate_limits limits) {
  self->state.limits = limits;
  return {
    [=](atom::acquire, const std::string& host, int64_t bytes) -> caf::result<bool> {
      auto promise = self->make_response_promise<bool>();
      self->state.host(host).queue.push_back({std::max<int64_t>(bytes, 0), promise});
      serve(self, host);
      return promise;
    },
    [=](atom::cooldown, const std::string& host, caf::timespan duration) {
      cool_down(self, host, duration);
    },
    [=](atom::throttled, const std::string& host) { slow_down(self, host); },
    [=](atom::get, const std::string& host) {
      auto i = self->state.hosts.find(host);
      return i == self->state.hosts.end() ? 0 : static_cast<int>(i->second.queue.size());
    },
    [=](atom::wake, const std::string& host) { serve(self, host); },
  };
}

} // namespace ferry
