#pragma once

// The proton-drive-cli bridge, contract v1 (docs/proton.md): one JSON
// request on the stdin of `<command> bridge <name>`, one JSON envelope on
// its stdout. Pure functions: no I/O, and nothing throws.

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ferry::bridge {

/// The bridge's subcommands.
enum class command {
  auth_state,
  upload,
  download,
  list,
  exists,
  remove,
  refresh,
  init,
  batch_exists,
  batch_delete,
};

/// The name on the bridge's command line: "auth-state", "upload", ...,
/// "delete" for command::remove, "batch-exists", "batch-delete".
const char* to_string(command name);

/// Fields that every command but `refresh` accepts. Empty strings are not
/// sent. Never credentials: the bridge finds those itself.
struct common_fields {
  /// The Drive folder objects live under ("LFS").
  std::string storage_base;
  /// "git-credential" or "pass-cli": where the bridge looks for the data
  /// password, when the session does not hold the key password.
  std::string data_credential_provider;
  /// The credential host/key for that lookup.
  std::string data_credential_host;
  /// Overrides the bridge's x-pm-appversion.
  std::string app_version;
};

/// The per-command fields. Empty strings and an empty `oids` are not sent.
struct request_fields {
  std::string oid;
  /// Absolute local file to upload.
  std::string path;
  /// Absolute local file a download writes.
  std::string output_path;
  /// Drive folder to list ("/LFS/ab/cd").
  std::string folder;
  std::vector<std::string> oids;
};

/// The request JSON for `name`: only the fields the v1 contract allows for
/// that command are written (refresh: appVersion only; upload: the common
/// fields plus oid and path; ...), whatever else is set.
std::string encode_request(command name, const common_fields& common, const request_fields& fields);

/// A decoded envelope. Success: `ok` and `payload`. Failure: `error` (not
/// empty), `code` (>= 100) and `details`, the decoded object that the
/// envelope carries as a JSON string (null when that string is empty).
struct envelope {
  bool ok = false;
  nlohmann::json payload;
  std::string error;
  int code = 0;
  nlohmann::json details;
};

/// Finds and strictly decodes the envelope in a bridge's stdout. The whole
/// output is tried first; if it is not JSON, lines are tried from the last
/// one back, and the first line that starts with `{` and parses as JSON is
/// the envelope (log noise before it is tolerated). A JSON line that is not
/// a valid envelope is an error, not skipped. Valid envelopes have only the
/// keys ok, payload, error, code and details; `ok` is a boolean; success
/// has a payload and none of error, code, details; failure has a non-empty
/// string error, an integer code >= 100 and details as a string (absent
/// counts as ""), which is "" or a JSON object, and no payload.
/// Errors are a sentence saying what is wrong; "no envelope" when no line
/// qualifies.
std::variant<envelope, std::string> parse_envelope(std::string_view output);

/// `details.errorCode` ("SESSION_EXPIRED", ...), or "" when absent.
std::string error_code(const envelope& failure);

/// `details.retryAfter` in seconds when present and a non-negative number.
std::optional<double> retry_after_seconds(const envelope& failure);

/// The auth-state payload's fields Ferry acts on.
struct auth_state {
  /// ready, needs_login, needs_data_password, needs_key_password,
  /// session_expired, session_invalid or configuration_error.
  std::string state;
  std::vector<std::string> errors;
  std::vector<std::string> actions;
};

/// Decodes an auth-state payload: `state` must be a string, `errors` and
/// `actions` arrays of strings when present; other keys are ignored.
std::variant<auth_state, std::string> decode_auth_state(const nlohmann::json& payload);

/// Decodes an exists payload strictly: only the keys `oid` (equal to `oid`,
/// compared in lower case) and `exists` (a boolean).
std::variant<bool, std::string> decode_exists(const nlohmann::json& payload, std::string_view oid);

/// Decodes a batch-exists or batch-delete payload, `{"results":{...}}` or
/// the bare map: every key a valid oid (normalised to lower case), every
/// value a boolean, and every oid in `asked` present. The answer follows
/// the order of `asked`.
std::variant<std::vector<bool>, std::string>
decode_batch_results(const nlohmann::json& payload, const std::vector<std::string>& asked);

/// What a download payload says: `oid` must match, `downloaded` be true and
/// `size` a non-negative integer.
std::variant<int64_t, std::string> decode_download(const nlohmann::json& payload,
                                                   std::string_view oid);

/// How an upload payload says the object got there.
enum class upload_outcome {
  /// The bytes were sent (`uploaded:true`).
  uploaded,
  /// The Drive already had a file of that name (`deduplicated:true`).
  deduplicated,
  /// The bridge's local change-token cache claimed it (`cached:true`); Ferry
  /// does not trust this, because that cache ignores remote deletions.
  cached,
};

/// Decodes an upload payload: `oid` must match and exactly one of the three
/// outcomes must hold.
std::variant<upload_outcome, std::string> decode_upload(const nlohmann::json& payload,
                                                        std::string_view oid);

/// One entry of a list payload.
struct list_entry {
  std::string name;
  bool folder = false;
  int64_t size = 0;
};

/// Decodes a list payload `{"files":[{name, type:"file"|"folder", size,
/// modifiedTime}]}`; entries of another type are an error.
std::variant<std::vector<list_entry>, std::string> decode_list(const nlohmann::json& payload);

/// The Drive path of an object: `/<base>/<oid[0:2]>/<oid[2:4]>/<oid>`, the
/// layout every bridge client uses. `oid` is lower-cased.
std::string object_path(std::string_view base, std::string_view oid);

/// Cuts bridge stderr or an error text down to something safe to show: at
/// most 256 characters, and cut before the first `Bearer `, `token=`,
/// `session=`, `AccessToken`, `RefreshToken`, `UID:`, `password=`,
/// `password:`, `password":` or `Authorization:` (any case) so no secret
/// follows.
std::string sanitize_diagnostics(std::string_view text);

} // namespace ferry::bridge
