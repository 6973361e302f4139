#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "protocol/transfer_protocol.hpp"

using namespace ferry::protocol;
using json = nlohmann::json;
using namespace std::string_literals;

namespace {

const std::string oid = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";

json upload_json() {
  return {{"event", "upload"},
          {"oid", oid},
          {"size", 123},
          {"path", "/repo/.git/lfs/objects/4d/7a/" + oid},
          {"action", nullptr}};
}

json download_json() {
  return {{"event", "download"}, {"oid", oid}, {"size", 123}, {"action", nullptr}};
}

request decode_ok(const std::string& line) {
  auto result = decode_request(line);
  if (auto* error = std::get_if<decode_error>(&result))
    FAIL("unexpected error: " << error->message);
  return std::get<request>(result);
}

decode_error decode_fails(const std::string& line) {
  auto result = decode_request(line);
  REQUIRE(std::holds_alternative<decode_error>(result));
  return std::get<decode_error>(result);
}

init_request decode_init(const json& line) {
  auto req = decode_ok(line.dump());
  REQUIRE(std::holds_alternative<init_request>(req));
  return std::get<init_request>(req);
}

transfer_request decode_transfer(const json& line) {
  auto req = decode_ok(line.dump());
  REQUIRE(std::holds_alternative<transfer_request>(req));
  return std::get<transfer_request>(req);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("is_valid_oid accepts only 64 lower-case hex characters") {
  CHECK(is_valid_oid(oid));
  CHECK(is_valid_oid(std::string(64, '0')));
  CHECK_FALSE(is_valid_oid(""));
  CHECK_FALSE(is_valid_oid(oid.substr(1)));
  CHECK_FALSE(is_valid_oid(oid + "a"));
  CHECK_FALSE(is_valid_oid("4D7A214614AB2935C943F9E0FF69D22EADBB8F32B1258DAAA5E2CA24D17E2393"));
  CHECK_FALSE(is_valid_oid("../" + oid.substr(3)));
  CHECK_FALSE(is_valid_oid(std::string(63, 'a') + "g"));
  CHECK_FALSE(is_valid_oid(std::string(63, 'a') + std::string(1, '\0')));
}

TEST_CASE("init decodes every field") {
  auto init = decode_init({{"event", "init"},
                           {"operation", "download"},
                           {"remote", "origin"},
                           {"concurrent", true},
                           {"concurrenttransfers", 3}});
  CHECK(init.op == operation::download);
  CHECK(init.remote == "origin");
  CHECK(init.concurrent);
  CHECK(init.concurrent_transfers == 3);

  CHECK(decode_init({{"event", "init"}, {"operation", "upload"}}).op == operation::upload);
}

TEST_CASE("init optional fields default when absent or null") {
  for (const json& line :
       {json{{"event", "init"}, {"operation", "upload"}}, json{{"event", "init"},
                                                               {"operation", "upload"},
                                                               {"remote", nullptr},
                                                               {"concurrent", nullptr},
                                                               {"concurrenttransfers", nullptr}}}) {
    auto init = decode_init(line);
    CHECK(init.remote.empty());
    CHECK_FALSE(init.concurrent);
    CHECK(init.concurrent_transfers == 1);
  }
}

TEST_CASE("init accepts zero transfers and ignores unknown fields") {
  auto init = decode_init({{"event", "init"},
                           {"operation", "upload"},
                           {"concurrenttransfers", 0},
                           {"future", {{"nested", json::array({1, 2})}}}});
  CHECK(init.concurrent_transfers == 0);
}

TEST_CASE("init rejects a missing or unknown operation") {
  for (const json& op : {json("push"), json("Upload"), json(""), json(1), json(nullptr)}) {
    auto error = decode_fails(json{{"event", "init"}, {"operation", op}}.dump());
    CHECK(error.code == code::bad_request);
    CHECK(contains(error.message, "'operation'"));
    CHECK_FALSE(error.oid);
  }
  auto error = decode_fails(R"({"event":"init"})");
  CHECK(contains(error.message, "'operation'"));
}

TEST_CASE("init rejects badly typed optional fields") {
  struct bad_case {
    const char* field;
    json value;
  };
  for (const auto& bad :
       {bad_case{"remote", 5}, bad_case{"remote", json::array()}, bad_case{"concurrent", "true"},
        bad_case{"concurrent", 1}, bad_case{"concurrenttransfers", -1},
        bad_case{"concurrenttransfers", 1.5}, bad_case{"concurrenttransfers", "3"},
        bad_case{"concurrenttransfers", true},
        bad_case{"concurrenttransfers", uint64_t{1} << 63}}) {
    json line = {{"event", "init"}, {"operation", "upload"}};
    line[bad.field] = bad.value;
    INFO(line.dump());
    auto error = decode_fails(line.dump());
    CHECK(error.code == code::bad_request);
    CHECK(contains(error.message, std::string{"'"} + bad.field + "'"));
    CHECK_FALSE(error.oid);
  }
}

TEST_CASE("upload decodes oid, size, path and a null action") {
  auto transfer = decode_transfer(upload_json());
  CHECK(transfer.op == operation::upload);
  CHECK(transfer.oid == oid);
  CHECK(transfer.size == 123);
  CHECK(transfer.path == "/repo/.git/lfs/objects/4d/7a/" + oid);
  CHECK_FALSE(transfer.action);

  auto line = upload_json();
  line.erase("action");
  CHECK_FALSE(decode_transfer(line).action);
}

TEST_CASE("size accepts zero and the int64 maximum") {
  auto line = upload_json();
  line["size"] = 0;
  CHECK(decode_transfer(line).size == 0);
  line["size"] = std::numeric_limits<int64_t>::max();
  CHECK(decode_transfer(line).size == std::numeric_limits<int64_t>::max());
}

TEST_CASE("action object yields href and headers, ignoring unknown keys") {
  auto line = download_json();
  line["action"] = {{"href", "https://lfs.example/objects/x"},
                    {"header", {{"Authorization", "Basic abc"}, {"X-Trace", "1"}}},
                    {"expires_in", 3600},
                    {"expires_at", "2030-01-01T00:00:00Z"}};
  auto transfer = decode_transfer(line);
  REQUIRE(transfer.action);
  CHECK(transfer.action->href == "https://lfs.example/objects/x");
  CHECK(transfer.action->headers.size() == 2);
  CHECK(transfer.action->headers.at("Authorization") == "Basic abc");
  CHECK(transfer.action->headers.at("X-Trace") == "1");

  line["action"] = {{"href", "https://lfs.example/objects/x"}};
  transfer = decode_transfer(line);
  REQUIRE(transfer.action);
  CHECK(transfer.action->headers.empty());
}

TEST_CASE("a bad action is reported against the object") {
  for (const json& action :
       {json("https://x"), json(5), json::array(), json::object(), json{{"href", 5}},
        json{{"href", ""}}, json{{"href", "https://x"}, {"header", "a: b"}},
        json{{"href", "https://x"}, {"header", {{"A", 1}}}},
        json{{"href", "https://x"}, {"header", {{"A", nullptr}}}},
        json{{"href", "https://x"}, {"header", {{"A", "b\r\nInjected: yes"}}}},
        json{{"href", "https://x"}, {"header", {{"A\nB", "c"}}}}}) {
    auto line = upload_json();
    line["action"] = action;
    INFO(line.dump());
    auto error = decode_fails(line.dump());
    CHECK(error.code == code::bad_request);
    CHECK(contains(error.message, "'action"));
    REQUIRE(error.oid);
    CHECK(*error.oid == oid);
  }
}

TEST_CASE("action headers must have token names and values without control bytes") {
  for (const std::string& bad : std::initializer_list<std::string>{
         "X: y", "", "X Y", "X-Evil:", "X(y)", "\xc3\x84", std::string{"A\0B", 3}}) {
    auto line = upload_json();
    line["action"] = {{"href", "https://x"}, {"header", {{bad, "v"}}}};
    INFO(line.dump());
    auto error = decode_fails(line.dump());
    CHECK(error.code == code::bad_request);
    CHECK(contains(error.message, "invalid header name"));
    REQUIRE(error.oid);
    CHECK(*error.oid == oid);
  }
  for (const std::string& bad : std::initializer_list<std::string>{
         "a\x01", "a\x1b[2J", "a\x7f", "a\rb", std::string{"a\0b", 3}, "a\vb"}) {
    auto line = upload_json();
    line["action"] = {{"href", "https://x"}, {"header", {{"Authorization", bad}}}};
    INFO(line.dump());
    auto error = decode_fails(line.dump());
    CHECK(error.code == code::bad_request);
    CHECK(contains(error.message, "header 'Authorization' in 'action.header' contains"));
    REQUIRE(error.oid);
    CHECK(*error.oid == oid);
  }
  // Tabs and non-ASCII bytes are legal in field values.
  auto line = download_json();
  line["action"] = {
    {"href", "https://x"},
    {"header", {{"X-A", "a\tb"}, {"X-B", "caf\u00e9"}, {"!#$%&'*+-.^_`|~09az", "v"}}}};
  auto transfer = decode_transfer(line);
  REQUIRE(transfer.action);
  CHECK(transfer.action->headers.at("X-A") == "a\tb");
  CHECK(transfer.action->headers.at("X-B") == "caf\u00e9");
  CHECK(transfer.action->headers.at("!#$%&'*+-.^_`|~09az") == "v");
}

TEST_CASE("a bad oid is rejected without naming an object") {
  for (const json& bad : {json("../../../../etc/passwd"), json("../" + oid.substr(3)),
                          json("4D7A214614AB2935C943F9E0FF69D22EADBB8F32B1258DAAA5E2CA24D17E2393"),
                          json(oid.substr(1)), json(oid + "0"), json(""), json(42), json(nullptr),
                          json::array({oid})}) {
    for (auto line : {upload_json(), download_json()}) {
      line["oid"] = bad;
      INFO(line.dump());
      auto error = decode_fails(line.dump());
      CHECK(error.code == code::bad_request);
      CHECK(contains(error.message, "'oid'"));
      CHECK_FALSE(error.oid);
    }
  }
  auto line = upload_json();
  line.erase("oid");
  auto error = decode_fails(line.dump());
  CHECK(contains(error.message, "'oid'"));
  CHECK_FALSE(error.oid);
}

TEST_CASE("a bad size is reported against the object") {
  for (const char* size : {"-1", "1.5", "1.0", "1e3", "\"123\"", "true", "null", "[1]",
                           "9223372036854775808", "18446744073709551616", "-9223372036854775809"}) {
    for (const char* event : {"upload", "download"}) {
      const std::string line = std::string{R"({"event":")"} + event + R"(","oid":")" + oid +
                               R"(","path":"/tmp/x","size":)" + size + "}";
      INFO(line);
      auto error = decode_fails(line);
      CHECK(error.code == code::bad_request);
      CHECK(contains(error.message, "'size'"));
      REQUIRE(error.oid);
      CHECK(*error.oid == oid);
    }
  }
  auto line = upload_json();
  line.erase("size");
  auto error = decode_fails(line.dump());
  CHECK(contains(error.message, "'size'"));
  CHECK(error.oid == oid);
}

