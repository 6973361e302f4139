#pragma once

// `ferry migrate`'s engine: the MIGRATOR actor and the function that runs
// it with the journal, rate limiter and supervisor the agent uses too.

#include "actors/interfaces.hpp"
#include "actors/policy/concurrency_control.hpp"
#include "actors/policy/engine_config.hpp"
#include "actors/policy/migration_plan.hpp"
#include "actors/policy/migration_report.hpp"
#include "store/journal/journal_db.hpp"
#include "store/journal/migration_inventory.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace ferry {

struct migration_options {
  /// `store` is the destination, `source` where objects are read.
  engine_config config;
  /// Copy records, for resuming an interrupted write (multipart uploads).
  std::shared_ptr<journal_db> journal;
  std::shared_ptr<migration_inventory> inventory;
  concurrency_control concurrency = concurrency_control::fixed(8);
  /// Objects the destination already has are read back and hashed (then
  /// verified); a bad copy is removed and copied again.
  bool verify_existing = false;
  /// Called with the progress every `progress_every`, and with the final
  /// numbers (moved_bytes: what this run moved) when the migration ends.
  std::function<void(const migration_progress&)> show_progress;
  std::chrono::milliseconds progress_every{1000};
};

struct migrator_state {
  std::shared_ptr<const migration_options> options;
  supervisor_actor supervisor;
  /// Decides what to copy and records how each copy ended.
  std::unique_ptr<migration_plan> plan;
  /// Checks the next page while copies run.
  page_checker_actor checker;

  static inline const char* name = "migrator";
};

/// Spawns the MIGRATOR. Its migration_plan decides which objects to copy
/// (the inventory's missing ones, then pending ones the destination lacks)
/// and records each outcome; the MIGRATOR runs those copies as jobs
/// through `supervisor` (retries, backoff, rate limits and resume come from
/// there) and shows the progress. It stops when the plan is done; a failure
/// to record an outcome stops it with that error.
migrator_actor::behavior_type migrator(migrator_actor::stateful_pointer<migrator_state> self,
                                       std::shared_ptr<const migration_options> options,
                                       supervisor_actor supervisor);

/// Runs a migration over the inventory until nothing is pending: recovers
/// copies a crash interrupted, then starts the journal, rate limiter,
/// supervisor and MIGRATOR actors. Objects that fail are recorded, not
/// returned; an error means the migration could not go on (the inventory
/// could not be written).
status run_migration(migration_options options);

} // namespace ferry
