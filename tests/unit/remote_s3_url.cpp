#include "store/s3/s3_url.hpp"

#include <catch2/catch.hpp>

#include <initializer_list>
#include <string>
#include <utility>

using ferry::errc;
using ferry::s3::key_layout;
using ferry::s3::parse_s3_url;

namespace {

constexpr const char* oid = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";

ferry::s3::s3_url parsed(const std::string& text) {
  auto url = parse_s3_url(text);
  INFO(text << ": " << url.error().to_string());
  REQUIRE(url.ok());
  return *url;
}

// The message of the config_error `text` is refused with.
std::string refusal(const std::string& text) {
  auto url = parse_s3_url(text);
  INFO(text);
  REQUIRE_FALSE(url.ok());
  CHECK(url.error().code() == errc::config_error);
  return url.error().message();
}

bool mentions(const std::string& message, const std::string& part) {
  return message.find(part) != std::string::npos;
}

// Each URL is refused with a message containing its fragment.
void check_refusals(std::initializer_list<std::pair<std::string, std::string>> cases) {
  for (const auto& [text, fragment] : cases) {
    auto message = refusal(text);
    INFO(text << " -> " << message);
    CHECK(mentions(message, fragment));
  }
}

} // namespace

TEST_CASE("s3 url defaults: AWS endpoint, us-east-1, virtual host, nested", "[s3_url]") {
  auto url = parsed("s3://my-bucket");
  CHECK(url.bucket == "my-bucket");
  CHECK(url.prefix.empty());
  CHECK(url.endpoint == "https://s3.us-east-1.amazonaws.com");
  CHECK(url.region == "us-east-1");
  CHECK_FALSE(url.path_style);
  CHECK(url.layout == key_layout::nested);
  CHECK(url.describe() == "s3://my-bucket");

  auto regional = parsed("s3://my-bucket?region=eu-west-3");
  CHECK(regional.endpoint == "https://s3.eu-west-3.amazonaws.com");
  CHECK(regional.describe() == "s3://my-bucket?region=eu-west-3");
}

TEST_CASE("s3 url reads every query key", "[s3_url]") {
  auto url = parsed("s3://lfs-objects/team/repo?endpoint=http://127.0.0.1:17480"
                    "&region=us-west-2&path_style=true&layout=flat");
  CHECK(url.bucket == "lfs-objects");
  CHECK(url.prefix == "team/repo");
  CHECK(url.endpoint == "http://127.0.0.1:17480");
  CHECK(url.region == "us-west-2");
  CHECK(url.path_style);
  CHECK(url.layout == key_layout::flat);

  auto named = parsed("s3://b-1/p?endpoint=https://minio.example.com:9000&path_style=false"
                      "&layout=nested");
  CHECK(named.endpoint == "https://minio.example.com:9000");
  CHECK_FALSE(named.path_style);
  CHECK(named.layout == key_layout::nested);
}

TEST_CASE("s3 url prefix loses its outer slashes", "[s3_url]") {
  CHECK(parsed("s3://bucket/").prefix.empty());
  CHECK(parsed("s3://bucket///a/b//").prefix == "a/b");
  CHECK(parsed("s3://bucket/a/b/").prefix == "a/b");
  CHECK(parsed("s3://bucket//a").prefix == "a");
}

TEST_CASE("s3 url object keys follow the layout", "[s3_url]") {
  const std::string id = oid;
  CHECK(parsed("s3://bucket/lfs/objects").object_key(id) == "lfs/objects/4d/7a/" + id);
  CHECK(parsed("s3://bucket").object_key(id) == "4d/7a/" + id);
  CHECK(parsed("s3://bucket/lfs?layout=flat").object_key(id) == "lfs/" + id);
  CHECK(parsed("s3://bucket?layout=flat").object_key(id) == id);
}

