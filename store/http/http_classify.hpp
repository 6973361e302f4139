#pragma once

#include "protocol/status.hpp"
#include "store/http/http_engine.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace ferry {

/// What the transfer engine does with the outcome of one HTTP request.
enum class http_verdict {
  /// The request worked.
  success,
  /// A transient failure: retry with the usual backoff (actors/policy/backoff.hpp).
  retry,
  /// The server said when to come back: retry after `wait`, not earlier.
  retry_after,
  /// The credentials were refused: fetch fresh ones, then retry.
  refresh_auth,
  /// Trying again gives the same answer: report the failure.
  permanent,
};

/// The verdict plus what the user is told. For success, `code` is errc::ok
/// and `message` is empty. The verdict, not `code`, decides what happens: a
/// Retry-After beyond the allowed wait is permanent although its code is
/// errc::unavailable.
struct http_decision {
  http_verdict verdict = http_verdict::permanent;
  /// How long to wait first; only set for http_verdict::retry_after.
  std::chrono::seconds wait{0};
  errc code = errc::ok;
  /// A sentence for the user naming the HTTP status.
  std::string message;
};

/// The standard reason phrase of an HTTP status ("Not Found"), or "" if
/// Ferry does not know it.
std::string_view http_reason(long status);

/// Classifies an HTTP response status.
///
/// - 2xx: success.
/// - 408, 500, 502, 504 and other 5xx not listed below: retry (unavailable).
/// - 429 and 503: with a parseable Retry-After, retry_after that wait; if the
///   wait exceeds `max_wait`, permanent (unavailable), since waiting that long
///   would stall the whole push or pull. Without one: retry.
/// - 401: refresh_auth (permission_denied). 403: permanent permission_denied.
/// - 404, 410: permanent not_found. 409, 422: permanent invalid_request.
/// - 501, 505, 506, 508, 510: permanent (the server cannot do this at all).
/// - 507: permanent no_space. 511: permanent permission_denied.
/// - 413 and other 4xx, 1xx, 3xx, and statuses outside 100-599: permanent.
http_decision classify_http(long status, const std::optional<std::string>& retry_after_header,
                            std::chrono::system_clock::time_point now,
                            std::chrono::seconds max_wait);

/// Why a request produced no HTTP response at all (mapped from the HTTP
/// library's error codes by the caller).
enum class transport_failure {
  /// The TCP connection could not be established.
  connect,
  /// The request or connection timed out.
  timeout,
  /// The peer closed or reset the connection mid-request.
  reset,
  /// The certificate or TLS handshake was rejected.
  tls,
  /// The host name could not be resolved.
  resolve,
  /// Anything else.
  other,
};

/// Classifies a transport failure: retry (unavailable) for connect, timeout,
/// reset, resolve and other; permanent (config_error) for tls, since a
/// certificate that failed verification will fail again. `detail` is the
/// library's own description, appended to the message when not empty.
http_decision classify_transport(transport_failure failure, std::string_view detail = {});

/// How an HTTP failure of a store request becomes a status: classify_http's
/// verdict mapped to an errc, with the Retry-After wait attached
/// (status::retry_after) and the server's JSON `message` quoted when it sent
/// one. `what` names the request ("batch request", "download of <oid>").
/// The retry policy sees only the errc, so a permanent verdict never keeps
/// a code it would retry: a Retry-After beyond `max_retry_wait` becomes
/// errc::config_error (the message names the wait and ferry.maxRetryWait),
/// and statuses the server can never serve (501, 505, ...) errc::invalid_request.
status http_failure(const std::string& what, const http_response& response,
                    std::chrono::seconds max_retry_wait);

/// Whether a failed request's status is a server's "slow down": an HTTP 429
/// or 503 (named in the message, as http_failure, classify_http and the S3
/// error decoder write it), or any failure carrying a Retry-After. The
/// rate limiter cuts its pace to the host on these (store/http/rate_backoff.hpp).
bool asks_to_slow_down(const status& failure);

} // namespace ferry
