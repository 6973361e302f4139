#pragma once

// A fault-injecting TCP proxy for ferry-sim: it listens on 127.0.0.1 and
// forwards every connection to 127.0.0.1:<target_port>, injecting network
// faults on the way. One thread runs a poll loop over all connections.
//
// Faults (all off by default; set_faults() replaces them at any time):
// - Latency and jitter: every chunk read from either side is delivered
//   latency_ms + u later, u uniform in [-jitter_ms, +jitter_ms] (so jitter may
//   not exceed latency). Chunks of one direction of one connection are never
//   reordered: a chunk is not delivered before the one read before it.
// - Bandwidth: bandwidth_bytes_per_s caps each direction of the link, shared
//   by all connections like one network path: chunks are serialised onto the
//   link in the order they were read, then take the latency.
// - Resets: when a connection is accepted, it is chosen for a reset with
//   reset_probability; a chosen connection is reset after a number of bytes
//   drawn uniformly from [reset_after_min_bytes, reset_after_max_bytes],
//   counted over both directions as they are delivered. A reset is a real
//   RST (SO_LINGER {1,0}, then close) to both the client and the target.
// - Blackholes: windows [start_ms, end_ms) measured from start(). During a
//   window nothing is delivered and no connection to the target is opened;
//   new connections are still accepted and bytes are still read (the senders
//   see a network that swallows their data). Data sent into a blackhole is
//   lost: when the window ends, every connection that had bytes in flight
//   during it (read but not delivered, including an end of stream) is reset
//   on both sides. Connections that stayed idle through the window carry on,
//   and ones accepted during it are then connected to the target.
//
// A direction holds at most 1 MiB read but not yet delivered, like a TCP
// window, so a slow or blackholed receiver eventually stalls its sender.
//
// Determinism: every random decision comes from the seed. Connection k (in
// accept order, from 0) draws its reset decision, and the jitter of each of
// its two directions, from streams derived from (seed, k), so the same seed
// and the same sequence of connections give the same decisions however the
// connections' traffic interleaves (decisions() lists them). Delays depend on
// how the bytes happen to be split into chunks, which the kernel decides.

#include "protocol/status.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ferry::sim {

/// A time window [start_ms, end_ms) measured from fault_proxy::start().
struct blackhole_window {
  int64_t start_ms = 0;
  int64_t end_ms = 0;
};

/// The faults a proxy injects; the defaults inject none.
struct proxy_faults {
  int64_t latency_ms = 0;
  /// At most latency_ms.
  int64_t jitter_ms = 0;
  /// Per direction, shared by all connections; 0 means unlimited.
  int64_t bandwidth_bytes_per_s = 0;
  /// In [0, 1]; decided once per connection when it is accepted.
  double reset_probability = 0.0;
  int64_t reset_after_min_bytes = 0;
  int64_t reset_after_max_bytes = 0;
  /// Must not overlap; any order.
  std::vector<blackhole_window> blackholes;
};

/// Whether `faults` can be used; config_error naming the field otherwise.
status check_faults(const proxy_faults& faults);

/// What a proxy tells its event callback.
struct proxy_event {
  enum class kind {
    /// A blackhole window began or ended.
    blackhole_start,
    blackhole_end,
    /// A connection chosen for a reset reached its byte count and was reset.
    reset,
    /// A connection that had bytes in flight during a blackhole was reset as
    /// the window ended.
    blackhole_reset,
  };
  kind what = kind::reset;
  /// Unix time in milliseconds.
  int64_t unix_ms = 0;
  /// The connection (accept order from 0); -1 for window events.
  int64_t connection = -1;
  /// A human-readable description, e.g. "window 100-600 ms".
  std::string detail;
};

/// "blackhole_start", "blackhole_end", "reset" or "blackhole_reset".
const char* to_string(proxy_event::kind what);

/// Counters since start().
struct proxy_stats {
  int64_t connections_accepted = 0;
  /// Resets chosen by reset_probability that happened.
  int64_t resets_injected = 0;
  /// Bytes delivered to the target and back to clients.
  int64_t bytes_to_target = 0;
  int64_t bytes_to_client = 0;
  /// Connections reset at the end of a blackhole, and the bytes the proxy had
  /// read for them but not delivered (lost).
  int64_t blackholed_connections = 0;
  int64_t blackholed_bytes = 0;
};

/// The reset decision for one connection.
struct reset_decision {
  /// Accept order, from 0.
  int64_t connection = 0;
  bool reset = false;
  /// Meaningful when reset is true.
  int64_t after_bytes = 0;

  bool operator==(const reset_decision& other) const {
    return connection == other.connection && reset == other.reset &&
           after_bytes == other.after_bytes;
  }
};

struct proxy_config {
  /// Where connections are forwarded (127.0.0.1).
  int target_port = 0;
  /// Where the proxy listens (127.0.0.1); 0 picks a free port.
  int listen_port = 0;
  uint64_t seed = 0;
  proxy_faults faults;
  /// Called on the proxy's thread, without locks held; it must be quick and
  /// must not call stop() (set_faults() there takes effect on the next turn).
  std::function<void(const proxy_event&)> on_event;
};

class fault_proxy {
public:
  explicit fault_proxy(proxy_config config);
  /// Stops the proxy.
  ~fault_proxy();
  fault_proxy(const fault_proxy&) = delete;
  fault_proxy& operator=(const fault_proxy&) = delete;

  /// Checks the configuration, listens and starts forwarding on a thread of
  /// its own. Blackhole windows are measured from here. Call once.
  status start();

  /// The port the proxy listens on (valid after a successful start()).
  int port() const;

  /// Time since start() (call after it), to schedule blackholes from now.
  std::chrono::milliseconds since_start() const;

  /// Replaces the faults (thread-safe). Once it returns, bytes sent through
  /// the proxy meet the new faults (bytes already read keep their delays).
  /// Rejected faults leave the current ones in force. Reset decisions already
  /// made stand; a blackhole removed while active ends at once.
  status set_faults(proxy_faults faults);

  /// Closes every connection and the listening socket and joins the thread.
  /// Safe to call repeatedly.
  void stop();

  proxy_stats stats() const;

  /// The reset decision of every connection accepted so far, in accept order.
  std::vector<reset_decision> decisions() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace ferry::sim