TEST_CASE("s3 url request URLs in path and virtual-host style", "[s3_url]") {
  auto path = parsed("s3://bucket/p?endpoint=http://127.0.0.1:17480");
  CHECK(path.path_style);
  CHECK(path.host() == "127.0.0.1:17480");
  CHECK(path.request_path("p/a b") == "/bucket/p/a b");
  CHECK(path.request_url("p/a b") == "http://127.0.0.1:17480/bucket/p/a%20b");

  auto virtual_host = parsed("s3://bucket/p?endpoint=https://s3.example.com");
  CHECK_FALSE(virtual_host.path_style);
  CHECK(virtual_host.host() == "bucket.s3.example.com");
  CHECK(virtual_host.request_path("p/x$y") == "/p/x$y");
  CHECK(virtual_host.request_url("p/x$y") == "https://bucket.s3.example.com/p/x%24y");

  auto aws = parsed("s3://bucket");
  CHECK(aws.request_url("k") == "https://bucket.s3.us-east-1.amazonaws.com/k");
}

TEST_CASE("s3 url endpoints are normalised", "[s3_url]") {
  CHECK(parsed("s3://bucket?endpoint=HTTPS://S3.Example.COM/").endpoint ==
        "https://s3.example.com");
  // A default port is left out, as curl leaves it out of the Host header.
  CHECK(parsed("s3://bucket?endpoint=https://s3.example.com:443").endpoint ==
        "https://s3.example.com");
  CHECK(parsed("s3://bucket?endpoint=http://s3.example.com:80").endpoint ==
        "http://s3.example.com");
  CHECK(parsed("s3://bucket?endpoint=http://s3.example.com:443").endpoint ==
        "http://s3.example.com:443");
}

TEST_CASE("s3 url forces path style for IP-address endpoints", "[s3_url]") {
  CHECK(parsed("s3://bucket?endpoint=http://10.0.0.5").path_style);
  CHECK(parsed("s3://bucket?endpoint=http://[::1]:9000").path_style);
  CHECK(parsed("s3://bucket?endpoint=http://127.0.0.1:9000&path_style=true").path_style);
  CHECK(mentions(refusal("s3://bucket?endpoint=http://127.0.0.1:9000&path_style=false"),
                 "path_style=false"));
  // A host name that merely starts with digits is not an address.
  CHECK_FALSE(parsed("s3://bucket?endpoint=http://10.0.0.example.com").path_style);
}

TEST_CASE("s3 url describe() parses back to the same settings", "[s3_url]") {
  for (const char* text : {"s3://bucket", "s3://bucket/a/b?layout=flat",
                           "s3://bucket/p?endpoint=http://127.0.0.1:17480&region=eu-central-1",
                           "s3://bucket?endpoint=https://minio.example.com:9000&path_style=true"}) {
    auto first = parsed(text);
    auto again = parsed(first.describe());
    CHECK(again.describe() == first.describe());
    CHECK(again.bucket == first.bucket);
    CHECK(again.prefix == first.prefix);
    CHECK(again.endpoint == first.endpoint);
    CHECK(again.region == first.region);
    CHECK(again.path_style == first.path_style);
    CHECK(again.layout == first.layout);
  }
}

TEST_CASE("s3 url bucket names follow the S3 rules", "[s3_url]") {
  CHECK(parsed("s3://abc").bucket == "abc");
  CHECK(parsed("s3://" + std::string(63, 'a')).bucket.size() == 63);
  CHECK(parsed("s3://my.bucket-1").bucket == "my.bucket-1");
  CHECK(parsed("S3://bucket").bucket == "bucket");

  check_refusals({
    {"s3://ab", "3 to 63"},
    {"s3://" + std::string(64, 'a'), "3 to 63"},
    {"s3:///prefix", "3 to 63"},
    {"s3://MyBucket", "lower-case"},
    {"s3://my_bucket", "lower-case"},
    {"s3://-bucket", "begin and end"},
    {"s3://bucket-", "begin and end"},
    {"s3://.bucket", "begin and end"},
    {"s3://my..bucket", "'..'"},
    {"s3://192.168.5.4", "IP address"},
    {"s3://bucket:9000", "endpoint="},
  });
}

