#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "protocol/proton_bridge.hpp"

using namespace ferry::bridge;
using json = nlohmann::json;
using namespace std::string_literals;

namespace {

const std::string oid_a = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";
const std::string oid_b = "6a1e4b2b9e1a6e1a0f0a1c4ee1b0f9b56d1e1d1c0a7b2d6b8e4c7a8d3e2f1a0b";
const std::string oid_c = "0000000000000000000000000000000000000000000000000000000000000000";

std::string upper(std::string text) {
  for (char& c : text)
    if (c >= 'a' && c <= 'z')
      c = static_cast<char>(c - 'a' + 'A');
  return text;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

common_fields all_common() {
  common_fields common;
  common.storage_base = "LFS";
  common.data_credential_provider = "git-credential";
  common.data_credential_host = "proton-data.example";
  common.app_version = "external-drive-ferry@1.0.0";
  return common;
}

request_fields all_fields() {
  request_fields fields;
  fields.oid = oid_a;
  fields.path = "/tmp/up";
  fields.output_path = "/tmp/down";
  fields.folder = "/LFS/4d/7a";
  fields.oids = {oid_a, oid_b};
  return fields;
}

json encoded(command name, const common_fields& common, const request_fields& fields) {
  const std::string text = encode_request(name, common, fields);
  const json body = json::parse(text, nullptr, false);
  REQUIRE(body.is_object());
  return body;
}

std::set<std::string> keys(const json& object) {
  std::set<std::string> out;
  for (const auto& item : object.items())
    out.insert(item.key());
  return out;
}

envelope parse_ok(const std::string& output) {
  auto result = parse_envelope(output);
  if (auto* error = std::get_if<std::string>(&result))
    FAIL("unexpected error: " << *error);
  return std::get<envelope>(result);
}

std::string parse_fails(const std::string& output) {
  auto result = parse_envelope(output);
  if (auto* decoded = std::get_if<envelope>(&result)) {
    FAIL("accepted " << output << " as ok=" << decoded->ok);
  }
  return std::get<std::string>(result);
}

// A failure envelope whose details string is the dump of `details`.
envelope failure_with(const json& details) {
  json line = {{"ok", false}, {"error", "boom"}, {"code", 429}, {"details", details.dump()}};
  return parse_ok(line.dump() + "\n");
}

template <class T>
T decoded_ok(const std::variant<T, std::string>& result) {
  if (auto* error = std::get_if<std::string>(&result))
    FAIL("unexpected error: " << *error);
  return std::get<T>(result);
}

template <class T>
std::string decode_error(const std::variant<T, std::string>& result) {
  REQUIRE(std::holds_alternative<std::string>(result));
  return std::get<std::string>(result);
}

} // namespace

TEST_CASE("bridge command names are the v1 subcommands") {
  CHECK(std::string{to_string(command::auth_state)} == "auth-state");
  CHECK(std::string{to_string(command::upload)} == "upload");
  CHECK(std::string{to_string(command::download)} == "download");
  CHECK(std::string{to_string(command::list)} == "list");
  CHECK(std::string{to_string(command::exists)} == "exists");
  CHECK(std::string{to_string(command::remove)} == "delete");
  CHECK(std::string{to_string(command::refresh)} == "refresh");
  CHECK(std::string{to_string(command::init)} == "init");
  CHECK(std::string{to_string(command::batch_exists)} == "batch-exists");
  CHECK(std::string{to_string(command::batch_delete)} == "batch-delete");
}

TEST_CASE("bridge encode_request sends exactly the fields each command allows") {
  const std::set<std::string> common = {"storageBase", "dataCredentialProvider",
                                        "dataCredentialHost", "appVersion"};
  auto with = [&](std::initializer_list<std::string> extra) {
    std::set<std::string> out = common;
    out.insert(extra);
    return out;
  };
  const std::vector<std::pair<command, std::set<std::string>>> table = {
    {command::auth_state, common},
    {command::upload, with({"oid", "path"})},
    {command::download, with({"oid", "outputPath"})},
    {command::list, with({"folder"})},
    {command::exists, with({"oid"})},
    {command::remove, with({"oid"})},
    {command::refresh, {"appVersion"}},
    {command::init, common},
    {command::batch_exists, with({"oids"})},
    {command::batch_delete, with({"oids"})},
  };
  for (const auto& [name, expected] : table) {
    INFO("command " << to_string(name));
    const json body = encoded(name, all_common(), all_fields());
    CHECK(keys(body) == expected);
  }
}

TEST_CASE("bridge encode_request carries the values unchanged") {
  const json upload = encoded(command::upload, all_common(), all_fields());
  CHECK(upload["storageBase"] == "LFS");
  CHECK(upload["dataCredentialProvider"] == "git-credential");
  CHECK(upload["dataCredentialHost"] == "proton-data.example");
  CHECK(upload["appVersion"] == "external-drive-ferry@1.0.0");
  CHECK(upload["oid"] == oid_a);
  CHECK(upload["path"] == "/tmp/up");
  CHECK(encoded(command::download, all_common(), all_fields())["outputPath"] == "/tmp/down");
  CHECK(encoded(command::list, all_common(), all_fields())["folder"] == "/LFS/4d/7a");
  CHECK(encoded(command::batch_delete, all_common(), all_fields())["oids"] ==
        json::array({oid_a, oid_b}));
  // Oids go out as given; callers are the ones that lower-case them.
  request_fields mixed;
  mixed.oid = upper(oid_a);
  CHECK(encoded(command::exists, {}, mixed)["oid"] == upper(oid_a));
}

TEST_CASE("bridge encode_request leaves out empty fields and writes compact JSON") {
  common_fields common;
  common.storage_base = "LFS";
  request_fields fields;
  fields.oid = oid_a;
  const std::string text = encode_request(command::exists, common, fields);
  CHECK(text == R"({"storageBase":"LFS","oid":")" + oid_a + R"("})");
  CHECK(encode_request(command::refresh, common, fields) == "{}");
  CHECK(keys(encoded(command::batch_exists, common, fields)) ==
        std::set<std::string>{"storageBase"});
  CHECK(encode_request(command::auth_state, {}, {}) == "{}");
}

TEST_CASE("bridge parse_envelope accepts every success shape") {
  const envelope object = parse_ok(R"({"ok":true,"payload":{"oid":"x","exists":true}})"
                                   "\n");
  CHECK(object.ok);
  CHECK(object.payload == json{{"oid", "x"}, {"exists", true}});
  CHECK(object.error.empty());
  CHECK(object.code == 0);

  const envelope array = parse_ok(R"({"ok":true,"payload":[1,2]})");
  CHECK(array.ok);
  CHECK(array.payload == json::array({1, 2}));

  const envelope null_payload = parse_ok(R"({"ok":true,"payload":null})");
  CHECK(null_payload.ok);
  CHECK(null_payload.payload.is_null());

  // Pretty-printed over several lines: the whole output is one document.
  const envelope pretty = parse_ok("{\n  \"ok\": true,\n  \"payload\": {\"a\": 1}\n}\n");
  CHECK(pretty.payload == json{{"a", 1}});
}

TEST_CASE("bridge parse_envelope accepts every failure shape") {
  SECTION("empty details") {
    const envelope failure =
      parse_ok(R"({"ok":false,"error":"Not found","code":404,"details":""})");
    CHECK_FALSE(failure.ok);
    CHECK(failure.error == "Not found");
    CHECK(failure.code == 404);
    CHECK(failure.details.is_null());
    CHECK(error_code(failure).empty());
    CHECK_FALSE(retry_after_seconds(failure));
  }
  SECTION("details holding a JSON object") {
    const envelope failure =
      parse_ok(R"({"ok":false,"error":"expired","code":401,)"
               R"("details":"{\"errorCode\":\"SESSION_EXPIRED\",\"authMode\":\"browser-fork\"}"})");
    CHECK(failure.code == 401);
    CHECK(failure.details == json{{"errorCode", "SESSION_EXPIRED"}, {"authMode", "browser-fork"}});
    CHECK(error_code(failure) == "SESSION_EXPIRED");
  }
  SECTION("details absent") {
    const envelope failure = parse_ok(R"({"ok":false,"error":"Unknown","code":500})");
    CHECK(failure.code == 500);
    CHECK(failure.details.is_null());
  }
  SECTION("a code written as a whole number of the float kind is not an integer") {
    parse_fails(R"({"ok":false,"error":"x","code":400.0,"details":""})");
  }
}

TEST_CASE("bridge parse_envelope rejects malformed envelopes") {
  const std::vector<std::pair<std::string, std::string>> bad = {
    {R"({"ok":true,"payload":1,"error":"x"})", "'error'"},
    {R"({"ok":true,"payload":1,"code":500})", "'code'"},
    {R"({"ok":true,"payload":1,"details":""})", "'details'"},
    {R"({"ok":true})", "'payload'"},
    {R"({"ok":false,"error":"x","code":500,"details":"","payload":1})", "'payload'"},
    {R"({"ok":"true","payload":1})", "'ok'"},
    {R"({"ok":1,"payload":1})", "'ok'"},
    {R"({"payload":1})", "'ok'"},
    {R"({"ok":false,"error":"x","code":500,"details":{"errorCode":"X"}})", "'details'"},
    {R"({"ok":false,"error":"x","code":500,"details":null})", "'details'"},
    {R"({"ok":false,"error":"x","code":500,"details":"not json"})", "'details'"},
    {R"({"ok":false,"error":"x","code":500,"details":"[1,2]"})", "'details'"},
    {R"({"ok":false,"error":"x","code":500,"details":"\"text\""})", "'details'"},
    {R"({"ok":false,"error":"x","code":99,"details":""})", "'code'"},
    {R"({"ok":false,"error":"x","code":0,"details":""})", "'code'"},
    {R"({"ok":false,"error":"x","code":-500,"details":""})", "'code'"},
    {R"({"ok":false,"error":"x","code":1000,"details":""})", "'code'"},
    {R"({"ok":false,"error":"x","code":400.5,"details":""})", "'code'"},
    {R"({"ok":false,"error":"x","code":"400","details":""})", "'code'"},
    {R"({"ok":false,"error":"x","details":""})", "'code'"},
    {R"({"ok":false,"error":"","code":500,"details":""})", "'error'"},
    {R"({"ok":false,"error":7,"code":500,"details":""})", "'error'"},
    {R"({"ok":false,"code":500,"details":""})", "'error'"},
    {R"({"ok":true,"payload":1,"extra":2})", "'extra'"},
    {R"({"ok":false,"error":"x","code":500,"details":"","message":"y"})", "'message'"},
  };
  for (const auto& [line, names] : bad) {
    INFO(line);
    const std::string error = parse_fails(line + "\n");
    CHECK(contains(error, "bad envelope"));
    CHECK(contains(error, names));
  }
}

