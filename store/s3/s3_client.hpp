#pragma once

// Signed requests to one S3 bucket over the shared http_engine: the layer
// the S3 store's readers and writers build on. Blocking calls run on the
// caller's thread (a detached transfer worker), never on the engine's loop.

#include "protocol/status.hpp"
#include "store/http/http_engine.hpp"
#include "store/http/http_stream.hpp"
#include "store/s3/s3_keys.hpp"
#include "store/s3/s3_signer.hpp"
#include "store/s3/s3_url.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace ferry::s3 {

/// Whether an answer goes back to the caller of client::call(); every other
/// answer becomes the call's failure (client::failure).
using answer_filter = std::function<bool(const http_response&)>;

/// Takes the 2xx answers: what most calls want.
bool successful(const http_response& answer);

/// Takes every answer, for a caller that judges them itself.
bool any_answer(const http_response& answer);

/// The S3 error code of an answer's `<Error>` body; empty without one.
std::string error_code(const http_response& answer);

/// Whether an answer refuses the keys themselves (InvalidAccessKeyId,
/// SignatureDoesNotMatch, ExpiredToken, InvalidToken, TokenRefreshRequired),
/// or may: a 403 without an S3 error, as every refused HEAD is.
bool refuses_keys(const http_response& answer);

/// One bucket, keys from a key_holder. Thread-safe.
///
/// When the server refuses the keys, they are read again (once for all
/// requests refused at once). call() then signs its request again and sends
/// it once more. A request whose body is streamed cannot be sent again; its
/// failure becomes retryable instead (streamed_failure), so the transfer's
/// retry sends it anew with the new keys.
class client {
public:
  /// `http` may be null: an engine is then started on first use.
  client(std::shared_ptr<http_engine> http, s3_url url, std::shared_ptr<key_holder> keys,
         std::chrono::seconds max_retry_wait);

  const s3_url& url() const { return url_; }

  /// The longest Retry-After honoured (ferry.maxRetryWait).
  std::chrono::seconds max_retry_wait() const { return max_retry_wait_; }

  /// The engine requests run on.
  result<http_engine*> engine();

  /// A signed request for object `key` (the bucket itself when empty, for
  /// listings), with raw `query` parameters and extra `headers` (all signed).
  /// `payload_hash` is the body's hex SHA-256, empty_payload_hash when there
  /// is none, or unsigned_payload. The signature is made now, so submit the
  /// request soon (S3 refuses signatures older than 15 minutes).
  /// `key_generation`, when given, receives the generation of the keys
  /// signed with (for reread_refused_keys and streamed_failure).
  result<http_request> request(const std::string& method, const std::string& key,
                               const std::vector<name_value>& query,
                               std::vector<name_value> headers, const std::string& payload_hash,
                               uint64_t* key_generation = nullptr) const;

  /// Runs one request (with a small body or none) and waits for it.
  result<http_response> send(http_request request);

  /// Runs all requests at once and waits for every one; outcomes in order.
  std::vector<result<http_response>> send_all(std::vector<http_request> requests);

  /// Signs a request for `key` (as request() does, the SHA-256 of the small
  /// `body` signed with it), sends it and waits. The answer when `returned`
  /// takes it; otherwise the failure, in the context of `what`: the error
  /// signing or sending, or failure() of the answer. An answer refusing keys
  /// that reading them again changed is not returned: the request is signed
  /// with the new keys and sent once more.
  result<http_response> call(const std::string& what, const std::string& method,
                             const std::string& key, const std::vector<name_value>& query,
                             std::vector<name_value> headers = {}, std::string body = {},
                             const answer_filter& returned = successful);

  /// What call() makes of the outcome of a request sent some other way
  /// (send_all): the answer when `returned` takes it, else the failure.
  result<http_response> checked(const std::string& what, result<http_response> outcome,
                                const answer_filter& returned = successful) const;

  /// The status for a non-2xx answer to the request `what` names ("upload
  /// of <oid>"): the `<Error>` body decoded and classified
  /// (protocol::s3_error_status) when there is one, otherwise the HTTP status
  /// classified (HEAD answers have no body). A Retry-After the server sent
  /// with a 503/429/SlowDown is attached (status::retry_after); one beyond
  /// max_retry_wait() makes it errc::config_error naming ferry.maxRetryWait.
  /// An answer refusing the keys also says where they came from.
  status failure(const std::string& what, const http_response& response) const;

  /// True when `response` refuses the keys of `key_generation` and reading
  /// them again (key_holder::reread) gave other keys: send it again.
  bool reread_refused_keys(const http_response& response, uint64_t key_generation);

  /// The failure of a request that cannot be sent again (its body was
  /// streamed), signed with keys of `key_generation`: failure(), made
  /// errc::unavailable when reread_refused_keys(), so that a retry of the
  /// transfer sends it again with the new keys.
  status streamed_failure(const std::string& what, const http_response& response,
                          uint64_t key_generation);

  /// "s3://bucket/prefix ..." (s3_url::describe): safe for logs.
  std::string describe() const { return url_.describe(); }

private:
  engine_on_demand http_;
  s3_url url_;
  std::shared_ptr<key_holder> keys_;
  std::chrono::seconds max_retry_wait_;
};

} // namespace ferry::s3