TEST_CASE("upload requires a non-empty path without NUL") {
  for (const json& path : {json(""), json(42), json(nullptr), json::array({"/x"}),
                           json(std::string("/tmp/a\0b", 8))}) {
    auto line = upload_json();
    line["path"] = path;
    INFO(line.dump());
    auto error = decode_fails(line.dump());
    CHECK(error.code == code::bad_request);
    CHECK(contains(error.message, "'path'"));
    CHECK(error.oid == oid);
  }
  auto line = upload_json();
  line.erase("path");
  auto error = decode_fails(line.dump());
  CHECK(contains(error.message, "'path'"));
  CHECK(error.oid == oid);
}

TEST_CASE("download ignores path and needs none") {
  auto transfer = decode_transfer(download_json());
  CHECK(transfer.op == operation::download);
  CHECK(transfer.oid == oid);
  CHECK(transfer.size == 123);
  CHECK(transfer.path.empty());

  for (const json& path : {json("/somewhere"), json(42), json("")}) {
    auto line = download_json();
    line["path"] = path;
    CHECK(decode_transfer(line).path.empty());
  }
}

TEST_CASE("transfers ignore unknown fields") {
  auto line = upload_json();
  line["priority"] = {{"level", 3}};
  line["tags"] = json::array({1, "x"});
  CHECK(decode_transfer(line).oid == oid);
}

