#pragma once

// `ferry migrate --shard I/N`: which part of the source one run takes, so
// that N runs side by side cover every object exactly once.

#include "protocol/status.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace ferry {

/// Takes the oids whose first 32 bits, modulo `count`, are `index`.
struct migration_shard {
  uint32_t index = 0;
  uint32_t count = 1;

  /// "I/N" with 1 <= I <= N <= 4096; empty text is the whole source (1/1).
  /// std::nullopt when the text is not such a shard.
  static std::optional<migration_shard> parse(const std::string& text);

  /// Whether this shard takes `oid` (a valid oid: 64 hex digits).
  bool takes(const std::string& oid) const;

  /// "I/N", or empty for the whole source.
  std::string describe() const;
};

/// An environment variable's value, or std::nullopt when it is not set.
using environment_lookup = std::function<std::optional<std::string>(const std::string& name)>;

/// `--shard auto`: the shard an orchestrator gave this process, and where
/// it was found ("FERRY_SHARD=2/4", "JOB_COMPLETION_INDEX=1,
/// FERRY_SHARD_COUNT=4", ...).
struct shard_choice {
  migration_shard shard;
  std::string origin;

  /// The first of these that is set decides: FERRY_SHARD=I/N; Kubernetes
  /// Indexed Jobs' JOB_COMPLETION_INDEX (0-based) with FERRY_SHARD_COUNT;
  /// Slurm arrays' SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_COUNT, or else
  /// SLURM_ARRAY_TASK_MIN and _MAX (shard id - min + 1 of max - min + 1).
  /// None set, or a value that is not a shard: errc::config_error saying
  /// which variables were looked at or what is wrong with the value.
  static result<shard_choice> from_environment(const environment_lookup& lookup);
};

/// The name a migration's journal is known by: "SRC -> DST", and
/// " shard I/N" after it for a share of the source.
std::string migration_identity(const std::string& source, const std::string& destination,
                               const migration_shard& shard);

/// The shard `identity` (a migration_identity) names, when it names one of
/// `source` -> `destination`; std::nullopt for another migration.
std::optional<migration_shard> shard_in_identity(const std::string& identity,
                                                 const std::string& source,
                                                 const std::string& destination);

} // namespace ferry
