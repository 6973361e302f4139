#include "store/journal/transfer_record.hpp"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <string>

using ferry::attempt_error;
using ferry::decode_record;
using ferry::direction;
using ferry::encode;
using ferry::errc;
using ferry::transfer_record;
using ferry::transfer_state;

namespace {

transfer_record full_record() {
  transfer_record r;
  r.oid = std::string(64, 'a');
  r.cid = "7f3a9c2e01b4";
  r.dir = direction::download;
  r.size = 5'000'000'000;
  r.state = transfer_state::in_flight;
  r.committed = 4'294'967'296;
  r.attempts = 3;
  r.resumed_from = 1024;
  r.backend = "folder:/srv/lfs";
  r.path = "/tmp/gr\xC3\xBC\xC3\x9F"
           "e/\xE6\x97\xA5\xE6\x9C\xAC.bin"; // grüße/日本.bin
  r.created_ms = 1'700'000'000'000;
  r.updated_ms = 1'700'000'000'500;
  r.finished_ms = 0;
  r.add_error({1'700'000'000'100, "io_error", "disk went away \xF0\x9F\x92\xA5"}); // emoji
  r.add_error({1'700'000'000'200, "unavailable", "server said \"no\"\nnewline"});
  return r;
}

// Encodes a record, lets `edit` change the JSON, and decodes the result.
template <class Edit>
ferry::result<transfer_record> decode_edited(Edit edit) {
  auto doc = nlohmann::json::parse(encode(full_record()));
  edit(doc);
  return decode_record(doc.dump());
}

void check_corrupt(const ferry::result<transfer_record>& r, const std::string& mentions) {
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code() == errc::corrupt_record);
  CHECK_THAT(r.error().message(), Catch::Contains(mentions));
}

} // namespace

TEST_CASE("record names are stable", "[journal]") {
  CHECK(std::string{ferry::to_string(direction::upload)} == "upload");
  CHECK(std::string{ferry::to_string(direction::download)} == "download");
  CHECK(std::string{ferry::to_string(transfer_state::queued)} == "queued");
  CHECK(std::string{ferry::to_string(transfer_state::in_flight)} == "in_flight");
  CHECK(std::string{ferry::to_string(transfer_state::done)} == "done");
  CHECK(std::string{ferry::to_string(transfer_state::failed)} == "failed");
}

TEST_CASE("record round-trips every field", "[journal]") {
  transfer_record in = full_record();
  auto out = decode_record(encode(in));
  REQUIRE(out.ok());
  CHECK(out->oid == in.oid);
  CHECK(out->cid == "7f3a9c2e01b4");
  CHECK(out->dir == direction::download);
  CHECK(out->size == in.size);
  CHECK(out->state == transfer_state::in_flight);
  CHECK(out->committed == in.committed);
  CHECK(out->attempts == 3);
  CHECK(out->resumed_from == 1024);
  CHECK(out->backend == in.backend);
  CHECK(out->path == in.path);
  CHECK(out->created_ms == in.created_ms);
  CHECK(out->updated_ms == in.updated_ms);
  CHECK(out->finished_ms == 0);
  REQUIRE(out->errors.size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    CHECK(out->errors[i].at_ms == in.errors[i].at_ms);
    CHECK(out->errors[i].code == in.errors[i].code);
    CHECK(out->errors[i].message == in.errors[i].message);
  }

  // Other states and the upload direction survive too.
  for (auto state : {transfer_state::queued, transfer_state::done, transfer_state::failed}) {
    in.state = state;
    in.dir = direction::upload;
    auto again = decode_record(encode(in));
    REQUIRE(again.ok());
    CHECK(again->state == state);
    CHECK(again->dir == direction::upload);
  }
}

