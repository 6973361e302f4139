#pragma once

// What `ferry migrate` does next, and what each copy's outcome means: the
// paging of the inventory, the questions to the destination, the rules for
// recording outcomes and the counting for progress. A plain class: the
// MIGRATOR actor asks it which copies to start and tells it how they ended;
// time comes from an injected clock, so tests drive it without an actor
// system or real waiting.

#include "actors/policy/concurrency_control.hpp"
#include "actors/policy/migration_report.hpp"
#include "protocol/status.hpp"
#include "store/journal/migration_inventory.hpp"
#include "store/object_store.hpp"
#include "store/presence_check.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

namespace ferry {

/// One copy the plan wants started; `id` names it in finish_copy().
struct planned_copy {
  uint64_t id = 0;
  std::string oid;
  int64_t size = 0;
  /// This run found that the destination does not hold the object (its
  /// answer to a page check, or its listing): the copy need not ask again
  /// before it writes.
  bool known_absent = false;
};

/// How a copy ended (the transfer supervisor's final outcome).
struct copy_result {
  errc code = errc::ok;
  std::string message;
  int attempts = 0;
  /// The copy's correlation id (transfer_outcome::cid). The initializer
  /// lets callers without one leave it out of a braced list.
  std::string cid = {};
  /// A success that wrote nothing: the destination already held the object
  /// when the copy asked it again (its page could not be asked).
  bool found_present = false;
};

/// What finish_copy() made of an outcome.
enum class copy_verdict {
  /// Not a copy in flight: nothing changed.
  unknown,
  copied,
  /// The copy found the destination already holding the object.
  present,
  failed,
  corrupt,
  /// Bytes from a server did not match: queued to be copied once more
  /// before the source is called corrupt.
  again,
};

class migration_plan {
public:
  using clock = std::chrono::steady_clock;
  /// Objects taken from the inventory, and asked about at the destination, at once.
  static constexpr size_t page_objects = 100;
  /// Copies stored and waiting for the sync that makes them durable, at
  /// most: they hold no transfer slot, but each keeps its written object
  /// (and, in a folder, two open files) until that sync.
  static constexpr size_t max_awaiting_sync = 256;

  struct settings {
    /// Objects the destination already has are read back and hashed (then
    /// verified); a bad copy is removed and copied again.
    bool verify_existing = false;
    /// The source is a server: bytes that do not match may have been
    /// damaged on the way, so they get one more copy.
    bool source_is_server = false;
    concurrency_control concurrency = concurrency_control::fixed(8);
    /// Where the copies read from (may be null): each page's copies are
    /// announced to it at once (expect_reads), so a server that wants
    /// sizes (LFS) is asked about a page in one request, not per object.
    std::shared_ptr<object_store> source;
  };

  /// Whether a notice belongs on stderr (warning) or in the log file only.
  enum class notice_level { warning, info };
  using tell_function = std::function<void(notice_level, const std::string&)>;

  /// `now` gives the time for copy durations and the elapsed time; `tell`
  /// hears what the user should know (may be empty).
  migration_plan(std::shared_ptr<migration_inventory> inventory,
                 std::shared_ptr<object_store> destination, settings rules,
                 std::function<clock::time_point()> now, tell_function tell = {});

  /// Counts what the inventory holds (done, failed, total) and starts the
  /// clock for the elapsed time.
  status start();

  /// The next copy to start, while fewer than the concurrency limit are in
  /// flight; std::nullopt when the limit is reached or nothing is left to
  /// start now. First the items a walk of the destination's listing found
  /// missing, then pending ones a page at a time: each page is asked about
  /// at the destination at once, and those it holds with the listed size
  /// are recorded as present (verified, after reading them back, with
  /// verify_existing). An error means the inventory could not be read or
  /// written.
  result<std::optional<planned_copy>> next_copy();

