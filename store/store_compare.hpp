#pragma once

// `ferry check`: compares two stores without changing either, the way
// `rclone check` does. Each object of the source is looked for at the
// destination; objects the destination holds that the source does not are
// extra (for a destination that can list); with hashing, both copies are
// read and hashed against the oid.

#include "protocol/status.hpp"
#include "store/journal/migration_inventory.hpp"
#include "store/object_store.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ferry {

/// How one object differs between the two stores.
enum class difference : uint8_t {
  /// The source has it; the destination does not.
  missing,
  /// The destination has it; the source does not.
  extra,
  /// Both have it, with different sizes.
  size_differs,
  /// The destination's copy does not hash to the oid (with hashing).
  content_differs,
  /// The source's copy does not hash to the oid (with hashing).
  corrupt_at_source,
  /// A store could not answer for it: the error says why.
  unreadable,
};

/// "missing", "extra", "size_differs", "content_differs",
/// "corrupt_at_source", "unreadable".
const char* to_string(difference kind);

/// One object that differs.
struct compare_finding {
  difference kind = difference::missing;
  std::string oid;
  /// The size the source lists (the destination's, for an extra object).
  int64_t size = 0;
  /// The size the destination holds, when it told one.
  std::optional<int64_t> destination_size;
  /// What went wrong, for content and unreadable findings.
  std::string detail;
};

/// Where a comparison stands, for a progress display.
struct compare_progress {
  /// "listing the source", "asking the destination", "hashing".
  std::string phase;
  int64_t done = 0;
  /// 0 while unknown.
  int64_t total = 0;
  int64_t bytes_hashed = 0;
};

struct compare_options {
  /// Read both copies of every object present on both sides and hash them.
  bool hash = false;
  /// Objects read and hashed at once.
  int hash_workers = 4;
  /// Told about each difference as it is found, from one thread at a time.
  std::function<void(const compare_finding&)> found;
  /// Told how far the comparison is, at most every `progress_every`.
  std::function<void(const compare_progress&)> progress;
  std::chrono::milliseconds progress_every{1000};
};

/// What a comparison found, object and byte counts per outcome. Every
/// object of the source is counted once: matched or in one difference;
/// extra objects are counted apart.
struct compare_totals {
  inventory_totals::count source, matched, missing, size_differs, content_differs,
    corrupt_at_source, unreadable, extra;
  /// Of the matched objects, those read and hashed on both sides.
  inventory_totals::count hashed;
  /// False when the destination cannot list its objects (an LFS server):
  /// extra objects are then unknown.
  bool extra_known = false;

  /// True when nothing differs.
  bool match() const;
};

/// Compares `source` and `destination`. `list_source` streams the source's
/// objects (its own listing, a repository's pointers or an inventory file)
/// in batches; `scratch` is an empty inventory in a throw-away directory
/// that keeps the listing on disk, so memory stays flat however many
/// objects there are. Neither store is written. An error means the
/// comparison could not finish.
result<compare_totals> compare_stores(
  object_store& source, object_store& destination,
  const std::function<status(const std::function<status(const std::vector<object_info>&)>&)>&
    list_source,
  migration_inventory& scratch, const compare_options& options);

} // namespace ferry
