#include "store/os/metrics_endpoint.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>

using namespace std::chrono_literals;
using namespace ferry;
using ferry::testing::temp_dir;

namespace {

/// Sends `request` to 127.0.0.1:`port` and returns everything answered.
std::string exchange(int port, const std::string& request) {
  fd_guard fd{::socket(AF_INET, SOCK_STREAM, 0)};
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&to), sizeof to) == 0);
  REQUIRE(::send(fd.get(), request.data(), request.size(), 0) ==
          static_cast<ssize_t>(request.size()));
  std::string answer;
  char buffer[4096];
  ssize_t n;
  while ((n = ::recv(fd.get(), buffer, sizeof buffer, 0)) > 0)
    answer.append(buffer, static_cast<size_t>(n));
  return answer;
}

} // namespace

TEST_CASE("metrics addresses: loopback, Unix sockets, and what is refused", "[metrics]") {
  auto v4 = metrics_address::parse("127.0.0.1:9100");
  REQUIRE(v4);
  CHECK(v4->ip == "127.0.0.1");
  CHECK(v4->port == 9100);
  CHECK(v4->loopback);
  auto v6 = metrics_address::parse("[::1]:0");
  REQUIRE(v6);
  CHECK(v6->ip == "::1");
  CHECK(v6->loopback);
  CHECK(v6->to_string() == "[::1]:0");
  auto local = metrics_address::parse("localhost:19100");
  REQUIRE(local);
  CHECK(local->to_string() == "127.0.0.1:19100");
  auto unix = metrics_address::parse("unix:/run/user/1000/ferry-metrics.sock");
  REQUIRE(unix);
  CHECK(unix->unix_socket);
  CHECK(unix->loopback);
  auto any = metrics_address::parse("0.0.0.0:9100");
  REQUIRE(any);
  CHECK_FALSE(any->loopback);
  auto lan = metrics_address::parse("[fe80::1]:9100");
  REQUIRE(lan);
  CHECK_FALSE(lan->loopback);
  for (const char* bad : {"9100", "127.0.0.1", "127.0.0.1:65536", "127.0.0.1:x", "example.com:80",
                          "unix:relative.sock", "[::1:80", "[nonsense]:80"})
    CHECK_FALSE(metrics_address::parse(bad));
}

TEST_CASE("a metrics endpoint on a non-loopback address needs the explicit opt-in", "[metrics]") {
  auto any = metrics_address::parse("0.0.0.0:0");
  REQUIRE(any);
  auto refused = metrics_endpoint::start(*any, [] { return std::string{}; });
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code() == errc::permission_denied);
  CHECK(refused.error().message().find("--metrics-allow-remote") != std::string::npos);
  auto allowed = metrics_endpoint::start(
    *any, [] { return std::string{"x 1\n"}; }, true);
  REQUIRE(allowed);
  CHECK((*allowed)->address().port > 0);
}

TEST_CASE("a metrics endpoint on a free port serves GET /metrics, and only that", "[metrics]") {
  std::atomic<int> scrapes{0};
  auto endpoint = metrics_endpoint::start(*metrics_address::parse("127.0.0.1:0"), [&] {
    return "# HELP a_total A.\n# TYPE a_total counter\na_total " + std::to_string(++scrapes) + "\n";
  });
  REQUIRE(endpoint);
  auto address = (*endpoint)->address();
  REQUIRE(address.port > 0);

  auto first = scrape_metrics(address, 5s);
  REQUIRE(first);
  CHECK(*first == "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n");
  CHECK(*scrape_metrics(address, 5s) == "# HELP a_total A.\n# TYPE a_total counter\na_total 2\n");

  auto raw = exchange(address.port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(raw.rfind("HTTP/1.0 200 OK\r\n", 0) == 0);
  CHECK(raw.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n") !=
        std::string::npos);
  CHECK(exchange(address.port, "GET / HTTP/1.0\r\n\r\n").rfind("HTTP/1.0 404", 0) == 0);
  CHECK(exchange(address.port, "POST /metrics HTTP/1.0\r\n\r\n").rfind("HTTP/1.0 405", 0) == 0);
  CHECK(scrapes == 3);
}

TEST_CASE("a metrics endpoint on a Unix socket, removed when it stops", "[metrics]") {
  temp_dir dir;
  auto address = *metrics_address::parse("unix:" + (dir.path / "m.sock").string());
  {
    auto endpoint = metrics_endpoint::start(address, [] { return std::string{"b 2\n"}; });
    REQUIRE(endpoint);
    CHECK(std::filesystem::is_socket(dir.path / "m.sock"));
    auto body = scrape_metrics(address, 5s);
    REQUIRE(body);
    CHECK(*body == "b 2\n");
    // A second server on the same live socket is refused.
    CHECK_FALSE(metrics_endpoint::start(address, [] { return std::string{}; }));
    // ... and leaves the live one alone.
    auto again = scrape_metrics(address, 5s);
    REQUIRE(again);
    CHECK(*again == "b 2\n");
  }
  CHECK_FALSE(std::filesystem::exists(dir.path / "m.sock"));
  auto gone = scrape_metrics(address, 1s);
  REQUIRE_FALSE(gone);
  CHECK(gone.error().code() == errc::unavailable);
}
