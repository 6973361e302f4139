#pragma once

#include "actors/interfaces.hpp"
#include "store/journal/journal_db.hpp"

#include <memory>

namespace ferry {

struct journal_state {
  /// The journal; the actor is its only user.
  std::shared_ptr<journal_db> db;

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

  /// Moves a transfer into history as done or failed.
  status finish(const transfer_outcome& outcome);

  static inline const char* name = "journal";
};

/// Spawns the JOURNAL over an open database.
/// @param db the journal; no one else may use it while the actor lives.
journal_actor::behavior_type journal(journal_actor::stateful_pointer<journal_state> self,
                                     std::shared_ptr<journal_db> db);

} // namespace ferry
