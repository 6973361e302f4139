// Fuzzes the Git LFS batch API decoders (protocol/batch_api.hpp): the body
// of a batch response, the body of an error response, and RFC 3339 times.
// The whole input is the body; its length picks when it was received
// (2026, 1970, or the last instant system_clock can hold). Promises checked:
// - a decoded response holds only valid oids, non-negative sizes, http(s)
//   hrefs without whitespace or control bytes, token header names with
//   values free of control bytes (tab aside), and a non-empty transfer;
// - re-encoding a decoded response decodes to the same response, expiry
//   instants included;
// - action_expires_soon agrees with exact arithmetic on the instants;
// - decode_error_message and batch_object_error_message give one printable
//   line of bounded length;
// - a refusal is a printable message;
// - parse_rfc3339: a parsed instant, written back as RFC 3339, parses to the
//   same instant;
// - encode_batch_request gives JSON naming the same objects.

#include "fuzz_check.hpp"

#include "protocol/batch_api.hpp"
#include "protocol/transfer_protocol.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>

namespace {

using ferry::fuzz::int128;

using namespace ferry::protocol;
using json = nlohmann::json;
using sys_clock = std::chrono::system_clock;

constexpr int64_t ticks_per_second = sys_clock::period::den;

sys_clock::time_point received_at_for(size_t size) {
  switch (size % 3) {
    case 0:
      return sys_clock::time_point{} + std::chrono::seconds{1767225600} +
             std::chrono::milliseconds{250}; // 2026-01-01T00:00:00.25Z
    case 1:
      return sys_clock::time_point{};
    default:
      return sys_clock::time_point::max();
  }
}

int128 floor_div(int128 a, int128 b) {
  int128 q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0)))
    --q;
  return q;
}

// The instant as RFC 3339 with nanoseconds.
std::string rfc3339(sys_clock::time_point at) {
  const int128 ticks = at.time_since_epoch().count();
  const int64_t seconds = static_cast<int64_t>(floor_div(ticks, ticks_per_second));
  const int64_t nanos = static_cast<int64_t>(ticks - int128{seconds} * ticks_per_second) *
                        (1000000000 / ticks_per_second);
  const int64_t days = static_cast<int64_t>(floor_div(seconds, 86400));
  const int64_t in_day = seconds - days * 86400;
  const auto date = ferry::fuzz::civil_from_days(days);
  char text[64];
  std::snprintf(text, sizeof text, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%09lldZ",
                static_cast<long long>(date.year), static_cast<long long>(date.month),
                static_cast<long long>(date.day), static_cast<long long>(in_day / 3600),
                static_cast<long long>(in_day / 60 % 60), static_cast<long long>(in_day % 60),
                static_cast<long long>(nanos));
  return text;
}

bool is_tchar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c != '\0' && std::string_view{"!#$%&'*+-.^_`|~"}.find(c) != std::string_view::npos);
}

void check_action(const batch_action& action, sys_clock::time_point now) {
  const std::string_view href = action.href;
  const size_t scheme_end = href.find("://");
  FUZZ_CHECK(scheme_end == 4 || scheme_end == 5);
  std::string scheme{href.substr(0, scheme_end)};
  for (char& c : scheme)
    c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  FUZZ_CHECK(scheme == "http" || scheme == "https");
  // A host follows the scheme.
  FUZZ_CHECK(href.size() > scheme_end + 3);
  FUZZ_CHECK(std::string_view{"/?#"}.find(href[scheme_end + 3]) == std::string_view::npos);
  for (char c : href)
    FUZZ_CHECK(static_cast<unsigned char>(c) > 0x20 && c != 0x7f);
  for (const auto& [name, value] : action.headers) {
    FUZZ_CHECK(!name.empty());
    for (char c : name)
      FUZZ_CHECK(is_tchar(c));
    for (char c : value) {
      const auto byte = static_cast<unsigned char>(c);
      FUZZ_CHECK((byte >= 0x20 || c == '\t') && byte != 0x7f);
    }
  }
  // Exact: expires soon when floor((expires_at - now) / 1s) < margin.
  for (int64_t margin : {int64_t{0}, int64_t{30}, int64_t{-7}}) {
    const bool soon = action_expires_soon(action, now, std::chrono::seconds{margin});
    if (!action.expires_at) {
      FUZZ_CHECK(!soon);
      continue;
    }
    const int128 difference =
      int128{action.expires_at->time_since_epoch().count()} - now.time_since_epoch().count();
    FUZZ_CHECK(soon == (floor_div(difference, ticks_per_second) < margin));
  }
}