TEST_CASE("terminate decodes, with or without extra fields") {
  CHECK(std::holds_alternative<terminate_request>(decode_ok(R"({"event":"terminate"})")));
  CHECK(std::holds_alternative<terminate_request>(
    decode_ok(R"(  {"event":"terminate","reason":{"x":1}}  )")));
}

TEST_CASE("the line must be a JSON object with a known string event") {
  for (const char* line : {"[1,2]", "\"init\"", "42", "null", "true"}) {
    auto error = decode_fails(line);
    CHECK(error.code == code::bad_request);
    CHECK(contains(error.message, "JSON object"));
  }
  CHECK(contains(decode_fails("{}").message, "'event'"));
  CHECK(contains(decode_fails(R"({"event":3})").message, "'event'"));
  CHECK(contains(decode_fails(R"({"event":null})").message, "'event'"));

  auto error = decode_fails(R"({"event":"explode","oid":")" + oid + "\"}");
  CHECK(error.code == code::bad_request);
  CHECK(contains(error.message, "explode"));
  CHECK_FALSE(error.oid);
  CHECK(contains(decode_fails(R"({"event":"Init","operation":"upload"})").message, "Init"));
}

TEST_CASE("a field given twice in one object is rejected") {
  // Last-wins would turn this upload into a terminate.
  auto twice = decode_fails(R"({"event":"upload","oid":")" + oid +
                            R"(","size":1,"path":"a","event":"terminate"})");
  CHECK(twice.code == code::bad_request);
  CHECK(contains(twice.message, "'event' appears twice"));
  CHECK(contains(
    decode_fails(R"({"event":"init","operation":"upload","operation":"download"})").message,
    "'operation' appears twice"));
  // Nested objects too, but the same name in two different objects is fine.
  CHECK(contains(decode_fails(R"({"event":"download","oid":")" + oid +
                              R"(","size":1,"action":{"href":"http://a","href":"http://b"}})")
                   .message,
                 "'href' appears twice"));
  auto fine = decode_transfer(
    json::parse(R"({"event":"download","oid":")" + oid +
                R"(","size":1,"action":{"href":"http://a","header":{"oid":"x"}}})"));
  CHECK(fine.action->headers.at("oid") == "x");
}

