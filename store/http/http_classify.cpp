#include "store/http/http_classify.hpp"

#include "protocol/batch_api.hpp"
#include "protocol/retry_after.hpp"

namespace ferry {

namespace {

// "HTTP 404 Not Found", or "HTTP 599" for statuses without a known phrase.
std::string describe(long status) {
  std::string text = "HTTP " + std::to_string(status);
  auto reason = http_reason(status);
  if (!reason.empty()) {
    text += ' ';
    text += reason;
  }
  return text;
}

http_decision make(http_verdict verdict, errc code, std::string message) {
  return {verdict, std::chrono::seconds{0}, code, std::move(message)};
}

http_decision throttled(long status, const std::optional<std::string>& retry_after_header,
                        std::chrono::system_clock::time_point now, std::chrono::seconds max_wait) {
  const std::string what = describe(status);
  std::optional<std::chrono::seconds> wait;
  if (retry_after_header)
    wait = parse_retry_after(*retry_after_header, now);
  if (!wait)
    return make(http_verdict::retry, errc::unavailable,
                "server is overloaded or unavailable (" + what + ")");
  if (*wait > max_wait)
    return make(http_verdict::permanent, errc::unavailable,
                "server answered " + what + " and asked to retry after " +
                  std::to_string(wait->count()) + " s, more than ferry.maxRetryWait (" +
                  std::to_string(max_wait.count()) + " s); giving up on this object");
  http_decision d = make(http_verdict::retry_after, errc::unavailable,
                         "server answered " + what + " and asked to retry after " +
                           std::to_string(wait->count()) + " s");
  d.wait = *wait;
  return d;
}

} // namespace

std::string_view http_reason(long status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 402:
      return "Payment Required";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 407:
      return "Proxy Authentication Required";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 421:
      return "Misdirected Request";
    case 422:
      return "Unprocessable Content";
    case 426:
      return "Upgrade Required";
    case 428:
      return "Precondition Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 451:
      return "Unavailable For Legal Reasons";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    case 506:
      return "Variant Also Negotiates";
    case 507:
      return "Insufficient Storage";
    case 508:
      return "Loop Detected";
    case 510:
      return "Not Extended";
    case 511:
      return "Network Authentication Required";
    default:
      return {};
  }
}

bool asks_to_slow_down(const status& failure) {
  if (failure.ok())
    return false;
  if (failure.retry_after() > std::chrono::milliseconds{0})
    return true;
  const std::string& message = failure.message();
  for (std::string_view code : {"HTTP 429", "HTTP 503"}) {
    // "HTTP 429 Too Many Requests", "(HTTP 503)": the status, not 4290.
    for (auto at = message.find(code); at != std::string::npos; at = message.find(code, at + 1)) {
      auto after = at + code.size();
      if (after == message.size() || message[after] < '0' || message[after] > '9')
        return true;
    }
  }
  return false;
}

http_decision classify_http(long status, const std::optional<std::string>& retry_after_header,
                            std::chrono::system_clock::time_point now,
                            std::chrono::seconds max_wait) {
  const std::string what = describe(status);
  if (status >= 200 && status <= 299)
    return make(http_verdict::success, errc::ok, {});

  switch (status) {
    case 429:
    case 503:
      return throttled(status, retry_after_header, now, max_wait);
    case 408:
      return make(http_verdict::retry, errc::unavailable,
                  "server timed out waiting for the request (" + what + ")");
    case 401:
      return make(http_verdict::refresh_auth, errc::permission_denied,
                  "server rejected the credentials (" + what + ")");
    case 403:
      return make(http_verdict::permanent, errc::permission_denied,
                  "server denied access to this object (" + what + ")");
    case 404:
      return make(http_verdict::permanent, errc::not_found,
                  "server does not have this object (" + what + ")");
    case 410:
      return make(http_verdict::permanent, errc::not_found,
                  "object was removed by its owner (" + what + ")");
    case 409:
    case 422:
      return make(http_verdict::permanent, errc::invalid_request,
                  "server refused the request as invalid (" + what + ")");
    case 413:
      return make(http_verdict::permanent, errc::invalid_request,
                  "object is larger than the server accepts (" + what + ")");
    case 501:
    case 505:
    case 506:
    case 508:
    case 510:
      // The server cannot handle this kind of request at all; asking again
      // changes nothing.
      return make(http_verdict::permanent, errc::unavailable,
                  "server cannot handle this request (" + what + ")");
    case 507:
      return make(http_verdict::permanent, errc::no_space,
                  "server is out of storage space (" + what + ")");
    case 511:
      // Usually a captive portal between Ferry and the server.
      return make(http_verdict::permanent, errc::permission_denied,
                  "the network requires a sign-in before reaching the server (" + what + ")");
    default:
      break;
  }

  if (status >= 500 && status <= 599)
    return make(http_verdict::retry, errc::unavailable,
                "server failed to handle the request (" + what + ")");
  if (status >= 400 && status <= 499)
    return make(http_verdict::permanent, errc::invalid_request,
                "server refused the request (" + what + ")");
  if (status >= 100 && status <= 399)
    return make(http_verdict::permanent, errc::invalid_request,
                "server gave an unexpected answer (" + what + ")");
  return make(http_verdict::permanent, errc::invalid_request,
              "server sent an invalid HTTP status (" + std::to_string(status) + ")");
}

http_decision classify_transport(transport_failure failure, std::string_view detail) {
  std::string suffix;
  if (!detail.empty()) {
    suffix = ": ";
    suffix += detail;
  }
  switch (failure) {
    case transport_failure::connect:
      return make(http_verdict::retry, errc::unavailable,
                  "could not connect to the server" + suffix);
    case transport_failure::timeout:
      return make(http_verdict::retry, errc::unavailable, "request timed out" + suffix);
    case transport_failure::reset:
      return make(http_verdict::retry, errc::unavailable,
                  "connection to the server was reset" + suffix);
    case transport_failure::resolve:
      return make(http_verdict::retry, errc::unavailable,
                  "could not resolve the server's host name" + suffix);
    case transport_failure::tls:
      return make(http_verdict::permanent, errc::config_error,
                  "TLS verification failed" + suffix +
                    " (check http.sslCAInfo and http.sslVerify)");
    case transport_failure::other:
      break;
  }
  return make(http_verdict::retry, errc::unavailable, "network transfer failed" + suffix);
}

status http_failure(const std::string& what, const http_response& response,
                    std::chrono::seconds max_retry_wait) {
  std::optional<std::string> retry_after;
  if (const std::string* value = response.header("retry-after"))
    retry_after = *value;
  http_decision decision =
    classify_http(response.status, retry_after, std::chrono::system_clock::now(), max_retry_wait);
  std::string message = what + ": " + decision.message;
  if (decision.verdict == http_verdict::refresh_auth)
    message += "; check the credentials git's credential helper gives for this server";
  if (!response.body.empty())
    message += "; server said: " + protocol::decode_error_message(response.body);

  errc code = decision.verdict == http_verdict::success ? errc::internal : decision.code;
  // The verdict decides, but the retry policy only sees the code: a
  // permanent verdict must not carry a code it would retry. Waiting longer
  // than ferry.maxRetryWait allows is a matter of that setting.
  if (decision.verdict == http_verdict::permanent && classify(code) == retry_class::transient)
    code = (response.status == 429 || response.status == 503) ? errc::config_error
                                                              : errc::invalid_request;
  status failure{code, message};
  if (decision.verdict == http_verdict::retry_after)
    failure = failure.with_retry_after(decision.wait);
  return failure;
}

} // namespace ferry
