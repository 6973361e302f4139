#pragma once

#include "protocol/status.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace ferry::config {

/// Everything the engine can be told. Each setting (git config key,
/// environment variable, flag, range, default) is declared once, in
/// setting_table() (config/settings.cpp); README.md's Configuration table
/// documents them and a unit test keeps the two in step. resolve() fills
/// in every field; a default-constructed `settings` holds zeros.
///
/// Precedence, highest first: flag, environment, git config, default.
/// Durations accept `ms`, `s`, `m`, `h` suffixes ("250ms", "10s", "2m"); a bare
/// number means milliseconds. Sizes accept a unit: `KiB`, `MiB`, `GiB`,
/// `TiB` or `K`, `M`, `G`, `T` (powers of 1024), `KB`, `MB`, `GB`, `TB`
/// (powers of 1000), `B` or none (bytes); units ignore case.
struct settings {
  /// Empty when none is configured: then only requests that carry an LFS
  /// server's action (non-standalone mode) can be served.
  std::string store_url;
  std::filesystem::path journal_dir;
  int max_attempts{};
  std::chrono::milliseconds backoff_base{};
  std::chrono::milliseconds backoff_max{};
  /// Longest time one object is retried, from its first attempt.
  std::chrono::milliseconds max_retry_time{};
  /// Longest Retry-After honoured; a server asking for more fails the
  /// object at once.
  std::chrono::seconds max_retry_wait{};
  /// Per host; 0 means unlimited.
  double max_requests_per_second{};
  int64_t max_bytes_per_second{};
  /// Downloads from LFS servers of at least parallel_threshold bytes are
  /// fetched as up to parallel_streams concurrent ranges.
  int parallel_streams{};
  int64_t parallel_threshold{};
  /// An HTTP transfer that moves (almost) nothing for this long has stalled.
  std::chrono::seconds stall_timeout{};
  /// S3 uploads of at least s3_multipart_threshold bytes go up in parts of
  /// s3_part_size, s3_upload_concurrency of them at once per object.
  int64_t s3_multipart_threshold{};
  int64_t s3_part_size{};
  int s3_upload_concurrency{};
  /// The proton-drive-cli bridge's command line (`bridge <command>` is
  /// appended); needed by proton:// stores.
  std::string proton_command;
  /// Bridge processes at once per agent or migration.
  int proton_processes{};
  /// A bridge call may take proton_timeout plus the object's size at
  /// proton_min_rate bytes per second.
  std::chrono::milliseconds proton_timeout{};
  int64_t proton_min_rate{};
  /// Passed to the bridge as dataCredentialProvider / dataCredentialHost
  /// when set.
  std::string proton_data_credential_provider;
  std::string proton_data_credential_host;
  /// `ferry daemon` exits after this long without a connected client.
  std::chrono::seconds daemon_idle_timeout{};
  /// "auto": `ferry agent` forwards to the user's daemon (starting it when
  /// none runs) and runs the engine itself only when it cannot be reached;
  /// "never": it always runs the engine itself.
  std::string daemon;
  size_t history_limit{};
  std::string log_level;
  /// "text" (logfmt-like) or "json" (protocol/log_line.hpp).
  std::string log_format;
  std::filesystem::path log_file;
  /// Where each transfer attempt's start and end is appended as a line of
  /// JSON; empty: nowhere.
  std::filesystem::path events_file;
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

/// How a setting's value is written and checked.
enum class setting_kind {
  text,         ///< anything but the empty text
  command_line, ///< anything but spaces and tabs alone
  absolute_path,
  integer,         ///< digits only
  decimal,         ///< digits with an optional fraction ("0.5")
  duration,        ///< as parse_duration reads it
  whole_seconds,   ///< a duration in whole seconds
  size,            ///< as parse_size reads it
  choice,          ///< one of the choices, exactly
  choice_any_case, ///< one of the choices in any case, kept lower-cased
};

/// The ends of a number setting's range as users write them, read like a
/// value; a remark may follow after a space ("0 (unlimited)"). A low end
/// may name another duration setting by its git key: that setting's value
/// bounds this one, and a default below it is raised to it.
struct setting_range {
  const char* low = nullptr;
  const char* high = nullptr; ///< nullptr: no range (the kinds that are no numbers)
};

/// One setting, declared once in setting_table(). Optional fields come last.
struct setting_spec {
  const char* git; ///< documented spelling; git itself lower-cases it
  const char* env;
  const char* flag; ///< without dashes; nullptr when there is none
  setting_kind kind;
  /// Where the value goes.
  std::variant<std::string settings::*, std::filesystem::path settings::*, int settings::*,
               size_t settings::*, int64_t settings::*, double settings::*,
               std::chrono::milliseconds settings::*, std::chrono::seconds settings::*>
    target;
  /// The default as users write it, read like a value; nullptr: none (the
  /// field stays empty). A path default starts with the directory it is
  /// in: `<git-dir>/lfs` (the repository's LFS directory) or `<journal>`.
  const char* fallback;
  const char* doc; ///< what the setting does, in one line
  setting_range range = {};
  /// Valid values the error message shows ("such as 32MiB").
  const char* example = nullptr;
  /// What the error message calls a valid value; nullptr: the kind's own
  /// words ("an integer", "a size", the choices).
  const char* what = nullptr;
  /// The choice kinds' values, separated by spaces.
  const char* choices = nullptr;
};

/// Every setting, in the order resolve() checks them (the README's order).
const std::vector<setting_spec>& setting_table();

/// Combines the sources by precedence and validates every value. `lfs_dir`
/// is the repository's LFS directory (for the journal default); it may be
/// empty outside a repository, in which case journal_dir must be given.
/// Errors are errc::config_error naming the key, the source and what is
/// allowed, e.g. "ferry.maxAttempts (git config) = 'x': expected an integer from 1 to 100".
/// A missing store is not an error here (status and uninstall do not need one).
result<settings> resolve(const sources& input, const std::filesystem::path& lfs_dir);

/// Every setting of `resolved` as one text ("ferry.store=file:///s\n..."):
/// equal for equal settings, and different when any setting differs.
std::string fingerprint(const settings& resolved);

/// Parses "250ms", "10s", "2m", "24h" or a bare millisecond count.
result<std::chrono::milliseconds> parse_duration(const std::string& text);

/// Parses a byte count with an optional unit ("10MiB", "10MB", "10M",
/// "512"; see the units above). No fractions, signs or spaces.
result<int64_t> parse_size(const std::string& text);

/// The environment variables resolve() reads, taken from the process.
std::map<std::string, std::string> read_environment();

/// The environment variables resolve() reads, taken from `environment`
/// (an agent's, in the daemon).
std::map<std::string, std::string>
read_environment(const std::map<std::string, std::string>& environment);

} // namespace ferry::config
