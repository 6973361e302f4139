#include "config/git_config.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <system_error>

namespace ferry::config {

namespace fs = std::filesystem;

namespace {

std::string trim(const std::string& text) {
  size_t begin = 0;
  size_t end = text.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(text[begin])))
    ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1])))
    --end;
  return text.substr(begin, end - begin);
}

/// What went wrong in a failed git command, for an error message.
std::string describe_failure(const command_output& output) {
  auto message = trim(output.err);
  if (message.empty())
    return "git exited with code " + std::to_string(output.exit_code);
  return message;
}

/// Drops the newline git prints after a single path or value.
std::string strip_newline(std::string text) {
  if (!text.empty() && text.back() == '\n')
    text.pop_back();
  return text;
}

/// Lower-cases section and name; a subsection keeps its case, as in git.
std::string normalise_key(std::string key) {
  auto first_dot = key.find('.');
  auto last_dot = key.rfind('.');
  for (size_t i = 0; i < key.size(); ++i) {
    if (first_dot == std::string::npos || i < first_dot || i > last_dot)
      key[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(key[i])));
  }
  return key;
}

fs::path absolute_dir(const fs::path& cwd) {
  std::error_code ec;
  auto dir = cwd.empty() ? fs::current_path(ec) : fs::absolute(cwd, ec);
  return ec ? cwd : dir;
}

/// run_git's options for running in `environment`.
git_run_options in(const git_environment& environment) {
  git_run_options options;
  options.base_environment = environment;
  return options;
}

} // namespace

result<std::map<std::string, std::string>> read_git_config(const fs::path& cwd,
                                                           const git_environment& environment) {
  auto listed = run_git({"config", "--list", "-z"}, cwd, in(environment));
  if (!listed)
    return listed.error();
  if (listed->exit_code != 0 && !trim(listed->err).empty())
    return status{errc::io_error, "cannot read git config: " + describe_failure(*listed)};

  // Each entry is "key\nvalue\0", or "key\0" for a key without a value.
  std::map<std::string, std::string> values;
  const std::string& text = listed->out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\0', pos);
    if (end == std::string::npos)
      end = text.size();
    std::string entry = text.substr(pos, end - pos);
    pos = end + 1;
    if (entry.empty())
      continue;
    size_t newline = entry.find('\n');
    std::string value = newline == std::string::npos ? std::string{} : entry.substr(newline + 1);
    values[normalise_key(entry.substr(0, newline))] = std::move(value);
  }
  return values;
}

result<repo_paths> discover_repo(const fs::path& cwd, const git_environment& environment) {
  auto here = absolute_dir(cwd);
  auto dirs =
    run_git({"rev-parse", "--absolute-git-dir", "--git-common-dir"}, cwd, in(environment));
  if (!dirs)
    return dirs.error();
  if (dirs->exit_code != 0) {
    std::string message = "not inside a git repository (" + here.string() + ")";
    // Anything but the usual complaint (e.g. "dubious ownership") is worth showing.
    if (dirs->err.find("not a git repository") == std::string::npos)
      message += ": " + describe_failure(*dirs);
    return status{errc::not_found, message};
  }

  auto newline = dirs->out.find('\n');
  if (newline == std::string::npos)
    return status{errc::internal, "unexpected output from git rev-parse: " + dirs->out};
  repo_paths paths;
  paths.git_dir = dirs->out.substr(0, newline);
  paths.common_dir = strip_newline(dirs->out.substr(newline + 1));
  // git prints the common dir relative to where it ran.
  if (paths.common_dir.is_relative())
    paths.common_dir = here / paths.common_dir;
  paths.common_dir = paths.common_dir.lexically_normal();
  if (!paths.common_dir.has_filename())
    paths.common_dir = paths.common_dir.parent_path();

  // A bare repository has no working tree; git refuses --show-toplevel there.
  auto top = run_git({"rev-parse", "--show-toplevel"}, cwd, in(environment));
  if (!top)
    return top.error();
  if (top->exit_code == 0)
    paths.top_level = strip_newline(top->out);

  auto storage = run_git({"config", "--type=path", "--get", "lfs.storage"}, cwd, in(environment));
  if (!storage)
    return storage.error();
  if (storage->exit_code == 0) {
    fs::path dir = strip_newline(storage->out);
    // git-lfs resolves a relative lfs.storage against the common git dir.
    paths.lfs_dir = dir.is_absolute() ? dir : (paths.common_dir / dir).lexically_normal();
  } else if (storage->exit_code == 1) {
    paths.lfs_dir = paths.common_dir / "lfs";
  } else {
    return status{errc::io_error, "cannot read lfs.storage: " + describe_failure(*storage)};
  }
  return paths;
}

status set_git_config(const std::string& key, const std::string& value, bool global,
                      const fs::path& cwd) {
  // --replace-all so a key that already has several values still ends up with one.
  std::vector<std::string> args{"config"};
  if (global)
    args.emplace_back("--global");
  args.insert(args.end(), {"--replace-all", key, value});
  auto done = run_git(args, cwd);
  if (!done)
    return done.error();
  if (done->exit_code != 0)
    return {errc::io_error, "cannot set " + key + " in git config: " + describe_failure(*done)};
  return status::success();
}

status unset_git_config(const std::string& key, bool global, const fs::path& cwd) {
  std::vector<std::string> args{"config"};
  if (global)
    args.emplace_back("--global");
  args.insert(args.end(), {"--unset-all", key});
  auto done = run_git(args, cwd);
  if (!done)
    return done.error();
  // Exit code 5 means the key was not there, which is what we wanted.
  if (done->exit_code != 0 && done->exit_code != 5)
    return {errc::io_error, "cannot unset " + key + " in git config: " + describe_failure(*done)};
  return status::success();
}

} // namespace ferry::config
