#include "store/os/git_command.hpp"

#include "store/os/child_process.hpp"

#include <algorithm>
#include <cstdint>
#include <system_error>

extern char** environ;

namespace ferry {

namespace fs = std::filesystem;

namespace {

/// `base` (or the inherited environment) with `extra` ("NAME=value")
/// replacing or extending it.
std::vector<std::string> environment_with(const std::optional<std::vector<std::string>>& base,
                                          const std::vector<std::string>& extra) {
  std::vector<std::string> inherited;
  if (!base)
    for (char** entry = environ; *entry != nullptr; ++entry)
      inherited.emplace_back(*entry);
  std::vector<std::string> entries;
  for (const auto& text : base ? *base : inherited) {
    std::string name = text.substr(0, text.find('='));
    bool replaced = std::any_of(extra.begin(), extra.end(), [&](const std::string& e) {
      return e.compare(0, name.size() + 1, name + "=") == 0;
    });
    if (!replaced)
      entries.push_back(text);
  }
  entries.insert(entries.end(), extra.begin(), extra.end());
  return entries;
}

} // namespace

result<command_output> run_git(const std::vector<std::string>& args, const fs::path& cwd) {
  return run_git(args, cwd, git_run_options{});
}

result<command_output> run_git(const std::vector<std::string>& args, const fs::path& cwd,
                               const git_run_options& options) {
  // Checked first, so the message says what is missing.
  if (!cwd.empty()) {
    std::error_code ec;
    if (!fs::is_directory(cwd, ec))
      return status{errc::not_found, "cannot run git in " + cwd.string() + ": no such directory"};
  }

  child_options child;
  child.argv = {"git"};
  child.argv.insert(child.argv.end(), args.begin(), args.end());
  child.environment = environment_with(options.base_environment, options.environment);
  child.directory = cwd;
  child.input = options.input;
  // Git stays in Ferry's process group: a credential helper may prompt on
  // the terminal, and a credential cache daemon it starts must live on.
  child.own_process_group = false;
  child.timeout = no_timeout;
  child.max_output = SIZE_MAX;
  child.max_diagnostics = SIZE_MAX;
  auto ran = run_child(child);
  if (!ran) {
    if (ran.error().code() == errc::not_found)
      return status{errc::not_found, "git is not installed or not on PATH"};
    return status{errc::io_error, ran.error().message()};
  }

  command_output output;
  output.out = std::move(ran->output);
  output.err = std::move(ran->diagnostics);
  output.exit_code = ran->signal != 0 ? 128 + ran->signal : ran->exit_code;
  if (output.exit_code < 0)
    return status{errc::io_error, "cannot tell how git exited"};
  return output;
}

} // namespace ferry
