// Fuzzes decode_request (protocol/transfer_protocol.hpp): one line of the
// git-lfs custom transfer protocol, as git-lfs (or anything on Ferry's stdin)
// writes it. Promises checked, besides "never throws":
// - a decoded request holds what the header promises: a valid oid, a
//   non-negative size, an upload path that is non-empty and NUL-free, an
//   action with a non-empty href and header names/values that are tokens and
//   free of line breaks;
// - re-encoding a decoded request as JSON decodes to the same request;
// - a line that names a key twice in one object is refused;
// - an error carries a message that is printable ASCII, an oid only when it
//   is valid, and its reply (encode_decode_error) is one line of JSON that
//   gives back the code, message and oid;
// - encode_error / encode_complete_error of arbitrary text are one line of
//   JSON that gives the text back (when it is UTF-8).

#include "fuzz_check.hpp"

#include "protocol/transfer_protocol.hpp"

#include <nlohmann/json.hpp>

#include <set>
#include <string>
#include <vector>

namespace {

using namespace ferry::protocol;
using json = nlohmann::json;

const char* const some_oid = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";

bool is_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    size_t len = 1;
    uint32_t cp = lead, min = 0;
    if (lead >= 0xf0 && lead <= 0xf7)
      len = 4, cp = lead & 0x07, min = 0x10000;
    else if (lead >= 0xe0 && lead <= 0xef)
      len = 3, cp = lead & 0x0f, min = 0x800;
    else if (lead >= 0xc0 && lead <= 0xdf)
      len = 2, cp = lead & 0x1f, min = 0x80;
    else if (lead >= 0x80)
      return false;
    if (text.size() - i < len)
      return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cont = static_cast<unsigned char>(text[i + k]);
      if ((cont & 0xc0) != 0x80)
        return false;
      cp = (cp << 6) | (cont & 0x3f);
    }
    if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
      return false;
    i += len;
  }
  return true;
}

// RFC 9110 tchar: what a header field name is made of.
bool is_tchar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c != '\0' && std::string_view{"!#$%&'*+-.^_`|~"}.find(c) != std::string_view::npos);
}

// True when some JSON object in `line` names a key twice (nlohmann keeps the
// last value silently). `line` must be valid JSON.
bool repeats_a_key(std::string_view line) {
  std::vector<std::set<std::string>> keys;
  bool repeated = false;
  try {
    const json whole = json::parse(line, [&](int, json::parse_event_t event, json& parsed) {
      if (event == json::parse_event_t::object_start) {
        keys.emplace_back();
      } else if (event == json::parse_event_t::object_end) {
        if (!keys.empty())
          keys.pop_back();
      } else if (event == json::parse_event_t::key && !keys.empty()) {
        repeated = repeated || !keys.back().insert(parsed.get<std::string>()).second;
      }
      return true;
    });
    (void)whole;
  } catch (const json::exception&) {
    return false;
  }
  return repeated;
}

// A one-line reply: valid JSON, an object, no raw line break.
json parse_reply(const std::string& reply) {
  FUZZ_CHECK(reply.find('\n') == std::string::npos && reply.find('\r') == std::string::npos);
  json parsed = json::parse(reply, nullptr, /*allow_exceptions=*/false);
  FUZZ_CHECK(parsed.is_object());
  return parsed;
}

std::string encode(const request& decoded) {
  json line;
  if (const auto* init = std::get_if<init_request>(&decoded)) {
    line["event"] = "init";
    line["operation"] = init->op == operation::upload ? "upload" : "download";
    line["remote"] = init->remote;
    line["concurrent"] = init->concurrent;
    line["concurrenttransfers"] = init->concurrent_transfers;
  } else if (const auto* transfer = std::get_if<transfer_request>(&decoded)) {
    line["event"] = transfer->op == operation::upload ? "upload" : "download";
    line["oid"] = transfer->oid;
    line["size"] = transfer->size;
    if (transfer->op == operation::upload)
      line["path"] = transfer->path;
    if (transfer->action) {
      line["action"]["href"] = transfer->action->href;
      line["action"]["header"] = json::object();
      for (const auto& [name, value] : transfer->action->headers)
        line["action"]["header"][name] = value;
    } else {
      line["action"] = nullptr;
    }
  } else {
    line["event"] = "terminate";
  }
  return line.dump(-1, ' ', false, json::error_handler_t::strict);
}

