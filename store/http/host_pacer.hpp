#pragma once

#include "store/http/rate_backoff.hpp"
#include "store/http/token_bucket.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>

namespace ferry {

/// One host's pace at a moment, for people (`ferry daemon status`).
struct host_pace {
  std::string host;
  /// Requests per second allowed now, after any cut; and without one. 0:
  /// unlimited.
  double requests_per_second = 0;
  double full_requests_per_second = 0;
  /// What is left of the cooldown the host asked for (Retry-After).
  double cooldown_seconds = 0;
  /// Requests (or transfers) waiting for their turn.
  int64_t waiting = 0;
};

/// The pace kept to one host: what waits for it goes out in arrival order,
/// each item taking one request token and its bytes from two token buckets.
/// Only the front has taken its tokens, so a cooldown (pause_until) reaches
/// every later item before it reserves. A "slow down" answer (429, 503)
/// cuts both rates (rate_backoff), which come back step by step. Used by the
/// HTTP engine for each request and by the RATE LIMITER for each transfer.
/// Time is passed in; not thread-safe.
template <class Item>
class host_pacer {
public:
  using clock = token_bucket::clock;

  /// Rates of 0 are unlimited. A byte burst of 0 is one second's worth.
  struct rates {
    double requests_per_second = 0;
    double request_burst = 1;
    double bytes_per_second = 0;
    double byte_burst = 0;
  };

  explicit host_pacer(const rates& full)
      : full_(full), requests_(full.requests_per_second, full.request_burst),
        bytes_(full.bytes_per_second,
               full.byte_burst > 0 ? full.byte_burst : full.bytes_per_second) {}

  /// Queues `item`, which moves `bytes` of payload (0: none).
  void push(Item item, int64_t bytes) {
    waiting_.push_back({std::move(item), std::max<int64_t>(bytes, 0)});
  }

  bool empty() const { return waiting_.empty(); }
  size_t size() const { return waiting_.size(); }
  const Item& front() const { return waiting_.front().item; }

  /// Calls `visit` with each waiting item, oldest first.
  template <class Visit>
  void for_each(Visit&& visit) {
    for (auto& e : waiting_)
      visit(e.item);
  }

  /// Hands each item whose turn has come at `now` to `go`, in order. `go`
  /// returns false to keep the item at the front (it has its tokens and
  /// goes first once asked again). Returns when the front is due, if it
  /// waits for its time.
  template <class Go>
  std::optional<clock::time_point> serve(clock::time_point now, Go&& go) {
    while (!waiting_.empty()) {
      if (!front_reserved_) {
        auto wait = requests_.reserve(1.0, now);
        if (auto bytes = waiting_.front().bytes; bytes > 0)
          wait = std::max(wait, bytes_.reserve(static_cast<double>(bytes), now));
        front_due_ = now + wait;
        front_reserved_ = true;
      }
      if (front_due_ > now)
        return front_due_;
      if (!go(waiting_.front().item))
        return std::nullopt;
      waiting_.pop_front();
      front_reserved_ = false;
    }
    return std::nullopt;
  }

  /// Takes out the first item `match` accepts (the tokens the front took
  /// stay with the new front).
  template <class Match>
  std::optional<Item> take_if(Match&& match) {
    auto found =
      std::find_if(waiting_.begin(), waiting_.end(), [&](const entry& e) { return match(e.item); });
    if (found == waiting_.end())
      return std::nullopt;
    Item item = std::move(found->item);
    waiting_.erase(found);
    return item;
  }

  /// Nothing goes before `until` (an earlier pause is never shortened).
  void pause_until(clock::time_point until, clock::time_point now) {
    requests_.pause_until(until);
    bytes_.pause_until(until);
    // The front took its tokens before the pause; the buckets pay that debt
    // after it, and a zero reservation reads the new wait.
    if (front_reserved_)
      front_due_ =
        std::max(front_due_, now + std::max(requests_.reserve(0.0, now), bytes_.reserve(0.0, now)));
  }

  /// The host asked to slow down at `now`: cuts the rates, at most once per
  /// burst of such answers, and only where there is a rate to cut. Returns
  /// whether it cut.
  bool slow_down(clock::time_point now) {
    if (!(full_.requests_per_second > 0) && !(full_.bytes_per_second > 0))
      return false;
    if (!backoff_.on_throttled(now))
      return false;
    follow_backoff(now);
    return true;
  }

  /// Sets the rates the backoff allows at `now`; returns true when that
  /// brought them back to the full rates.
  bool follow_backoff(clock::time_point now) {
    double factor = backoff_.factor(now);
    if (factor == factor_)
      return false;
    requests_.set_rate(full_.requests_per_second * factor, now);
    bytes_.set_rate(full_.bytes_per_second * factor, now);
    factor_ = factor;
    return factor == 1.0;
  }

  /// The fraction of the full rates in force.
  double factor() const { return factor_; }

  /// The pace of this host (named `host`) at `now`.
  host_pace pace(std::string host, clock::time_point now) const {
    host_pace out;
    out.host = std::move(host);
    out.full_requests_per_second = std::max(full_.requests_per_second, 0.0);
    out.requests_per_second = out.full_requests_per_second * factor_;
    auto left = requests_.paused_until() - now;
    out.cooldown_seconds = std::max(std::chrono::duration<double>(left).count(), 0.0);
    out.waiting = static_cast<int64_t>(waiting_.size());
    return out;
  }

private:
  struct entry {
    Item item;
    int64_t bytes;
  };

  rates full_;
  token_bucket requests_;
  token_bucket bytes_;
  rate_backoff backoff_;
  double factor_ = 1.0;
  std::deque<entry> waiting_;
  bool front_reserved_ = false;
  clock::time_point front_due_{};
};

} // namespace ferry