TEST_CASE("bridge parse_envelope tolerates log noise around the envelope line") {
  const std::string envelope_line = R"({"ok":true,"payload":{"n":1}})";
  SECTION("noise lines before it") {
    const envelope found = parse_ok("[info] starting\nwarning: slow disk\n" + envelope_line + "\n");
    CHECK(found.payload == json{{"n", 1}});
  }
  SECTION("CRLF line ends and leading blanks") {
    const envelope found = parse_ok("noise\r\n  " + envelope_line + "\r\n");
    CHECK(found.payload == json{{"n", 1}});
  }
  SECTION("lines that start with { but are not JSON are skipped") {
    const envelope found = parse_ok(envelope_line + "\n{not json at all\n{\"half\":\n");
    CHECK(found.payload == json{{"n", 1}});
  }
  SECTION("the last JSON line wins over earlier ones") {
    const envelope found = parse_ok(R"({"ok":true,"payload":"old"})"
                                    "\n"
                                    R"({"ok":false,"error":"late","code":502,"details":""})");
    CHECK_FALSE(found.ok);
    CHECK(found.error == "late");
  }
  SECTION("noise lines after it that are not objects") {
    const envelope found = parse_ok(envelope_line + "\ndone\n[1,2]\n");
    CHECK(found.payload == json{{"n", 1}});
  }
}