bool same(const request& a, const request& b) {
  if (a.index() != b.index())
    return false;
  if (const auto* x = std::get_if<init_request>(&a)) {
    const auto& y = std::get<init_request>(b);
    return x->op == y.op && x->remote == y.remote && x->concurrent == y.concurrent &&
           x->concurrent_transfers == y.concurrent_transfers;
  }
  if (const auto* x = std::get_if<transfer_request>(&a)) {
    const auto& y = std::get<transfer_request>(b);
    if (x->op != y.op || x->oid != y.oid || x->size != y.size || x->path != y.path ||
        x->action.has_value() != y.action.has_value())
      return false;
    return !x->action ||
           (x->action->href == y.action->href && x->action->headers == y.action->headers);
  }
  return true;
}

void check_request(const request& decoded, std::string_view line) {
  if (const auto* init = std::get_if<init_request>(&decoded)) {
    FUZZ_CHECK(init->concurrent_transfers >= 0);
  } else if (const auto* transfer = std::get_if<transfer_request>(&decoded)) {
    FUZZ_CHECK(is_valid_oid(transfer->oid));
    FUZZ_CHECK(transfer->size >= 0);
    if (transfer->op == operation::upload) {
      FUZZ_CHECK(!transfer->path.empty());
      FUZZ_CHECK(transfer->path.find('\0') == std::string::npos);
    } else {
      FUZZ_CHECK(transfer->path.empty());
    }
    if (transfer->action) {
      FUZZ_CHECK(!transfer->action->href.empty());
      for (const auto& [name, value] : transfer->action->headers) {
        FUZZ_CHECK(!name.empty());
        for (char c : name)
          FUZZ_CHECK(is_tchar(c));
        for (char c : value)
          FUZZ_CHECK(c != '\r' && c != '\n' && c != '\0');
      }
    }
  }
  // A key named twice would let its last value win unseen.
  FUZZ_CHECK(!repeats_a_key(line));

  const std::string again = encode(decoded);
  const auto redecoded = decode_request(again);
  FUZZ_CHECK(std::holds_alternative<request>(redecoded));
  FUZZ_CHECK(same(decoded, std::get<request>(redecoded)));
}

void check_error(const decode_error& error) {
  FUZZ_CHECK(!error.message.empty());
  FUZZ_CHECK(ferry::fuzz::printable_ascii(error.message));
  FUZZ_CHECK(error.code >= 400 && error.code < 600);
  if (error.oid)
    FUZZ_CHECK(is_valid_oid(*error.oid));

  const json reply = parse_reply(encode_decode_error(error));
  const json* body = &reply;
  if (error.oid) {
    FUZZ_CHECK(reply.value("event", "") == "complete");
    FUZZ_CHECK(reply.value("oid", "") == *error.oid);
  }
  FUZZ_CHECK(body->contains("error") && (*body)["error"].is_object());
  FUZZ_CHECK((*body)["error"].value("code", 0) == error.code);
  FUZZ_CHECK((*body)["error"].value("message", "") == error.message);
}

// The encoders take text from anywhere (server messages, paths).
void check_encoders(std::string_view text) {
  const json plain = parse_reply(encode_error(code::failed, text));
  const json complete = parse_reply(encode_complete_error(some_oid, code::not_found, text));
  const json done = parse_reply(encode_complete(some_oid, text));
  if (is_utf8(text)) {
    FUZZ_CHECK(plain["error"]["message"] == text);
    FUZZ_CHECK(complete["error"]["message"] == text);
    FUZZ_CHECK(done["path"] == text);
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view line = ferry::fuzz::as_text(data, size);
  const auto decoded = decode_request(line);
  if (const auto* request = std::get_if<ferry::protocol::request>(&decoded))
    check_request(*request, line);
  else
    check_error(std::get<decode_error>(decoded));
  check_encoders(line);
  return 0;
}
