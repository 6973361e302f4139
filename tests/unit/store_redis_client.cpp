#include "store/os/redis_client.hpp"

#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace std::chrono_literals;
using namespace ferry;

TEST_CASE("redis addresses parse from redis://host:port/key", "[redis]") {
  auto full = redis_address::parse("redis://10.0.0.5:6380/ferry:budget");
  REQUIRE(full);
  CHECK(full->host == "10.0.0.5");
  CHECK(full->port == 6380);
  CHECK(full->key == "ferry:budget");
  CHECK(full->describe() == "10.0.0.5:6380/ferry:budget");
  auto default_port = redis_address::parse("redis://cache.example/k");
  REQUIRE(default_port);
  CHECK(default_port->port == 6379);
  for (auto bad : {"http://h:1/k", "redis://h:1", "redis://h:1/", "redis://:1/k", "redis://h:0/k",
                   "redis://h:65536/k", "redis://h:x/k", "redis://user:pw@h:1/k", "redis://h:/k"}) {
    INFO(bad);
    auto parsed = redis_address::parse(bad);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().code() == errc::config_error);
  }
}

TEST_CASE("a Redis nobody listens at is unavailable at once", "[redis]") {
  ferry::testing::refusing_port refusing;
  redis_address target{"127.0.0.1", refusing.port(), "k"};
  auto connection = redis_connection::open(target, 500ms);
  REQUIRE_FALSE(connection);
  CHECK(connection.error().code() == errc::unavailable);
  CHECK(connection.error().message().find("cannot connect to 127.0.0.1:") == 0);
}

TEST_CASE("a server that accepts but never answers times out", "[redis]") {
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(listener >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(::listen(listener, 4) == 0);
  socklen_t size = sizeof address;
  REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &size) == 0);
  // The kernel completes the handshake from the backlog; nobody reads.
  auto connection = redis_connection::open({"127.0.0.1", ntohs(address.sin_port), "k"}, 200ms);
  REQUIRE(connection);
  auto reply = connection->call({"PING"});
  REQUIRE_FALSE(reply);
  CHECK(reply.error().code() == errc::unavailable);
  CHECK(reply.error().message() == "no reply from Redis within 200 ms");
  // The connection is closed after a failure: the next call fails at once.
  auto again = connection->call({"PING"});
  REQUIRE_FALSE(again);
  CHECK(again.error().message().find("closed after an earlier failure") != std::string::npos);
  ::close(listener);
}