TEST_CASE("empty, blank and non-JSON lines are rejected") {
  for (const std::string& line :
       {std::string{}, std::string{"   "}, std::string{"hello"},
        std::string{"{\"event\":\"terminate\""}, std::string{"{\"event\":\"terminate\"} trailing"},
        std::string{"{\"event\":\"terminate\"}{}"}, std::string{"{'event':'terminate'}"}}) {
    INFO(line);
    auto error = decode_fails(line);
    CHECK(error.code == code::bad_request);
    CHECK_FALSE(error.message.empty());
    CHECK_FALSE(error.oid);
  }
}

TEST_CASE("NUL bytes in the line are rejected without crashing") {
  const std::string raw_outside = "{\"event\":\"terminate\"}\0"s;
  const std::string raw_in_string = "{\"event\":\"term\0inate\"}"s;
  const std::string only_nul = std::string(1, '\0');
  const std::string hidden_tail = "{\"event\":\"terminate\"}\0{\"x\":"s;
  for (const auto& line : {raw_outside, raw_in_string, only_nul, hidden_tail}) {
    auto error = decode_fails(line);
    CHECK(error.code == code::bad_request);
    CHECK(contains(error.message, "NUL"));
  }
}

TEST_CASE("invalid UTF-8 is rejected with a clear message") {
  for (const std::string& bad : {std::string("\xff"), std::string("\xc3"),
                                 std::string("\xc0\xaf"),         // overlong '/'
                                 std::string("\xed\xa0\x80"),     // surrogate
                                 std::string("\xf4\x90\x80\x80"), // past U+10FFFF
                                 std::string("\x80")}) {
    const std::string line = R"({"event":"init","operation":"upload","remote":")" + bad + "\"}";
    auto error = decode_fails(line);
    CHECK(error.code == code::bad_request);
    CHECK(contains(error.message, "UTF-8"));
  }
  // Escaped lone surrogates are caught by the JSON parser instead.
  auto error = decode_fails(R"({"event":"init","operation":"upload","remote":"\ud800"})");
  CHECK(error.code == code::bad_request);
}

