#pragma once

// A minimal blocking Redis client (RESP2 over TCP, protocol/resp.hpp) with
// connect and reply timeouts, and the one thing Ferry asks of Redis: a
// shared rate limit (GCRA) for processes on several machines.

#include "protocol/resp.hpp"
#include "protocol/status.hpp"
#include "store/os/file_io.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace ferry {

/// `redis://host:port/key`: where the shared limit lives. The port defaults
/// to 6379; the key must not be empty.
struct redis_address {
  std::string host;
  uint16_t port = 6379;
  std::string key;

  /// errc::config_error naming the problem when `url` is not such a URL.
  static result<redis_address> parse(const std::string& url);

  /// "host:port/key".
  std::string describe() const;
};

/// One TCP connection to Redis. Not thread-safe.
class redis_connection {
public:
  /// Connects within `timeout`; each call() then waits at most `timeout`
  /// for its reply. errc::unavailable when the server cannot be reached.
  static result<redis_connection> open(const redis_address& address,
                                       std::chrono::milliseconds timeout);

  /// Sends one command and returns its reply (a Redis error reply is a
  /// value of kind error, not a failure). A timeout, a closed connection
  /// or a malformed reply is errc::unavailable, and the connection is
  /// closed: later calls fail at once.
  result<protocol::resp_value> call(const std::vector<std::string>& args);

private:
  redis_connection(fd_guard socket, std::chrono::milliseconds timeout)
      : socket_(std::move(socket)), timeout_(timeout) {}

  status fail(std::string message);

  fd_guard socket_;
  std::chrono::milliseconds timeout_;
  /// Bytes read past the last reply.
  std::string buffer_;
};

/// The shared limit: a GCRA (generic cell rate algorithm) kept in one Redis
/// key by a Lua script, so every process taking from it sees one budget.
/// Redis's own clock (TIME) decides, not the callers'.
class redis_rate_limit {
public:
  /// `rate` per second with bursts of `burst` (at least 1).
  redis_rate_limit(redis_address address, double rate, double burst);

  /// Reserves one slot and returns how long to wait before using it
  /// (zero when it is free now). Sends the script by its SHA-1 and loads it
  /// with EVAL when Redis does not know it yet.
  result<std::chrono::microseconds> reserve(redis_connection& connection);

  const redis_address& address() const { return address_; }

  /// The Lua script (for the record and the tests).
  static const char* script();

private:
  redis_address address_;
  int64_t interval_us_;
  int64_t tolerance_us_;
  std::string sha1_;
};

} // namespace ferry