TEST_CASE("bridge parse_envelope does not skip a JSON line that is not an envelope") {
  const std::string error = parse_fails(R"({"ok":true,"payload":1})"
                                        "\n"
                                        R"({"level":"info","msg":"uploaded"})"
                                        "\n");
  CHECK(contains(error, "bad envelope"));
  CHECK(contains(error, "'level'"));
}

TEST_CASE("bridge parse_envelope reports output without an envelope") {
  CHECK(parse_fails("") == "no envelope");
  CHECK(parse_fails("\n\n") == "no envelope");
  CHECK(parse_fails("Error: cannot find module\n    at node:internal\n") == "no envelope");
  CHECK(parse_fails("[1,2,3]\n42\n\"ok\"\n") == "no envelope");
  CHECK(parse_fails("{\"ok\":true,\"payload\":\n") == "no envelope");
  // A NUL byte would end the JSON parser's input early: such a line is not JSON.
  CHECK(parse_fails("{\"ok\":true,\"payload\":1}\0trailing"s) == "no envelope");
}

TEST_CASE("bridge parse_envelope survives deeply nested output") {
  const std::string deep = "{\"ok\":true,\"payload\":" + std::string(100000, '[') + "\n";
  CHECK(parse_fails(deep) == "no envelope");
  const std::string deep_details =
    R"({"ok":false,"error":"x","code":500,"details":")" + std::string(1000, '[') + R"("})";
  CHECK(contains(parse_fails(deep_details), "'details'"));
}