TEST_CASE("valid multi-byte UTF-8 passes through") {
  const std::string remote = "\xc3\xb8rigin-\xe2\x82\xac-\xf0\x9f\x9a\x80";
  auto init = decode_init({{"event", "init"}, {"operation", "upload"}, {"remote", remote}});
  CHECK(init.remote == remote);
}

TEST_CASE("deep nesting is rejected before parsing") {
  for (char open : {'[', '{'}) {
    auto error = decode_fails(std::string(100000, open));
    CHECK(error.code == code::bad_request);
    CHECK(contains(error.message, "deeper"));
  }
  const std::string hidden =
    R"({"event":"terminate","x":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
  CHECK(contains(decode_fails(hidden).message, "deeper"));
}

TEST_CASE("nesting limit is 64 levels and ignores brackets inside strings") {
  auto nested = [](int arrays) {
    return R"({"event":"terminate","x":)" + std::string(arrays, '[') + std::string(arrays, ']') +
           "}";
  };
  CHECK(std::holds_alternative<terminate_request>(decode_ok(nested(63))));
  CHECK(contains(decode_fails(nested(64)).message, "deeper"));

  const std::string brackets(1000, '[');
  auto init = decode_init({{"event", "init"}, {"operation", "upload"}, {"remote", brackets}});
  CHECK(init.remote == brackets);
  // An escaped quote must not end the string early.
  auto tricky =
    decode_init({{"event", "init"}, {"operation", "upload"}, {"remote", "\"" + brackets}});
  CHECK(tricky.remote == "\"" + brackets);
}

TEST_CASE("error messages do not echo long input") {
  const std::string garbage(1 << 20, 'x');
  CHECK(decode_fails(garbage).message.size() < 300);
  CHECK(decode_fails("\"" + garbage).message.size() < 300);

  const std::string long_event = R"({"event":")" + garbage + "\"}";
  auto error = decode_fails(long_event);
  CHECK(contains(error.message, "unknown event"));
  CHECK(error.message.size() < 300);

  auto line = upload_json();
  line["action"] = {{"href", "https://x"}, {"header", {{garbage, 1}}}};
  CHECK(decode_fails(line.dump()).message.size() < 300);
}

TEST_CASE("encode_init_ok is an empty object") {
  CHECK(encode_init_ok() == "{}");
  CHECK(json::parse(encode_init_ok()) == json::object());
}

