#pragma once

#include "protocol/status.hpp"
#include "store/journal/transfer_record.hpp"

#include <filesystem>
#include <memory>
#include <optional>
#include <vector>

namespace ferry {

/// RocksDB persistence of transfer records. Not thread-safe: in the engine,
/// exactly one actor (actors/journal_actor.hpp) owns it.
///
/// Key space:
///   `a/<u|d>/<oid>`   active record (queued or in_flight), one per direction+oid
///   `h/<seq:020>`     finished record (done or failed), newest has the largest seq
///   `m/seq`           next history sequence number
class journal_db {
public:
  struct options {
    /// Finished records kept; older ones are pruned on finish().
    size_t history_limit = 1000;
    /// Open without taking the write lock (for `ferry status` while an agent runs).
    bool read_only = false;
    /// Flush every write to disk before it returns. `ferry migrate` turns
    /// this off: its writes still survive kill -9, and after a power loss
    /// it checks the destination again anyway.
    bool sync_writes = true;
  };

  /// Opens or creates the journal in `dir`. A journal held by another
  /// process gives errc::busy.
  static result<std::unique_ptr<journal_db>> open(const std::filesystem::path& dir, options opts);
  ~journal_db();

  /// The active record for this object, if any.
  result<std::optional<transfer_record>> get(direction dir, const std::string& oid);

  /// How soon a put() reaches the disk.
  enum class durability {
    /// Before put() returns, with options::sync_writes.
    synced,
    /// With the next synced write (the write-ahead log is one sequence), or
    /// when the kernel writes it back; it survives kill -9 at once. For a
    /// record whose loss in a power cut changes nothing that was reported.
    deferred,
  };

  /// Inserts or replaces an active record (state queued or in_flight).
  status put(const transfer_record& record, durability how = durability::synced);

  /// Moves a record whose state is done or failed from the active set into
  /// history in one atomic batch, and prunes history to the limit.
  status finish(const transfer_record& record);

  /// finish() for several records in one atomic batch: one write (one sync
  /// with sync_writes) for a whole group.
  status finish(const std::vector<transfer_record>& records);

  /// All active records.
  result<std::vector<transfer_record>> active();

  /// Up to `limit` finished records, newest first.
  result<std::vector<transfer_record>> history(size_t limit);

  /// Start-up recovery: every in_flight record left by a crash becomes queued
  /// again (keeping committed bytes and errors). Returns the recovered records.
  result<std::vector<transfer_record>> recover();

private:
  struct impl;
  explicit journal_db(std::unique_ptr<impl> state);
  std::unique_ptr<impl> impl_;
};

} // namespace ferry
