#pragma once

#include "protocol/status.hpp"
#include "store/os/git_command.hpp"

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ferry::config {

/// The environment git runs in ("NAME=value" entries); nullopt: this
/// process's. The daemon passes an agent's, and never changes its own.
using git_environment = std::optional<std::vector<std::string>>;

/// `git config --list` as seen from `cwd` (system, global, local, worktree,
/// with git's precedence: the last value of a key wins), keys lower-cased.
/// Outside a repository this still returns system and global values.
result<std::map<std::string, std::string>> read_git_config(const std::filesystem::path& cwd = {},
                                                           const git_environment& environment = {});

/// The paths of the repository containing `cwd`.
struct repo_paths {
  std::filesystem::path top_level;  ///< working tree root (empty for a bare repo)
  std::filesystem::path git_dir;    ///< this worktree's git dir
  std::filesystem::path common_dir; ///< shared git dir (objects, lfs)
  std::filesystem::path lfs_dir;    ///< `lfs.storage` if set, else <common_dir>/lfs

  /// Where the repository is: its working tree's root, or the git dir of a
  /// bare one.
  const std::filesystem::path& root() const { return top_level.empty() ? git_dir : top_level; }
};

/// errc::not_found when `cwd` is not inside a git repository.
result<repo_paths> discover_repo(const std::filesystem::path& cwd = {},
                                 const git_environment& environment = {});

/// `git config [--global] <key> <value>` (local when not global).
status set_git_config(const std::string& key, const std::string& value, bool global,
                      const std::filesystem::path& cwd = {});

/// `git config [--global] --unset-all <key>`; an absent key succeeds.
status unset_git_config(const std::string& key, bool global, const std::filesystem::path& cwd = {});

} // namespace ferry::config
