#include "store/http/http_url.hpp"

#include <catch2/catch.hpp>

using ferry::parse_http_url;

TEST_CASE("http URLs split host and port, and refuse a stray colon in the host", "[lfs_url]") {
  auto plain = parse_http_url("http://example.com:8080/x");
  REQUIRE(plain);
  CHECK(plain->host == "example.com");
  CHECK(plain->port == "8080");
  auto ipv6 = parse_http_url("http://[::1]:7480/x");
  REQUIRE(ipv6);
  CHECK(ipv6->host == "[::1]");
  CHECK(ipv6->port == "7480");
  // Read as host "example.com:8080", port 80, this named a URL that does not
  // parse back, and an endpoint that went to port 8080 without a word.
  CHECK_FALSE(parse_http_url("http://example.com:8080:80/x"));
  CHECK_FALSE(parse_http_url("http://::80/x"));
}
