#include "simulations/bridge_sim/contract.hpp"

#include <algorithm>
#include <cstdint>

namespace ferry::bridge_sim {

using nlohmann::json;

const std::vector<std::string>& bridge_commands() {
  static const std::vector<std::string> commands{"auth-state",   "upload",      "download", "list",
                                                 "exists",       "delete",      "refresh",  "init",
                                                 "batch-exists", "batch-delete"};
  return commands;
}

const std::vector<std::string>& request_fields() {
  static const std::vector<std::string> fields{"dataPassword",
                                               "dataCredentialProvider",
                                               "dataCredentialHost",
                                               "appVersion",
                                               "oid",
                                               "path",
                                               "outputPath",
                                               "folder",
                                               "storageBase",
                                               "oids"};
  return fields;
}

const std::vector<std::string>& common_fields() {
  static const std::vector<std::string> fields{"dataPassword", "dataCredentialProvider",
                                               "dataCredentialHost", "appVersion", "storageBase"};
  return fields;
}

const std::vector<std::string>& auth_states() {
  static const std::vector<std::string> states{
    "ready",           "needs_login",     "needs_data_password", "needs_key_password",
    "session_expired", "session_invalid", "configuration_error"};
  return states;
}

namespace {

bool contains(const std::vector<std::string>& list, std::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

/// COMMON plus the command's own fields.
std::vector<std::string> common_and(std::vector<std::string> own) {
  std::vector<std::string> all = common_fields();
  all.insert(all.end(), own.begin(), own.end());
  return all;
}

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

/// Kept here rather than borrowed from Ferry's protocol library: the
/// contract library stands on nlohmann-json alone.
std::string ascii_lower(std::string_view text) {
  std::string lower(text);
  for (auto& c : lower)
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
  return lower;
}

/// Decodes the UTF-8 sequence at text[at]; advances `at`. Bytes that do not
/// form a sequence decode as themselves.
uint32_t next_code_point(std::string_view text, size_t& at) {
  const auto lead = static_cast<unsigned char>(text[at]);
  size_t length = lead < 0x80           ? 1
                  : (lead >> 5) == 0x6  ? 2
                  : (lead >> 4) == 0xe  ? 3
                  : (lead >> 3) == 0x1e ? 4
                                        : 1;
  if (at + length > text.size())
    length = 1;
  uint32_t code = length == 1 ? lead : lead & (0x7f >> length);
  for (size_t i = 1; i < length; ++i)
    code = (code << 6) | (static_cast<unsigned char>(text[at + i]) & 0x3f);
  at += length;
  return code;
}

/// JavaScript's \s: ASCII blanks plus the Unicode space separators.
bool is_js_space(uint32_t c) {
  return c == ' ' || (c >= 0x09 && c <= 0x0d) || c == 0xa0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f ||
         c == 0x3000 || c == 0xfeff;
}

std::string quoted(const std::string& field) { return "\"" + field + "\""; }

/// Compact JSON text; invalid UTF-8 is replaced rather than thrown.
std::string compact(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool is_string_array(const json& value) {
  return value.is_array() &&
         std::all_of(value.begin(), value.end(), [](const json& item) { return item.is_string(); });
}

} // namespace

std::optional<field_rule> field_rule_for(std::string_view command) {
  const std::string name = lower_command(command);
  if (name == "auth-state" || name == "init")
    return field_rule{{}, common_fields()};
  if (name == "upload")
    return field_rule{{"oid", "path"}, common_and({"oid", "path"})};
  if (name == "download")
    return field_rule{{"oid", "outputPath"}, common_and({"oid", "outputPath"})};
  if (name == "list")
    return field_rule{{}, common_and({"folder"})};
  if (name == "exists" || name == "delete")
    return field_rule{{"oid"}, common_and({"oid"})};
  if (name == "refresh")
    return field_rule{{}, {"appVersion"}};
  if (name == "batch-exists" || name == "batch-delete")
    return field_rule{{"oids"}, common_and({"oids"})};
  return std::nullopt;
}

std::string lower_command(std::string_view command) { return ascii_lower(command); }

std::optional<std::string> check_request(std::string_view command, const json& request) {
  const std::string name = lower_command(command);
  const auto rule = field_rule_for(name);
  if (!rule)
    return "Unknown bridge command: " + name;
  if (!request.is_object())
    return std::string("Bridge request must be a JSON object");

  for (const auto& item : request.items())
    if (!contains(request_fields(), item.key()))
      return "Unknown bridge request field " + quoted(item.key());
  for (const auto& item : request.items())
    if (!contains(rule->allowed, item.key()))
      return "Field " + quoted(item.key()) + " is not allowed for bridge " + name;
  for (const auto& item : request.items()) {
    if (item.key() == "oids") {
      if (!is_string_array(item.value()))
        return std::string("Field \"oids\" must be an array of strings");
    } else if (!item.value().is_string()) {
      return "Field " + quoted(item.key()) + " must be a string";
    }
  }
  for (const auto& field : rule->required)
    if (!request.contains(field))
      return "Field " + quoted(field) + " is required for bridge " + name;

  if (auto it = request.find("appVersion");
      it != request.end() && !is_valid_app_version(it->get<std::string>()))
    return "Invalid appVersion format: expected <client>-<product>[-<variant>]@<version>";
  if (auto it = request.find("oids"); it != request.end()) {
    if (it->empty())
      return "oids array is required for " + name;
    for (const auto& oid : *it)
      if (!is_valid_oid(oid.get<std::string>()))
        return std::string("Invalid OID format: expected 64-character hex string");
  }
  if (auto it = request.find("oid"); it != request.end() && !is_valid_oid(it->get<std::string>()))
    return std::string("Invalid OID format: expected 64-character hex string");
  return std::nullopt;
}

bool is_valid_oid(std::string_view oid) {
  return oid.size() == 64 && std::all_of(oid.begin(), oid.end(), is_hex);
}

bool is_valid_app_version(std::string_view app_version) {
  const auto at = app_version.find('@');
  if (at == std::string_view::npos)
    return false;
  // Before '@': two or three lower-case alphanumeric words joined by '-'.
  const std::string_view client = app_version.substr(0, at);
  size_t words = 0;
  size_t start = 0;
  while (start <= client.size()) {
    const auto dash = std::min(client.find('-', start), client.size());
    const auto word = client.substr(start, dash - start);
    if (word.empty() || !std::all_of(word.begin(), word.end(), is_lower_alnum))
      return false;
    ++words;
    start = dash + 1;
  }
  if (words < 2 || words > 3)
    return false;
  // After '@': at least one character, none of them '@' or a blank.
  const std::string_view version = app_version.substr(at + 1);
  if (version.empty())
    return false;
  for (size_t i = 0; i < version.size();) {
    const uint32_t c = next_code_point(version, i);
    if (c == '@' || is_js_space(c))
      return false;
  }
  return true;
}

std::optional<std::string> check_local_path(std::string_view path) {
  if (path.empty())
    return std::string("File path is required");
  if (path.find('\0') != std::string_view::npos)
    return std::string("Null bytes not allowed in path");
  size_t start = 0;
  while (start <= path.size()) {
    const auto end = std::min(path.find_first_of("/\\", start), path.size());
    if (path.substr(start, end - start) == "..")
      return std::string("Path traversal not allowed");
    start = end + 1;
  }
  return std::nullopt;
}

bool is_known_credential_provider(std::string_view provider) {
  static const std::vector<std::string> providers{"git-credential", "git",   "pass-cli",
                                                  "pass",           "stdin", "interactive"};
  return contains(providers, provider);
}

std::string normalize_storage_base(std::string_view storage_base) {
  const auto first = storage_base.find_first_not_of('/');
  if (first == std::string_view::npos)
    return {};
  const auto last = storage_base.find_last_not_of('/');
  return std::string(storage_base.substr(first, last - first + 1));
}

std::string drive_path_for_oid(std::string_view storage_base, std::string_view oid) {
  const std::string lower = ascii_lower(oid);
  return "/" + normalize_storage_base(storage_base) + "/" + lower.substr(0, 2) + "/" +
         lower.substr(2, 2) + "/" + lower;
}

std::optional<int> status_for_error_code(std::string_view error_code) {
  struct entry {
    const char* error_code;
    int status;
  };
  static const entry table[] = {{"AUTH_FAILED", 401},
                                {"SESSION_EXPIRED", 401},
                                {"INVALID_CREDENTIALS", 401},
                                {"TWO_FACTOR_REQUIRED", 401},
                                {"DATA_PASSWORD_REQUIRED", 401},
                                {"KEY_PASSWORD_REQUIRED", 401},
                                {"NETWORK_ERROR", 502},
                                {"CONNECTION_REFUSED", 502},
                                {"TIMEOUT", 504},
                                {"API_ERROR", 502},
                                {"UPLOAD_FAILED", 502},
                                {"DOWNLOAD_FAILED", 502},
                                {"INSUFFICIENT_SCOPE", 403},
                                {"RATE_LIMITED", 429},
                                {"QUOTA_EXCEEDED", 507},
                                {"DISK_FULL", 507},
                                {"NOT_FOUND", 404},
                                {"FILE_NOT_FOUND", 404},
                                {"PATH_NOT_FOUND", 404},
                                {"FILE_TOO_LARGE", 413},
                                {"PERMISSION_DENIED", 403},
                                {"ENCRYPTION_FAILED", 500},
                                {"DECRYPTION_FAILED", 500},
                                {"UNKNOWN_ERROR", 500},
                                {"INVALID_FILE", 400},
                                {"INVALID_PATH", 400},
                                {"NOT_A_FOLDER", 400},
                                {"VALIDATION_ERROR", 400},
                                {"CAPTCHA_REQUIRED", 407},
                                {"OPERATION_CANCELLED", 499}};
  for (const auto& row : table)
    if (error_code == row.error_code)
      return row.status;
  return std::nullopt;
}

std::string success_envelope(const json& payload) {
  // Written key by key: drive-cli's envelopes start with "ok".
  return "{\"ok\":true,\"payload\":" + compact(payload) + "}\n";
}

std::string failure_envelope(const std::string& error, int code, const json& details) {
  const std::string encoded = details.is_null()     ? std::string()
                              : details.is_string() ? details.get<std::string>()
                                                    : compact(details);
  return "{\"ok\":false,\"error\":" + compact(error) + ",\"code\":" + std::to_string(code) +
         ",\"details\":" + compact(encoded) + "}\n";
}

std::optional<std::string> check_envelope(const json& envelope) {
  if (!envelope.is_object())
    return std::string("the envelope is not a JSON object");
  for (const auto& item : envelope.items())
    if (!contains({"ok", "payload", "error", "code", "details"}, item.key()))
      return "unexpected key " + quoted(item.key());
  const auto ok = envelope.find("ok");
  if (ok == envelope.end() || !ok->is_boolean())
    return std::string("\"ok\" must be present and a bool");
  if (ok->get<bool>()) {
    if (envelope.contains("error") || envelope.contains("code") || envelope.contains("details"))
      return std::string("a success must not carry error, code or details");
    if (!envelope.contains("payload"))
      return std::string("a success must carry a payload");
    return std::nullopt;
  }
  if (envelope.contains("payload"))
    return std::string("a failure must not carry a payload");
  const auto error = envelope.find("error");
  if (error == envelope.end() || !error->is_string() || error->get<std::string>().empty())
    return std::string("a failure needs a non-empty string error");
  const auto code = envelope.find("code");
  if (code == envelope.end() || !code->is_number_integer() || code->get<int64_t>() < 100)
    return std::string("a failure needs an integer code >= 100");
  const auto details = envelope.find("details");
  if (details == envelope.end() || !details->is_string())
    return std::string("a failure needs a string details");
  const auto& text = details->get_ref<const std::string&>();
  if (!text.empty()) {
    const json decoded = json::parse(text, nullptr, false);
    if (decoded.is_discarded() || !decoded.is_object())
      return std::string("details must be empty or a JSON-encoded object");
  }
  return std::nullopt;
}

} // namespace ferry::bridge_sim
