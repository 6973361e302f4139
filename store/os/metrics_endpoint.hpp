#pragma once

// The HTTP endpoint a Prometheus server scrapes (GET /metrics), on a TCP
// port or a Unix socket, and the one request that reads it back
// (`ferry metrics --from`). HTTP/1.0, one request per connection: all a
// scrape needs, without an HTTP server library in the binary.

#include "protocol/status.hpp"
#include "store/os/file_io.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace ferry {

/// Where metrics are served: "127.0.0.1:PORT", "[::1]:PORT",
/// "localhost:PORT" (127.0.0.1), any other numeric address, or
/// "unix:/absolute/path". Port 0 asks for a free port.
struct metrics_address {
  /// A Unix socket at `path`; else TCP at `ip`:`port`.
  bool unix_socket = false;
  std::filesystem::path path;
  /// Numeric, without brackets ("::1").
  std::string ip;
  int port = 0;
  /// 127.0.0.0/8, ::1 or a Unix socket: only this machine can connect.
  bool loopback = false;

  /// errc::invalid_request saying what is wrong.
  static result<metrics_address> parse(const std::string& text);
  /// As parse() reads it: "127.0.0.1:9100", "[::1]:9100", "unix:/path".
  std::string to_string() const;
  /// Success for a loopback address, or any with `allow_remote`; else
  /// errc::permission_denied naming the opt-in (--metrics-allow-remote).
  status permitted(bool allow_remote) const;
};

/// Serves GET /metrics with what `render` returns, on a thread of its own,
/// until destroyed (which also removes its Unix socket). Other paths get
/// 404, other methods 405. One connection at a time; a peer that sends no
/// request within 2 s is dropped.
class metrics_endpoint {
public:
  /// Listens at `address`. errc::permission_denied for a non-loopback
  /// address unless `allow_remote`; an existing Unix socket that nothing
  /// listens on is replaced, any other file there is left alone (errc::io_error).
  static result<std::unique_ptr<metrics_endpoint>> start(const metrics_address& address,
                                                         std::function<std::string()> render,
                                                         bool allow_remote = false);
  ~metrics_endpoint();
  metrics_endpoint(const metrics_endpoint&) = delete;
  metrics_endpoint& operator=(const metrics_endpoint&) = delete;

  /// Where it listens, with the port chosen for port 0.
  const metrics_address& address() const { return bound_; }

private:
  metrics_endpoint() = default;
  void run();
  void answer(int connection);

  metrics_address bound_;
  std::function<std::string()> render_;
  /// Whether this endpoint bound the Unix socket file (and so removes it).
  bool socket_file_ = false;
  fd_guard listener_;
  fd_guard wake_read_;
  fd_guard wake_write_;
  std::thread thread_;
};

/// GET /metrics from `address`: the body of a 200 answer. errc::unavailable
/// when nothing answers in `timeout`; errc::io_error for another status,
/// naming it.
result<std::string> scrape_metrics(const metrics_address& address,
                                   std::chrono::milliseconds timeout);

} // namespace ferry
