#include "actors/shared_rate_limiter.hpp"

#include "actors/logging.hpp"

#include <caf/all.hpp>

namespace ferry {

namespace {

using shared_pointer = rate_limiter_actor::stateful_pointer<shared_rate_limiter_state>;

/// Says once that Redis is gone, and stops asking it.
void give_up_on_redis(shared_pointer self, const status& problem) {
  auto& st = self->state;
  st.connection.reset();
  auto text = "ferry migrate: warning: the shared rate limit in Redis (" +
              st.limit->address().describe() + ") is unreachable: " + problem.message() +
              "; this process keeps to its own share of the budget (--tps-total split over "
              "--concurrent-shards) for the rest of the run";
  // One line on stderr: through the notice when there is one (the log
  // file keeps a copy at info), else as the log's warning.
  if (!st.notice)
    return log()->warn("{}", text);
  log()->info("notice: {}", text);
  st.notice(text);
}

/// Takes a slot from Redis; the wait before it may be used (zero without
/// Redis).
caf::timespan slot_wait(shared_pointer self) {
  auto& st = self->state;
  if (!st.connection)
    return caf::timespan{0};
  auto wait = st.limit->reserve(*st.connection);
  if (!wait) {
    give_up_on_redis(self, wait.error());
    return caf::timespan{0};
  }
  return std::chrono::duration_cast<caf::timespan>(*wait);
}

} // namespace

rate_limiter_actor::behavior_type
shared_rate_limiter(shared_pointer self, rate_limiter_actor local, redis_address address,
                    double requests_per_second, std::function<void(const std::string&)> notice) {
  auto& st = self->state;
  st.local = local;
  st.notice = std::move(notice);
  st.limit.emplace(address, requests_per_second, 1.0);
  self->link_to(local);
  auto connected = redis_connection::open(address, shared_limit_timeout);
  if (connected) {
    st.connection.emplace(std::move(*connected));
    log()->info("shared rate limit: {} requests/s in Redis at {}", requests_per_second,
                address.describe());
  } else {
    give_up_on_redis(self, connected.error());
  }
  return {
    [=](atom::acquire, const std::string& host, int64_t bytes) -> caf::result<bool> {
      auto promise = self->make_response_promise<bool>();
      self->request(self->state.local, caf::infinite, atom::acquire_v, host, bytes)
        .then(
          [=](bool) mutable {
            auto wait = slot_wait(self);
            if (wait <= caf::timespan{0}) {
              promise.deliver(true);
            } else {
              auto key = "slot " + std::to_string(self->state.next_key++);
              self->state.waiting.emplace(key, promise);
              self->delayed_send(self, wait, atom::wake_v, key);
            }
          },
          [=](const caf::error& err) mutable { promise.deliver(err); });
      return promise;
    },
    [=](atom::cooldown, const std::string& host, caf::timespan duration) {
      self->send(self->state.local, atom::cooldown_v, host, duration);
    },
    [=](atom::throttled, const std::string& host) {
      self->send(self->state.local, atom::throttled_v, host);
    },
    [=](atom::get, const std::string& host) {
      return self->delegate(self->state.local, atom::get_v, host);
    },
    [=](atom::get) { return self->delegate(self->state.local, atom::get_v); },
    [=](atom::wake, const std::string& key) {
      auto waiting = self->state.waiting.find(key);
      if (waiting == self->state.waiting.end())
        return;
      waiting->second.deliver(true);
      self->state.waiting.erase(waiting);
    },
  };
}

} // namespace ferry
