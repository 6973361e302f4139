#pragma once

#include "actors/interfaces.hpp"
#include "store/journal/journal_db.hpp"
#include "store/object_store.hpp"

#include <caf/typed_response_promise.hpp>

#include <memory>
#include <vector>

namespace ferry {

struct journal_state {
  /// The journal; the actor is its only user.
  std::shared_ptr<journal_db> db;

  /// The engine's store (may be null): synced once per group of finishes
  /// before any success in the group is recorded or reported.
  std::shared_ptr<object_store> store;

  /// Finishes waiting for the next group commit.
  struct pending_finish {
    transfer_outcome outcome;
    caf::typed_response_promise<transfer_outcome> promise;
  };
  std::vector<pending_finish> pending;

  /// Loads or creates the record of `job`, marks it in flight and counts the attempt.
  result<transfer_record> begin(const transfer_job& job, const std::string& backend);

  /// Records where an attempt actually continues (the store may hold more
  /// than the journal's resume point).
  status started(direction dir, const std::string& oid, int64_t offset);

  /// Advances the resume point of an active record and keeps the store's
  /// resume state with it (ignored for unknown records).
  status commit(direction dir, const std::string& oid, int64_t committed,
                const std::string& store_state);

  /// Records an attempt error and queues the record for its next attempt.
  status failed(direction dir, const std::string& oid, attempt_error error);

  /// Ends a group of transfers: when any succeeded, makes the store's
  /// published objects durable (object_store::sync_published), then moves
  /// every record into history in one journal batch. Returns the outcomes as
  /// recorded, in order: a success the store could not make durable becomes
  /// a failure.
  std::vector<transfer_outcome> finish(std::vector<transfer_outcome> outcomes);

  static inline const char* name = "journal";
};

/// Spawns the JOURNAL over an open database.
/// @param db the journal; no one else may use it while the actor lives.
/// @param store the engine's store, or null: see journal_state::store.
journal_actor::behavior_type journal(journal_actor::stateful_pointer<journal_state> self,
                                     std::shared_ptr<journal_db> db,
                                     std::shared_ptr<object_store> store);

} // namespace ferry