TEST_CASE("bridge error_code and retry_after_seconds read details safely") {
  const envelope limited = failure_with({{"errorCode", "RATE_LIMITED"}, {"retryAfter", 42}});
  CHECK(error_code(limited) == "RATE_LIMITED");
  REQUIRE(retry_after_seconds(limited));
  CHECK(*retry_after_seconds(limited) == 42.0);

  const envelope fractional = failure_with({{"retryAfter", 1.5}});
  REQUIRE(retry_after_seconds(fractional));
  CHECK(*retry_after_seconds(fractional) == 1.5);
  CHECK(error_code(fractional).empty());

  CHECK_FALSE(retry_after_seconds(failure_with({{"retryAfter", -1}})));
  CHECK_FALSE(retry_after_seconds(failure_with({{"retryAfter", "30"}})));
  CHECK(error_code(failure_with({{"errorCode", 7}})).empty());

  envelope handmade;
  handmade.details = json::array({1});
  CHECK(error_code(handmade).empty());
  CHECK_FALSE(retry_after_seconds(handmade));
}

TEST_CASE("bridge decode_auth_state reads state, errors and actions") {
  const json payload = {{"state", "needs_login"},
                        {"hasSession", false},
                        {"willAttemptNetwork", false},
                        {"errors", json::array()},
                        {"actions", {"Run proton-drive login"}}};
  const auth_state state = decoded_ok(decode_auth_state(payload));
  CHECK(state.state == "needs_login");
  CHECK(state.errors.empty());
  CHECK(state.actions == std::vector<std::string>{"Run proton-drive login"});

  CHECK(decoded_ok(decode_auth_state({{"state", "ready"}})).state == "ready");

  CHECK(contains(decode_error(decode_auth_state({{"errors", json::array()}})), "'state'"));
  CHECK(contains(decode_error(decode_auth_state({{"state", 1}})), "'state'"));
  CHECK(
    contains(decode_error(decode_auth_state({{"state", "ready"}, {"errors", "x"}})), "'errors'"));
  CHECK(
    contains(decode_error(decode_auth_state({{"state", "ready"}, {"actions", {1}}})), "'actions'"));
  CHECK(contains(decode_error(decode_auth_state(json::array())), "object"));
}

TEST_CASE("bridge decode_exists is strict") {
  CHECK(decoded_ok(decode_exists({{"oid", oid_a}, {"exists", true}}, oid_a)));
  CHECK_FALSE(decoded_ok(decode_exists({{"oid", oid_a}, {"exists", false}}, oid_a)));
  // Case does not matter on either side.
  CHECK(decoded_ok(decode_exists({{"oid", upper(oid_a)}, {"exists", true}}, oid_a)));

  CHECK(contains(
    decode_error(decode_exists({{"oid", oid_a}, {"exists", true}, {"size", 1}}, oid_a)), "'size'"));
  CHECK(contains(decode_error(decode_exists({{"oid", oid_b}, {"exists", true}}, oid_a)), oid_b));
  CHECK(contains(decode_error(decode_exists({{"exists", true}}, oid_a)), "'oid'"));
  CHECK(contains(decode_error(decode_exists({{"oid", oid_a}}, oid_a)), "'exists'"));
  CHECK(
    contains(decode_error(decode_exists({{"oid", oid_a}, {"exists", "true"}}, oid_a)), "'exists'"));
  CHECK(contains(decode_error(decode_exists(nullptr, oid_a)), "object"));
}

