// Fuzzes the proton-drive-cli bridge decoders (protocol/proton_bridge.hpp):
// the whole input is a bridge's stdout. parse_envelope finds the envelope;
// a success's payload then goes through every payload decoder, a failure's
// details through error_code and retry_after_seconds. sanitize_diagnostics
// gets the input as stderr. Promises checked, besides "never throws":
// - an envelope is what the contract says: a success has a payload and no
//   error, code or details; a failure a non-empty error, a code from 100 to
//   999 and details that are null or an object;
// - written back as one JSON line, an envelope parses to the same envelope,
//   also after a line of log noise;
// - payload decoders: list entries have names and non-negative sizes, a
//   download a non-negative size, batch results one answer per asked oid in
//   the payload's own values; retry_after_seconds is finite and >= 0;
// - sanitize_diagnostics gives at most 256 printable characters and no
//   secret marker (Bearer, token=, session=, AccessToken, RefreshToken, UID:).

#include "fuzz_check.hpp"

#include "protocol/proton_bridge.hpp"
#include "protocol/transfer_protocol.hpp"

#include <cmath>
#include <string>
#include <vector>

namespace {

using namespace ferry::bridge;
using json = nlohmann::json;

const std::string some_oid = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";

std::string lower(std::string_view text) {
  std::string out{text};
  for (char& c : out)
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
  return out;
}

void check_envelope(const envelope& decoded) {
  if (decoded.ok) {
    FUZZ_CHECK(decoded.error.empty() && decoded.code == 0 && decoded.details.is_null());
  } else {
    FUZZ_CHECK(!decoded.error.empty());
    FUZZ_CHECK(decoded.code >= 100 && decoded.code <= 999);
    FUZZ_CHECK(decoded.details.is_null() || decoded.details.is_object());
    FUZZ_CHECK(decoded.payload.is_null());
  }
}

std::string write_back(const envelope& decoded) {
  json out;
  out["ok"] = decoded.ok;
  if (decoded.ok) {
    out["payload"] = decoded.payload;
  } else {
    out["error"] = decoded.error;
    out["code"] = decoded.code;
    out["details"] = decoded.details.is_null() ? std::string{} : decoded.details.dump();
  }
  return out.dump();
}

bool same(const envelope& a, const envelope& b) {
  return a.ok == b.ok && a.payload == b.payload && a.error == b.error && a.code == b.code &&
         a.details == b.details;
}

// The oid a payload talks about, else some valid one.
std::string oid_of(const json& payload) {
  if (payload.is_object()) {
    const auto it = payload.find("oid");
    if (it != payload.end() && it->is_string())
      return it->get<std::string>();
  }
  return some_oid;
}

void check_payload(const json& payload) {
  (void)decode_auth_state(payload);
  const std::string oid = oid_of(payload);
  (void)decode_exists(payload, oid);
  (void)decode_upload(payload, oid);

  const auto download = decode_download(payload, oid);
  if (const auto* size = std::get_if<int64_t>(&download))
    FUZZ_CHECK(*size >= 0);

  const auto list = decode_list(payload);
  if (const auto* entries = std::get_if<std::vector<list_entry>>(&list)) {
    for (const auto& entry : *entries) {
      FUZZ_CHECK(!entry.name.empty());
      FUZZ_CHECK(entry.size >= 0);
    }
  }

  // Ask exactly the oids the payload answers, in their order.
  if (payload.is_object()) {
    const json& map =
      payload.contains("results") && payload["results"].is_object() ? payload["results"] : payload;
    std::vector<std::string> asked;
    std::vector<json> values;
    for (const auto& item : map.items()) {
      asked.push_back(item.key());
      values.push_back(item.value());
    }
    const auto results = decode_batch_results(payload, asked);
    if (const auto* answers = std::get_if<std::vector<bool>>(&results)) {
      FUZZ_CHECK(answers->size() == asked.size());
      for (size_t i = 0; i < asked.size(); ++i) {
        FUZZ_CHECK(ferry::protocol::is_valid_oid(lower(asked[i])));
        FUZZ_CHECK(values[i].is_boolean() && (*answers)[i] == values[i].get<bool>());
      }
      // One oid fewer: an answer nobody asked for is refused.
      if (!asked.empty()) {
        asked.pop_back();
        FUZZ_CHECK(std::holds_alternative<std::string>(decode_batch_results(payload, asked)));
      }
    }
  }
}

void check_diagnostics(std::string_view text) {
  const std::string shown = sanitize_diagnostics(text);
  FUZZ_CHECK(shown.size() <= 256);
  FUZZ_CHECK(ferry::fuzz::printable_ascii(shown));
  const std::string lowered = lower(shown);
  for (const char* marker :
       {"bearer ", "token=", "session=", "accesstoken", "refreshtoken", "uid:"})
    FUZZ_CHECK(lowered.find(marker) == std::string::npos);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view output = ferry::fuzz::as_text(data, size);
  check_diagnostics(output);

  const auto parsed = parse_envelope(output);
  if (const auto* message = std::get_if<std::string>(&parsed)) {
    FUZZ_CHECK(!message->empty());
    return 0;
  }
  const auto& decoded = std::get<envelope>(parsed);
  check_envelope(decoded);

  const std::string line = write_back(decoded);
  for (const std::string& again : {line, "[info] bridge v1.2.3 starting\n" + line + "\n"}) {
    const auto reparsed = parse_envelope(again);
    FUZZ_CHECK(std::holds_alternative<envelope>(reparsed));
    FUZZ_CHECK(same(decoded, std::get<envelope>(reparsed)));
  }

  if (decoded.ok) {
    check_payload(decoded.payload);
  } else {
    (void)error_code(decoded);
    if (const auto wait = retry_after_seconds(decoded))
      FUZZ_CHECK(std::isfinite(*wait) && *wait >= 0);
  }
  return 0;
}
