// The radosgw fixture itself: it serves signed requests, refuses wrongly
// signed ones, and logs every request where count_requests finds it.

#include "store/os/sha256.hpp"
#include "store/s3/s3_client.hpp"
#include "store/s3/s3_url.hpp"

#include <catch2/catch.hpp>

#include "s3_support.hpp"

#include <string>
#include <vector>

using namespace ferry::testing;

namespace {

/// Runs one signed request with an optional body and returns the answer.
ferry::http_response send(ferry::s3::client& s3, const std::string& method, const std::string& key,
                          const std::vector<ferry::s3::name_value>& query = {},
                          const std::string& body = "") {
  auto request = s3.request(method, key, query, {},
                            body.empty() ? ferry::s3::empty_payload_hash
                                         : ferry::sha256::of(body.data(), body.size()));
  REQUIRE(request.ok());
  if (!body.empty())
    request->body = body;
  auto response = s3.send(std::move(*request));
  INFO(method << " " << key << ": " << (response ? "" : response.error().to_string()));
  REQUIRE(response.ok());
  return *response;
}

} // namespace

TEST_CASE("the radosgw fixture stores and serves objects and logs each request", "[s3_peer]") {
  no_proxy loopback;
  s3_peer peer = radosgw_peer();
  std::string bucket = fresh_bucket(peer, "peer");
  auto s3 = bucket_client(peer, bucket);
  // Bytes of every value, in a period (251) that no power of two divides.
  std::string content(300000, '\0');
  for (size_t i = 0; i < content.size(); ++i)
    content[i] = static_cast<char>(i * 131 % 251);

  auto put = send(*s3, "PUT", "fixture/probe.bin", {}, content);
  INFO(put.body);
  REQUIRE(put.status == 200);
  auto got = send(*s3, "GET", "fixture/probe.bin");
  REQUIRE(got.status == 200);
  CHECK(got.body == content);
  auto listed = send(*s3, "GET", "", {{"list-type", "2"}, {"prefix", "fixture/"}});
  CHECK(listed.status == 200);

  const std::string object_path = "/" + bucket + "/fixture/probe.bin";
  CHECK(count_requests(peer, "PUT", object_path, "") == 1);
  CHECK(count_requests(peer, "GET", object_path, "") == 1);
  CHECK(count_requests(peer, "HEAD", object_path, "") == 0);
  // The bucket's creation, and no other PUT below it.
  CHECK(count_requests(peer, "PUT", "/" + bucket, "") == 2);
  CHECK(count_requests(peer, "GET", "/" + bucket + "/", "list-type=2") == 1);
  CHECK(count_requests(peer, "GET", "/" + bucket + "/", "prefix=fixture%2F") == 1);

  // Counted again, the log has not lost or doubled anything.
  CHECK(send(*s3, "GET", "fixture/probe.bin").status == 200);
  CHECK(count_requests(peer, "GET", object_path, "") == 2);
}

TEST_CASE("the radosgw fixture checks signatures", "[s3_peer]") {
  no_proxy loopback;
  s3_peer peer = radosgw_peer();
  std::string bucket = fresh_bucket(peer, "peer-auth");
  s3_peer forged = peer;
  forged.keys.secret_access_key += "x";
  auto s3 = bucket_client(forged, bucket);

  auto refused = send(*s3, "PUT", "forged.bin", {}, "not stored");
  CHECK(refused.status == 403);
  CHECK(refused.body.find("SignatureDoesNotMatch") != std::string::npos);
  CHECK(send(*bucket_client(peer, bucket), "GET", "forged.bin").status == 404);
}

TEST_CASE("fresh_bucket makes a new valid bucket on every call", "[s3_peer]") {
  no_proxy loopback;
  s3_peer peer = radosgw_peer();
  std::string first = fresh_bucket(peer, "peer-twice");
  std::string second = fresh_bucket(peer, "peer-twice");
  CHECK(first != second);
  for (const auto& bucket : {first, second}) {
    CHECK(ferry::s3::check_bucket_name(bucket).ok());
    auto listed = send(*bucket_client(peer, bucket), "GET", "", {{"list-type", "2"}});
    CHECK(listed.status == 200);
    CHECK(listed.body.find("<KeyCount>0</KeyCount>") != std::string::npos);
  }
}
