#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <ratio>
#include <string>

#include <nlohmann/json.hpp>

#include "protocol/batch_api.hpp"

using namespace ferry::protocol;
using json = nlohmann::json;
using sys_clock = std::chrono::system_clock;
using namespace std::chrono_literals;
using namespace std::string_literals;

namespace {

const std::string oid_a = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";
const std::string oid_b = "6a1e4b2b9e1a6e1a0f0a1c4ee1b0f9b56d1e1d1c0a7b2d6b8e4c7a8d3e2f1a0b";

// 2026-01-01T00:00:00Z, a fixed "now" for every expiry computation.
const sys_clock::time_point received = sys_clock::time_point{1767225600s};

sys_clock::time_point at_seconds(int64_t seconds) {
  return sys_clock::time_point{std::chrono::seconds{seconds}};
}

json download_action() {
  return {{"href", "https://lfs.example.com/objects/" + oid_a},
          {"header", {{"Authorization", "Basic abc"}}},
          {"expires_in", 3600}};
}

json valid_response() {
  return {{"transfer", "basic"},
          {"objects",
           {{{"oid", oid_a},
             {"size", 123},
             {"authenticated", true},
             {"actions", {{"download", download_action()}}}},
            {{"oid", oid_b},
             {"size", 0},
             {"error", {{"code", 404}, {"message", "Object does not exist"}}}}}},
          {"hash_algo", "sha256"}};
}

batch_response decode_ok(const std::string& body) {
  auto result = decode_batch_response(body, received);
  if (auto* error = std::get_if<std::string>(&result))
    FAIL("unexpected error: " << *error);
  return std::get<batch_response>(result);
}

std::string decode_fails(const std::string& body) {
  auto result = decode_batch_response(body, received);
  REQUIRE(std::holds_alternative<std::string>(result));
  return std::get<std::string>(result);
}

// Decodes a response whose first object carries `action` as its download.
batch_action decode_download(const json& action) {
  json body = {{"objects", {{{"oid", oid_a}, {"size", 1}, {"actions", {{"download", action}}}}}}};
  auto response = decode_ok(body.dump());
  REQUIRE(response.objects.size() == 1);
  REQUIRE(response.objects[0].download);
  return *response.objects[0].download;
}

std::string download_fails(const json& action) {
  json body = {{"objects", {{{"oid", oid_a}, {"size", 1}, {"actions", {{"download", action}}}}}}};
  return decode_fails(body.dump());
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

// ---- request -----------------------------------------------------------------

TEST_CASE("encode_batch_request writes every field") {
  batch_request request;
  request.op = batch_operation::upload;
  request.transfers = {"ferry", "basic"};
  request.ref = "refs/heads/main";
  request.objects = {{oid_a, 123}, {oid_b, 0}};
  const auto body = json::parse(encode_batch_request(request));
  CHECK(body == json{{"operation", "upload"},
                     {"transfers", {"ferry", "basic"}},
                     {"ref", {{"name", "refs/heads/main"}}},
                     {"objects", {{{"oid", oid_a}, {"size", 123}}, {{"oid", oid_b}, {"size", 0}}}},
                     {"hash_algo", "sha256"}});
}

TEST_CASE("encode_batch_request omits empty transfers and absent ref") {
  batch_request request;
  request.op = batch_operation::download;
  request.objects = {{oid_a, 5}};
  const auto body = json::parse(encode_batch_request(request));
  CHECK(body["operation"] == "download");
  CHECK_FALSE(body.contains("transfers"));
  CHECK_FALSE(body.contains("ref"));
  CHECK(body["hash_algo"] == "sha256");
  CHECK(body["objects"].size() == 1);

  request.ref = "";
  CHECK_FALSE(json::parse(encode_batch_request(request)).contains("ref"));
}

TEST_CASE("encode_batch_request encodes an empty and an oversized object list") {
  batch_request request;
  CHECK(json::parse(encode_batch_request(request))["objects"] == json::array());
  for (int i = 0; i < 150; ++i)
    request.objects.push_back({oid_a, i});
  const auto body = json::parse(encode_batch_request(request));
  CHECK(body["objects"].size() == 150);
  CHECK(body["objects"][149]["size"] == 149);
}

TEST_CASE("encode_batch_request survives invalid UTF-8 in a ref") {
  batch_request request;
  request.ref = std::string{"refs/heads/\xff\xfe"};
  std::string encoded;
  REQUIRE_NOTHROW(encoded = encode_batch_request(request));
  CHECK(json::parse(encoded)["ref"]["name"].get<std::string>().rfind("refs/heads/", 0) == 0);
}

TEST_CASE("encoded requests decode back as the server would see them") {
  batch_request request;
  request.op = batch_operation::download;
  request.transfers = {"basic"};
  request.objects = {{oid_b, 9007199254740993}};
  const auto body = json::parse(encode_batch_request(request));
  CHECK(body["objects"][0]["oid"] == oid_b);
  CHECK(body["objects"][0]["size"].get<int64_t>() == 9007199254740993);
}

// ---- response: happy paths ---------------------------------------------------

TEST_CASE("decode_batch_response decodes a full response") {
  auto response = decode_ok(valid_response().dump());
  CHECK(response.transfer == "basic");
  REQUIRE(response.objects.size() == 2);

  const auto& first = response.objects[0];
  CHECK(first.oid == oid_a);
  CHECK(first.size == 123);
  CHECK_FALSE(first.error);
  CHECK_FALSE(first.upload);
  CHECK_FALSE(first.verify);
  REQUIRE(first.download);
  CHECK(first.download->href == "https://lfs.example.com/objects/" + oid_a);
  CHECK(first.download->headers ==
        std::map<std::string, std::string>{{"Authorization", "Basic abc"}});
  REQUIRE(first.download->expires_at);
  CHECK(*first.download->expires_at == received + 3600s);

  const auto& second = response.objects[1];
  CHECK(second.oid == oid_b);
  CHECK(second.size == 0);
  CHECK_FALSE(second.download);
  REQUIRE(second.error);
  CHECK(second.error->code == 404);
  CHECK(second.error->message == "Object does not exist");
}

TEST_CASE("decode_batch_response decodes upload and verify actions") {
  json body = {{"transfer", "basic"},
               {"objects",
                {{{"oid", oid_a},
                  {"size", 10},
                  {"actions",
                   {{"upload", {{"href", "http://127.0.0.1:8080/up"}}},
                    {"verify",
                     {{"href", "https://lfs.example.com/verify"},
                      {"header", {{"X-Token", "t"}}},
                      {"expires_at", "2026-11-22T00:00:00Z"}}}}}}}}};
  auto response = decode_ok(body.dump());
  const auto& object = response.objects.at(0);
  REQUIRE(object.upload);
  CHECK(object.upload->href == "http://127.0.0.1:8080/up");
  CHECK(object.upload->headers.empty());
  CHECK_FALSE(object.upload->expires_at);
  REQUIRE(object.verify);
  CHECK(object.verify->headers.at("X-Token") == "t");
  CHECK(object.verify->expires_at == parse_rfc3339("2026-11-22T00:00:00Z"));
  CHECK_FALSE(object.download);
}

TEST_CASE("an upload object without actions means the server has it") {
  json body = {{"objects", {{{"oid", oid_a}, {"size", 10}}}}};
  auto response = decode_ok(body.dump());
  CHECK(response.transfer == "basic");
  REQUIRE(response.objects.size() == 1);
  CHECK_FALSE(response.objects[0].upload);
  CHECK_FALSE(response.objects[0].download);
  CHECK_FALSE(response.objects[0].error);
}

TEST_CASE("decode_batch_response treats missing, null and empty optional fields as absent") {
  json body = {{"transfer", nullptr},
               {"hash_algo", nullptr},
               {"objects",
                {{{"oid", oid_a},
                  {"size", 1},
                  {"authenticated", nullptr},
                  {"actions", {{"download", nullptr}, {"upload", nullptr}}},
                  {"error", nullptr}}}}};
  auto response = decode_ok(body.dump());
  CHECK(response.transfer == "basic");
  CHECK_FALSE(response.objects[0].download);
  CHECK_FALSE(response.objects[0].error);

  body["transfer"] = "";
  CHECK(decode_ok(body.dump()).transfer == "basic");
  body["objects"][0]["actions"] = nullptr;
  CHECK_FALSE(decode_ok(body.dump()).objects[0].download);
}

TEST_CASE("decode_batch_response keeps the server's transfer choice") {
  json body = valid_response();
  body["transfer"] = "ferry-multipart";
  CHECK(decode_ok(body.dump()).transfer == "ferry-multipart");
}

TEST_CASE("decode_batch_response ignores unknown fields") {
  json body = valid_response();
  body["extra"] = {{"nested", {1, 2, 3}}};
  body["objects"][0]["whatever"] = "x";
  body["objects"][0]["actions"]["copy"] = {{"href", "ftp://not-checked"}};
  body["objects"][0]["actions"]["download"]["note"] = 7;
  body["objects"][1]["error"]["details"] = {"a"};
  auto response = decode_ok(body.dump());
  CHECK(response.objects.size() == 2);
  REQUIRE(response.objects[0].download);
}

TEST_CASE("decode_batch_response accepts an empty object list and a large size") {
  CHECK(decode_ok(R"({"objects":[]})").objects.empty());
  json body = {{"objects", {{{"oid", oid_a}, {"size", INT64_MAX}}}}};
  CHECK(decode_ok(body.dump()).objects[0].size == INT64_MAX);
}

TEST_CASE("decode_batch_response accepts surrounding whitespace and a mixed-case scheme") {
  auto action = decode_download({{"href", "HTTPS://lfs.example.com/x"}});
  CHECK(action.href == "HTTPS://lfs.example.com/x");
  auto response = decode_ok("\n  " + valid_response().dump() + " \r\n");
  CHECK(response.objects.size() == 2);
}

// ---- response: whole-body violations -----------------------------------------

TEST_CASE("decode_batch_response rejects bodies that are not a JSON object") {
  CHECK(contains(decode_fails(""), "empty body"));
  CHECK(contains(decode_fails("  \n"), "empty body"));
  CHECK(contains(decode_fails("not json"), "not valid JSON"));
  CHECK(contains(decode_fails(R"({"objects":[)"), "not valid JSON"));
  CHECK(contains(decode_fails("[]"), "must be a JSON object"));
  CHECK(contains(decode_fails("\"objects\""), "must be a JSON object"));
  CHECK(contains(decode_fails("null"), "must be a JSON object"));
  CHECK(contains(decode_fails("{\"objects\":[]}\0trailing"s), "NUL byte"));
  CHECK(contains(decode_fails(std::string(100, '[') + std::string(100, ']')), "nests deeper"));
  CHECK(contains(decode_fails("{\"objects\":[],\"x\":\"\xff\"}"), "not valid JSON"));
  CHECK(contains(decode_fails(R"({"objects":[]} {})"), "not valid JSON"));
}

TEST_CASE("decode_batch_response quotes a broken body safely and briefly") {
  const std::string message = decode_fails("\x1b[31m" + std::string(5000, 'x'));
  CHECK(message.size() < 300);
  CHECK_FALSE(contains(message, "\x1b"));
}

TEST_CASE("decode_batch_response requires an objects array") {
  CHECK(contains(decode_fails("{}"), "missing field 'objects'"));
  CHECK(contains(decode_fails(R"({"objects":null})"), "field 'objects' must be an array"));
  CHECK(contains(decode_fails(R"({"objects":{}})"), "field 'objects' must be an array"));
  CHECK(contains(decode_fails(R"({"objects":"x"})"), "field 'objects' must be an array"));
}

TEST_CASE("decode_batch_response rejects other hash algorithms") {
  json body = valid_response();
  body["hash_algo"] = "sha512";
  CHECK(contains(decode_fails(body.dump()),
                 "server uses hash algorithm 'sha512'; ferry supports sha256"));
  body["hash_algo"] = "SHA256";
  CHECK(contains(decode_fails(body.dump()), "hash algorithm 'SHA256'"));
  body["hash_algo"] = 256;
  CHECK(contains(decode_fails(body.dump()), "field 'hash_algo' must be a string"));
}

TEST_CASE("the hash algorithm is checked before the oids it would explain") {
  json body = {{"hash_algo", "sha512"},
               {"objects", {{{"oid", std::string(128, 'a')}, {"size", 1}}}}};
  CHECK(contains(decode_fails(body.dump()), "hash algorithm 'sha512'"));
}

TEST_CASE("decode_batch_response rejects a non-string transfer") {
  json body = valid_response();
  body["transfer"] = 1;
  CHECK(contains(decode_fails(body.dump()), "field 'transfer' must be a string"));
  body["transfer"] = json::array({"basic"});
  CHECK(contains(decode_fails(body.dump()), "field 'transfer' must be a string"));
}

// ---- response: per-object violations -----------------------------------------

TEST_CASE("decode_batch_response validates each object's oid and size") {
  json body = valid_response();
  body["objects"][1] = "x";
  CHECK(contains(decode_fails(body.dump()), "object 1: must be a JSON object"));

  body = valid_response();
  body["objects"][1].erase("oid");
  CHECK(contains(decode_fails(body.dump()), "object 1: missing field 'oid'"));

  body = valid_response();
  body["objects"][0]["oid"] = 12;
  CHECK(contains(decode_fails(body.dump()), "object 0: field 'oid' must be a string"));

  for (const std::string& bad : std::initializer_list<std::string>{
         std::string{}, oid_a.substr(1), oid_a + "0", std::string(64, 'A'), "../" + oid_a.substr(3),
         std::string(63, 'a') + "g"}) {
    body = valid_response();
    body["objects"][1]["oid"] = bad;
    INFO(bad);
    CHECK(contains(decode_fails(body.dump()), "object 1: field 'oid' must be 64 lower-case hex"));
  }

  body = valid_response();
  body["objects"][1].erase("size");
  CHECK(contains(decode_fails(body.dump()), "object 1 (" + oid_b + "): missing field 'size'"));

  for (const json& bad :
       std::initializer_list<json>{json(-1), json(1.5), json("12"), json(true), json(nullptr),
                                   json(18446744073709551615ULL)}) {
    body = valid_response();
    body["objects"][0]["size"] = bad;
    INFO(bad.dump());
    CHECK(contains(decode_fails(body.dump()),
                   "object 0 (" + oid_a + "): field 'size' must be a non-negative integer"));
  }
}

TEST_CASE("decode_batch_response rejects a size beyond int64") {
  const std::string body =
    R"({"objects":[{"oid":")" + oid_a + R"(","size":99999999999999999999}]})";
  CHECK(contains(decode_fails(body), "field 'size' must be a non-negative integer"));
}

TEST_CASE("decode_batch_response validates authenticated and actions types") {
  json body = valid_response();
  body["objects"][0]["authenticated"] = "yes";
  CHECK(contains(decode_fails(body.dump()),
                 "object 0 (" + oid_a + "): field 'authenticated' must be a boolean"));

  body = valid_response();
  body["objects"][0]["actions"] = json::array();
  CHECK(contains(decode_fails(body.dump()), "field 'actions' must be an object"));

  body = valid_response();
  body["objects"][0]["actions"]["download"] = "https://x";
  CHECK(contains(decode_fails(body.dump()), "field 'actions.download' must be an object"));

  body = valid_response();
  body["objects"][0]["actions"]["verify"] = 1;
  CHECK(contains(decode_fails(body.dump()), "field 'actions.verify' must be an object"));
}

TEST_CASE("decode_batch_response validates hrefs") {
  CHECK(contains(download_fails(json::object()),
                 "field 'actions.download.href' must be a non-empty string"));
  CHECK(contains(download_fails({{"href", ""}}), "must be a non-empty string"));
  CHECK(contains(download_fails({{"href", 5}}), "must be a non-empty string"));
  CHECK(contains(download_fails({{"href", nullptr}}), "must be a non-empty string"));
  for (const std::string& bad : std::initializer_list<std::string>{
         "ftp://lfs.example.com/x", "file:///etc/passwd", "/objects/x", "lfs.example.com/x",
         "https:/lfs.example.com", "https://", "http:///path", "https://?q",
         "javascript:alert(1)"}) {
    INFO(bad);
    CHECK(contains(download_fails({{"href", bad}}), "must be an http:// or https:// URL"));
  }
  for (const std::string& bad : std::initializer_list<std::string>{
         "https://lfs.example.com/a b", "https://lfs.example.com/\r\nX: y",
         "https://lfs.example.com/\t", "https://lfs.example.com/\x7f"}) {
    INFO(bad);
    CHECK(contains(download_fails({{"href", bad}}), "whitespace or a control character"));
  }
  // The offending value is quoted without its control characters.
  CHECK_FALSE(contains(download_fails({{"href", "gopher://\x1b[2J"}}), "\x1b"));
}

TEST_CASE("a rejected href is named by its scheme only, never its credentials") {
  const std::string message = download_fails({{"href", "s3://AKIAXXXX:supersecret@bucket/x"}});
  CHECK(contains(message, "must be an http:// or https:// URL"));
  CHECK(contains(message, "'s3'"));
  CHECK_FALSE(contains(message, "supersecret"));
  CHECK_FALSE(contains(message, "AKIA"));
  CHECK_FALSE(contains(message, "bucket"));
  // Without a well-formed scheme before "://", nothing of the href is echoed.
  for (const std::string& bad : std::initializer_list<std::string>{
         "AKIAXXXX:supersecret@bucket/x", "user:supersecret@host://x",
         "averyveryverylongscheme://supersecret", "://supersecret", "ftp:/user:supersecret@host"}) {
    INFO(bad);
    const std::string text = download_fails({{"href", bad}});
    CHECK(contains(text, "must be an http:// or https:// URL"));
    CHECK_FALSE(contains(text, "supersecret"));
    CHECK_FALSE(contains(text, "AKIA"));
  }
  // A presigned token in the query of another scheme stays out as well.
  CHECK_FALSE(
    contains(download_fails({{"href", "ftp://host/x?X-Amz-Signature=abc123"}}), "abc123"));
}

TEST_CASE("decode_batch_response rejects header injection") {
  const json href = "https://lfs.example.com/x";
  CHECK(contains(download_fails({{"href", href}, {"header", "Authorization: x"}}),
                 "field 'actions.download.header' must be an object"));
  CHECK(contains(download_fails({{"href", href}, {"header", {{"Authorization", 5}}}}),
                 "header 'Authorization' in 'actions.download.header' must be a string"));
  for (const std::string& bad : std::initializer_list<std::string>{
         "a\r\nX-Evil: 1", "a\nb", "a\rb", std::string{"a\0b", 3}, "a\x01"}) {
    INFO(json(bad).dump());
    CHECK(contains(download_fails({{"href", href}, {"header", {{"Authorization", bad}}}}),
                   "header 'Authorization' in 'actions.download.header' contains a line break"));
  }
  for (const std::string& bad :
       std::initializer_list<std::string>{"", "X Evil", "X-Evil:", "X\r\nEvil", "X(y)", "Ä"}) {
    INFO(json(bad).dump());
    CHECK(
      contains(download_fails({{"href", href}, {"header", {{bad, "v"}}}}), "invalid header name"));
  }
  // Tabs and non-ASCII bytes are legal in field values.
  auto action =
    decode_download({{"href", href}, {"header", {{"X-A", "a\tb"}, {"X-B", "caf\u00e9"}}}});
  CHECK(action.headers.at("X-A") == "a\tb");
  CHECK(action.headers.at("X-B") == "caf\u00e9");
  CHECK(decode_download({{"href", href}, {"header", nullptr}}).headers.empty());
  CHECK(decode_download({{"href", href}, {"header", json::object()}}).headers.empty());
}

TEST_CASE("decode_batch_response validates per-object errors") {
  json body = valid_response();
  body["objects"][1]["error"] = "not found";
  CHECK(contains(decode_fails(body.dump()),
                 "object 1 (" + oid_b + "): field 'error' must be an object"));

  for (const json& bad :
       std::initializer_list<json>{json(nullptr), json("404"), json(404.0), json(4294967296LL)}) {
    body = valid_response();
    body["objects"][1]["error"]["code"] = bad;
    INFO(bad.dump());
    CHECK(contains(decode_fails(body.dump()), "field 'error.code' must be an integer"));
  }
  body = valid_response();
  body["objects"][1]["error"].erase("code");
  CHECK(contains(decode_fails(body.dump()), "field 'error.code' must be an integer"));

  body = valid_response();
  body["objects"][1]["error"]["message"] = 1;
  CHECK(contains(decode_fails(body.dump()), "field 'error.message' must be a string"));

  body = valid_response();
  body["objects"][1]["error"].erase("message");
  auto response = decode_ok(body.dump());
  REQUIRE(response.objects[1].error);
  CHECK(response.objects[1].error->code == 404);
  CHECK(response.objects[1].error->message.empty());
}

TEST_CASE("decode_batch_response names the first failing object among many") {
  json body = {{"objects", json::array()}};
  for (int i = 0; i < 50; ++i)
    body["objects"].push_back({{"oid", oid_a}, {"size", i}});
  body["objects"][37]["size"] = -5;
  CHECK(contains(decode_fails(body.dump()), "object 37 (" + oid_a + ")"));
}

// ---- expiry ------------------------------------------------------------------

TEST_CASE("expires_in counts from the time the response arrived") {
  CHECK(decode_download({{"href", "https://x"}, {"expires_in", 60}}).expires_at == received + 60s);
  CHECK(decode_download({{"href", "https://x"}, {"expires_in", -60}}).expires_at == received - 60s);
  CHECK(decode_download({{"href", "https://x"}, {"expires_in", 2147483647}}).expires_at ==
        received + 2147483647s);
  CHECK(decode_download({{"href", "https://x"}, {"expires_in", -2147483647}}).expires_at ==
        received - 2147483647s);
}

TEST_CASE("expires_in must be a 32-bit integer") {
  for (const json& bad :
       std::initializer_list<json>{json(2147483648LL), json(-2147483648LL), json(1.5), json("60"),
                                   json(true), json::array()}) {
    INFO(bad.dump());
    CHECK(contains(download_fails({{"href", "https://x"}, {"expires_in", bad}}),
                   "field 'actions.download.expires_in' must be an integer between"));
  }
}

TEST_CASE("expires_in takes precedence over expires_at") {
  auto action = decode_download(
    {{"href", "https://x"}, {"expires_at", "2030-01-01T00:00:00Z"}, {"expires_in", 120}});
  CHECK(action.expires_at == received + 120s);
  // Negative expires_in still wins, even over a far later expires_at.
  action = decode_download(
    {{"href", "https://x"}, {"expires_at", "2030-01-01T00:00:00Z"}, {"expires_in", -1}});
  CHECK(action.expires_at == received - 1s);
  // Alone, expires_at is used as given.
  action = decode_download({{"href", "https://x"}, {"expires_at", "2030-01-01T00:00:00Z"}});
  CHECK(action.expires_at == at_seconds(1893456000));
}

TEST_CASE("zero expiry values mean no expiry, as in git-lfs") {
  CHECK_FALSE(decode_download({{"href", "https://x"}, {"expires_in", 0}}).expires_at);
  CHECK_FALSE(
    decode_download({{"href", "https://x"}, {"expires_at", "0001-01-01T00:00:00Z"}}).expires_at);
  CHECK_FALSE(decode_download({{"href", "https://x"}, {"expires_at", "0001-01-01T01:00:00+01:00"}})
                .expires_at);
  // An expires_in of 0 does not hide a real expires_at.
  auto action = decode_download(
    {{"href", "https://x"}, {"expires_at", "2030-01-01T00:00:00Z"}, {"expires_in", 0}});
  CHECK(action.expires_at == at_seconds(1893456000));
  CHECK_FALSE(
    decode_download({{"href", "https://x"}, {"expires_at", nullptr}, {"expires_in", nullptr}})
      .expires_at);
}

TEST_CASE("a malformed expires_at is rejected even when expires_in wins") {
  CHECK(contains(
    download_fails({{"href", "https://x"}, {"expires_at", "tomorrow"}, {"expires_in", 60}}),
    "field 'actions.download.expires_at' is not an RFC 3339 time: 'tomorrow'"));
  CHECK(contains(download_fails({{"href", "https://x"}, {"expires_at", 1767225600}}),
                 "field 'actions.download.expires_at' must be an RFC 3339 string"));
}

TEST_CASE("action_expires_soon compares the remaining time with the margin") {
  batch_action action;
  CHECK_FALSE(action_expires_soon(action, received, 60s));
  CHECK_FALSE(action_expires_soon(action, sys_clock::time_point::max(), 60s));

  action.expires_at = received + 120s;
  CHECK_FALSE(action_expires_soon(action, received, 60s));
  CHECK_FALSE(action_expires_soon(action, received + 60s, 60s));
  CHECK(action_expires_soon(action, received + 61s, 60s));
  CHECK(action_expires_soon(action, received + 120s, 60s));
  CHECK(action_expires_soon(action, received + 3600s, 60s));
  CHECK_FALSE(action_expires_soon(action, received + 120s, 0s));
  CHECK(action_expires_soon(action, received + 121s, 0s));
}

TEST_CASE("action_expires_soon does not overflow at the clock's limits") {
  batch_action action;
  action.expires_at = sys_clock::time_point::max();
  CHECK_FALSE(action_expires_soon(action, sys_clock::time_point::min(), 60s));
  CHECK(action_expires_soon(action, received, std::chrono::seconds::max()));
  action.expires_at = sys_clock::time_point::min();
  CHECK(action_expires_soon(action, sys_clock::time_point::max(), 60s));
  CHECK_FALSE(action_expires_soon(action, received, std::chrono::seconds::min()));
  CHECK_FALSE(action_expires_soon(action, sys_clock::time_point::min(), 0s));
  CHECK(action_expires_soon(action, sys_clock::time_point::min(), 1s));
}

TEST_CASE("expires_in saturates instead of overflowing") {
  const auto late = sys_clock::time_point::max() - 10s;
  json body = {{"objects",
                {{{"oid", oid_a},
                  {"size", 1},
                  {"actions", {{"download", {{"href", "https://x"}, {"expires_in", 3600}}}}}}}}};
  auto result = decode_batch_response(body.dump(), late);
  REQUIRE(std::holds_alternative<batch_response>(result));
  CHECK(std::get<batch_response>(result).objects[0].download->expires_at ==
        sys_clock::time_point::max());
}

// ---- RFC 3339 ----------------------------------------------------------------

TEST_CASE("parse_rfc3339 accepts the RFC 3339 forms") {
  CHECK(parse_rfc3339("1970-01-01T00:00:00Z") == at_seconds(0));
  CHECK(parse_rfc3339("2026-11-22T00:00:00Z") == at_seconds(1795305600));
  CHECK(parse_rfc3339("2026-11-22t00:00:00z") == at_seconds(1795305600));
  CHECK(parse_rfc3339("2026-11-22T01:30:00+01:30") == at_seconds(1795305600));
  CHECK(parse_rfc3339("2026-11-21T22:00:00-02:00") == at_seconds(1795305600));
  CHECK(parse_rfc3339("2026-11-22T00:00:00-00:00") == at_seconds(1795305600));
  CHECK(parse_rfc3339("2026-11-22T00:00:00+00:00") == at_seconds(1795305600));
  CHECK(parse_rfc3339("1969-12-31T23:59:59Z") == at_seconds(-1));
  CHECK(parse_rfc3339("2024-02-29T12:00:00Z") == at_seconds(1709208000));
  CHECK(parse_rfc3339("2000-02-29T00:00:00Z") == at_seconds(951782400));
  // A leap second reads as the first second of the next minute.
  CHECK(parse_rfc3339("2016-12-31T23:59:60Z") == at_seconds(1483228800));
}

TEST_CASE("parse_rfc3339 keeps fractional seconds") {
  using std::chrono::duration_cast;
  using std::chrono::nanoseconds;
  const auto base = at_seconds(1795305600);
  auto since = [&](const char* text) {
    const auto parsed = parse_rfc3339(text);
    REQUIRE(parsed);
    return duration_cast<nanoseconds>(*parsed - base).count();
  };
  CHECK(since("2026-11-22T00:00:00.5Z") == 500000000);
  CHECK(since("2026-11-22T00:00:00.000001Z") ==
        duration_cast<nanoseconds>(std::chrono::microseconds{1}).count());
  CHECK(since("2026-11-22T00:00:00.250+00:00") == 250000000);
  CHECK(
    since("2026-11-22T00:00:00.999999999999Z") ==
    duration_cast<nanoseconds>(duration_cast<sys_clock::duration>(nanoseconds{999999999})).count());
  CHECK(since("2026-11-22T01:00:00.5+01:00") == 500000000);
}

TEST_CASE("parse_rfc3339 rejects malformed times") {
  for (const std::string bad : {"",
                                "2026-11-22",
                                "2026-11-22T00:00:00",
                                "2026-11-22 00:00:00Z",
                                "2026-11-22T00:00Z",
                                "26-11-22T00:00:00Z",
                                "2026-1-22T00:00:00Z",
                                "2026/11/22T00:00:00Z",
                                "2026-11-22T00:00:00.Z",
                                "2026-11-22T00:00:00,5Z",
                                "2026-13-01T00:00:00Z",
                                "2026-00-01T00:00:00Z",
                                "2026-11-00T00:00:00Z",
                                "2026-11-31T00:00:00Z",
                                "2025-02-29T00:00:00Z",
                                "1900-02-29T00:00:00Z",
                                "2026-11-22T24:00:00Z",
                                "2026-11-22T00:60:00Z",
                                "2026-11-22T00:00:61Z",
                                "2026-11-22T00:00:00+0100",
                                "2026-11-22T00:00:00+01",
                                "2026-11-22T00:00:00+24:00",
                                "2026-11-22T00:00:00+01:60",
                                "2026-11-22T00:00:00ZZ",
                                "2026-11-22T00:00:00Z ",
                                " 2026-11-22T00:00:00Z",
                                "+2026-11-22T00:00:00Z",
                                "2026-11-22T00:00:00UTC",
                                "2026-11-22T-1:00:00Z",
                                "2026-11-22T00:00:00+1:00",
                                "tomorrow at noon, please"}) {
    INFO(bad);
    CHECK_FALSE(parse_rfc3339(bad));
  }
  CHECK_FALSE(parse_rfc3339(std::string{"2026-11-22T00:00:00Z\0", 21}));
}

TEST_CASE("parse_rfc3339 clamps instants outside the clock's range") {
  // Nanosecond clocks (libstdc++) span 1677..2262; coarser ones reach further.
  if (std::ratio_equal_v<sys_clock::period, std::nano>) {
    CHECK(parse_rfc3339("9999-12-31T23:59:59Z") == sys_clock::time_point::max());
    CHECK(parse_rfc3339("0000-01-01T00:00:00Z") == sys_clock::time_point::min());
  }
  // A far-future expiry never expires soon.
  auto action = decode_download({{"href", "https://x"}, {"expires_at", "9999-12-31T23:59:59Z"}});
  CHECK_FALSE(action_expires_soon(action, received, 3600s));
  action = decode_download({{"href", "https://x"}, {"expires_at", "0002-01-01T00:00:00Z"}});
  CHECK(action_expires_soon(action, received, 3600s));
}

// ---- error bodies ------------------------------------------------------------

TEST_CASE("decode_error_message extracts the LFS error JSON") {
  CHECK(decode_error_message(R"({"message":"Not Found"})") == "Not Found");
  CHECK(decode_error_message(R"({"message":"Bad creds","request_id":"abc-123"})") ==
        "Bad creds (request id abc-123)");
  CHECK(
    decode_error_message(
      R"({"message":"Bad creds","request_id":"r1","documentation_url":"https://lfs.example.com/help"})") ==
    "Bad creds (request id r1); see https://lfs.example.com/help");
  CHECK(decode_error_message(R"({"message":"Line1\nLine2\t\u001b[31m"})") == "Line1 Line2 [31m");
  CHECK(decode_error_message(R"({"message":"x","request_id":7})") == "x");
  CHECK(decode_error_message(R"({"message":"x","request_id":""})") == "x");
}

TEST_CASE("decode_error_message quotes other bodies cleanly") {
  CHECK(decode_error_message("") == "(empty response body)");
  CHECK(decode_error_message(" \r\n") == "(empty response body)");
  CHECK(decode_error_message("Service Unavailable\n") == "Service Unavailable");
  CHECK(decode_error_message(R"({"error":"nope"})") == R"({"error":"nope"})");
  CHECK(decode_error_message(R"({"message":5})") == R"({"message":5})");
  CHECK(decode_error_message(R"({"message":""})") == R"({"message":""})");
  CHECK(decode_error_message(R"(["message"])") == R"(["message"])");
  CHECK(decode_error_message("<html><head><title>502 Bad Gateway</title></head>\n<body><h1>502 Bad "
                             "Gateway</h1><hr>nginx</body></html>") ==
        "502 Bad Gateway 502 Bad Gateway nginx");
  CHECK(decode_error_message("\x01\x02\x03") == "(response body has no printable text)");
  CHECK(decode_error_message("caf\xc3\xa9\x1b]0;pwned\x07") == "caf?? ]0;pwned");
  CHECK(decode_error_message(std::string{"a\0b", 3}) == "a b");
}

TEST_CASE("decode_error_message keeps snippets to 200 characters") {
  const std::string snippet = decode_error_message(std::string(10000, 'x'));
  CHECK(snippet.size() == 200);
  CHECK(snippet.substr(197) == "...");
  const std::string message =
    decode_error_message(json{{"message", std::string(1000, 'm')}}.dump());
  CHECK(message.size() == 200);
  CHECK(decode_error_message(std::string(200, 'y')) == std::string(200, 'y'));
}

TEST_CASE("batch_object_error_message explains each code") {
  CHECK(batch_object_error_message({404, "Object does not exist"}) ==
        "object not found on the server (error 404): Object does not exist");
  CHECK(contains(batch_object_error_message({409, "sha512 only"}), "hash algorithm disagreement"));
  CHECK(contains(batch_object_error_message({409, "sha512 only"}), "sha512 only"));
  CHECK(contains(batch_object_error_message({410, ""}), "object removed by its owner"));
  CHECK(batch_object_error_message({410, ""}) == "object removed by its owner (error 410)");
  CHECK(contains(batch_object_error_message({422, "bad size"}),
                 "server rejected the object as invalid"));
  CHECK(batch_object_error_message({403, "denied"}) ==
        "server refused the object (error 403): denied");
  CHECK(batch_object_error_message({500, "boom"}) ==
        "server failed to handle the object (error 500): boom");
  CHECK(batch_object_error_message({-1, ""}) == "server refused the object (error -1)");
  CHECK_FALSE(contains(batch_object_error_message({404, "a\r\nb\x1b"}), "\n"));
  CHECK(batch_object_error_message({404, std::string(5000, 'z')}).size() < 300);
}
