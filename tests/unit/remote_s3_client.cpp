// s3::client::call() and checked() against a loopback server that records
// what it is sent and answers as a test tells it: what is signed, which
// answers come back, and how the others become failures.

#include "store/http/http_engine.hpp"
#include "store/os/sha256.hpp"
#include "store/s3/s3_client.hpp"

#include <catch2/catch.hpp>

#include "remote_support.hpp"

#include <memory>
#include <mutex>
#include <string>
#include <vector>

using ferry::errc;
using ferry::http_response;
using namespace ferry::testing;

namespace {

/// What the server saw of one request.
struct seen_request {
  std::string method;
  std::string target;
  std::string authorization;
  std::string content_sha256;
  std::string content_type;
  std::string body;
};

/// Answers every request to bucket "bucket" with the status, body and
/// headers a test sets, and records each request.
class answering_bucket {
public:
  answering_bucket() {
    auto handler = [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mutex_);
      std::string target = req.path;
      char separator = '?';
      for (const auto& [name, value] : req.params) {
        target += separator + name + (value.empty() ? "" : "=" + value);
        separator = '&';
      }
      seen_.push_back({req.method, target, req.get_header_value("Authorization"),
                       req.get_header_value("x-amz-content-sha256"),
                       req.get_header_value("Content-Type"), req.body});
      res.status = status_;
      for (const auto& [name, value] : headers_)
        res.set_header(name, value);
      if (!body_.empty())
        res.set_content(body_, "application/xml");
    };
    const std::string route = R"(/bucket/(.*))";
    server_.http().Get(route, handler);
    server_.http().Post(route, handler);
    server_.http().Delete(route, handler);
    server_.start();
  }

  /// Answers from now on with `status`, `body` and `headers`.
  void answer(int status, std::string body = {},
              std::vector<std::pair<std::string, std::string>> headers = {}) {
    std::lock_guard<std::mutex> lock(mutex_);
    status_ = status;
    body_ = std::move(body);
    headers_ = std::move(headers);
  }

  std::vector<seen_request> seen() {
    std::lock_guard<std::mutex> lock(mutex_);
    return seen_;
  }

  std::shared_ptr<ferry::s3::client> client() {
    auto url = ferry::s3::parse_s3_url("s3://bucket/lfs?endpoint=" + server_.url(""));
    REQUIRE(url.ok());
    return std::make_shared<ferry::s3::client>(
      http_, *url, ferry::s3::key_holder::fixed({"AKTEST", "secret", ""}),
      std::chrono::seconds(120));
  }

  /// Stops answering: later requests cannot connect.
  void stop() { server_.stop(); }

private:
  no_proxy proxy_;
  test_server server_;
  std::shared_ptr<ferry::http_engine> http_ = std::make_shared<ferry::http_engine>();
  std::mutex mutex_;
  int status_ = 200;
  std::string body_;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::vector<seen_request> seen_;
};

} // namespace

TEST_CASE("s3 client: call signs the request with its body's SHA-256 and returns a 2xx",
          "[s3_client]") {
  answering_bucket bucket;
  bucket.answer(200, "<Done/>");
  auto client = bucket.client();
  const std::string body = "<CompleteMultipartUpload/>";
  auto answer = client->call("completion", "POST", "lfs/key", {{"uploadId", "u-1"}},
                             {{"Content-Type", "application/xml"}}, body);
  REQUIRE(answer.ok());
  CHECK(answer->status == 200);
  CHECK(answer->body == "<Done/>");
  auto seen = bucket.seen();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].method == "POST");
  CHECK(seen[0].target == "/bucket/lfs/key?uploadId=u-1");
  CHECK(seen[0].body == body);
  CHECK(seen[0].content_type == "application/xml");
  CHECK(seen[0].content_sha256 == ferry::sha256::of(body.data(), body.size()));
  CHECK_THAT(seen[0].authorization, Catch::StartsWith("AWS4-HMAC-SHA256 Credential=AKTEST/"));
  CHECK_THAT(seen[0].authorization,
             Catch::Contains("SignedHeaders=content-type;host;x-amz-content-sha256;"));
}