TEST_CASE("bridge decode_batch_results accepts both shapes in the asked order") {
  const std::vector<std::string> asked = {oid_b, oid_a};
  const json bare = {{oid_a, true}, {oid_b, false}};
  CHECK(decoded_ok(decode_batch_results(bare, asked)) == std::vector<bool>{false, true});
  const json wrapped = {{"results", bare}};
  CHECK(decoded_ok(decode_batch_results(wrapped, asked)) == std::vector<bool>{false, true});
  // Keys in upper case, an oid asked twice.
  const json shouted = {{"results", {{upper(oid_a), true}, {upper(oid_b), false}}}};
  CHECK(decoded_ok(decode_batch_results(shouted, {oid_a, oid_b, oid_a})) ==
        std::vector<bool>{true, false, true});
  CHECK(decoded_ok(decode_batch_results({{"results", json::object()}}, {})).empty());
}

TEST_CASE("bridge decode_batch_results rejects incomplete or foreign answers") {
  const std::vector<std::string> asked = {oid_a, oid_b};
  CHECK(contains(decode_error(decode_batch_results({{oid_a, true}}, asked)), oid_b));
  CHECK(contains(
    decode_error(decode_batch_results({{oid_a, true}, {oid_b, true}, {oid_c, true}}, asked)),
    oid_c));
  CHECK(
    contains(decode_error(decode_batch_results({{oid_a, true}, {"abc", true}}, asked)), "'abc'"));
  CHECK(
    contains(decode_error(decode_batch_results({{oid_a, true}, {oid_b, 1}}, asked)), "boolean"));
  CHECK(contains(decode_error(decode_batch_results(
                   {{"results", {{oid_a, true}, {oid_b, true}}}, {"extra", 1}}, asked)),
                 "'results'"));
  CHECK(
    contains(decode_error(decode_batch_results({{"results", json::array()}}, asked)), "'results'"));
  CHECK(contains(decode_error(decode_batch_results(
                   {{oid_a, true}, {upper(oid_a), false}, {oid_b, true}}, asked)),
                 "twice"));
  CHECK(contains(decode_error(decode_batch_results(json::array(), asked)), "object"));
}

TEST_CASE("bridge decode_download checks oid, downloaded and size") {
  const json payload = {
    {"oid", oid_a}, {"outputPath", "/tmp/down"}, {"size", 1234}, {"downloaded", true}};
  CHECK(decoded_ok(decode_download(payload, oid_a)) == 1234);
  json zero = payload;
  zero["size"] = 0;
  CHECK(decoded_ok(decode_download(zero, oid_a)) == 0);

  CHECK(contains(decode_error(decode_download(payload, oid_b)), oid_a));
  json not_downloaded = payload;
  not_downloaded["downloaded"] = false;
  CHECK(contains(decode_error(decode_download(not_downloaded, oid_a)), "'downloaded'"));
  for (const json& size : {json(-1), json(1.5), json("12"), json(nullptr)}) {
    json bad = payload;
    bad["size"] = size;
    CHECK(contains(decode_error(decode_download(bad, oid_a)), "'size'"));
  }
  json no_size = payload;
  no_size.erase("size");
  CHECK(contains(decode_error(decode_download(no_size, oid_a)), "'size'"));
}

TEST_CASE("bridge decode_upload tells the three outcomes apart") {
  const json uploaded = {
    {"oid", oid_a}, {"fileId", "n1"}, {"revisionId", ""}, {"uploaded", true}, {"cached", false}};
  CHECK(decoded_ok(decode_upload(uploaded, oid_a)) == upload_outcome::uploaded);
  const json deduplicated = {{"oid", oid_a},      {"fileId", "n1"},  {"revisionId", ""},
                             {"uploaded", false}, {"cached", false}, {"deduplicated", true}};
  CHECK(decoded_ok(decode_upload(deduplicated, oid_a)) == upload_outcome::deduplicated);
  const json cached = {{"oid", oid_a},
                       {"fileId", "cached"},
                       {"revisionId", ""},
                       {"uploaded", false},
                       {"cached", true}};
  CHECK(decoded_ok(decode_upload(cached, oid_a)) == upload_outcome::cached);

  json none = uploaded;
  none["uploaded"] = false;
  CHECK(contains(decode_error(decode_upload(none, oid_a)), "exactly one"));
  json two = deduplicated;
  two["cached"] = true;
  CHECK(contains(decode_error(decode_upload(two, oid_a)), "exactly one"));
  json wrong_type = uploaded;
  wrong_type["cached"] = "no";
  CHECK(contains(decode_error(decode_upload(wrong_type, oid_a)), "'cached'"));
  CHECK(contains(decode_error(decode_upload(uploaded, oid_b)), oid_a));
}

