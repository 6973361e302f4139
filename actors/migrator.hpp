#pragma once

// `ferry migrate`'s engine: the MIGRATOR actor and the function that runs
// it with the journal, rate limiter and supervisor the agent uses too.

#include "actors/policy/concurrency_control.hpp"
#include "actors/policy/engine_config.hpp"
#include "actors/interfaces.hpp"
#include "actors/policy/migration_report.hpp"
#include "store/journal/journal_db.hpp"
#include "store/journal/migration_inventory.hpp"

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <set>
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
  /// One copy in flight.
  struct flight {
    inventory_item item;
    std::chrono::steady_clock::time_point started;
  };

  std::shared_ptr<const migration_options> options;
  supervisor_actor supervisor;
  /// Checked absent at the destination, waiting for a free slot.
  std::deque<inventory_item> ready;
  /// The last oid taken from the inventory's missing items, and whether
  /// all of them were taken.
  std::string missing_cursor;
  bool missing_taken = false;
  /// The last oid taken from the inventory's pending items.
  std::string cursor;
  bool exhausted = false;
  std::map<uint64_t, flight> in_flight;
  /// Objects from a server whose bytes did not match once, copied again.
  std::set<std::string> second_chances;
  /// Whether stderr was told that the destination could not answer about
  /// a page; later pages say so in the log file only.
  bool told_unanswered = false;
  uint64_t next_id = 1;
  concurrency_control concurrency = concurrency_control::fixed(1);
  migration_progress progress;
  std::chrono::steady_clock::time_point started;

  static inline const char* name = "migrator";
};

/// Spawns the MIGRATOR. It copies the inventory's missing objects, then
/// takes pending ones in pages of 100, asks the destination about each page
/// at once (sizes_of; --verify-existing reads what is there back), records
/// those it has as present (verified), and runs the rest as copy
/// jobs through `supervisor` (retries, backoff, rate limits and resume come
/// from there). Each outcome is recorded in the inventory: copied, failed
/// (with its error) or corrupt (the source's bytes do not match the oid or
/// size). It stops when nothing is pending or in flight; a failure to
/// record an outcome stops it with that error.
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
