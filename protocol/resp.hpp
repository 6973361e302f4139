#pragma once

// RESP2, the Redis serialization protocol, as far as a client needs it:
// commands go out as arrays of bulk strings; replies are decoded from a
// buffer that may hold only part of one (a read returns what arrived).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::protocol {

/// One reply.
struct resp_value {
  enum class kind {
    /// +OK
    simple,
    /// -ERR ... (text holds the message)
    error,
    /// :42
    integer,
    /// $3 foo
    bulk,
    /// $-1 or *-1
    null,
    /// *2 ... (items)
    array,
  };
  kind type = kind::null;
  std::string text;
  int64_t integer = 0;
  std::vector<resp_value> items;
};

/// `args` as a RESP2 command: *N then each argument as a bulk string.
std::string resp_command(const std::vector<std::string>& args);

/// What resp_decode found at the start of a buffer.
struct resp_decoded {
  enum class outcome {
    /// `value` is a whole reply; it took the first `consumed` bytes.
    complete,
    /// The buffer holds the start of a reply: read more and decode again.
    incomplete,
    /// Not RESP2 (or beyond the limits below); `problem` says why. The
    /// connection cannot be trusted after this.
    malformed,
  };
  outcome result = outcome::incomplete;
  resp_value value;
  size_t consumed = 0;
  std::string problem;
};

/// Limits on what resp_decode accepts, so a hostile or broken server
/// cannot make the client allocate without bound.
inline constexpr int64_t resp_max_bulk = 64 * 1024 * 1024;
inline constexpr int64_t resp_max_items = 1024 * 1024;
inline constexpr int resp_max_depth = 16;

/// Decodes the first reply in `buffer`.
resp_decoded resp_decode(std::string_view buffer);

} // namespace ferry::protocol