TEST_CASE("s3 url refuses credentials and points to where they belong", "[s3_url]") {
  for (const char* text :
       {"s3://AKIAEXAMPLE:s3cr3t@bucket/p", "s3://user@bucket",
        "s3://bucket?access_key=AKIAEXAMPLE", "s3://bucket?secret=s3cr3t",
        "s3://bucket?aws_secret_access_key=s3cr3t", "s3://bucket?session_token=t0k",
        "s3://bucket?password=s3cr3t", "s3://bucket?endpoint=http://u:s3cr3t@minio:9000"}) {
    auto message = refusal(text);
    INFO(message);
    CHECK(mentions(message, "AWS_ACCESS_KEY_ID"));
    CHECK(mentions(message, "~/.aws/credentials"));
    CHECK(mentions(message, "git credential"));
    CHECK_FALSE(mentions(message, "s3cr3t"));
    CHECK_FALSE(mentions(message, "AKIAEXAMPLE"));
    CHECK_FALSE(mentions(message, "t0k"));
  }
}

TEST_CASE("s3 url refuses bad query keys and values, naming the rule", "[s3_url]") {
  check_refusals({
    {"s3://bucket?regoin=us-east-1", "unknown query key 'regoin'"},
    {"s3://bucket?regoin=us-east-1", "endpoint, region, path_style, layout"},
    {"s3://bucket?Region=us-east-1", "'Region'"},
    {"s3://bucket?region=us-east-1&region=eu-west-1", "twice"},
    {"s3://bucket?region=us-east-1&", "empty parameter"},
    {"s3://bucket?&region=us-east-1", "empty parameter"},
    {"s3://bucket?", "empty query"},
    {"s3://bucket?region", "no value"},
    {"s3://bucket?endpoint=http%3A%2F%2Fminio", "without escapes"},
    {"s3://bucket?region=", "region"},
    {"s3://bucket?region=US-EAST-1", "region"},
    {"s3://bucket?region=us_east_1", "region"},
    {"s3://bucket?path_style=yes", "path_style must be true or false"},
    {"s3://bucket?layout=deep", "layout must be nested or flat"},
    {"s3://bucket?endpoint=ftp://host", "not an http(s) URL"},
    {"s3://bucket?endpoint=minio:9000", "not an http(s) URL"},
    {"s3://bucket?endpoint=http://minio:99999", "not an http(s) URL"},
    {"s3://bucket?endpoint=http://minio:9000/s3", "without path"},
  });
}

TEST_CASE("s3 url refuses other schemes, fragments and odd prefixes", "[s3_url]") {
  check_refusals({
    {"https://bucket/p", "expected s3://bucket"},
    {"bucket/p", "expected s3://bucket"},
    {"s3://bucket/p#frag", "fragment"},
    {"s3://bucket/a b", "whitespace"},
    {"s3://bucket/a//b", "empty segment"},
    {"s3://bucket/a/../b", "'..'"},
    {"s3://bucket/./b", "'.'"},
    {"s3://bucket/a%20b", "'%'"},
  });
}

TEST_CASE("s3 url refuses an empty endpoint and a host with a stray colon", "[s3_url]") {
  // An empty value must not fall back to Amazon with the user's keys.
  check_refusals({{"s3://bucket?endpoint=", "endpoint is empty"},
                  {"s3://bucket?region=eu-west-1&endpoint=", "endpoint is empty"},
                  {"s3://bucket?endpoint=http://example.com:8080:80", "endpoint"},
                  {"S3://b.b?endpoint=http://::80", "endpoint"}});
  // A bracketed IPv6 literal keeps its colons.
  CHECK(parsed("s3://bucket?endpoint=http://[::1]:7480").endpoint == "http://[::1]:7480");
}
