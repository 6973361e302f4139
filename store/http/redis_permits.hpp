#pragma once

// `--rate-limiter redis://host:port/key` for HTTP stores: one request rate
// for every process of a migration, on however many machines, kept in Redis
// (a GCRA, see store/os/redis_client.hpp), handed to an http_engine as
// request_permits.

#include "store/http/http_engine.hpp"
#include "store/os/redis_client.hpp"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace ferry {

/// Permits from a rate shared in Redis. Redis is asked on a thread of this
/// class, never on the engine's loop thread, and only while a request waits
/// for a permit: one slot at a time, handed over once its time has come.
/// Each call to Redis is bounded by `timeout`. When Redis cannot be reached
/// (at the first request or later), `notice` gets one warning and every
/// request gets its permit at once from then on: the engine's own pacing
/// (the static split) is all that is left.
class redis_permits : public request_permits {
public:
  redis_permits(redis_address address, double requests_per_second,
                std::chrono::milliseconds timeout, std::function<void(const std::string&)> notice);
  /// Joins the thread (within one Redis timeout).
  ~redis_permits() override;

  redis_permits(const redis_permits&) = delete;
  redis_permits& operator=(const redis_permits&) = delete;

  bool try_take(const std::function<void()>& wake) override;

private:
  void run();
  /// Says once that Redis is gone; from then on every permit is free.
  void give_up(const status& problem);

  redis_rate_limit limit_;
  std::chrono::milliseconds timeout_;
  std::function<void(const std::string&)> notice_;

  std::mutex mutex_;
  std::condition_variable changed_;
  /// A slot whose time has come, not yet taken.
  bool ready_ = false;
  /// A request waits for a permit.
  bool wanted_ = false;
  bool given_up_ = false;
  bool stopping_ = false;
  std::function<void()> wake_;
  /// Used on the thread only; opened at the first demand.
  std::optional<redis_connection> connection_;
  std::thread thread_;
};

} // namespace ferry
