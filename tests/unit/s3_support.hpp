#pragma once

// The radosgw the S3 tests run against. The ctest fixture `radosgw` starts it
// (tests/s3/radosgw.sh) and hands its address, keys and request log to every
// test that needs it in FERRY_S3_ENDPOINT, FERRY_S3_ACCESS_KEY,
// FERRY_S3_SECRET_KEY and FERRY_RADOSGW_LOG. To run a test binary by hand,
// source the env file of a running instance (DIR/env) first.

#include "store/http/http_engine.hpp"
#include "store/s3/s3_client.hpp"
#include "store/s3/s3_signer.hpp"
#include "store/s3/s3_url.hpp"

#include <catch2/catch.hpp>

#include "loopback_server.hpp"

#include <httplib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>

namespace ferry::testing {

/// A running radosgw: where it listens, the keys of its test user and the
/// file it logs every request to.
struct s3_peer {
  /// "http://127.0.0.1:<port>"; path-style, region us-east-1.
  std::string endpoint;
  ferry::s3::credentials keys;
  /// radosgw's log: one line containing "beast:" per request answered.
  std::string request_log;
};

namespace detail {

inline std::string fixture_variable(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0')
    FAIL(name << " is not set: the radosgw fixture is not running. Run this test through ctest "
                 "(the fixture s3.radosgw.start starts radosgw), or source the env file of a "
                 "radosgw started with tests/s3/radosgw.sh");
  return value;
}

} // namespace detail

/// The radosgw of the ctest fixture, from the environment. A missing
/// variable fails the test with a message saying the fixture is not running.
inline s3_peer radosgw_peer() {
  s3_peer peer;
  peer.endpoint = detail::fixture_variable("FERRY_S3_ENDPOINT");
  peer.keys.access_key_id = detail::fixture_variable("FERRY_S3_ACCESS_KEY");
  peer.keys.secret_access_key = detail::fixture_variable("FERRY_S3_SECRET_KEY");
  peer.request_log = detail::fixture_variable("FERRY_RADOSGW_LOG");
  return peer;
}

/// A client for `bucket` (keys below `prefix`, none when empty) with the
/// peer's keys. `http` may be null: the client then starts its own engine.
inline std::shared_ptr<ferry::s3::client>
bucket_client(const s3_peer& peer, const std::string& bucket, const std::string& prefix = "",
              std::shared_ptr<http_engine> http = nullptr) {
  auto url =
    ferry::s3::parse_s3_url("s3://" + bucket + "/" + prefix + "?endpoint=" + peer.endpoint);
  if (!url)
    FAIL("not a usable S3 URL for the peer: " << url.error().to_string());
  return std::make_shared<ferry::s3::client>(std::move(http), std::move(*url),
                                             ferry::s3::key_holder::fixed(peer.keys),
                                             std::chrono::seconds(60));
}

/// Creates a bucket no other test (in this process or an earlier run against
/// the same radosgw) uses: "<stem>-<pid>-<counter>-<process salt>", a valid
/// bucket name. `stem` is lower-case letters, digits and '-', at most 30
/// characters. The bucket is made with a signed PUT; anything but 200 fails
/// the test.
inline std::string fresh_bucket(const s3_peer& peer, std::string_view stem) {
  static std::atomic<unsigned> made{0};
  // Pids repeat across runs against a long-lived radosgw; a random salt makes
  // a clash with an earlier run's bucket unlikely.
  static const unsigned salt = std::random_device{}() & 0xffffff;
  REQUIRE(stem.size() <= 30);
  std::ostringstream name;
  name << stem << '-' << ::getpid() << '-' << ++made << '-' << std::hex << salt;
  std::string bucket = name.str();
  auto valid = ferry::s3::check_bucket_name(bucket);
  if (!valid.ok())
    FAIL("fresh_bucket(\"" << stem << "\") made the invalid name " << bucket << ": "
                           << valid.to_string());

  no_proxy loopback;
  auto s3 = bucket_client(peer, bucket);
  auto request = s3->request("PUT", "", {}, {}, ferry::s3::empty_payload_hash);
  REQUIRE(request.ok());
  auto created = s3->send(std::move(*request));
  if (!created)
    FAIL("creating bucket " << bucket << " on " << peer.endpoint
                            << " failed: " << created.error().to_string());
  if (created->status != 200)
    FAIL("creating bucket " << bucket << " on " << peer.endpoint << " answered " << created->status
                            << ": " << created->body);
  return bucket;
}

namespace detail {

/// One request as the log shows it: `... beast: ... "PUT /b/k?partNumber=1 HTTP/1.1" 200 ...`.
struct logged_request {
  std::string_view method, path, query;
};

inline bool parse_beast_line(std::string_view line, logged_request& out) {
  auto beast = line.find("beast:");
  if (beast == std::string_view::npos)
    return false;
  auto open = line.find('"', beast);
  auto space = line.find(' ', open);
  auto end = line.find(' ', space + 1);
  if (open == std::string_view::npos || space == std::string_view::npos ||
      end == std::string_view::npos)
    return false;
  out.method = line.substr(open + 1, space - open - 1);
  std::string_view target = line.substr(space + 1, end - space - 1);
  auto question = target.find('?');
  out.path = target.substr(0, question);
  out.query = question == std::string_view::npos ? std::string_view{} : target.substr(question + 1);
  return true;
}

} // namespace detail

/// How many requests in the peer's request log have `method` (exactly), a
/// path containing `path_substring` and a query containing `query_substring`
/// (empty matches anything). Paths and queries are as sent on the wire,
/// percent-encoded: "/bucket/lfs/ab/cd/<oid>", "partNumber=3&uploadId=...".
///
/// radosgw logs a request after it has answered, so the count first sends a
/// marker request of its own and waits (bounded) until the log shows it:
/// every request answered before the call is then counted.
inline size_t count_requests(const s3_peer& peer, std::string_view method,
                             std::string_view path_substring, std::string_view query_substring) {
  static std::atomic<unsigned> markers{0};
  const std::string marker =
    "/ferry-log-marker-" + std::to_string(::getpid()) + "-" + std::to_string(++markers);
  httplib::Client http(peer.endpoint);
  http.set_connection_timeout(patience);
  http.set_read_timeout(patience);
  // Anonymous: radosgw answers it with an error, and logs it all the same.
  if (!http.Get(marker))
    FAIL("the marker request to " << peer.endpoint << " got no answer");

  auto deadline = std::chrono::steady_clock::now() + patience;
  while (true) {
    std::ifstream log(peer.request_log);
    if (!log)
      FAIL("cannot read the radosgw request log " << peer.request_log);
    size_t count = 0;
    bool marker_seen = false;
    detail::logged_request request;
    for (std::string line; std::getline(log, line);) {
      if (!detail::parse_beast_line(line, request))
        continue;
      if (request.path == marker)
        marker_seen = true;
      else if (request.method == method &&
               request.path.find(path_substring) != std::string_view::npos &&
               request.query.find(query_substring) != std::string_view::npos)
        ++count;
    }
    if (marker_seen)
      return count;
    if (std::chrono::steady_clock::now() > deadline)
      FAIL("radosgw did not log the marker request " << marker << " in " << peer.request_log
                                                     << " within " << patience.count() << " s");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

} // namespace ferry::testing
