#pragma once

// Where an S3 store finds its keys, in the order the AWS tools use:
// the environment, then the shared credentials file and its profile, then
// `git credential fill` for the endpoint. Keys are never logged and never
// put on a command line; messages name only where keys were looked for.

#include "protocol/status.hpp"
#include "store/http/git_credentials.hpp"
#include "store/s3/s3_signer.hpp"
#include "store/s3/s3_url.hpp"

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::s3 {

/// What the lookup may consult. Injectable, so tests need neither a real
/// environment nor a home directory.
struct credential_lookup {
  /// Reads an environment variable; std::nullopt when unset.
  std::function<std::optional<std::string>(const char* name)> getenv;
  /// The home directory, for ~/.aws/credentials; empty when unknown.
  std::filesystem::path home;
  /// `git credential` for the endpoint; may be null (then it is skipped).
  credential_source* git = nullptr;

  /// The process's environment and $HOME, and no git.
  static credential_lookup from_process();
};

/// Keys and where they came from.
struct found_credentials {
  credentials keys;
  /// "environment (AWS_ACCESS_KEY_ID)", "/home/u/.aws/credentials [profile ci]",
  /// "git credential for http://127.0.0.1:7480": safe for logs.
  std::string source;
};

/// Looks for keys for `url`:
/// 1. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN); only
///    one of the pair set is errc::config_error naming the missing one;
/// 2. the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, else
///    <home>/.aws/credentials), profile AWS_PROFILE or "default"; a profile
///    named by AWS_PROFILE that the file lacks is errc::config_error; a file
///    that does not exist is skipped;
/// 3. `git credential fill` for the endpoint URL: username = access key id,
///    password = secret.
/// Nothing found is errc::config_error listing the three places and how to
/// fill each. Values are trimmed; empty values count as unset.
result<found_credentials> find_credentials(const s3_url& url, const credential_lookup& lookup);

/// Reads one profile of an AWS shared credentials file (INI: `[name]`
/// sections, `key = value` lines, `#` and `;` comments): aws_access_key_id,
/// aws_secret_access_key and aws_session_token. std::nullopt when the profile
/// is absent; errc::config_error when it is present but lacks a key or a
/// line is malformed (the message gives the line number, never a value).
result<std::optional<credentials>> parse_shared_credentials(std::string_view text,
                                                            std::string_view profile);

} // namespace ferry::s3
