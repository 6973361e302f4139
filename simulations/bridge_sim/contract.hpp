#pragma once

// The proton-drive-cli bridge's v1 contract (proton-drive-cli@96b90c9,
// schemas/bridge/v1): commands, per-command request fields, value formats,
// envelopes and the errorCode -> status table. Used by ferry-bridge-sim and
// by the contract tests, which check Ferry's requests against this reading
// of the contract rather than against Ferry's own codec.

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::bridge_sim {

/// The bridge subcommands, exactly: auth-state, upload, download, list,
/// exists, delete, refresh, init, batch-exists, batch-delete.
const std::vector<std::string>& bridge_commands();

/// Every request field the bridge knows, in the guide's order.
const std::vector<std::string>& request_fields();

/// The fields every command except refresh allows: dataPassword,
/// dataCredentialProvider, dataCredentialHost, appVersion, storageBase.
const std::vector<std::string>& common_fields();

/// The states auth-state reports: ready, needs_login, needs_data_password,
/// needs_key_password, session_expired, session_invalid, configuration_error.
const std::vector<std::string>& auth_states();

/// What a command's request may and must carry.
struct field_rule {
  /// Fields that must be present.
  std::vector<std::string> required;
  /// Fields that may be present (the required ones included).
  std::vector<std::string> allowed;
};

/// The rule for `command` (matched after lower-casing, as the bridge does),
/// or nullopt for a name that is not a bridge command.
std::optional<field_rule> field_rule_for(std::string_view command);

/// The command name as the bridge matches it: ASCII lower-case.
std::string lower_command(std::string_view command);

/// The 400 message the bridge answers `request` with when sent to `command`,
/// or nullopt when the request passes every check made before a handler runs.
///
/// Checks, in this order (with several problems, the first one found wins;
/// fields are looked at in key order):
/// unknown command ("Unknown bridge command: foo", the name lower-cased);
/// request not a JSON object ("Bridge request must be a JSON object"); a
/// field the bridge does not know (`Unknown bridge request field "X"`); a
/// known field the command does not allow (`Field "X" is not allowed for
/// bridge <cmd>`); a value of the wrong type, null included (`Field "X" must
/// be a string`, `Field "oids" must be an array of strings`); a missing
/// required field (`Field "X" is required for bridge <cmd>`); an appVersion
/// that does not match is_valid_app_version() ("Invalid appVersion format:
/// ..."); an empty oids array ("oids array is required for batch-exists");
/// an oid (or any of oids) that is not 64 hex characters ("Invalid OID
/// format: expected 64-character hex string").
///
/// Local paths (path, outputPath) are not checked here: the bridge rejects
/// those with code 500, see check_local_path().
std::optional<std::string> check_request(std::string_view command, const nlohmann::json& request);

/// True for 64 hex characters, either case (the bridge's OID_PATTERN).
bool is_valid_oid(std::string_view oid);

/// True when `app_version` matches the bridge's appVersion pattern, for
/// example "external-drive-protonlfscli@0.1.2".
bool is_valid_app_version(std::string_view app_version);

/// The message the bridge gives (with code 500, not 400) for a local path it
/// refuses: "File path is required" (empty), "Null bytes not allowed in path"
/// (a NUL), "Path traversal not allowed" (a ".." segment, '/' or '\'
/// separated); nullopt for an acceptable path.
std::optional<std::string> check_local_path(std::string_view path);

/// True for a dataCredentialProvider the bridge knows: git-credential, git,
/// pass-cli, pass, stdin, interactive.
bool is_known_credential_provider(std::string_view provider);

/// The storage base without leading and trailing '/' ("/LFS/" -> "LFS").
std::string normalize_storage_base(std::string_view storage_base);

/// The Drive path of an object: "/<base>/<oid[0:2]>/<oid[2:4]>/<oid>", the
/// oid in lower case and the base normalized. `oid` must be valid.
std::string drive_path_for_oid(std::string_view storage_base, std::string_view oid);

/// The envelope status for a details.errorCode (§2.5 table, e.g.
/// SESSION_EXPIRED -> 401, RATE_LIMITED -> 429), or nullopt for a code the
/// table does not list.
std::optional<int> status_for_error_code(std::string_view error_code);

/// A success envelope line: {"ok":true,"payload":...} and "\n".
std::string success_envelope(const nlohmann::json& payload);

/// A failure envelope line: {"ok":false,"error":...,"code":...,"details":...}
/// and "\n". `details` is encoded to a JSON string when it is an object and
/// becomes "" when it is null.
std::string failure_envelope(const std::string& error, int code,
                             const nlohmann::json& details = nullptr);

/// Why `envelope` is not a valid v1 response envelope, or nullopt when it is.
/// Valid: an object with only the keys ok, payload, error, code, details; ok
/// a bool; success with a payload and no error/code/details; failure with a
/// non-empty string error, an integer code >= 100, a string details (empty
/// or a JSON-encoded object) and no payload.
std::optional<std::string> check_envelope(const nlohmann::json& envelope);

} // namespace ferry::bridge_sim
