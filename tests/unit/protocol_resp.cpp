#include "protocol/resp.hpp"

#include <catch2/catch.hpp>

using namespace ferry::protocol;
using kind = resp_value::kind;
using outcome = resp_decoded::outcome;

namespace {

resp_value decode_whole(const std::string& wire) {
  auto decoded = resp_decode(wire);
  INFO(wire);
  REQUIRE(decoded.result == outcome::complete);
  CHECK(decoded.consumed == wire.size());
  return decoded.value;
}

std::string malformed(const std::string& wire) {
  auto decoded = resp_decode(wire);
  INFO(wire);
  CHECK(decoded.result == outcome::malformed);
  CHECK_FALSE(decoded.problem.empty());
  return decoded.problem;
}

} // namespace

TEST_CASE("commands go out as arrays of bulk strings", "[resp]") {
  CHECK(resp_command({"PING"}) == "*1\r\n$4\r\nPING\r\n");
  CHECK(resp_command({"EVALSHA", "ab", "1", "k", ""}) ==
        "*5\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n1\r\n$1\r\nk\r\n$0\r\n\r\n");
  // Binary-safe: CRLF inside an argument is counted, not interpreted.
  std::string script = "local a\r\nreturn 1";
  auto wire = resp_command({"EVAL", script});
  CHECK(wire == "*2\r\n$4\r\nEVAL\r\n$17\r\n" + script + "\r\n");
  // And decodes back to the same arguments.
  auto back = decode_whole(wire);
  REQUIRE(back.type == kind::array);
  REQUIRE(back.items.size() == 2);
  CHECK(back.items[1].text == script);
}

TEST_CASE("every RESP2 reply type decodes", "[resp]") {
  auto ok = decode_whole("+OK\r\n");
  CHECK(ok.type == kind::simple);
  CHECK(ok.text == "OK");
  auto error = decode_whole("-NOSCRIPT No matching script\r\n");
  CHECK(error.type == kind::error);
  CHECK(error.text == "NOSCRIPT No matching script");
  auto number = decode_whole(":-1234567\r\n");
  CHECK(number.type == kind::integer);
  CHECK(number.integer == -1234567);
  auto bulk = decode_whole("$5\r\nhe\r\no\r\n");
  CHECK(bulk.type == kind::bulk);
  CHECK(bulk.text == "he\r\no");
  CHECK(decode_whole("$0\r\n\r\n").text.empty());
  CHECK(decode_whole("$-1\r\n").type == kind::null);
  CHECK(decode_whole("*-1\r\n").type == kind::null);
  CHECK(decode_whole("*0\r\n").items.empty());
  auto nested = decode_whole("*3\r\n:1\r\n*2\r\n+a\r\n$-1\r\n$2\r\nxy\r\n");
  REQUIRE(nested.type == kind::array);
  REQUIRE(nested.items.size() == 3);
  CHECK(nested.items[0].integer == 1);
  REQUIRE(nested.items[1].items.size() == 2);
  CHECK(nested.items[1].items[0].text == "a");
  CHECK(nested.items[1].items[1].type == kind::null);
  CHECK(nested.items[2].text == "xy");
}

TEST_CASE("a reply cut anywhere is incomplete, never wrong", "[resp]") {
  std::string wire = "*3\r\n:1\r\n*2\r\n+a\r\n$-1\r\n$5\r\nhe\r\no\r\n";
  for (size_t cut = 0; cut < wire.size(); ++cut) {
    INFO("cut at " << cut);
    auto part = resp_decode(std::string_view{wire}.substr(0, cut));
    CHECK(part.result == outcome::incomplete);
    CHECK(part.consumed == 0);
  }
  CHECK(resp_decode(wire).result == outcome::complete);
}

TEST_CASE("only the first reply is taken from a buffer", "[resp]") {
  std::string wire = ":7\r\n+OK\r\n";
  auto first = resp_decode(wire);
  REQUIRE(first.result == outcome::complete);
  CHECK(first.value.integer == 7);
  CHECK(first.consumed == 4);
  auto second = resp_decode(std::string_view{wire}.substr(first.consumed));
  REQUIRE(second.result == outcome::complete);
  CHECK(second.value.text == "OK");
}

TEST_CASE("malformed replies are refused with a reason", "[resp]") {
  CHECK(malformed("!3\r\nabc\r\n").find("not a RESP2 type") != std::string::npos);
  CHECK(malformed("HTTP/1.1 400 Bad Request\r\n").find("not a RESP2 type") != std::string::npos);
  malformed(":12a\r\n");
  malformed(":\r\n");
  malformed(":-\r\n");
  malformed(":1234567890123456789012\r\n");
  malformed("$abc\r\n");
  malformed("$-2\r\n");
  malformed("$3\r\nabcd\r\n");
  malformed("*-5\r\n");
  malformed("*x\r\n");
  malformed("+OK\n");
  malformed("+O\rK\r\n");
  malformed("*1\r\n?\r\n");
  CHECK(malformed("$" + std::to_string(resp_max_bulk + 1) + "\r\n").find("bulk length") !=
        std::string::npos);
  CHECK(malformed("*" + std::to_string(resp_max_items + 1) + "\r\n").find("array length") !=
        std::string::npos);
  std::string deep;
  for (int i = 0; i <= resp_max_depth + 1; ++i)
    deep += "*1\r\n";
  deep += ":1\r\n";
  CHECK(malformed(deep).find("nested deeper") != std::string::npos);
  // Malformed data after a complete reply is for the next decode.
  CHECK(resp_decode("+OK\r\n!!").result == outcome::complete);
}
