#include "store/s3/s3_client.hpp"

#include "protocol/s3_xml.hpp"
#include "store/http/http_classify.hpp"
#include "store/http/http_stream.hpp"
#include "store/os/sha256.hpp"

#include <set>
#include <utility>

namespace ferry::s3 {

bool successful(const http_response& answer) { return is_success(answer.status); }

bool any_answer(const http_response&) { return true; }

std::string error_code(const http_response& answer) {
  if (answer.body.empty())
    return {};
  auto error = protocol::decode_s3_error(answer.body);
  return error ? error->code : std::string{};
}

bool refuses_keys(const http_response& answer) {
  static const std::set<std::string> codes{"InvalidAccessKeyId", "SignatureDoesNotMatch",
                                           "ExpiredToken", "InvalidToken", "TokenRefreshRequired"};
  if (const std::string code = error_code(answer); !code.empty())
    return codes.count(code) > 0;
  // A HEAD's answer has no body to say why; reading the keys again is cheap
  // next to failing until a restart.
  return answer.status == 403;
}

client::client(std::shared_ptr<http_engine> http, s3_url url, std::shared_ptr<key_holder> keys,
               std::chrono::seconds max_retry_wait)
    : http_(std::move(http)), url_(std::move(url)), keys_(std::move(keys)),
      max_retry_wait_(max_retry_wait) {}

result<http_engine*> client::engine() { return http_.get(); }

result<http_request> client::request(const std::string& method, const std::string& key,
                                     const std::vector<name_value>& query,
                                     std::vector<name_value> headers,
                                     const std::string& payload_hash,
                                     uint64_t* key_generation) const {
  signing_request signing;
  signing.method = method;
  signing.path = url_.request_path(key);
  signing.query = query;
  signing.headers = headers;
  signing.headers.emplace_back("Host", url_.host());
  signing.payload_hash = payload_hash;
  signing.time = std::chrono::system_clock::now();
  signing_keys keys = keys_->current();
  auto signature = sigv4_signer(std::move(keys.keys), url_.region).sign(signing);
  if (!signature)
    return signature.error();
  if (key_generation != nullptr)
    *key_generation = keys.generation;

  http_request out;
  out.method = method;
  out.url = url_.request_url(key);
  char separator = '?';
  for (const auto& [name, value] : query) {
    out.url += separator + uri_encode(name);
    // "?uploads" rather than "?uploads=": what S3 clients send.
    if (!value.empty())
      out.url += "=" + uri_encode(value);
    separator = '&';
  }
  // libcurl sets Host from the URL, which is the host that was signed.
  out.headers = std::move(headers);
  for (auto& header : *signature)
    out.headers.push_back(std::move(header));
  return out;
}

result<http_response> client::send(http_request request) {
  auto http = engine();
  if (!http)
    return http.error();
  return http_fetch(**http, std::move(request));
}

std::vector<result<http_response>> client::send_all(std::vector<http_request> requests) {
  auto http = engine();
  if (!http)
    return std::vector<result<http_response>>(requests.size(), http.error());
  return http_fetch_all(**http, std::move(requests));
}

result<http_response> client::call(const std::string& what, const std::string& method,
                                   const std::string& key, const std::vector<name_value>& query,
                                   std::vector<name_value> headers, std::string body,
                                   const answer_filter& returned) {
  const std::string payload_hash =
    body.empty() ? empty_payload_hash : sha256::of(body.data(), body.size());
  for (bool resent = false;; resent = true) {
    uint64_t generation = 0;
    auto signed_request = request(method, key, query, headers, payload_hash, &generation);
    if (!signed_request)
      return signed_request.error().with_context(what);
    // The body stays here for a resend: call()'s bodies are small.
    signed_request->body = body;
    auto outcome = send(std::move(*signed_request));
    if (!resent && outcome && reread_refused_keys(*outcome, generation))
      continue;
    return checked(what, std::move(outcome), returned);
  }
}

bool client::reread_refused_keys(const http_response& response, uint64_t key_generation) {
  return refuses_keys(response) && keys_->reread(key_generation);
}

status client::streamed_failure(const std::string& what, const http_response& response,
                                uint64_t key_generation) {
  const bool changed = reread_refused_keys(response, key_generation);
  status failed = failure(what, response);
  if (changed)
    return {errc::unavailable, failed.message() + "; they have changed since: trying again"};
  return failed;
}

result<http_response> client::checked(const std::string& what, result<http_response> outcome,
                                      const answer_filter& returned) const {
  if (!outcome)
    return outcome.error().with_context(what);
  if (!returned(*outcome))
    return failure(what, *outcome);
  return outcome;
}

status client::failure(const std::string& what, const http_response& response) const {
  auto error = protocol::decode_s3_error(response.body);
  // Without an <Error> body (HEAD, a proxy's page) the HTTP status decides.
  if (!error)
    return http_failure(what, response, max_retry_wait_);
  status failed = protocol::s3_error_status(*error, response.status).with_context(what);
  if (refuses_keys(response))
    return {failed.code(), failed.message() + "; " + keys_->refused_note()};
  if (failed.code() != errc::unavailable)
    return failed;
  std::optional<std::string> retry_after;
  if (const std::string* value = response.header("retry-after"))
    retry_after = *value;
  // SlowDown comes as a 503; classify_http knows how long is too long.
  http_decision decision = classify_http(response.status == 429 ? 429 : 503, retry_after,
                                         std::chrono::system_clock::now(), max_retry_wait_);
  if (decision.verdict == http_verdict::retry_after)
    return failed.with_retry_after(decision.wait);
  if (decision.verdict == http_verdict::permanent)
    return {errc::config_error, failed.message() + "; " + decision.message};
  return failed;
}

} // namespace ferry::s3