TEST_CASE("bridge decode_list reads files and folders") {
  const json payload = {
    {"files",
     {{{"name", oid_a}, {"type", "file"}, {"size", 77}, {"modifiedTime", 1767225600}},
      {{"name", "4d"}, {"type", "folder"}, {"size", 0}, {"modifiedTime", 1767225600}},
      {{"name", "7a"}, {"type", "folder"}}}}};
  const auto entries = decoded_ok(decode_list(payload));
  REQUIRE(entries.size() == 3);
  CHECK(entries[0].name == oid_a);
  CHECK_FALSE(entries[0].folder);
  CHECK(entries[0].size == 77);
  CHECK(entries[1].folder);
  CHECK(entries[2].folder);
  CHECK(entries[2].size == 0);
  CHECK(decoded_ok(decode_list({{"files", json::array()}})).empty());

  auto with_entry = [](const json& entry) { return json{{"files", {entry}}}; };
  CHECK(
    contains(decode_error(decode_list(with_entry({{"name", "x"}, {"type", "link"}}))), "'type'"));
  CHECK(
    contains(decode_error(decode_list(with_entry({{"name", "x"}, {"type", "file"}}))), "'size'"));
  CHECK(
    contains(decode_error(decode_list(with_entry({{"name", "x"}, {"type", "file"}, {"size", -3}}))),
             "'size'"));
  CHECK(contains(
    decode_error(decode_list(with_entry({{"name", "x"}, {"type", "folder"}, {"size", "0"}}))),
    "'size'"));
  CHECK(contains(decode_error(decode_list(with_entry({{"type", "file"}, {"size", 1}}))), "'name'"));
  CHECK(
    contains(decode_error(decode_list(with_entry({{"name", ""}, {"type", "file"}, {"size", 1}}))),
             "'name'"));
  CHECK(contains(decode_error(decode_list(with_entry("file"))), "entry 0"));
  CHECK(contains(decode_error(decode_list({{"files", json::object()}})), "'files'"));
  CHECK(contains(decode_error(decode_list(json::object())), "'files'"));
}

TEST_CASE("bridge object_path lays objects out as every bridge client does") {
  CHECK(object_path("LFS", oid_a) == "/LFS/4d/7a/" + oid_a);
  CHECK(object_path("LFS", upper(oid_a)) == "/LFS/4d/7a/" + oid_a);
  CHECK(object_path("Backups/repo", oid_b) == "/Backups/repo/6a/1e/" + oid_b);
  CHECK(object_path("/LFS/", oid_a) == "/LFS/4d/7a/" + oid_a);
  CHECK(object_path("", oid_a) == "/LFS/4d/7a/" + oid_a);
  // Garbage in does not throw.
  CHECK(object_path("LFS", "a") == "/LFS/a//a");
}

TEST_CASE("bridge sanitize_diagnostics cuts secrets and flattens the text") {
  const std::vector<std::string> secrets = {"Authorization: Bearer abc.def.ghi",
                                            "GET /x?token=SECRET1",
                                            "cookie session=SECRET2",
                                            "{\"AccessToken\":\"SECRET3\"}",
                                            "{\"refreshToken\":\"SECRET4\"}",
                                            "uid: SECRET5",
                                            "request failed, bearer\n\tSECRET6 used",
                                            "git credential answered password=SECRET7",
                                            "dataPassword: SECRET8",
                                            "{\"password\":\"SECRET9\"}",
                                            "Authorization: Basic U0VDUkVUMTA="};
  for (const std::string& secret : secrets) {
    INFO(secret);
    const std::string cleaned = sanitize_diagnostics("request failed at step 3 " + secret);
    CHECK(contains(cleaned, "request failed"));
    CHECK_FALSE(contains(cleaned, "SECRET"));
    CHECK_FALSE(contains(cleaned, "abc.def"));
    CHECK_FALSE(contains(cleaned, "U0VDUkVUMTA"));
  }

  const std::string flat = sanitize_diagnostics("line one\nline\ttwo\r\n\x1b[31mred\x1b[0m\n");
  CHECK(flat == "line one line two [31mred [0m");

  const std::string long_text(1000, 'x');
  const std::string cut = sanitize_diagnostics(long_text);
  CHECK(cut.size() <= 256);
  CHECK(cut.size() >= 250);
  CHECK(sanitize_diagnostics("") == "");
}