TEST_CASE("encode_error round-trips and escapes the message") {
  const std::string message = "bad \"field\"\nsecond line\t\\";
  const std::string line = encode_error(code::unavailable, message);
  CHECK(line.find('\n') == std::string::npos);
  auto parsed = json::parse(line);
  CHECK(parsed.size() == 1);
  CHECK(parsed["error"]["code"] == code::unavailable);
  CHECK(parsed["error"]["message"] == message);
}

TEST_CASE("encode_progress round-trips") {
  const std::string line = encode_progress(oid, 9000000000, 512);
  CHECK(line.find('\n') == std::string::npos);
  auto parsed = json::parse(line);
  CHECK(parsed["event"] == "progress");
  CHECK(parsed["oid"] == oid);
  CHECK(parsed["bytesSoFar"].get<int64_t>() == 9000000000);
  CHECK(parsed["bytesSinceLast"].get<int64_t>() == 512);
  CHECK(parsed.size() == 4);
}

TEST_CASE("encode_complete carries a path only for downloads") {
  auto upload = json::parse(encode_complete(oid));
  CHECK(upload["event"] == "complete");
  CHECK(upload["oid"] == oid);
  CHECK_FALSE(upload.contains("path"));
  CHECK_FALSE(upload.contains("error"));

  auto download = json::parse(encode_complete(oid, std::string_view{"/repo/.git/lfs/tmp/obj 1"}));
  CHECK(download["event"] == "complete");
  CHECK(download["oid"] == oid);
  CHECK(download["path"] == "/repo/.git/lfs/tmp/obj 1");
}

TEST_CASE("encode_complete_error round-trips") {
  auto parsed = json::parse(encode_complete_error(oid, code::not_found, "object missing"));
  CHECK(parsed["event"] == "complete");
  CHECK(parsed["oid"] == oid);
  CHECK(parsed["error"]["code"] == code::not_found);
  CHECK(parsed["error"]["message"] == "object missing");
  CHECK_FALSE(parsed.contains("path"));
}

TEST_CASE("encoders replace invalid UTF-8 instead of throwing") {
  const std::string bad = "read failed: \xff\xfe name";
  std::string line;
  REQUIRE_NOTHROW(line = encode_error(code::failed, bad));
  auto message = json::parse(line)["error"]["message"].get<std::string>();
  CHECK(contains(message, "\xef\xbf\xbd")); // U+FFFD
  CHECK(contains(message, "read failed"));

  REQUIRE_NOTHROW(line = encode_complete(oid, std::string_view{"/tmp/\xc3"}));
  CHECK(json::parse(line)["path"] == "/tmp/\xef\xbf\xbd");
  REQUIRE_NOTHROW(line = encode_complete_error(oid, code::failed, bad));
  CHECK(json::parse(line)["oid"] == oid);
}

TEST_CASE("decode errors encode as complete-with-error only when an oid is known") {
  auto line = upload_json();
  line["size"] = -5;
  auto with_oid = json::parse(encode_decode_error(decode_fails(line.dump())));
  CHECK(with_oid["event"] == "complete");
  CHECK(with_oid["oid"] == oid);
  CHECK(with_oid["error"]["code"] == code::bad_request);
  CHECK(contains(with_oid["error"]["message"].get<std::string>(), "'size'"));

  auto bare = json::parse(encode_decode_error(decode_fails("not json")));
  CHECK_FALSE(bare.contains("event"));
  CHECK_FALSE(bare.contains("oid"));
  CHECK(bare["error"]["code"] == code::bad_request);

  decode_error too_long{code::too_large, "line longer than 1048576 bytes", std::nullopt};
  auto parsed = json::parse(encode_decode_error(too_long));
  CHECK(parsed["error"]["code"] == code::too_large);
  CHECK(parsed["error"]["message"] == "line longer than 1048576 bytes");
}
