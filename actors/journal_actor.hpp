#pragma once

#include "actors/interfaces.hpp"
#include "store/journal/journal_db.hpp"
#include "store/object_store.hpp"

#include <caf/typed_response_promise.hpp>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace ferry {

struct journal_state {
  /// The journal; the actor is its only user.
  std::shared_ptr<journal_db> db;

  /// Syncs the engine's store for each group of finishes before any success
  /// in the group is recorded or reported; invalid when there is no store.
  store_syncer_actor syncer;

  /// Finishes waiting for the next group commit.
  struct pending_finish {
    transfer_outcome outcome;
    caf::typed_response_promise<transfer_outcome> promise;
  };
  std::vector<pending_finish> pending;
  /// A group is being synced: finishes arriving meanwhile wait for the next.
  bool flushing = false;

  /// The active records this actor wrote, as `db` holds them, by active key
  /// (record_key()): a transfer's progress and finish read its record here
  /// instead of from the database. Dropped when the record finishes.
  std::unordered_map<std::string, transfer_record> written;

  /// The active record of `oid`, from `written` or else from the database.
  result<std::optional<transfer_record>> load(direction dir, const std::string& oid);

  /// Writes an active record and remembers it in `written`.
  status save(const transfer_record& record,
              journal_db::durability how = journal_db::durability::synced);

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

  /// Moves the records of a group of ended transfers (their outcomes as the
  /// store syncer returned them) into history in one journal batch, and
  /// gives each outcome its record's correlation id.
  void finish(std::vector<transfer_outcome>& outcomes);

  static inline const char* name = "journal";
};

/// Publishes and syncs `store` for a group of ended transfers: when any
/// succeeded, calls store.sync_published() and returns the outcomes with
/// each success it could not publish or make durable turned into a failure.
std::vector<transfer_outcome> sync_group(object_store& store,
                                         std::vector<transfer_outcome> outcomes);

/// Spawns the STORE SYNCER of `store` (not null).
store_syncer_actor::behavior_type store_syncer(store_syncer_actor::pointer self,
                                               std::shared_ptr<object_store> store);

/// Spawns the JOURNAL over an open database.
/// @param db the journal; no one else may use it while the actor lives.
/// @param syncer the engine store's syncer (the journal links to it), or
///        invalid when there is no store.
journal_actor::behavior_type journal(journal_actor::stateful_pointer<journal_state> self,
                                     std::shared_ptr<journal_db> db, store_syncer_actor syncer);

} // namespace ferry