json encode_action(const batch_action& action) {
  json out;
  out["href"] = action.href;
  out["header"] = json::object();
  for (const auto& [name, value] : action.headers)
    out["header"][name] = value;
  if (action.expires_at)
    out["expires_at"] = rfc3339(*action.expires_at);
  return out;
}

json encode_response(const batch_response& response) {
  json out;
  out["transfer"] = response.transfer;
  out["hash_algo"] = "sha256";
  out["objects"] = json::array();
  for (const auto& object : response.objects) {
    json entry;
    entry["oid"] = object.oid;
    entry["size"] = object.size;
    if (object.download)
      entry["actions"]["download"] = encode_action(*object.download);
    if (object.upload)
      entry["actions"]["upload"] = encode_action(*object.upload);
    if (object.verify)
      entry["actions"]["verify"] = encode_action(*object.verify);
    if (object.error) {
      entry["error"]["code"] = object.error->code;
      entry["error"]["message"] = object.error->message;
    }
    out["objects"].push_back(std::move(entry));
  }
  return out;
}

bool same_action(const std::optional<batch_action>& a, const std::optional<batch_action>& b) {
  if (a.has_value() != b.has_value())
    return false;
  return !a || (a->href == b->href && a->headers == b->headers && a->expires_at == b->expires_at);
}

bool same(const batch_response& a, const batch_response& b) {
  if (a.transfer != b.transfer || a.objects.size() != b.objects.size())
    return false;
  for (size_t i = 0; i < a.objects.size(); ++i) {
    const auto& x = a.objects[i];
    const auto& y = b.objects[i];
    if (x.oid != y.oid || x.size != y.size || !same_action(x.download, y.download) ||
        !same_action(x.upload, y.upload) || !same_action(x.verify, y.verify) ||
        x.error.has_value() != y.error.has_value())
      return false;
    if (x.error && (x.error->code != y.error->code || x.error->message != y.error->message))
      return false;
  }
  return true;
}

void check_response(const batch_response& response, sys_clock::time_point received_at) {
  FUZZ_CHECK(!response.transfer.empty());
  for (const auto& object : response.objects) {
    FUZZ_CHECK(is_valid_oid(object.oid));
    FUZZ_CHECK(object.size >= 0);
    for (const auto* action : {&object.download, &object.upload, &object.verify})
      if (*action)
        check_action(**action, received_at);
    if (object.error) {
      const std::string message = batch_object_error_message(*object.error);
      FUZZ_CHECK(ferry::fuzz::printable_ascii(message));
      FUZZ_CHECK(message.size() <= 300);
    }
  }

  const std::string again = encode_response(response).dump();
  const auto redecoded = decode_batch_response(again, received_at);
  FUZZ_CHECK(std::holds_alternative<batch_response>(redecoded));
  FUZZ_CHECK(same(response, std::get<batch_response>(redecoded)));

  batch_request request;
  request.op = batch_operation::upload;
  request.transfers = {response.transfer};
  for (const auto& object : response.objects)
    request.objects.push_back({object.oid, object.size});
  const json encoded = json::parse(encode_batch_request(request), nullptr, false);
  FUZZ_CHECK(encoded.is_object() && encoded["objects"].size() == request.objects.size());
  for (size_t i = 0; i < request.objects.size(); ++i) {
    FUZZ_CHECK(encoded["objects"][i]["oid"] == request.objects[i].oid);
    FUZZ_CHECK(encoded["objects"][i]["size"] == request.objects[i].size);
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body = ferry::fuzz::as_text(data, size);
  const auto received_at = received_at_for(size);

  const auto decoded = decode_batch_response(body, received_at);
  if (const auto* response = std::get_if<batch_response>(&decoded)) {
    check_response(*response, received_at);
  } else {
    const auto& message = std::get<std::string>(decoded);
    FUZZ_CHECK(!message.empty());
    // Server text is cleaned before it is quoted: nothing can drive a terminal.
    FUZZ_CHECK(ferry::fuzz::printable_ascii(message));
  }

  const std::string error_message = decode_error_message(body);
  FUZZ_CHECK(!error_message.empty());
  FUZZ_CHECK(ferry::fuzz::printable_ascii(error_message));
  // The message (200), " (request id " + 80 + ")" and "; see " + 200.
  FUZZ_CHECK(error_message.size() <= 200 + 14 + 80 + 1 + 6 + 200);

  if (const auto instant = parse_rfc3339(body)) {
    const auto again = parse_rfc3339(rfc3339(*instant));
    FUZZ_CHECK(again && *again == *instant);
  }
  return 0;
}
