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

/// Answers every acquisition of `name` whose turn has come, then makes sure a
/// wake-up arrives when the next one is due.
void serve(limiter_pointer self, const std::string& name) {
  auto& h = self->state.host(name);
  auto now = now_of(self);
  if (h.pacer.follow_backoff(now))
    log()->info("rate to {} back to the full {}", name, describe_rates(self->state.limits, 1.0));
  auto due = h.pacer.serve(now, [](caf::typed_response_promise<bool>& promise) {
    promise.deliver(true);
    return true;
  });
  // Due times of successive wake-ups never decrease, so an equal one is
  // already on its way.
  if (!due || h.timer_due == due)
    return;
  h.timer_due = due;
  self->delayed_send(self, *due - now, atom::wake_v, name);
}

/// Holds `name` back until now + `duration` (never earlier than before).
void cool_down(limiter_pointer self, const std::string& name, caf::timespan duration) {
  auto& h = self->state.host(name);
  auto now = now_of(self);
  // Clamped: a Retry-After of absurd size (or caf::timespan::max()) must not
  // overflow the time point; a year is "for the rest of this run".
  constexpr caf::timespan longest = std::chrono::hours(24 * 365);
  auto until = now + std::clamp(duration, caf::timespan{0}, longest);
  h.pacer.pause_until(until, now);
  serve(self, name);
}

/// `name` answered 429 or 503: its rates drop (at most once per burst of
/// such answers). Hosts without a rate limit have nothing to cut; the
/// concurrency control (--transfers auto) and Retry-After cover them.
void slow_down(limiter_pointer self, const std::string& name) {
  auto& h = self->state.host(name);
  if (!h.pacer.slow_down(now_of(self)))
    return;
  const auto& limits = self->state.limits;
  log()->info("{} asked to slow down (HTTP 429 or 503): rate to it cut to {}, back to the full "
              "{} step by step",
              name, describe_rates(limits, h.pacer.factor()), describe_rates(limits, 1.0));
}

} // namespace

rate_limiter_state::~rate_limiter_state() {
  for (auto& [name, h] : hosts)
    h.pacer.for_each([](caf::typed_response_promise<bool>& promise) {
      if (promise.pending())
        promise.deliver(caf::make_error(caf::sec::request_receiver_down));
    });
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
      self->state.host(host).pacer.push(promise, bytes);
      serve(self, host);
      return promise;
    },
    [=](atom::cooldown, const std::string& host, caf::timespan duration) {
      cool_down(self, host, duration);
    },
    [=](atom::throttled, const std::string& host) { slow_down(self, host); },
    [=](atom::get, const std::string& host) {
      auto i = self->state.hosts.find(host);
      return i == self->state.hosts.end() ? 0 : static_cast<int>(i->second.pacer.size());
    },
    [=](atom::get) {
      std::vector<host_pace> paces;
      for (const auto& [name, h] : self->state.hosts)
        paces.push_back(h.pacer.pace(name, now_of(self)));
      return paces;
    },
    [=](atom::wake, const std::string& host) { serve(self, host); },
  };
}

} // namespace ferry