  /// Records how copy `id` ended: copied, failed (with its error) or
  /// corrupt (hash or size mismatch), or queued once more (again) for bad
  /// bytes from a server. errc::no_space stops the migration: returned as
  /// an error, the object stays to be copied by the next run. An error
  /// also means the outcome could not be recorded.
  result<copy_verdict> finish_copy(uint64_t id, const copy_result& outcome);

  /// Whether the next page should be taken now (take_page()), to be checked
  /// while the copies queued so far run: fewer than a page is queued, none
  /// is out, and the inventory may hold more.
  bool wants_page() const;

  /// Takes the next page from the inventory (missing items first, then
  /// pending ones) for check_page() on another thread; std::nullopt when the
  /// inventory holds no more, or a page is out already. Until put_page()
  /// brings it back, next_copy() does not take a page itself. An error means
  /// the inventory could not be read.
  result<std::optional<inventory_page>> take_page();

  /// Records a checked page: the items the destination holds with the
  /// listed size are present (verified, after reading them back, with
  /// verify_existing), the others are queued for copies. An error means the
  /// inventory could not be written.
  status put_page(inventory_page page);

  /// Copy `id` has written its object, which now waits for the sync that
  /// makes it durable (its outcome comes after): its transfer slot is free
  /// for the next copy, so the copies stored during one sync share the next.
  void stored(uint64_t id);

  /// A running copy moved `bytes` more.
  void moved(int64_t bytes) { progress_.moved_bytes += bytes; }

  /// Nothing left to take from the inventory, queued or in flight (known
  /// once next_copy() has looked for more).
  bool done() const;

  /// Where the migration stands now.
  migration_progress progress() const;

private:
  struct flight {
    inventory_item item;
    clock::time_point started;
    /// When stored() was called; the copy's transfer slot was free since.
    std::optional<clock::time_point> stored;
  };
  /// An item waiting for a free slot.
  struct queued {
    inventory_item item;
    bool known_absent = false;
  };

  /// Takes, checks and puts the next page of items here and now (see next_copy()).
  status fill();
  /// Reads a present object back: true when intact; a damaged copy is
  /// removed and queued, or fails when the destination cannot remove it.
  result<bool> verify_copy(inventory_item& item);
  void count_done(const inventory_item& item, bool failed);

  std::shared_ptr<migration_inventory> inventory_;
  std::shared_ptr<object_store> destination_;
  settings rules_;
  std::function<clock::time_point()> now_;
  tell_function tell_;
  /// To be copied, waiting for a free slot.
  std::deque<queued> ready_;
  /// The last oid taken from the inventory's missing items, and whether
  /// all of them were taken.
  std::string missing_cursor_;
  bool missing_taken_ = false;
  /// The last oid taken from the inventory's pending items.
  std::string pending_cursor_;
  bool exhausted_ = false;
  /// A page was taken and is not back yet (take_page(), put_page()).
  bool page_out_ = false;
  std::map<uint64_t, flight> in_flight_;
  /// How many of in_flight_ are stored and wait for their sync.
  size_t awaiting_sync_ = 0;
  uint64_t next_id_ = 1;
  /// Objects from a server whose bytes did not match once, copied again.
  std::set<std::string> second_chances_;
  /// Whether stderr was told that the destination could not answer about
  /// a page; later pages say so in the log file only.
  bool told_unanswered_ = false;
  migration_progress progress_;
  clock::time_point started_;
};

/// --retry-failed: moves the failed and corrupt items (the dead-letter
/// list) back to pending, keeping their error histories. Returns how many.
result<size_t> requeue_failed(migration_inventory& inventory);

/// The failed and corrupt objects among `totals`.
inventory_totals::count failures_of(const inventory_totals& totals);

/// Fills `summary` with what the inventory holds at the end of a run: the
/// totals and the dead-letter list (failed, then corrupt, in oid order), at
/// most `max_failures` of them; the rest are counted as left out. An error
/// means the totals could not be counted: nothing can be claimed then.
status summarize(const migration_inventory& inventory, migration_summary& summary,
                 size_t max_failures = 10000);

} // namespace ferry
