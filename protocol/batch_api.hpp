#pragma once

// The Git LFS batch API (git-lfs docs/api/batch.md): the JSON bodies of
// `POST <lfs-url>/objects/batch`, sent and received with
// `Accept`/`Content-Type: application/vnd.git-lfs+json`.
// Pure functions: no I/O, no clock reads (times come in as parameters), and
// nothing throws.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ferry::protocol {

/// Media type of batch requests and responses (both Accept and Content-Type).
inline constexpr std::string_view batch_media_type = "application/vnd.git-lfs+json";

/// Objects per batch request that git-lfs servers are expected to accept.
inline constexpr size_t max_batch_objects = 100;

enum class batch_operation { download, upload };

/// One object named in a batch request.
struct batch_object {
  std::string oid;
  int64_t size = 0;
};

/// The body of a batch request.
struct batch_request {
  batch_operation op = batch_operation::download;
  /// Transfer adapters in order of preference; omitted from the JSON when
  /// empty (the server then assumes "basic").
  std::vector<std::string> transfers;
  /// The ref the objects belong to, e.g. "refs/heads/main".
  std::optional<std::string> ref;
  std::vector<batch_object> objects;
};

/// Encodes `{"operation":...,"transfers":[...],"ref":{"name":...},
/// "objects":[{"oid":...,"size":...}],"hash_algo":"sha256"}`.
/// The caller keeps objects to max_batch_objects; more are encoded anyway.
/// Invalid UTF-8 in strings is replaced rather than thrown on.
std::string encode_batch_request(const batch_request& request);

/// What to do with one object: where to send the HTTP request and with which
/// headers, and until when the server promises the href works.
struct batch_action {
  std::string href;
  std::map<std::string, std::string> headers;
  /// Absent when the action never expires.
  std::optional<std::chrono::system_clock::time_point> expires_at;
};

/// A per-object error from the server (404, 409, 410, 422, ...).
struct batch_object_error {
  int code = 0;
  std::string message;
};

/// One entry of the response's `objects`. Check `error` first. An upload
/// object without `upload` action means the server already has it; a
/// download object without error must carry `download` (the caller checks,
/// since the decoder does not know the operation).
struct batch_object_result {
  std::string oid;
  int64_t size = 0;
  std::optional<batch_action> download;
  std::optional<batch_action> upload;
  std::optional<batch_action> verify;
  std::optional<batch_object_error> error;
};

/// A successful (HTTP 200) batch response.
struct batch_response {
  /// The adapter the server picked; "basic" when it named none.
  std::string transfer;
  std::vector<batch_object_result> objects;
};

/// Decodes and strictly validates the body of a 200 batch response. Returns
/// a message naming the offending object (index and oid) and field when
/// anything is wrong; unknown fields are ignored.
///
/// `received_at` is when the response arrived: `expires_in` (seconds) is
/// counted from it and wins over `expires_at`. As git-lfs does, an
/// `expires_in` of 0 and an `expires_at` of 0001-01-01T00:00:00Z (Go's zero
/// time) mean "no expiry", because Go servers send those for unset fields.
std::variant<batch_response, std::string>
decode_batch_response(std::string_view body, std::chrono::system_clock::time_point received_at);

/// True when the action expires less than `margin` after `now`, so that a
/// transfer started now could outlive its href. Never true without expiry.
bool action_expires_soon(const batch_action& action, std::chrono::system_clock::time_point now,
                         std::chrono::seconds margin);

/// Parses an RFC 3339 date-time such as "2026-11-22T00:00:00Z",
/// "2026-11-22T01:30:00.123456+01:30" or "2026-11-21t23:00:00-01:00".
/// Fractional digits past nanoseconds are ignored; a leap second (:60) counts
/// as the next second. Instants the system clock cannot represent are
/// clamped to its minimum or maximum. Returns nullopt when malformed.
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text);

/// A one-line, printable message for a non-200 batch (or other LFS API)
/// response body: the server's `message` with its `request_id` and
/// `documentation_url` when the body is the LFS error JSON, otherwise a
/// cleaned snippet of the body (at most 200 characters).
std::string decode_error_message(std::string_view body);

/// User-facing text for a per-object error, including the server's message.
std::string batch_object_error_message(const batch_object_error& error);

} // namespace ferry::protocol
