#include "protocol/daemon_messages.hpp"

#include <catch2/catch.hpp>

#include <string>

using ferry::errc;
using ferry::protocol::daemon_hello;
using ferry::protocol::daemon_reply;
using ferry::protocol::daemon_request;
using ferry::protocol::decode_daemon_hello;
using ferry::protocol::decode_daemon_reply;
using ferry::protocol::encode;

TEST_CASE("a daemon hello round-trips as one line of JSON", "[protocol][daemon]") {
  daemon_hello hello;
  hello.build = "1.2.3";
  hello.pid = 42;
  hello.kind = daemon_request::stop;
  auto line = encode(hello);
  CHECK(line == R"({"proto":1,"build":"1.2.3","pid":42,"kind":"stop"})");
  auto decoded = decode_daemon_hello(line);
  REQUIRE(decoded.ok());
  CHECK(decoded->proto == 1);
  CHECK(decoded->build == "1.2.3");
  CHECK(decoded->pid == 42);
  CHECK(decoded->kind == daemon_request::stop);
}

TEST_CASE("a hello of another protocol decodes whatever its kind", "[protocol][daemon]") {
  auto decoded = decode_daemon_hello(R"({"proto":2,"build":"9.0","kind":"transfer"})");
  REQUIRE(decoded.ok());
  CHECK(decoded->proto == 2);
  CHECK(decoded->build == "9.0");
}

TEST_CASE("a malformed hello is refused with its reason", "[protocol][daemon]") {
  auto reason = [](const std::string& line) {
    auto decoded = decode_daemon_hello(line);
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.error().code() == errc::invalid_request);
    return decoded.error().message();
  };
  CHECK_THAT(reason("hello"), Catch::Contains("not a JSON object"));
  CHECK_THAT(reason(R"({"build":"1"})"), Catch::Contains("'proto'"));
  CHECK_THAT(reason(R"({"proto":"1","build":"1"})"), Catch::Contains("'proto'"));
  CHECK_THAT(reason(R"({"proto":1})"), Catch::Contains("'build'"));
  CHECK_THAT(reason(R"({"proto":1,"build":"1","kind":"dance"})"), Catch::Contains("'kind'"));
  CHECK_THAT(reason(std::string(100, '[')), Catch::Contains("nested too deeply"));
}

TEST_CASE("a daemon reply carries either its state or an error", "[protocol][daemon]") {
  daemon_reply reply;
  reply.build = "1.2.3";
  reply.pid = 7;
  reply.uptime_seconds = 30;
  reply.clients = 2;
  reply.directory = "/run/user/1000/ferry";
  auto decoded = decode_daemon_reply(encode(reply));
  REQUIRE(decoded.ok());
  CHECK(decoded->error.empty());
  CHECK(decoded->uptime_seconds == 30);
  CHECK(decoded->clients == 2);
  CHECK(decoded->directory == "/run/user/1000/ferry");

  reply.error = "another build";
  auto line = encode(reply);
  CHECK(line == R"({"proto":1,"build":"1.2.3","pid":7,"error":"another build"})");
  CHECK(decode_daemon_reply(line)->error == "another build");
  CHECK_FALSE(decode_daemon_reply(R"({"proto":1,"build":"1"})").ok());
}

TEST_CASE("a metrics request gets the text format in one reply line", "[protocol][daemon]") {
  daemon_hello hello;
  hello.build = "1.2.3";
  hello.kind = daemon_request::metrics;
  auto asked = decode_daemon_hello(encode(hello));
  REQUIRE(asked.ok());
  CHECK(asked->kind == daemon_request::metrics);

  daemon_reply reply;
  reply.build = "1.2.3";
  reply.metrics = "# HELP a_total A \"x\".\n# TYPE a_total counter\na_total{l=\"a\\\\b\"} 1\n";
  auto line = encode(reply);
  CHECK(line.find('\n') == std::string::npos);
  auto decoded = decode_daemon_reply(line);
  REQUIRE(decoded.ok());
  CHECK(decoded->metrics == reply.metrics);
  // A status reply has no metrics member.
  reply.metrics.clear();
  CHECK(encode(reply).find("metrics") == std::string::npos);
}
