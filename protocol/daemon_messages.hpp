#pragma once

// The messages on the per-user daemon's socket: newline-delimited JSON,
// one object a line. A client's first line is a hello; the daemon answers
// each hello with a reply. Pure: no I/O.

#include "protocol/status.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ferry::protocol {

/// The version of these messages; a daemon refuses a client of another.
inline constexpr int daemon_proto = 1;

/// Longest line either side accepts (protocol::line_splitter's cap).
inline constexpr size_t daemon_max_line = 64 * 1024;

/// What a client asks for in its hello.
enum class daemon_request {
  /// Only the reply (is the daemon there, which one); the client stays
  /// connected as long as it likes and counts as a client meanwhile.
  ping,
  /// The reply with the daemon's state.
  status,
  /// The daemon answers, removes its socket and exits.
  stop,
  /// The reply with the daemon's metrics in the Prometheus text format.
  metrics,
};

/// {"proto":1,"build":"<version>","pid":N,"kind":"status"}
struct daemon_hello {
  int proto = daemon_proto;
  std::string build;
  int64_t pid = 0;
  daemon_request kind = daemon_request::ping;
};

/// The daemon's answer: who it is, and either an error or its state.
struct daemon_reply {
  int proto = daemon_proto;
  std::string build;
  int64_t pid = 0;
  /// Empty when the hello was accepted; else why not, for people.
  std::string error;
  int64_t uptime_seconds = 0;
  /// Clients connected besides the one asking.
  int64_t clients = 0;
  std::string directory;
  /// For a metrics request: the Prometheus text format (newlines escaped
  /// by the JSON, so the reply stays one line).
  std::string metrics;
};

/// One line of JSON, without the newline.
std::string encode(const daemon_hello& hello);
std::string encode(const daemon_reply& reply);

/// errc::invalid_request saying what is wrong. A hello of another proto
/// decodes (proto and build are read first) as long as both are there,
/// so that the daemon can answer it with a readable error.
result<daemon_hello> decode_daemon_hello(std::string_view line);
result<daemon_reply> decode_daemon_reply(std::string_view line);

const char* to_string(daemon_request kind);

} // namespace ferry::protocol
