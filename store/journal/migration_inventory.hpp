#pragma once

// The inventory of one migration (`ferry migrate`): every object to copy,
// with its state, in RocksDB, so a migration of millions of objects needs
// no list in memory and survives kill -9 at any moment. Writes are not
// flushed to disk one by one: after a power loss some items may be pending
// again, and the migration asks the destination about them first.

#include "protocol/status.hpp"
#include "store/journal/transfer_record.hpp"
#include "store/object_store.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace ferry {

/// Where one object of a migration stands in the current run. Every run
/// lists the source again, and what the listing finds starts as pending:
/// nothing an earlier run saw at the destination is taken on trust.
enum class item_state : uint8_t {
  /// Listed in this run; not yet asked about at the destination.
  pending,
  /// The destination lacks it, or holds another size (asked in this run).
  missing,
  /// Copied and verified in this run.
  copied,
  /// The destination has it with the right size (asked in this run).
  present,
  /// The destination has it, read back and hashed in this run (--verify-existing).
  verified,
  /// Failed for good; `errors` says why (the dead-letter list). Kept across
  /// runs until --retry-failed.
  failed,
  /// The source's bytes do not match the oid or size: never copied. Kept
  /// across runs until --retry-failed.
  corrupt,
};

/// "pending", "missing", "copied", "present", "verified", "failed", "corrupt".
const char* to_string(item_state state);

/// One object of the inventory.
struct inventory_item {
  std::string oid;
  int64_t size = 0;
  item_state state = item_state::pending;
  /// Attempts made across all runs.
  int attempts = 0;
  /// The latest attempt errors, oldest first (transfer_record::max_errors).
  std::vector<attempt_error> errors;
  /// The last run whose listing named it (begin_run()).
  int64_t run = 0;
  /// The correlation id of its latest copy (transfer_record::cid), which
  /// ferry.log's lines about that copy carry; empty before the first.
  std::string cid;
};

/// Objects and bytes per state.
struct inventory_totals {
  struct count {
    int64_t objects = 0;
    int64_t bytes = 0;
  };
  count pending, missing, copied, present, verified, failed, corrupt;
  count all() const;
  /// Objects not settled yet: pending and missing.
  count open() const;
};

/// A migration's inventory, in its own RocksDB directory. One process at a
/// time (open() takes RocksDB's lock; a second opener gets errc::busy).
class migration_inventory {
public:
  /// Opens or creates the inventory in `dir`. `identity` names the
  /// migration (source, destination, shard); an existing inventory made for
  /// another identity is errc::config_error naming both, so one journal
  /// directory never mixes two migrations.
  static result<std::unique_ptr<migration_inventory>> open(const std::filesystem::path& dir,
                                                           const std::string& identity);

  /// The identity of the inventory in `dir`, read without taking it (while
  /// a run holds it too); empty when `dir` holds no inventory yet.
  static result<std::string> identity_in(const std::filesystem::path& dir);
  ~migration_inventory();
  migration_inventory(const migration_inventory&) = delete;
  migration_inventory& operator=(const migration_inventory&) = delete;

  /// Starts a run: the listing that follows stamps what it finds with a new
  /// run number (kept in the inventory). Returns it.
  result<int64_t> begin_run();

  /// Adds one batch of this run's listing, in one write. A new object is
  /// pending; a known one becomes pending again unless it failed or is
  /// corrupt (those wait for --retry-failed), so whatever an earlier run saw
  /// at the destination is asked about again. An earlier run's size gives
  /// way to this run's (a dead letter listed with a new size is pending
  /// again). An oid this run lists with two sizes is errc::config_error
  /// naming both, and nothing of the batch is written. Returns how many
  /// were new.
  result<size_t> add(const std::vector<object_info>& objects);

  /// Once this run's listing is complete: removes the objects it did not
  /// name (gone from the source since an earlier run). Returns how many.
  result<size_t> forget_unlisted();

  /// Up to `limit` items in `state`, in oid order, starting after the oid
  /// `after` (empty: from the first). Pages keep memory bounded whatever
  /// the inventory's size.
  result<std::vector<inventory_item>> page(item_state state, const std::string& after,
                                           size_t limit) const;

  /// Looks one item up; std::nullopt when the oid is not in the inventory.
  result<std::optional<inventory_item>> get(const std::string& oid) const;

  /// Moves an item to `state`. `error`, when given, is appended
  /// to its error history; `attempts` is added to its attempt count; a
  /// non-empty `cid` replaces the item's.
  status set_state(const std::string& oid, item_state state, int attempts = 0,
                   const std::optional<attempt_error>& error = std::nullopt,
                   const std::string& cid = {});

  /// Moves several items to `state` in one write (the destination already
  /// had them); unknown oids are skipped.
  status set_states(const std::vector<std::string>& oids, item_state state);

  /// Moves every item in one of `states` to `to`, keeping its error
  /// history: failed and corrupt ones back to pending for --retry-failed,
  /// pending ones to missing once a complete listing of the destination
  /// has not found them. Returns how many.
  result<size_t> move_all(const std::vector<item_state>& states, item_state to);

  /// Counts objects and bytes per state with one pass over the inventory.
  result<inventory_totals> totals() const;

private:
  struct impl;
  explicit migration_inventory(std::unique_ptr<impl> state);
  std::unique_ptr<impl> impl_;
};

} // namespace ferry