TEST_CASE("s3 client: a call without a body signs the empty payload", "[s3_client]") {
  answering_bucket bucket;
  auto client = bucket.client();
  auto answer = client->call("listing", "GET", "", {{"list-type", "2"}, {"uploads", ""}});
  REQUIRE(answer.ok());
  auto seen = bucket.seen();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].target == "/bucket/?list-type=2&uploads");
  CHECK(seen[0].body.empty());
  CHECK(seen[0].content_sha256 == ferry::s3::empty_payload_hash);
}

TEST_CASE("s3 client: a call's refused answer is its failure, in the context of what",
          "[s3_client]") {
  answering_bucket bucket;
  auto client = bucket.client();

  bucket.answer(403, s3_error_xml("AccessDenied"));
  auto denied = client->call("removal of x", "DELETE", "lfs/x", {});
  REQUIRE_FALSE(denied.ok());
  CHECK(denied.error().code() == errc::permission_denied);
  CHECK_THAT(denied.error().message(), Catch::StartsWith("removal of x: "));
  CHECK_THAT(denied.error().message(), Catch::Contains("AccessDenied"));

  bucket.answer(503, s3_error_xml("SlowDown"), {{"Retry-After", "7"}});
  auto slowed = client->call("listing", "GET", "", {});
  REQUIRE_FALSE(slowed.ok());
  CHECK(slowed.error().code() == errc::unavailable);
  CHECK(slowed.error().retry_after() == std::chrono::seconds(7));
  CHECK_THAT(slowed.error().message(), Catch::StartsWith("listing: "));
}

TEST_CASE("s3 client: an answer the filter takes comes back, whatever its status", "[s3_client]") {
  answering_bucket bucket;
  auto client = bucket.client();
  bucket.answer(404, s3_error_xml("NoSuchUpload"));
  auto gone = [](const http_response& answer) {
    return ferry::s3::error_code(answer) == "NoSuchUpload";
  };
  auto taken = client->call("abort", "DELETE", "lfs/x", {{"uploadId", "u-1"}}, {}, {}, gone);
  REQUIRE(taken.ok());
  CHECK(taken->status == 404);
  auto anything = client->call("abort", "DELETE", "lfs/x", {}, {}, {}, ferry::s3::any_answer);
  REQUIRE(anything.ok());
  CHECK(anything->status == 404);

  bucket.answer(404, s3_error_xml("NoSuchKey"));
  auto refused = client->call("abort", "DELETE", "lfs/x", {{"uploadId", "u-1"}}, {}, {}, gone);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code() == errc::not_found);
  CHECK_THAT(refused.error().message(), Catch::Contains("NoSuchKey"));
}

TEST_CASE("s3 client: a call that gets no answer fails in the context of what", "[s3_client]") {
  answering_bucket bucket;
  auto client = bucket.client();
  bucket.stop();
  auto failed = client->call("stat of x", "HEAD", "lfs/x", {}, {}, {}, ferry::s3::any_answer);
  REQUIRE_FALSE(failed.ok());
  CHECK_THAT(failed.error().message(), Catch::StartsWith("stat of x: "));
}

TEST_CASE("s3 client: checked judges answers sent together as call would", "[s3_client]") {
  answering_bucket bucket;
  auto client = bucket.client();
  bucket.answer(403, s3_error_xml("AccessDenied"));
  auto request = client->request("GET", "lfs/x", {}, {}, ferry::s3::empty_payload_hash);
  REQUIRE(request.ok());
  auto outcomes = client->send_all({*request});
  REQUIRE(outcomes.size() == 1);
  auto refused = client->checked("check for x", outcomes[0]);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code() == errc::permission_denied);
  CHECK_THAT(refused.error().message(), Catch::StartsWith("check for x: "));
  auto taken = client->checked("check for x", outcomes[0], ferry::s3::any_answer);
  REQUIRE(taken.ok());
  CHECK(taken->status == 403);

  auto failed = client->checked("check for x", ferry::status{errc::unavailable, "reset"});
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.error().message() == "check for x: reset");
}