TEST_CASE("record keeps a store's resume state and omits an empty one", "[journal]") {
  transfer_record in = full_record();
  CHECK(encode(in).find("store_state") == std::string::npos);
  auto plain = decode_record(encode(in));
  REQUIRE(plain.ok());
  CHECK(plain->store_state.empty());

  in.store_state = R"({"v":1,"upload_id":"2~abc","parts":[[1,5242880,"e1","aa"]]})";
  auto out = decode_record(encode(in));
  REQUIRE(out.ok());
  CHECK(out->store_state == in.store_state);

  auto wrong_type = decode_edited([](nlohmann::json& doc) { doc["store_state"] = 7; });
  check_corrupt(wrong_type, "store_state");
}

TEST_CASE("record encoding is compact JSON with the version first", "[journal]") {
  std::string bytes = encode(full_record());
  CHECK(bytes.rfind("{\"v\":1,\"oid\":\"", 0) == 0);
  CHECK(bytes.find('\n') == std::string::npos);
  CHECK(bytes.find(": ") == std::string::npos);
  auto doc = nlohmann::json::parse(bytes);
  CHECK(doc["direction"] == "download");
  CHECK(doc["state"] == "in_flight");
  CHECK(doc["errors"][0]["code"] == "io_error");
}

namespace {

// The encoding as json::dump() writes it, field by field in the documented
// order: records written before and after must read the same.
std::string dumped(const transfer_record& r) {
  nlohmann::ordered_json errors = nlohmann::ordered_json::array();
  for (const auto& e : r.errors)
    errors.push_back({{"at_ms", e.at_ms}, {"code", e.code}, {"message", e.message}});
  nlohmann::ordered_json out = {
    {"v", transfer_record::format_version},
    {"oid", r.oid},
  };
  if (!r.cid.empty())
    out["cid"] = r.cid;
  out["direction"] = ferry::to_string(r.dir);
  out["size"] = r.size;
  out["state"] = ferry::to_string(r.state);
  out["committed"] = r.committed;
  out["attempts"] = r.attempts;
  out["resumed_from"] = r.resumed_from;
  out["backend"] = r.backend;
  out["path"] = r.path;
  out["created_ms"] = r.created_ms;
  out["updated_ms"] = r.updated_ms;
  out["finished_ms"] = r.finished_ms;
  out["errors"] = std::move(errors);
  if (!r.store_state.empty())
    out["store_state"] = r.store_state;
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace

TEST_CASE("record encoding is byte for byte what json::dump() writes", "[journal]") {
  transfer_record r = full_record();
  CHECK(encode(r) == dumped(r));

  r.errors.clear();
  r.store_state = R"({"v":1,"upload_id":"2~abc","parts":[[1,5242880,"e1","aa"]]})";
  CHECK(encode(r) == dumped(r));

  r = transfer_record{};
  CHECK(encode(r) == dumped(r));

  r.path = std::string{"tab\there, back\\slash, bell\a, nul "} + '\0' + " del\x7F, bad \xFF\xC3(";
  // One character to escape in otherwise plain text, each on its own.
  r.backend = "folder:C:\\lfs";
  r.cid = "a\"b";
  r.store_state = "say \"hi\"";
  r.add_error({1, "io_error", "\x01\x1F\r\b\f"});
  r.attempts = 2'147'483'647;
  r.size = 9'223'372'036'854'775'807;
  CHECK(encode(r) == dumped(r));
}

TEST_CASE("record keeps its correlation id; records written without one still decode",
          "[journal]") {
  CHECK(encode(full_record())
          .rfind("{\"v\":1,\"oid\":\"" + std::string(64, 'a') +
                   "\",\"cid\":\"7f3a9c2e01b4\",\"direction\"",
                 0) == 0);
  transfer_record without = full_record();
  without.cid.clear();
  CHECK(encode(without).find("cid") == std::string::npos);

  // A record as the journal wrote it before correlation ids, byte for byte.
  std::string old = R"({"v":1,"oid":"4d7a","direction":"upload","size":10,"state":"in_flight",)"
                    R"("committed":4,"attempts":2,"resumed_from":0,"backend":"folder:/srv",)"
                    R"("path":"/r/f","created_ms":1,"updated_ms":2,"finished_ms":0,"errors":[]})";
  auto decoded = decode_record(old);
  REQUIRE(decoded.ok());
  CHECK(decoded->cid.empty());
  CHECK(decoded->oid == "4d7a");
  CHECK(decoded->committed == 4);
  CHECK(decoded->attempts == 2);
  CHECK(encode(*decoded) == old);

  check_corrupt(decode_edited([](auto& doc) { doc["cid"] = 5; }), "\"cid\" must be a string");
}

TEST_CASE("correlation ids are 12 random hex digits", "[journal]") {
  std::string a = ferry::make_correlation_id();
  std::string b = ferry::make_correlation_id();
  CHECK(a.size() == 12);
  CHECK(a.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(a != b);
}

TEST_CASE("record with invalid UTF-8 encodes without throwing", "[journal]") {
  transfer_record in = full_record();
  in.errors.clear();
  in.add_error({1, "io_error", "bad \xFF\xFE bytes"});
  in.path = "/tmp/\xC3(x";
  std::string bytes;
  REQUIRE_NOTHROW(bytes = encode(in));
  auto out = decode_record(bytes);
  REQUIRE(out.ok());
  // Each invalid byte becomes U+FFFD; the rest is kept.
  CHECK(out->errors.at(0).message == "bad \xEF\xBF\xBD\xEF\xBF\xBD bytes");
  CHECK(out->path == "/tmp/\xEF\xBF\xBD(x");
}

TEST_CASE("add_error keeps the newest max_errors entries", "[journal]") {
  transfer_record r;
  const size_t total = transfer_record::max_errors + 5;
  for (size_t i = 0; i < total; ++i)
    r.add_error({static_cast<int64_t>(i), "io_error", "attempt " + std::to_string(i)});
  REQUIRE(r.errors.size() == transfer_record::max_errors);
  CHECK(r.errors.front().at_ms == 5);
  CHECK(r.errors.back().at_ms == static_cast<int64_t>(total - 1));
  CHECK(r.errors.back().message == "attempt " + std::to_string(total - 1));

  // A stored record with too many errors is trimmed the same way.
  auto doc = nlohmann::json::parse(encode(r));
  auto& errors = doc["errors"];
  errors.insert(errors.begin(), nlohmann::json::parse(R"({"at_ms":0,"code":"x","message":"old"})"));
  REQUIRE(errors.size() == transfer_record::max_errors + 1);
  auto out = decode_record(doc.dump());
  REQUIRE(out.ok());
  REQUIRE(out->errors.size() == transfer_record::max_errors);
  CHECK(out->errors.front().at_ms == 5);
}

TEST_CASE("record rejects bytes that are not a JSON object", "[journal]") {
  check_corrupt(decode_record(""), "not valid JSON");
  check_corrupt(decode_record("{\"v\":1,"), "not valid JSON");
  check_corrupt(decode_record("\xFF\xFE garbage"), "not valid JSON");
  check_corrupt(decode_record("[1,2]"), "not a JSON object");
  check_corrupt(decode_record("42"), "not a JSON object");
  check_corrupt(decode_record("null"), "not a JSON object");
}

TEST_CASE("record rejects unknown format versions", "[journal]") {
  auto r = decode_edited([](auto& doc) { doc["v"] = 7; });
  check_corrupt(r, "unsupported journal record format version 7 (this ferry understands 1)");
  check_corrupt(decode_edited([](auto& doc) { doc["v"] = 0; }), "format version 0");
  check_corrupt(decode_edited([](auto& doc) { doc["v"] = -1; }), "format version -1");
  check_corrupt(decode_edited([](auto& doc) { doc["v"] = UINT64_MAX; }), "format version");
  check_corrupt(decode_edited([](auto& doc) { doc["v"] = "1"; }), "not an integer");
  check_corrupt(decode_edited([](auto& doc) { doc["v"] = 1.5; }), "not an integer");
  check_corrupt(decode_edited([](auto& doc) { doc.erase("v"); }), "no format version");
}

TEST_CASE("record rejects missing required fields", "[journal]") {
  for (const char* field : {"oid", "direction", "size", "state", "committed", "attempts", "backend",
                            "created_ms", "updated_ms", "finished_ms"}) {
    INFO(field);
    check_corrupt(decode_edited([&](auto& doc) { doc.erase(field); }),
                  std::string{"no field \""} + field + "\"");
  }
}

TEST_CASE("record defaults optional fields only when absent", "[journal]") {
  auto r = decode_edited([](auto& doc) {
    doc.erase("errors");
    doc.erase("path");
    doc.erase("resumed_from");
  });
  REQUIRE(r.ok());
  CHECK(r->errors.empty());
  CHECK(r->path.empty());
  CHECK(r->resumed_from == 0);

  check_corrupt(decode_edited([](auto& doc) { doc["errors"] = nullptr; }), "\"errors\"");
  check_corrupt(decode_edited([](auto& doc) { doc["errors"] = "none"; }), "\"errors\"");
  check_corrupt(decode_edited([](auto& doc) { doc["path"] = nullptr; }), "\"path\"");
  check_corrupt(decode_edited([](auto& doc) { doc["resumed_from"] = "0"; }), "\"resumed_from\"");
}

TEST_CASE("record rejects fields of the wrong type or range", "[journal]") {
  check_corrupt(decode_edited([](auto& doc) { doc["oid"] = 12; }), "\"oid\" must be a string");
  check_corrupt(decode_edited([](auto& doc) { doc["backend"] = nullptr; }), "\"backend\"");
  check_corrupt(decode_edited([](auto& doc) { doc["direction"] = 0; }), "\"direction\"");
  check_corrupt(decode_edited([](auto& doc) { doc["state"] = true; }), "\"state\"");
  check_corrupt(decode_edited([](auto& doc) { doc["size"] = "10"; }), "\"size\"");
  check_corrupt(decode_edited([](auto& doc) { doc["size"] = -1; }), "non-negative integer");
  check_corrupt(decode_edited([](auto& doc) { doc["size"] = 1.5; }), "\"size\"");
  check_corrupt(decode_edited([](auto& doc) { doc["committed"] = UINT64_MAX; }), "\"committed\"");
  check_corrupt(decode_edited([](auto& doc) { doc["attempts"] = int64_t{1} << 40; }),
                "\"attempts\" is too large");
  check_corrupt(decode_edited([](auto& doc) { doc["created_ms"] = nullptr; }), "\"created_ms\"");
}

TEST_CASE("record rejects unknown direction and state names", "[journal]") {
  check_corrupt(decode_edited([](auto& doc) { doc["direction"] = "sideways"; }),
                "unknown direction \"sideways\"");
  check_corrupt(decode_edited([](auto& doc) { doc["direction"] = "Upload"; }), "unknown direction");
  check_corrupt(decode_edited([](auto& doc) { doc["state"] = "paused"; }),
                "unknown state \"paused\"");
}

TEST_CASE("record rejects malformed error entries", "[journal]") {
  check_corrupt(decode_edited([](auto& doc) { doc["errors"][1] = "oops"; }),
                "errors[1] is not a JSON object");
  check_corrupt(decode_edited([](auto& doc) { doc["errors"][0].erase("code"); }),
                "no field \"code\" in errors[0]");
  check_corrupt(decode_edited([](auto& doc) { doc["errors"][1]["message"] = 5; }),
                "\"message\" in errors[1] must be a string");
  check_corrupt(decode_edited([](auto& doc) { doc["errors"][0]["at_ms"] = "now"; }),
                "\"at_ms\" in errors[0]");
}

TEST_CASE("record ignores unknown extra fields", "[journal]") {
  auto r = decode_edited([](auto& doc) { doc["future_field"] = {1, 2}; });
  REQUIRE(r.ok());
  CHECK(r->attempts == 3);
}

TEST_CASE("now_ms is Unix time in milliseconds", "[journal]") {
  int64_t now = ferry::now_ms();
  CHECK(now > 1'600'000'000'000); // after 2020
  CHECK(now < 4'100'000'000'000); // before 2100
  CHECK(ferry::now_ms() >= now);
}
