#pragma once

#include "actors/http_engine.hpp"
#include "actors/interfaces.hpp"

#include <caf/typed_response_promise.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <thread>

namespace ferry {

struct http_state {
  /// Runs the transfers; created at spawn, destroyed with the state.
  std::unique_ptr<http_engine> engine;
  /// Requests the engine has not finished yet, by engine id.
  std::map<uint64_t, caf::typed_response_promise<http_response>> pending;
  /// The engine's loop thread, as seen by the first completion.
  std::shared_ptr<std::atomic<std::thread::id>> loop_thread =
      std::make_shared<std::atomic<std::thread::id>>();

  http_state() = default;
  http_state(const http_state&) = delete;
  http_state& operator=(const http_state&) = delete;

  /// Stops the engine (in-flight transfers are cancelled) and answers the
  /// requests still pending with errc::cancelled, so callers of a stopped
  /// actor do not wait forever.
  ~http_state();

  static inline const char* name = "http";
};

/// Spawns the HTTP actor over a new http_engine.
/// @throws std::runtime_error (ending the spawned actor) when libcurl cannot
/// be initialised.
http_actor::behavior_type http(http_actor::stateful_pointer<http_state> self,
                               http_engine::options opts);

} // namespace ferry
