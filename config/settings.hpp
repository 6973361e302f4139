#pragma once

#include "store/status.hpp"

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <map>
#include <string>

namespace ferry::config {

/// Everything the engine can be told. Each setting has one git config key,
/// one environment variable and (for some) one command-line flag:
///
/// | setting        | git config          | environment          | flag            | default                |
/// |----------------|---------------------|----------------------|-----------------|------------------------|
/// | store_url      | ferry.store         | FERRY_STORE          | --store         | (required)             |
/// | journal_dir    | ferry.journal       | FERRY_JOURNAL        | --journal       | <git lfs dir>/ferry    |
/// | max_attempts   | ferry.maxAttempts   | FERRY_MAX_ATTEMPTS   | --max-attempts  | 5                      |
/// | backoff_base   | ferry.backoffBase   | FERRY_BACKOFF_BASE   |                 | 250ms                  |
/// | backoff_max    | ferry.backoffMax    | FERRY_BACKOFF_MAX    |                 | 10s                    |
/// | history_limit  | ferry.history       | FERRY_HISTORY        |                 | 1000                   |
/// | log_level      | ferry.logLevel      | FERRY_LOG_LEVEL      | --log-level     | info                   |
/// | log_file       | ferry.logFile       | FERRY_LOG_FILE       | --log-file      | <journal_dir>/ferry.log|
///
/// Precedence, highest first: flag, environment, git config, default.
/// Durations accept `ms`, `s`, `m` suffixes ("250ms", "10s", "2m"); a bare
/// number means milliseconds.
struct settings {
  std::string store_url;
  std::filesystem::path journal_dir;
  int max_attempts = 5;
  std::chrono::milliseconds backoff_base{250};
  std::chrono::milliseconds backoff_max{10000};
  size_t history_limit = 1000;
  std::string log_level = "info";
  std::filesystem::path log_file;
};

/// Raw key/values from each source. `git` holds `git config --list` entries
/// with lower-cased keys (git's own normalisation: `ferry.maxattempts`);
/// `env` holds environment variables by exact name; `flags` is keyed by the
/// flag's name without dashes (`store`, `journal`, `max-attempts`, ...).
struct sources {
  std::map<std::string, std::string> git;
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> flags;
};

/// Combines the sources by precedence and validates every value. `lfs_dir`
/// is the repository's LFS directory (for the journal default); it may be
/// empty outside a repository, in which case journal_dir must be given.
/// Errors are errc::config_error naming the key, the source and what is
/// allowed, e.g. "ferry.maxAttempts (git config) = 'x': expected an integer from 1 to 100".
/// A missing store is not an error here (status and uninstall do not need one).
result<settings> resolve(const sources& input, const std::filesystem::path& lfs_dir);

/// Parses "250ms", "10s", "2m" or a bare millisecond count.
result<std::chrono::milliseconds> parse_duration(const std::string& text);

/// The environment variables resolve() reads, taken from the process.
std::map<std::string, std::string> read_environment();

} // namespace ferry::config
