#include "protocol/transfer_events.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using ferry::protocol::encode_event;
using ferry::protocol::event_kind;
using ferry::protocol::transfer_event;

namespace {

transfer_event sample(event_kind kind) {
  transfer_event e;
  e.t_ms = 1764900000123;
  e.kind = kind;
  e.dir = "upload";
  e.oid = std::string(64, 'a');
  e.cid = "7f3a9c2e01b4";
  e.size = 4096;
  e.attempt = 2;
  e.bytes = 4096;
  e.ms = 17;
  e.delay_ms = 250;
  e.error = "unavailable";
  return e;
}

} // namespace

TEST_CASE("each event kind carries its own fields and no others", "[events]") {
  auto start = nlohmann::json::parse(encode_event(sample(event_kind::start)));
  CHECK(start == nlohmann::json{{"t", 1764900000123},
                                {"ev", "start"},
                                {"dir", "upload"},
                                {"oid", std::string(64, 'a')},
                                {"cid", "7f3a9c2e01b4"},
                                {"size", 4096},
                                {"attempt", 2}});

  auto done = nlohmann::json::parse(encode_event(sample(event_kind::done)));
  CHECK(done["ev"] == "done");
  CHECK(done["bytes"] == 4096);
  CHECK(done["ms"] == 17);
  CHECK_FALSE(done.contains("error"));
  CHECK_FALSE(done.contains("delay_ms"));

  auto retry = nlohmann::json::parse(encode_event(sample(event_kind::retry)));
  CHECK(retry["ev"] == "retry");
  CHECK(retry["error"] == "unavailable");
  CHECK(retry["delay_ms"] == 250);
  CHECK(retry["ms"] == 17);
  CHECK_FALSE(retry.contains("bytes"));

  auto fail = nlohmann::json::parse(encode_event(sample(event_kind::fail)));
  CHECK(fail["ev"] == "fail");
  CHECK(fail["error"] == "unavailable");
  CHECK_FALSE(fail.contains("delay_ms"));
  CHECK_FALSE(fail.contains("bytes"));
}

TEST_CASE("an event is one line of valid JSON whatever its strings hold", "[events]") {
  auto e = sample(event_kind::fail);
  e.oid = "bad\n{\"ev\":\"done\"}\xff\xfe";
  e.error = "line\r\nbreak";
  auto line = encode_event(e);
  CHECK(line.find('\n') == std::string::npos);
  CHECK(line.find('\r') == std::string::npos);
  auto parsed = nlohmann::json::parse(line);
  CHECK(parsed["ev"] == "fail");
  CHECK(parsed["error"] == "line\r\nbreak");
}
