#pragma once

// The bridge commands' handlers, with a local folder playing the Drive:
// DIR/<storageBase>/<oid[0:2]>/<oid[2:4]>/<oid> holds the objects (the
// bridge's /<storageBase>/... under "My files"), DIR/.sim the simulator's own
// files. Payloads and errors follow drive-cli@96b90c9's src/cli/bridge.ts.

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::bridge_sim {

/// What one bridge invocation answers: a payload or an error.
struct answer {
  /// Success (payload) or failure (error, code, details).
  bool ok = true;
  nlohmann::json payload;
  /// The failure's message, never empty for a failure.
  std::string error;
  /// The failure's HTTP-like status.
  int code = 0;
  /// An object (sent JSON-encoded in the envelope's string "details") or
  /// null (sent as "").
  nlohmann::json details;

  /// {"ok":true,"payload":payload}.
  static answer success(nlohmann::json payload);
  /// {"ok":false,...}; `details` an object or null.
  static answer failure(std::string error, int code, nlohmann::json details = nullptr);

  /// The envelope line, "\n" included.
  std::string envelope() const;
};

/// True for the commands that need --drive: upload, download, list, exists,
/// delete, init, batch-exists, batch-delete.
bool touches_drive(std::string_view command);

/// The handler's own request checks, made before anything else: path and
/// outputPath must be acceptable local paths (check_local_path), else 500.
std::optional<answer> check_local_paths(std::string_view command, const nlohmann::json& request);

/// The auth-state payload for an account in `scenario_state` asked with
/// `request`. A data password source in the request (dataPassword or a known
/// dataCredentialProvider) turns needs_data_password and needs_key_password
/// into ready; an unknown dataCredentialProvider gives configuration_error.
answer auth_state_answer(const std::string& scenario_state, const nlohmann::json& request);

/// What a session-needing command gets when the account is not ready: the
/// Drive commands 401 (SESSION_EXPIRED, DATA_PASSWORD_REQUIRED or
/// KEY_PASSWORD_REQUIRED) or 500 for a configuration error; refresh without
/// any session 500 "Token refresh failed: No session to refresh". nullopt
/// when the command may go on (always for auth-state).
std::optional<answer> session_gate(std::string_view command, const std::string& scenario_state,
                                   const nlohmann::json& request);

/// Runs `command` (lower case; not auth-state; the request passed every
/// check) on the Drive folder `drive` (unused by refresh). `corrupt` flips
/// one byte of what upload stores or download writes.
answer run_command(std::string_view command, const nlohmann::json& request,
                   const std::filesystem::path& drive, bool corrupt);

} // namespace ferry::bridge_sim
