#pragma once

// The git-lfs custom transfer protocol (git-lfs docs/custom-transfers.md), as
// git-lfs 3.3.0 speaks it: one JSON object per line in both directions.
// Pure functions: no I/O, no global state.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace ferry::protocol {

enum class operation { upload, download };

/// True for exactly 64 lower-case hex characters.
bool is_valid_oid(std::string_view oid);

/// `{"event":"init","operation":...,"remote":...,"concurrent":...,"concurrenttransfers":...}`
struct init_request {
  operation op = operation::upload;
  std::string remote;
  bool concurrent = false;
  int64_t concurrent_transfers = 1;
};

/// The `action` of a non-standalone transfer (null in standalone mode).
struct transfer_action {
  std::string href;
  std::map<std::string, std::string> headers;
};

/// `{"event":"upload"|"download","oid":...,"size":...,"path":...,"action":...}`
struct transfer_request {
  operation op = operation::upload;
  std::string oid;
  int64_t size = 0;
  /// Source file of an upload; absent for downloads.
  std::string path;
  std::optional<transfer_action> action;
};

/// `{"event":"terminate"}`
struct terminate_request {};

using request = std::variant<init_request, transfer_request, terminate_request>;

/// Error codes Ferry puts into error replies (HTTP-like, as git-lfs shows them).
namespace code {
inline constexpr int bad_request = 400; ///< malformed line or field
inline constexpr int not_found = 404;   ///< object missing
inline constexpr int conflict = 409;    ///< content does not match oid/size
inline constexpr int too_large = 413;   ///< line longer than the limit
inline constexpr int failed = 500;      ///< transfer failed after retries
inline constexpr int unavailable = 503; ///< engine not ready / shutting down
} // namespace code

/// Why a line could not be decoded. When the line named a valid oid of an
/// upload/download, `oid` is set and the reply is that object's `complete`
/// with an error; otherwise the reply is a bare `{"error":...}`.
struct decode_error {
  int code = code::bad_request;
  std::string message;
  std::optional<std::string> oid;
};

/// Decodes one line (without its trailing newline). Never throws.
/// Every field is validated: event known, operation upload|download, oid
/// valid, size a non-negative integer, path a non-empty string for uploads,
/// action null or an object with a string href and string headers.
std::variant<request, decode_error> decode_request(std::string_view line);

/// The error reply for a line that could not be decoded (see decode_error).
std::string encode_decode_error(const decode_error& error);

/// `{}`: init accepted.
std::string encode_init_ok();

/// `{"error":{"code":...,"message":...}}`: init refused, or an error not tied
/// to an object.
std::string encode_error(int code, std::string_view message);

/// `{"event":"progress","oid":...,"bytesSoFar":...,"bytesSinceLast":...}`
std::string encode_progress(std::string_view oid, int64_t bytes_so_far, int64_t bytes_since_last);

/// `{"event":"complete","oid":...}` for uploads, with `"path"` for downloads.
std::string encode_complete(std::string_view oid, std::optional<std::string_view> path = {});

/// `{"event":"complete","oid":...,"error":{"code":...,"message":...}}`
std::string encode_complete_error(std::string_view oid, int code, std::string_view message);

} // namespace ferry::protocol
