#include "protocol/transfer_protocol.hpp"

#include "protocol/parsing.hpp"

#include <limits>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace ferry::protocol {

namespace {

using json = nlohmann::json;

// Longest piece of user input echoed back in an error message.
constexpr size_t max_snippet = 80;

// Makes user input safe and short enough to quote in an error message.
std::string snippet(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, max_snippet)) {
    const auto byte = static_cast<unsigned char>(c);
    out += (byte < 0x20 || byte >= 0x7f) ? '?' : c;
  }
  if (text.size() > max_snippet)
    out += "...";
  return out;
}

// Returns the offset of the first byte that breaks UTF-8, or npos.
size_t invalid_utf8_at(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    size_t len = 0;
    uint32_t min = 0;
    uint32_t cp = 0;
    if (lead < 0x80) {
      ++i;
      continue;
    } else if ((lead & 0xe0) == 0xc0) {
      len = 2, min = 0x80, cp = lead & 0x1f;
    } else if ((lead & 0xf0) == 0xe0) {
      len = 3, min = 0x800, cp = lead & 0x0f;
    } else if ((lead & 0xf8) == 0xf0) {
      len = 4, min = 0x10000, cp = lead & 0x07;
    } else {
      return i;
    }
    if (text.size() - i < len)
      return i;
    for (size_t k = 1; k < len; ++k) {
      const auto cont = static_cast<unsigned char>(text[i + k]);
      if ((cont & 0xc0) != 0x80)
        return i;
      cp = (cp << 6) | (cont & 0x3f);
    }
    // Overlong forms, UTF-16 surrogates and values past U+10FFFF.
    if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
      return i;
    i += len;
  }
  return std::string_view::npos;
}

int64_t non_negative(const json& object, const char* key, const std::string& where) {
  const json* value = find_member(object, key);
  if (value == nullptr)
    throw field_error{where + ": missing field '" + key + "'"};
  const auto number = as_int64(*value);
  if (!number || *number < 0) {
    throw field_error{where + ": field '" + key + "' must be a non-negative integer"};
  }
  return *number;
}

operation decode_operation(const json& object) {
  const json* value = find_member(object, "operation");
  if (value != nullptr && value->is_string()) {
    const auto& text = value->get_ref<const std::string&>();
    if (text == "upload")
      return operation::upload;
    if (text == "download")
      return operation::download;
  }
  throw field_error{"init: field 'operation' must be \"upload\" or \"download\""};
}

init_request decode_init(const json& object) {
  init_request init;
  init.op = decode_operation(object);
  // Optional fields: absent or null keeps the default.
  if (const json* remote = find_member(object, "remote"); remote != nullptr && !remote->is_null()) {
    if (!remote->is_string())
      throw field_error{"init: field 'remote' must be a string"};
    init.remote = remote->get<std::string>();
  }
  if (const json* concurrent = find_member(object, "concurrent");
      concurrent != nullptr && !concurrent->is_null()) {
    if (!concurrent->is_boolean())
      throw field_error{"init: field 'concurrent' must be a boolean"};
    init.concurrent = concurrent->get<bool>();
  }
  if (const json* transfers = find_member(object, "concurrenttransfers");
      transfers != nullptr && !transfers->is_null()) {
    init.concurrent_transfers = non_negative(object, "concurrenttransfers", "init");
  }
  return init;
}

std::optional<transfer_action> decode_action(const json& object, const std::string& where) {
  const json* action = find_member(object, "action");
  if (action == nullptr || action->is_null())
    return std::nullopt;
  if (!action->is_object())
    throw field_error{where + ": field 'action' must be null or an object"};
  transfer_action result;
  const json* href = find_member(*action, "href");
  if (href == nullptr || !href->is_string() || href->get_ref<const std::string&>().empty()) {
    throw field_error{where + ": field 'action.href' must be a non-empty string"};
  }
  result.href = href->get<std::string>();
  // git-lfs names the header map "header" (singular).
  const json* headers = find_member(*action, "header");
  if (headers == nullptr || headers->is_null())
    return result;
  if (!headers->is_object())
    throw field_error{where + ": field 'action.header' must be an object"};
  for (const auto& [name, value] : headers->items()) {
    if (!is_http_token(name)) {
      throw field_error{where + ": field 'action.header' has an invalid header name '" +
                        snippet(name) + "'"};
    }
    if (!value.is_string()) {
      throw field_error{where + ": header '" + snippet(name) +
                        "' in 'action.header' must be a string"};
    }
    const auto& text = value.get_ref<const std::string&>();
    if (!is_safe_header_value(text)) {
      throw field_error{where + ": header '" + snippet(name) +
                        "' in 'action.header' contains a line break or control character"};
    }
    result.headers.emplace(name, text);
  }
  return result;
}

