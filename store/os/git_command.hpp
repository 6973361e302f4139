#pragma once

// Runs git: the one way Ferry's layers start a git command whose output
// they read whole (settings, `git credential`, repository discovery).

#include "protocol/status.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace ferry {

struct command_output {
  int exit_code = 0;
  std::string out;
  std::string err;
};

/// Runs `git <args...>` in `cwd` (the current directory when empty) without a
/// shell, capturing stdout and stderr. Fails only when git cannot be run; a
/// non-zero exit is reported in exit_code.
result<command_output> run_git(const std::vector<std::string>& args,
                               const std::filesystem::path& cwd = {});

/// What else a git command may need (`git credential` reads its request
/// from stdin and must not prompt).
struct git_run_options {
  /// Written to git's stdin, which is then closed; without input stdin is
  /// /dev/null. It never appears on a command line.
  std::string input;
  /// "NAME=value" entries that replace or extend the inherited environment.
  std::vector<std::string> environment;
  /// The whole environment ("NAME=value") to start from instead of this
  /// process's: the daemon runs git in an agent's environment.
  std::optional<std::vector<std::string>> base_environment;
};

/// run_git() with stdin input and extra environment.
result<command_output> run_git(const std::vector<std::string>& args,
                               const std::filesystem::path& cwd, const git_run_options& options);

} // namespace ferry
