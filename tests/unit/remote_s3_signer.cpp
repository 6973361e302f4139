#include "store/os/sha256.hpp"
#include "store/s3/s3_signer.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <set>
#include <string>
#include <vector>

using ferry::errc;
using ferry::s3::credentials;
using ferry::s3::name_value;
using ferry::s3::signing_request;
using ferry::s3::sigv4_signer;

namespace {

// The inputs of the examples in the S3 API reference, "Authenticating
// Requests: Using the Authorization Header (AWS Signature Version 4)",
// single-chunk payload: bucket examplebucket, 2013-05-24T00:00:00Z.
constexpr const char* example_access_key = "AKIAIOSFODNN7EXAMPLE";
constexpr const char* example_secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr const char* example_host = "examplebucket.s3.amazonaws.com";
constexpr const char* empty_hash = ferry::s3::empty_payload_hash;

// 2013-05-24T00:00:00Z as seconds since the epoch.
const auto example_time = std::chrono::system_clock::time_point(std::chrono::seconds(1369353600));

sigv4_signer example_signer() {
  return sigv4_signer(credentials{example_access_key, example_secret, ""}, "us-east-1");
}

signing_request example_get_object() {
  signing_request request;
  request.method = "GET";
  request.path = "/test.txt";
  request.headers = {{"Host", example_host}, {"Range", "bytes=0-9"}};
  request.payload_hash = empty_hash;
  request.time = example_time;
  return request;
}

signing_request example_bucket_get(std::vector<name_value> query) {
  signing_request request;
  request.method = "GET";
  request.path = "/";
  request.query = std::move(query);
  request.headers = {{"Host", example_host}};
  request.payload_hash = empty_hash;
  request.time = example_time;
  return request;
}

std::string header_value(const std::vector<name_value>& headers, const std::string& name) {
  for (const auto& [key, value] : headers)
    if (key == name)
      return value;
  return {};
}

std::string authorization(const sigv4_signer& signer, const signing_request& request) {
  auto headers = signer.sign(request);
  INFO(headers.error().to_string());
  REQUIRE(headers.ok());
  return header_value(*headers, "Authorization");
}

std::string signature_of(const std::string& authorization) {
  auto at = authorization.find("Signature=");
  return at == std::string::npos ? std::string() : authorization.substr(at + 10);
}

// One documented example: the request and what the documentation prints for
// it. An empty `canonical` is not printed there in full.
struct documented_example {
  const char* name;
  signing_request request;
  std::string canonical;
  std::string canonical_hash;
  std::string authorization;
};

std::vector<documented_example> documented_examples() {
  const std::string credential =
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,";
  const std::string basic_headers = "SignedHeaders=host;x-amz-content-sha256;x-amz-date,";
  const std::string body = "Welcome to Amazon S3.";

  signing_request put;
  put.method = "PUT";
  put.path = "/test$file.text";
  put.headers = {{"Host", example_host},
                 {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                 {"x-amz-storage-class", "REDUCED_REDUNDANCY"}};
  put.payload_hash = ferry::sha256::of(body.data(), body.size());
  put.time = example_time;

  return {
    {"GET Object", example_get_object(),
     "GET\n"
     "/test.txt\n"
     "\n"
     "host:examplebucket.s3.amazonaws.com\n"
     "range:bytes=0-9\n"
     "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
     "x-amz-date:20130524T000000Z\n"
     "\n"
     "host;range;x-amz-content-sha256;x-amz-date\n"
     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
     credential + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date," +
       "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"},
    {"PUT Object", put,
     "PUT\n"
     "/test%24file.text\n"
     "\n"
     "date:Fri, 24 May 2013 00:00:00 GMT\n"
     "host:examplebucket.s3.amazonaws.com\n"
     "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
     "x-amz-date:20130524T000000Z\n"
     "x-amz-storage-class:REDUCED_REDUNDANCY\n"
     "\n"
     "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
     "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
     "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
     credential + "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class," +
       "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"},
    {"GET Bucket Lifecycle", example_bucket_get({{"lifecycle", ""}}),
     "GET\n"
     "/\n"
     "lifecycle=\n"
     "host:examplebucket.s3.amazonaws.com\n"
     "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
     "x-amz-date:20130524T000000Z\n"
     "\n"
     "host;x-amz-content-sha256;x-amz-date\n"
     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca",
     credential + basic_headers +
       "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"},
    // Given in the opposite order: the canonical query is sorted.
    {"GET Bucket (List Objects)", example_bucket_get({{"prefix", "J"}, {"max-keys", "2"}}), "",
     "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7",
     credential + basic_headers +
       "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"},
  };
}

} // namespace

TEST_CASE("s3 sigv4 reproduces the documented examples", "[s3_signer]") {
  auto signer = example_signer();
  for (const auto& example : documented_examples()) {
    INFO(example.name);
    auto canonical = signer.canonical_request(example.request);
    REQUIRE(canonical.ok());
    if (!example.canonical.empty())
      CHECK(*canonical == example.canonical);
    auto to_sign = signer.string_to_sign(example.request);
    REQUIRE(to_sign.ok());
    CHECK(*to_sign == "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n" +
                        example.canonical_hash);

    auto headers = signer.sign(example.request);
    REQUIRE(headers.ok());
    CHECK(header_value(*headers, "Authorization") == example.authorization);
    CHECK(header_value(*headers, "x-amz-date") == "20130524T000000Z");
    CHECK(header_value(*headers, "x-amz-content-sha256") == example.request.payload_hash);
    CHECK(headers->size() == 3);
  }
}

TEST_CASE("s3 sigv4 canonical query of the list example is sorted", "[s3_signer]") {
  auto canonical =
    example_signer().canonical_request(example_bucket_get({{"prefix", "J"}, {"max-keys", "2"}}));
  REQUIRE(canonical.ok());
  CHECK(canonical->find("GET\n/\nmax-keys=2&prefix=J\n") == 0);
}

TEST_CASE("s3 sigv4 the PUT example payload hash is the documented one", "[s3_signer]") {
  const std::string body = "Welcome to Amazon S3.";
  CHECK(ferry::sha256::of(body.data(), body.size()) ==
        "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
}

TEST_CASE("s3 sigv4 ignores header order, name case and value whitespace", "[s3_signer]") {
  auto signer = example_signer();
  const std::string expected = authorization(signer, example_get_object());

  auto reordered = example_get_object();
  reordered.headers = {{"rAnGe", "  bytes=0-9\t"}, {"HOST", example_host}};
  CHECK(authorization(signer, reordered) == expected);

  // Inner runs of spaces collapse to one.
  auto spaced = example_get_object();
  spaced.headers.emplace_back("x-meta", "a   b");
  auto single = example_get_object();
  single.headers.emplace_back("X-Meta", "a b");
  CHECK(authorization(signer, spaced) == authorization(signer, single));
  CHECK(authorization(signer, single) != expected);

  auto query_a = example_bucket_get({{"b", "2"}, {"a", "1"}, {"c", ""}});
  auto query_b = example_bucket_get({{"c", ""}, {"a", "1"}, {"b", "2"}});
  CHECK(authorization(signer, query_a) == authorization(signer, query_b));
}

TEST_CASE("s3 sigv4 authorization changes when any one input changes", "[s3_signer]") {
  auto base = example_get_object();
  // The whole header: the access key id is in the credential scope, not in
  // what the signature covers.
  std::vector<std::string> signatures;
  auto add = [&](const credentials& keys, const std::string& region,
                 const signing_request& request) {
    signatures.push_back(authorization(sigv4_signer(keys, region), request));
  };
  const credentials keys{example_access_key, example_secret, ""};
  add(keys, "us-east-1", base);

  auto changed = base;
  changed.method = "HEAD";
  add(keys, "us-east-1", changed);
  changed = base;
  changed.path = "/test.txu";
  add(keys, "us-east-1", changed);
  changed = base;
  changed.query = {{"versionId", "1"}};
  add(keys, "us-east-1", changed);
  changed = base;
  changed.headers[1].second = "bytes=0-8";
  add(keys, "us-east-1", changed);
  changed = base;
  changed.headers.emplace_back("x-amz-meta-a", "1");
  add(keys, "us-east-1", changed);
  changed = base;
  changed.payload_hash = ferry::s3::unsigned_payload;
  add(keys, "us-east-1", changed);
  changed = base;
  changed.time += std::chrono::seconds(1);
  add(keys, "us-east-1", changed);
  add(keys, "us-east-2", base);
  add(credentials{"AKIAIOSFODNN7EXAMPLF", example_secret, ""}, "us-east-1", base);
  add(credentials{example_access_key, std::string(example_secret) + "x", ""}, "us-east-1", base);
  add(credentials{example_access_key, example_secret, "token"}, "us-east-1", base);

  std::set<std::string> distinct(signatures.begin(), signatures.end());
  CHECK(distinct.size() == signatures.size());
  for (const auto& signature : signatures)
    CHECK(signature_of(signature).size() == 64);
}

TEST_CASE("s3 sigv4 signs and sends a session token", "[s3_signer]") {
  sigv4_signer signer(credentials{example_access_key, example_secret, "FQoGZXIvYXdzEXAMPLE"},
                      "us-east-1");
  auto headers = signer.sign(example_get_object());
  REQUIRE(headers.ok());
  CHECK(headers->size() == 4);
  CHECK(header_value(*headers, "x-amz-security-token") == "FQoGZXIvYXdzEXAMPLE");
  CHECK(header_value(*headers, "Authorization")
          .find("SignedHeaders=host;range;x-amz-content-sha256;x-amz-date;x-amz-security-token,") !=
        std::string::npos);
  auto canonical = signer.canonical_request(example_get_object());
  REQUIRE(canonical.ok());
  CHECK(canonical->find("\nx-amz-security-token:FQoGZXIvYXdzEXAMPLE\n") != std::string::npos);
}

TEST_CASE("s3 sigv4 keeps the secret out of every returned text", "[s3_signer]") {
  const credentials keys{example_access_key, example_secret, "SESSIONTOKEN"};
  sigv4_signer signer(keys, "us-east-1");
  auto request = example_get_object();

  auto headers = signer.sign(request);
  REQUIRE(headers.ok());
  for (const auto& [name, value] : *headers)
    CHECK(value.find(example_secret) == std::string::npos);
  CHECK(signer.canonical_request(request)->find(example_secret) == std::string::npos);
  CHECK(signer.string_to_sign(request)->find(example_secret) == std::string::npos);

  CHECK(keys.describe() == "access key AKIAIOSFODNN7EXAMPLE (secret hidden), with session token");
  CHECK(signer.describe().find(example_secret) == std::string::npos);
  CHECK(signer.describe().find("SESSIONTOKEN") == std::string::npos);
  CHECK(signer.describe().find("us-east-1") != std::string::npos);

  // Neither do error messages.
  auto bad = request;
  bad.headers.clear();
  auto refused = signer.sign(bad);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message().find(example_secret) == std::string::npos);
}

TEST_CASE("s3 sigv4 refuses requests it cannot sign", "[s3_signer]") {
  auto signer = example_signer();
  auto refuse = [&](const signing_request& request) {
    auto headers = signer.sign(request);
    INFO(headers.error().to_string());
    CHECK_FALSE(headers.ok());
    CHECK(headers.error().code() == errc::invalid_request);
  };
  auto request = example_get_object();
  request.headers = {{"Range", "bytes=0-9"}};
  refuse(request);
  for (const char* owned :
       {"X-Amz-Date", "x-amz-content-sha256", "Authorization", "x-amz-security-token"}) {
    request = example_get_object();
    request.headers.emplace_back(owned, "x");
    refuse(request);
  }
  request = example_get_object();
  request.headers.emplace_back("x-meta", "a\r\nInjected: yes");
  refuse(request);
  request = example_get_object();
  request.headers.emplace_back("bad name", "x");
  refuse(request);
  // Empty, unknown keyword, upper-case hex, 63 digits.
  for (const char* hash :
       {"", "UNSIGNED", "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85"}) {
    request = example_get_object();
    request.payload_hash = hash;
    refuse(request);
  }
  request = example_get_object();
  request.method = "get";
  refuse(request);
  request = example_get_object();
  request.path = "test.txt";
  refuse(request);
}

TEST_CASE("s3 sigv4 refuses unusable credentials and regions", "[s3_signer]") {
  auto refused = [](const credentials& keys, const std::string& region) {
    auto headers = sigv4_signer(keys, region).sign(example_get_object());
    return !headers.ok() && headers.error().code() == errc::config_error;
  };
  CHECK(refused(credentials{"", example_secret, ""}, "us-east-1"));
  CHECK(refused(credentials{"AKIA/EXAMPLE", example_secret, ""}, "us-east-1"));
  CHECK(refused(credentials{"AKIA EXAMPLE", example_secret, ""}, "us-east-1"));
  CHECK(refused(credentials{example_access_key, "", ""}, "us-east-1"));
  CHECK(refused(credentials{example_access_key, example_secret, "tok\nen"}, "us-east-1"));
  CHECK(refused(credentials{example_access_key, example_secret, ""}, ""));
  CHECK(refused(credentials{example_access_key, example_secret, ""}, "us/east"));
  CHECK_FALSE(refused(credentials{example_access_key, example_secret, ""}, "us-east-1"));
}

TEST_CASE("s3 sigv4 repeated header names are joined in order", "[s3_signer]") {
  auto request = example_get_object();
  request.headers.emplace_back("x-meta", "one");
  request.headers.emplace_back("X-Meta", " two ");
  auto canonical = example_signer().canonical_request(request);
  REQUIRE(canonical.ok());
  CHECK(canonical->find("\nx-meta:one,two\n") != std::string::npos);
}

TEST_CASE("s3 uri encoding keeps only unreserved characters", "[s3_signer]") {
  using ferry::s3::uri_encode;
  using ferry::s3::uri_encode_path;
  CHECK(uri_encode("AZaz09-._~") == "AZaz09-._~");
  CHECK(uri_encode("a b/c+d=\xc3\xa9*") == "a%20b%2Fc%2Bd%3D%C3%A9%2A");
  CHECK(uri_encode_path("/dir/a b+c.txt") == "/dir/a%20b%2Bc.txt");
  // A '%' in a key is data: encoded once, never taken as an escape.
  CHECK(uri_encode_path("/100%41") == "/100%2541");
  CHECK(uri_encode_path("") == "/");
}

TEST_CASE("s3 amz_date formats UTC and drops fractions of a second", "[s3_signer]") {
  using namespace std::chrono;
  CHECK(ferry::s3::amz_date(example_time) == "20130524T000000Z");
  // 2026-02-28T23:59:59Z plus 999 ms.
  auto late = system_clock::time_point(seconds(1772323199)) + milliseconds(999);
  CHECK(ferry::s3::amz_date(late) == "20260228T235959Z");
}
