#pragma once

// `--rate-limiter redis://host:port/key`: one exact rate for every process
// of a migration, on however many machines, kept in Redis (a GCRA, see
// store/os/redis_client.hpp).

#include "actors/interfaces.hpp"
#include "store/os/redis_client.hpp"

#include <caf/typed_response_promise.hpp>

#include <functional>
#include <map>
#include <optional>
#include <string>

namespace ferry {

/// How long the shared limiter waits for Redis: to connect, and for each
/// reply. Short, since a transfer waits on it.
inline constexpr std::chrono::milliseconds shared_limit_timeout{500};

struct shared_rate_limiter_state {
  /// The host's own limiter (pacing, cooldowns, backoff); asked first.
  rate_limiter_actor local;
  std::optional<redis_rate_limit> limit;
  /// Empty once Redis failed: from then on only `local` paces.
  std::optional<redis_connection> connection;
  /// Acquisitions whose slot is still ahead, by the key of their wake-up.
  std::map<std::string, caf::typed_response_promise<bool>> waiting;
  uint64_t next_key = 0;
  std::function<void(const std::string&)> notice;

  static inline const char* name = "shared_rate_limiter";
};

/// A RATE LIMITER in front of `local`: each acquisition is answered once
/// `local` answered it and the Redis limit gave it a slot. Redis is asked
/// on this actor's own thread (spawn it detached), so a slow Redis never
/// holds a scheduler thread, and each call is bounded by
/// shared_limit_timeout. When Redis cannot be reached (at start or later),
/// `notice` gets one warning and only `local` paces from then on, for the
/// rest of the run: its rates are the static split (--concurrent-shards).
/// Linked to `local`: they stop together.
rate_limiter_actor::behavior_type
shared_rate_limiter(rate_limiter_actor::stateful_pointer<shared_rate_limiter_state> self,
                    rate_limiter_actor local, redis_address address, double requests_per_second,
                    std::function<void(const std::string&)> notice);

} // namespace ferry
