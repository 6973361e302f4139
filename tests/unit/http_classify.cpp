#include "store/http/http_classify.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using namespace ferry;
using sys = std::chrono::system_clock;

namespace {

const auto now = sys::time_point{std::chrono::seconds{784111777}}; // 1994-11-06 08:49:37 UTC
constexpr auto max_wait = 300s;

http_decision classify(long status, std::optional<std::string> retry_after = std::nullopt) {
  return classify_http(status, retry_after, now, max_wait);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("2xx is success", "[http_classify]") {
  for (long status : {200L, 201L, 204L, 206L, 299L}) {
    INFO("status " << status);
    auto d = classify(status);
    CHECK(d.verdict == http_verdict::success);
    CHECK(d.code == errc::ok);
    CHECK(d.message.empty());
    CHECK(d.wait == 0s);
  }
}

TEST_CASE("transient server errors are retried", "[http_classify]") {
  for (long status : {408L, 500L, 502L, 504L, 509L, 520L, 599L}) {
    INFO("status " << status);
    auto d = classify(status);
    CHECK(d.verdict == http_verdict::retry);
    CHECK(d.code == errc::unavailable);
    CHECK(contains(d.message, "HTTP " + std::to_string(status)));
  }
  CHECK(contains(classify(502).message, "HTTP 502 Bad Gateway"));
}

TEST_CASE("server errors that cannot change are permanent", "[http_classify]") {
  for (long status : {501L, 505L, 506L, 508L, 510L}) {
    INFO("status " << status);
    auto d = classify(status);
    CHECK(d.verdict == http_verdict::permanent);
    CHECK(contains(d.message, "HTTP " + std::to_string(status)));
  }
  auto full = classify(507);
  CHECK(full.verdict == http_verdict::permanent);
  CHECK(full.code == errc::no_space);
  CHECK(contains(full.message, "HTTP 507 Insufficient Storage"));
  auto portal = classify(511);
  CHECK(portal.verdict == http_verdict::permanent);
  CHECK(portal.code == errc::permission_denied);
}

TEST_CASE("429 and 503 honour Retry-After", "[http_classify]") {
  long status = GENERATE(429L, 503L);
  INFO("status " << status);
  SECTION("delta-seconds within the limit") {
    auto d = classify(status, std::string{"120"});
    CHECK(d.verdict == http_verdict::retry_after);
    CHECK(d.wait == 120s);
    CHECK(d.code == errc::unavailable);
    CHECK(contains(d.message, "HTTP " + std::to_string(status)));
  }
  SECTION("exactly the limit is still allowed") {
    auto d = classify(status, std::string{"300"});
    CHECK(d.verdict == http_verdict::retry_after);
    CHECK(d.wait == 300s);
  }
  SECTION("an HTTP-date") {
    auto d = classify(status, std::string{"Sun, 06 Nov 1994 08:50:37 GMT"});
    CHECK(d.verdict == http_verdict::retry_after);
    CHECK(d.wait == 60s);
  }
  SECTION("a date in the past means retry now") {
    auto d = classify(status, std::string{"Sun, 06 Nov 1994 08:00:00 GMT"});
    CHECK(d.verdict == http_verdict::retry_after);
    CHECK(d.wait == 0s);
  }
  SECTION("beyond the limit gives up with an explanation") {
    auto d = classify(status, std::string{"86400"});
    CHECK(d.verdict == http_verdict::permanent);
    CHECK(d.code == errc::unavailable);
    CHECK(contains(d.message, "HTTP " + std::to_string(status)));
    CHECK(contains(d.message, "asked to retry after 86400 s, more than ferry.maxRetryWait "
                              "(300 s); giving up on this object"));
  }
  SECTION("missing or unparseable Retry-After falls back to backoff") {
    for (auto header : {std::optional<std::string>{}, std::optional<std::string>{"soon"},
                        std::optional<std::string>{""}}) {
      auto d = classify(status, header);
      CHECK(d.verdict == http_verdict::retry);
      CHECK(d.wait == 0s);
      CHECK(d.code == errc::unavailable);
    }
  }
}

TEST_CASE("429 and 503 ask to slow down; other failures do not", "[http_classify]") {
  http_response response;
  for (long status : {429L, 503L}) {
    INFO("status " << status);
    response.status = status;
    response.headers.clear();
    CHECK(asks_to_slow_down(http_failure("PUT of x", response, max_wait)));
    response.headers = {{"retry-after", "5"}};
    CHECK(asks_to_slow_down(http_failure("PUT of x", response, max_wait)));
    // Beyond ferry.maxRetryWait the object fails, and the host still asked.
    response.headers = {{"retry-after", "86400"}};
    CHECK(asks_to_slow_down(http_failure("PUT of x", response, max_wait)));
  }
  response.headers.clear();
  for (long status : {500L, 502L, 504L, 408L, 404L, 403L, 401L}) {
    INFO("status " << status);
    response.status = status;
    CHECK_FALSE(asks_to_slow_down(http_failure("PUT of x", response, max_wait)));
  }
  // The S3 error decoder's form, and a Retry-After from anywhere.
  CHECK(
    asks_to_slow_down({errc::unavailable, "PUT: S3 error SlowDown (HTTP 503): \"Please reduce\""}));
  CHECK(asks_to_slow_down(status{errc::unavailable, "bridge: rate limited"}.with_retry_after(2s)));
  CHECK_FALSE(asks_to_slow_down({errc::unavailable, "connection reset"}));
  CHECK_FALSE(asks_to_slow_down({errc::unavailable, "HTTP 4290, HTTP 5031"}));
  CHECK_FALSE(asks_to_slow_down(status::success()));
}

TEST_CASE("Retry-After is ignored on other statuses", "[http_classify]") {
  CHECK(classify(500, std::string{"10"}).verdict == http_verdict::retry);
  CHECK(classify(404, std::string{"10"}).verdict == http_verdict::permanent);
  CHECK(classify(200, std::string{"10"}).verdict == http_verdict::success);
}

TEST_CASE("authentication and authorization failures", "[http_classify]") {
  auto unauthorized = classify(401);
  CHECK(unauthorized.verdict == http_verdict::refresh_auth);
  CHECK(unauthorized.code == errc::permission_denied);
  CHECK(contains(unauthorized.message, "HTTP 401 Unauthorized"));

  auto forbidden = classify(403);
  CHECK(forbidden.verdict == http_verdict::permanent);
  CHECK(forbidden.code == errc::permission_denied);
  CHECK(contains(forbidden.message, "HTTP 403 Forbidden"));
}

TEST_CASE("missing objects and rejected requests are permanent", "[http_classify]") {
  auto missing = classify(404);
  CHECK(missing.verdict == http_verdict::permanent);
  CHECK(missing.code == errc::not_found);
  CHECK(contains(missing.message, "HTTP 404 Not Found"));

  auto gone = classify(410);
  CHECK(gone.verdict == http_verdict::permanent);
  CHECK(gone.code == errc::not_found);
  CHECK(contains(gone.message, "removed by its owner"));
  CHECK(contains(gone.message, "HTTP 410 Gone"));

  for (long status : {409L, 422L}) {
    auto d = classify(status);
    CHECK(d.verdict == http_verdict::permanent);
    CHECK(d.code == errc::invalid_request);
  }
  auto too_large = classify(413);
  CHECK(too_large.verdict == http_verdict::permanent);
  CHECK(contains(too_large.message, "HTTP 413"));

  for (long status : {400L, 405L, 416L, 418L, 451L, 499L}) {
    INFO("status " << status);
    auto d = classify(status);
    CHECK(d.verdict == http_verdict::permanent);
    CHECK(contains(d.message, "HTTP " + std::to_string(status)));
  }
}

TEST_CASE("unexpected and invalid statuses are permanent", "[http_classify]") {
  for (long status : {0L, -1L, 99L, 100L, 199L, 301L, 304L, 600L, 999L}) {
    INFO("status " << status);
    auto d = classify(status);
    CHECK(d.verdict == http_verdict::permanent);
    CHECK(contains(d.message, std::to_string(status)));
  }
}

TEST_CASE("transport failures", "[http_classify]") {
  for (auto failure :
       {transport_failure::connect, transport_failure::timeout, transport_failure::reset,
        transport_failure::resolve, transport_failure::other}) {
    auto d = classify_transport(failure, "details from curl");
    CHECK(d.verdict == http_verdict::retry);
    CHECK(d.code == errc::unavailable);
    CHECK(contains(d.message, ": details from curl"));
  }
  auto tls = classify_transport(transport_failure::tls, "unable to get local issuer certificate");
  CHECK(tls.verdict == http_verdict::permanent);
  CHECK(tls.message.rfind("TLS verification failed: unable to get local issuer certificate", 0) ==
        0);
  // Without details the message still reads well.
  CHECK(classify_transport(transport_failure::timeout).message == "request timed out");
}
