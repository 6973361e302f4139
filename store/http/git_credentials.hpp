#pragma once

// Credentials for HTTP stores: what a store asks for, and `git credential`
// as the source that asks the user's configured helpers.

#include "protocol/status.hpp"

#include "store/os/git_command.hpp"

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ferry {

/// Credentials for one HTTP endpoint. Never logged, never put on a command
/// line; describe() of a store never contains them.
struct http_credential {
  std::string username;
  std::string password;
};

/// Where an HTTP store gets credentials: `git credential fill` for the URL,
/// `approve` after a request with them succeeded, `reject` after a 401.
/// Injectable so tests need no credential helper.
class credential_source {
public:
  virtual ~credential_source() = default;
  /// Credentials for `url`, or std::nullopt when none are configured.
  virtual result<std::optional<http_credential>> fill(const std::string& url) = 0;
  virtual void approve(const std::string& url, const http_credential& credential) = 0;
  virtual void reject(const std::string& url, const http_credential& credential) = 0;
};

/// `git credential fill|approve|reject`, run in `cwd` without a shell and
/// without a terminal prompt (GIT_TERMINAL_PROMPT=0): a missing credential is
/// an answer, never a hang. With `environment`, git runs in it instead of
/// this process's (the daemon's agents each bring theirs).
std::unique_ptr<credential_source>
git_credentials(std::filesystem::path cwd,
                std::optional<std::vector<std::string>> environment = std::nullopt);

/// Runs `git credential <action>` ("fill", "approve", "reject") with
/// `input` on its stdin, somewhere else (the daemon asks the agent, which
/// has the user's environment and terminal).
using credential_runner =
  std::function<result<command_output>(const std::string& action, const std::string& input)>;

/// The git credential protocol over `run`.
std::unique_ptr<credential_source> git_credentials(credential_runner run);

} // namespace ferry
