#pragma once

// Ferry's event stream (`ferry.eventsFile`): one JSON object per line for
// each attempt's start and end, for programs to read (ferry-sim's report,
// a user's own analysis). docs/operations.md documents the fields.

#include <cstdint>
#include <string>

namespace ferry::protocol {

enum class event_kind { start, done, retry, fail };

const char* to_string(event_kind kind);

struct transfer_event {
  int64_t t_ms = 0; ///< Unix time in milliseconds.
  event_kind kind = event_kind::start;
  std::string dir; ///< "upload", "download" or "copy".
  std::string oid;
  std::string cid; ///< The transfer's correlation id.
  int64_t size = 0;
  int attempt = 0; ///< 1 for the first attempt.
  /// done: bytes the attempt moved.
  int64_t bytes = 0;
  /// done, retry, fail: how long the attempt took.
  int64_t ms = 0;
  /// retry: the wait before the next attempt.
  int64_t delay_ms = 0;
  /// retry, fail: the error class (an errc name).
  std::string error;
};

/// One line of JSON without the newline; only the fields `kind` has.
std::string encode_event(const transfer_event& event);

} // namespace ferry::protocol
