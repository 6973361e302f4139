#include "protocol/proton_bridge.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <utility>

#include "protocol/parsing.hpp"
#include "protocol/transfer_protocol.hpp"

namespace ferry::bridge {

namespace {

using json = nlohmann::json;
using protocol::field_error;
using protocol::find_member;
using protocol::lower_ascii;

// Longest piece of bridge output quoted inside a message (an oid fits).
constexpr size_t max_quote = 80;
// Longest diagnostics text shown (what the Go adapter keeps as well).
constexpr size_t max_diagnostics = 256;
// Envelope codes are HTTP-like statuses: three digits.
constexpr int64_t min_code = 100;
constexpr int64_t max_code = 999;

// The request fields Ferry can send, as bits of a per-command mask.
// dataPassword is missing on purpose: Ferry never holds a password.
enum field : unsigned {
  data_credential_provider = 1u << 0,
  data_credential_host = 1u << 1,
  app_version = 1u << 2,
  storage_base = 1u << 3,
  oid_field = 1u << 4,
  path_field = 1u << 5,
  output_path_field = 1u << 6,
  folder_field = 1u << 7,
  oids_field = 1u << 8,
};

constexpr unsigned common_mask =
  data_credential_provider | data_credential_host | app_version | storage_base;

// The v1 field rules (drive-cli schemas/bridge/v1/request-field-rules.json):
// the bridge answers 400 to any field outside its command's list.
unsigned allowed_fields(command name) {
  switch (name) {
    case command::auth_state:
    case command::init:
      return common_mask;
    case command::upload:
      return common_mask | oid_field | path_field;
    case command::download:
      return common_mask | oid_field | output_path_field;
    case command::list:
      return common_mask | folder_field;
    case command::exists:
    case command::remove:
      return common_mask | oid_field;
    case command::refresh:
      return app_version;
    case command::batch_exists:
    case command::batch_delete:
      return common_mask | oids_field;
  }
  return 0;
}

// `text` on one line, safe for a terminal or a log: control bytes and
// spaces collapse to single spaces, bytes outside printable ASCII become
// '?', the ends are trimmed, and at most `limit` characters remain (a cut
// ends in "...").
std::string one_line(std::string_view text, size_t limit) {
  std::string out;
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    const bool blank = byte <= 0x20 || byte == 0x7f;
    if (blank && (out.empty() || out.back() == ' '))
      continue;
    out += blank ? ' ' : byte > 0x7f ? '?' : c;
    if (out.size() > limit) {
      out.resize(limit >= 3 ? limit - 3 : 0);
      out += "...";
      break;
    }
  }
  while (!out.empty() && out.back() == ' ')
    out.pop_back();
  return out;
}

std::string quote(std::string_view text) { return "'" + one_line(text, max_quote) + "'"; }

// What a JSON value is, for messages ("got string"); a fraction is named
// apart since it is what a non-integer number usually is.
std::string kind(const json& value) {
  return value.is_number_float() ? "fractional number" : value.type_name();
}

// JSON text, or a discarded value when `text` is not exactly one JSON
// document. A NUL byte would end nlohmann's input early and hide what
// follows, and deep nesting could exhaust the stack: both count as not JSON.
json parse_json(std::string_view text) {
  if (text.find('\0') != std::string_view::npos || protocol::nests_too_deep(text)) {
    return json(json::value_t::discarded);
  }
  return json::parse(text.begin(), text.end(), nullptr, false);
}

// True when `text`, leading whitespace ignored, starts with '{': only such
// text is taken for an envelope (noise such as `[info] ...` or a bare
// number never is).
bool starts_object(std::string_view text) {
  const size_t first = text.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && text[first] == '{';
}

void check_object(const json& payload, const std::string& where) {
  if (!payload.is_object())
    throw field_error{where + " must be an object, got " + kind(payload)};
}

const json& require(const json& object, const char* key, const std::string& where) {
  const json* value = find_member(object, key);
  if (value == nullptr)
    throw field_error{where + " has no '" + key + "'"};
  return *value;
}

const std::string& require_string(const json& object, const char* key, const std::string& where) {
  const json& value = require(object, key, where);
  if (!value.is_string()) {
    throw field_error{where + ": '" + key + "' must be a string, got " + kind(value)};
  }
  return value.get_ref<const std::string&>();
}

bool optional_bool(const json& object, const char* key, const std::string& where) {
  const json* value = find_member(object, key);
  if (value == nullptr)
    return false;
  if (!value->is_boolean()) {
    throw field_error{where + ": '" + key + "' must be a boolean, got " + kind(*value)};
  }
  return value->get<bool>();
}

int64_t non_negative(const json& value, const std::string& where, const char* key) {
  const auto number = protocol::as_int64(value);
  if (!number || *number < 0) {
    throw field_error{where + ": '" + key + "' must be a non-negative integer"};
  }
  return *number;
}

// The payload's `oid` must name the object asked about (the bridge echoes
// what it was sent; case does not matter to it).
void check_oid(const json& payload, std::string_view oid, const std::string& where) {
  const std::string& said = require_string(payload, "oid", where);
  if (lower_ascii(said) != lower_ascii(oid)) {
    throw field_error{where + " is about oid " + quote(said) + ", not " + quote(oid)};
  }
}

std::vector<std::string> string_array(const json& object, const char* key,
                                      const std::string& where) {
  std::vector<std::string> out;
  const json* value = find_member(object, key);
  if (value == nullptr)
    return out;
  if (!value->is_array()) {
    throw field_error{where + ": '" + key + "' must be an array, got " + kind(*value)};
  }
  for (const json& item : *value) {
    if (!item.is_string()) {
      throw field_error{where + ": '" + key + "' must hold only strings, got " + kind(item)};
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

// Runs a decoder that reports failures as field_error; anything nlohmann
// throws despite the type checks becomes a message as well.
template <class T, class Decode>
std::variant<T, std::string> guarded(Decode&& decode) {
  try {
    return decode();
  } catch (const field_error& e) {
    return e.message;
  } catch (const json::exception& e) {
    return std::string{"could not be decoded: "} + e.what();
  }
}

// The failure's `details`: "" means none (null); anything else must be the
// text of a JSON object.
json decode_details(const json& envelope) {
  const json* details = find_member(envelope, "details");
  if (details == nullptr)
    return nullptr;
  if (!details->is_string()) {
    throw field_error{"bad envelope: 'details' must be a string, got " + kind(*details)};
  }
  const auto& text = details->get_ref<const std::string&>();
  if (text.empty())
    return nullptr;
  json decoded = parse_json(text);
  if (!decoded.is_object()) {
    throw field_error{"bad envelope: 'details' must be \"\" or a JSON object, got " + quote(text)};
  }
  return decoded;
}

envelope decode_envelope(const json& root) {
  if (!root.is_object())
    throw field_error{"bad envelope: must be an object, got " + kind(root)};
  for (const auto& item : root.items()) {
    const std::string& key = item.key();
    if (key != "ok" && key != "payload" && key != "error" && key != "code" && key != "details") {
      throw field_error{"bad envelope: unknown key " + quote(key)};
    }
  }
  const json* ok = find_member(root, "ok");
  if (ok == nullptr)
    throw field_error{"bad envelope: 'ok' is missing"};
  if (!ok->is_boolean()) {
    throw field_error{"bad envelope: 'ok' must be a boolean, got " + kind(*ok)};
  }

  envelope out;
  out.ok = ok->get<bool>();
  if (out.ok) {
    for (const char* key : {"error", "code", "details"}) {
      if (find_member(root, key) != nullptr) {
        throw field_error{std::string{"bad envelope: a success must not carry '"} + key + "'"};
      }
    }
    // A success always names its payload, even when it is null.
    const json* payload = find_member(root, "payload");
    if (payload == nullptr)
      throw field_error{"bad envelope: a success has no 'payload'"};
    out.payload = *payload;
    return out;
  }

  if (find_member(root, "payload") != nullptr) {
    throw field_error{"bad envelope: a failure must not carry 'payload'"};
  }
  const json* error = find_member(root, "error");
  if (error == nullptr || !error->is_string() || error->get_ref<const std::string&>().empty()) {
    throw field_error{"bad envelope: a failure needs a non-empty string 'error'"};
  }
  out.error = error->get<std::string>();
  const json* code = find_member(root, "code");
  if (code == nullptr)
    throw field_error{"bad envelope: a failure has no 'code'"};
  const auto number = protocol::as_int64(*code);
  if (!number)
    throw field_error{"bad envelope: 'code' must be an integer, got " + kind(*code)};
  if (*number < min_code || *number > max_code) {
    throw field_error{"bad envelope: 'code' must be from 100 to 999, got " +
                      std::to_string(*number)};
  }
  out.code = static_cast<int>(*number);
  out.details = decode_details(root);
  return out;
}

std::variant<envelope, std::string> decode_candidate(const json& root) {
  return guarded<envelope>([&] { return decode_envelope(root); });
}

// Lines of `output` from the last one back, without their line ends.
std::vector<std::string_view> lines_from_end(std::string_view output) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start <= output.size()) {
    size_t end = output.find('\n', start);
    if (end == std::string_view::npos)
      end = output.size();
    std::string_view line = output.substr(start, end - start);
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    lines.push_back(line);
    start = end + 1;
  }
  return {lines.rbegin(), lines.rend()};
}

// The text before the first secret marker, compared ignoring case since
// session files spell them accessToken / refreshToken. A password may come
// as password=, password: or a JSON "password": (dataPassword too), a
// header as Authorization: Basic ...
std::string_view before_secrets(std::string_view text) {
  static constexpr std::string_view markers[] = {
    "bearer ", "token=",    "session=",  "accesstoken", "refreshtoken",
    "uid:",    "password=", "password:", "password\":", "authorization:"};
  const std::string lower = lower_ascii(text);
  size_t cut = text.size();
  for (std::string_view marker : markers) {
    cut = std::min(cut, lower.find(marker));
  }
  return text.substr(0, cut);
}

} // namespace

const char* to_string(command name) {
  switch (name) {
    case command::auth_state:
      return "auth-state";
    case command::upload:
      return "upload";
    case command::download:
      return "download";
    case command::list:
      return "list";
    case command::exists:
      return "exists";
    case command::remove:
      return "delete";
    case command::refresh:
      return "refresh";
    case command::init:
      return "init";
    case command::batch_exists:
      return "batch-exists";
    case command::batch_delete:
      return "batch-delete";
  }
  return "";
}

std::string encode_request(command name, const common_fields& common,
                           const request_fields& fields) {
  const unsigned allowed = allowed_fields(name);
  nlohmann::ordered_json body = nlohmann::ordered_json::object();
  struct string_field {
    field bit;
    const char* key;
    const std::string& value;
  };
  const string_field strings[] = {
    {data_credential_provider, "dataCredentialProvider", common.data_credential_provider},
    {data_credential_host, "dataCredentialHost", common.data_credential_host},
    {app_version, "appVersion", common.app_version},
    {storage_base, "storageBase", common.storage_base},
    {oid_field, "oid", fields.oid},
    {path_field, "path", fields.path},
    {output_path_field, "outputPath", fields.output_path},
    {folder_field, "folder", fields.folder},
  };
  for (const string_field& item : strings) {
    if ((allowed & item.bit) != 0 && !item.value.empty())
      body[item.key] = item.value;
  }
  if ((allowed & oids_field) != 0 && !fields.oids.empty())
    body["oids"] = fields.oids;
  // Invalid UTF-8 is replaced, not thrown on: the bridge reads UTF-8 JSON.
  return protocol::dump(body);
}

std::variant<envelope, std::string> parse_envelope(std::string_view output) {
  if (starts_object(output)) {
    const json whole = parse_json(output);
    if (!whole.is_discarded())
      return decode_candidate(whole);
  }
  // Log noise around the envelope: the last line that is a JSON object is it.
  for (std::string_view line : lines_from_end(output)) {
    if (!starts_object(line))
      continue;
    const json candidate = parse_json(line);
    if (!candidate.is_discarded())
      return decode_candidate(candidate);
  }
  return std::string{"no envelope"};
}

std::string error_code(const envelope& failure) {
  const json* code =
    failure.details.is_object() ? find_member(failure.details, "errorCode") : nullptr;
  return code != nullptr && code->is_string() ? code->get<std::string>() : std::string{};
}

std::optional<double> retry_after_seconds(const envelope& failure) {
  const json* value =
    failure.details.is_object() ? find_member(failure.details, "retryAfter") : nullptr;
  if (value == nullptr || !value->is_number())
    return std::nullopt;
  const double seconds = value->get<double>();
  if (!std::isfinite(seconds) || seconds < 0)
    return std::nullopt;
  return seconds;
}

std::variant<auth_state, std::string> decode_auth_state(const json& payload) {
  return guarded<auth_state>([&] {
    const std::string where = "auth-state payload";
    check_object(payload, where);
    auth_state out;
    out.state = require_string(payload, "state", where);
    out.errors = string_array(payload, "errors", where);
    out.actions = string_array(payload, "actions", where);
    return out;
  });
}

std::variant<bool, std::string> decode_exists(const json& payload, std::string_view oid) {
  return guarded<bool>([&] {
    const std::string where = "exists payload";
    check_object(payload, where);
    for (const auto& item : payload.items()) {
      if (item.key() != "oid" && item.key() != "exists") {
        throw field_error{where + ": unknown key " + quote(item.key())};
      }
    }
    check_oid(payload, oid, where);
    const json& exists = require(payload, "exists", where);
    if (!exists.is_boolean()) {
      throw field_error{where + ": 'exists' must be a boolean, got " + kind(exists)};
    }
    return exists.get<bool>();
  });
}

std::variant<std::vector<bool>, std::string>
decode_batch_results(const json& payload, const std::vector<std::string>& asked) {
  return guarded<std::vector<bool>>([&] {
    const std::string where = "batch payload";
    check_object(payload, where);
    const json* map = &payload;
    if (const json* results = find_member(payload, "results")) {
      if (payload.size() != 1)
        throw field_error{where + ": 'results' must be its only key"};
      check_object(*results, where + ": 'results'");
      map = results;
    }
    std::map<std::string, bool> answers;
    for (const auto& item : map->items()) {
      std::string oid = lower_ascii(item.key());
      if (!protocol::is_valid_oid(oid)) {
        throw field_error{where + ": key " + quote(item.key()) + " is not an oid"};
      }
      if (!item.value().is_boolean()) {
        throw field_error{where + ": the answer for " + oid + " must be a boolean, got " +
                          kind(item.value())};
      }
      if (!answers.emplace(std::move(oid), item.value().get<bool>()).second) {
        throw field_error{where + ": oid " + lower_ascii(item.key()) + " is answered twice"};
      }
    }
    std::vector<bool> out;
    out.reserve(asked.size());
    std::set<std::string> asked_lower;
    for (const std::string& oid : asked) {
      const auto found = answers.find(*asked_lower.insert(lower_ascii(oid)).first);
      if (found == answers.end())
        throw field_error{where + ": no answer for " + quote(oid)};
      out.push_back(found->second);
    }
    // An answer about an oid nobody asked for means the bridge read another
    // request than the one sent; none of its answers can be trusted then.
    for (const auto& answer : answers) {
      if (asked_lower.count(answer.first) == 0) {
        throw field_error{where + ": answers " + answer.first + ", which was not asked for"};
      }
    }
    return out;
  });
}

std::variant<int64_t, std::string> decode_download(const json& payload, std::string_view oid) {
  return guarded<int64_t>([&] {
    const std::string where = "download payload";
    check_object(payload, where);
    check_oid(payload, oid, where);
    const json& downloaded = require(payload, "downloaded", where);
    if (!downloaded.is_boolean() || !downloaded.get<bool>()) {
      throw field_error{where + ": 'downloaded' must be true"};
    }
    return non_negative(require(payload, "size", where), where, "size");
  });
}

std::variant<upload_outcome, std::string> decode_upload(const json& payload, std::string_view oid) {
  return guarded<upload_outcome>([&] {
    const std::string where = "upload payload";
    check_object(payload, where);
    check_oid(payload, oid, where);
    const bool uploaded = optional_bool(payload, "uploaded", where);
    const bool deduplicated = optional_bool(payload, "deduplicated", where);
    const bool cached = optional_bool(payload, "cached", where);
    if (int{uploaded} + int{deduplicated} + int{cached} != 1) {
      throw field_error{where + ": exactly one of 'uploaded', 'deduplicated' and 'cached' must "
                                "be true"};
    }
    if (uploaded)
      return upload_outcome::uploaded;
    return deduplicated ? upload_outcome::deduplicated : upload_outcome::cached;
  });
}

std::variant<std::vector<list_entry>, std::string> decode_list(const json& payload) {
  return guarded<std::vector<list_entry>>([&] {
    const std::string where = "list payload";
    check_object(payload, where);
    const json& files = require(payload, "files", where);
    if (!files.is_array()) {
      throw field_error{where + ": 'files' must be an array, got " + kind(files)};
    }
    std::vector<list_entry> out;
    out.reserve(files.size());
    for (size_t i = 0; i < files.size(); ++i) {
      const std::string entry_where = where + ": entry " + std::to_string(i);
      const json& file = files[i];
      check_object(file, entry_where);
      list_entry entry;
      entry.name = require_string(file, "name", entry_where);
      if (entry.name.empty())
        throw field_error{entry_where + ": 'name' is empty"};
      const std::string& type = require_string(file, "type", entry_where);
      if (type != "file" && type != "folder") {
        throw field_error{entry_where + ": 'type' must be \"file\" or \"folder\", got " +
                          quote(type)};
      }
      entry.folder = type == "folder";
      // A file's size is what stat() reports, so it must be there; a
      // folder's is not used and may be missing or null.
      const json* size = find_member(file, "size");
      if (!entry.folder || (size != nullptr && !size->is_null())) {
        entry.size = non_negative(require(file, "size", entry_where), entry_where, "size");
      }
      out.push_back(std::move(entry));
    }
    return out;
  });
}

std::string object_path(std::string_view base, std::string_view oid) {
  // No empty path segments, whatever slashes the base came with; an empty
  // base is the one the bridge uses when no storageBase is sent.
  while (!base.empty() && base.front() == '/')
    base.remove_prefix(1);
  while (!base.empty() && base.back() == '/')
    base.remove_suffix(1);
  if (base.empty())
    base = "LFS";
  const std::string lower = lower_ascii(oid);
  const std::string_view name = lower;
  return "/" + std::string{base} + "/" + std::string{name.substr(0, 2)} + "/" +
         std::string{name.substr(std::min<size_t>(2, name.size()), 2)} + "/" + lower;
}

std::string sanitize_diagnostics(std::string_view text) {
  // Line breaks and control bytes first, so that no marker hides behind one.
  std::string flat(text);
  for (char& c : flat) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f)
      c = ' ';
  }
  return one_line(before_secrets(flat), max_diagnostics);
}

} // namespace ferry::bridge
