#pragma once

#include "protocol/status.hpp"

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <map>
#include <string>

namespace ferry::config {

/// Everything the engine can be told. Each setting has one git config key,
/// one environment variable and (for some) one command-line flag (the
/// fields below are named after the keys):
///
/// | git config                 | environment                   | flag           | default       |
/// |----------------------------|-------------------------------|----------------|---------------|
/// | ferry.store                | FERRY_STORE                   | --store        | (none)        |
/// | ferry.journal              | FERRY_JOURNAL                 | --journal      | <lfs>/ferry   |
/// | ferry.maxAttempts          | FERRY_MAX_ATTEMPTS            | --max-attempts | 5             |
/// | ferry.backoffBase          | FERRY_BACKOFF_BASE            |                | 250ms         |
/// | ferry.backoffMax           | FERRY_BACKOFF_MAX             |                | 10s           |
/// | ferry.maxRetryWait         | FERRY_MAX_RETRY_WAIT          |                | 2m            |
/// | ferry.maxRetryTime         | FERRY_MAX_RETRY_TIME          |                | 5m            |
/// | ferry.maxRequestsPerSecond | FERRY_MAX_REQUESTS_PER_SECOND |                | 0 (unlimited) |
/// | ferry.maxBytesPerSecond    | FERRY_MAX_BYTES_PER_SECOND    |                | 0 (unlimited) |
/// | ferry.parallelStreams      | FERRY_PARALLEL_STREAMS        |                | 4             |
/// | ferry.parallelThreshold    | FERRY_PARALLEL_THRESHOLD      |                | 32MiB         |
/// | ferry.stallTimeout         | FERRY_STALL_TIMEOUT           |                | 30s           |
/// | ferry.s3.multipartThreshold| FERRY_S3_MULTIPART_THRESHOLD  |                | 32MiB         |
/// | ferry.s3.partSize          | FERRY_S3_PART_SIZE            |                | 8MiB          |
/// | ferry.s3.uploadConcurrency | FERRY_S3_UPLOAD_CONCURRENCY   |                | 4             |
/// | ferry.proton.command       | FERRY_PROTON_COMMAND          |                | (none)        |
/// | ferry.proton.processes     | FERRY_PROTON_PROCESSES        |                | 2             |
/// | ferry.proton.timeout       | FERRY_PROTON_TIMEOUT          |                | 2m            |
/// | ferry.proton.minRate       | FERRY_PROTON_MIN_RATE         |                | 256KiB        |
/// | ferry.proton.dataCredentialProvider | FERRY_PROTON_DATA_CREDENTIAL_PROVIDER | | (none)   |
/// | ferry.proton.dataCredentialHost     | FERRY_PROTON_DATA_CREDENTIAL_HOST     | | (none)   |
/// | ferry.history              | FERRY_HISTORY                 |                | 1000          |
/// | ferry.logLevel             | FERRY_LOG_LEVEL               | --log-level    | info          |
/// | ferry.logFile              | FERRY_LOG_FILE                | --log-file     | (see below)   |
///
/// `<lfs>` is the repository's LFS directory; the log file defaults to
/// `<journal>/ferry.log`.
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
  int max_attempts = 5;
  std::chrono::milliseconds backoff_base{250};
  std::chrono::milliseconds backoff_max{10000};
  /// Longest time one object is retried, from its first attempt.
  std::chrono::milliseconds max_retry_time{300000};
  /// Longest Retry-After honoured; a server asking for more fails the
  /// object at once.
  std::chrono::seconds max_retry_wait{120};
  /// Per host; 0 means unlimited.
  double max_requests_per_second = 0;
  int64_t max_bytes_per_second = 0;
  /// Downloads from LFS servers of at least parallel_threshold bytes are
  /// fetched as up to parallel_streams concurrent ranges.
  int parallel_streams = 4;
  int64_t parallel_threshold = int64_t{32} << 20;
  /// An HTTP transfer that moves (almost) nothing for this long has stalled.
  std::chrono::seconds stall_timeout{30};
  /// S3 uploads of at least s3_multipart_threshold bytes go up in parts of
  /// s3_part_size, s3_upload_concurrency of them at once per object.
  int64_t s3_multipart_threshold = int64_t{32} << 20;
  int64_t s3_part_size = int64_t{8} << 20;
  int s3_upload_concurrency = 4;
  /// The proton-drive-cli bridge's command line (`bridge <command>` is
  /// appended); needed by proton:// stores.
  std::string proton_command;
  /// Bridge processes at once per agent or migration.
  int proton_processes = 2;
  /// A bridge call may take proton_timeout plus the object's size at
  /// proton_min_rate bytes per second.
  std::chrono::milliseconds proton_timeout{120000};
  int64_t proton_min_rate = int64_t{256} << 10;
  /// Passed to the bridge as dataCredentialProvider / dataCredentialHost
  /// when set.
  std::string proton_data_credential_provider;
  std::string proton_data_credential_host;
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

/// Parses "250ms", "10s", "2m", "24h" or a bare millisecond count.
result<std::chrono::milliseconds> parse_duration(const std::string& text);

/// Parses a byte count with an optional unit ("10MiB", "10MB", "10M",
/// "512"; see the table above). No fractions, signs or spaces.
result<int64_t> parse_size(const std::string& text);

/// The environment variables resolve() reads, taken from the process.
std::map<std::string, std::string> read_environment();

} // namespace ferry::config