transfer_request decode_transfer(const json& object, operation op, decode_error& error) {
  const std::string where = op == operation::upload ? "upload" : "download";
  transfer_request transfer;
  transfer.op = op;
  const json* oid = find_member(object, "oid");
  if (oid == nullptr || !oid->is_string() || !is_valid_oid(oid->get_ref<const std::string&>())) {
    throw field_error{where + ": field 'oid' must be 64 lower-case hex characters"};
  }
  transfer.oid = oid->get<std::string>();
  // From here on, failures are reported against this object.
  error.oid = transfer.oid;
  transfer.size = non_negative(object, "size", where);
  if (op == operation::upload) {
    const json* path = find_member(object, "path");
    if (path == nullptr || !path->is_string() || path->get_ref<const std::string&>().empty()) {
      throw field_error{"upload: field 'path' must be a non-empty string"};
    }
    transfer.path = path->get<std::string>();
    if (transfer.path.find('\0') != std::string::npos) {
      throw field_error{"upload: field 'path' contains a NUL character"};
    }
  }
  transfer.action = decode_action(object, where);
  return transfer;
}

} // namespace

bool is_valid_oid(std::string_view oid) {
  if (oid.size() != 64)
    return false;
  for (char c : oid) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return false;
  }
  return true;
}

std::variant<request, decode_error> decode_request(std::string_view line) {
  decode_error error;
  if (line.empty()) {
    error.message = "empty line: expected a JSON object";
    return error;
  }
  // The JSON parser treats NUL as end of input and would ignore what follows.
  if (const size_t at = line.find('\0'); at != std::string_view::npos) {
    error.message = "line contains a NUL byte (at byte " + std::to_string(at) + ")";
    return error;
  }
  if (const size_t at = invalid_utf8_at(line); at != std::string_view::npos) {
    error.message = "line is not valid UTF-8 (at byte " + std::to_string(at) + ")";
    return error;
  }
  if (nests_too_deep(line)) {
    error.message = "line nests JSON deeper than " + std::to_string(max_json_nesting) + " levels";
    return error;
  }
  json object;
  // A key given twice would let its last value win unseen (an "event"
  // named twice can turn an upload into a terminate): refused instead.
  std::vector<std::set<std::string>> keys_per_object;
  std::optional<std::string> repeated;
  auto watch_keys = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start)
      keys_per_object.emplace_back();
    else if (event == json::parse_event_t::object_end && !keys_per_object.empty())
      keys_per_object.pop_back();
    else if (event == json::parse_event_t::key && !keys_per_object.empty() && !repeated &&
             !keys_per_object.back().insert(parsed.get<std::string>()).second)
      repeated = parsed.get<std::string>();
    return true;
  };
  try {
    object = json::parse(line, watch_keys);
  } catch (const json::parse_error& e) {
    // e.what() may quote an arbitrarily long token; quote the line ourselves.
    error.message = "line is not valid JSON (syntax error at byte " + std::to_string(e.byte) +
                    "): '" + snippet(line) + "'";
    return error;
  } catch (const json::exception&) {
    error.message = "line is not valid JSON: '" + snippet(line) + "'";
    return error;
  }
  if (!object.is_object()) {
    error.message = "line must be a JSON object: '" + snippet(line) + "'";
    return error;
  }
  if (repeated) {
    error.message = "field '" + snippet(*repeated) + "' appears twice in one object";
    return error;
  }
  try {
    const json* event = find_member(object, "event");
    if (event == nullptr)
      throw field_error{"missing field 'event'"};
    if (!event->is_string())
      throw field_error{"field 'event' must be a string"};
    const auto& name = event->get_ref<const std::string&>();
    if (name == "init")
      return request{decode_init(object)};
    if (name == "upload")
      return request{decode_transfer(object, operation::upload, error)};
    if (name == "download")
      return request{decode_transfer(object, operation::download, error)};
    if (name == "terminate")
      return request{terminate_request{}};
    throw field_error{"unknown event '" + snippet(name) + "'"};
  } catch (field_error& e) {
    error.message = std::move(e.message);
  } catch (const json::exception& e) {
    error.message = std::string{"line could not be decoded: "} + e.what();
  }
  return error;
}

std::string encode_decode_error(const decode_error& error) {
  if (error.oid)
    return encode_complete_error(*error.oid, error.code, error.message);
  return encode_error(error.code, error.message);
}

std::string encode_init_ok() { return "{}"; }

std::string encode_error(int code, std::string_view message) {
  nlohmann::ordered_json reply;
  reply["error"]["code"] = code;
  reply["error"]["message"] = std::string{message};
  return dump(reply);
}

std::string encode_progress(std::string_view oid, int64_t bytes_so_far, int64_t bytes_since_last) {
  nlohmann::ordered_json reply;
  reply["event"] = "progress";
  reply["oid"] = std::string{oid};
  reply["bytesSoFar"] = bytes_so_far;
  reply["bytesSinceLast"] = bytes_since_last;
  return dump(reply);
}

std::string encode_complete(std::string_view oid, std::optional<std::string_view> path) {
  nlohmann::ordered_json reply;
  reply["event"] = "complete";
  reply["oid"] = std::string{oid};
  if (path)
    reply["path"] = std::string{*path};
  return dump(reply);
}

std::string encode_complete_error(std::string_view oid, int code, std::string_view message) {
  nlohmann::ordered_json reply;
  reply["event"] = "complete";
  reply["oid"] = std::string{oid};
  reply["error"]["code"] = code;
  reply["error"]["message"] = std::string{message};
  return dump(reply);
}

} // namespace ferry::protocol
