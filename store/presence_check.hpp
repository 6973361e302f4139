#pragma once

// Asking a destination what it holds, for `ferry migrate` (what must be
// copied in this run) and `ferry check` (do two stores match). Only asks:
// nothing here reads an object's content or changes a store.

#include "protocol/status.hpp"
#include "store/journal/migration_inventory.hpp"
#include "store/object_store.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace ferry {

/// What a store said about each object of a batch: the size it holds
/// (std::nullopt: none), or the error met asking about that object.
struct size_answers {
  std::vector<result<std::optional<int64_t>>> sizes;
  /// Why the batched question failed, when it did and each object was
  /// asked alone instead; success otherwise.
  status batch_error;

  /// Whether the store answered for object `i` and holds it with exactly
  /// `size` bytes: the one rule for "already at the destination".
  bool holds(size_t i, int64_t size) const { return sizes[i] && *sizes[i] && **sizes[i] == size; }
};

/// Asks `store` about `objects` with one sizes_of() call. When that fails,
/// each object is asked alone, so one object the store cannot answer for
/// does not leave the others unknown. Once the store is found unavailable
/// (errc::unavailable), the objects not yet asked get that error unasked.
size_answers ask_sizes(object_store& store, const std::vector<object_info>& objects);

/// A page of inventory items on its way to be copied (migration_plan::take_page() in
/// actors/policy).
struct inventory_page {
  std::vector<inventory_item> items;
  /// Pending items: the destination is asked whether it holds each. Items a
  /// walk of the destination's listing found missing are not.
  bool ask = false;
  /// The destination's answers, one per item (when `ask`): check_page().
  size_answers answers;
};

/// Asks `destination` about the page's items (when page.ask), then announces
/// the reads of those it does not hold to `source` (may be null), so a
/// server that wants sizes (LFS) is asked about them in one request. Blocks
/// on both stores; callable from any thread.
void check_page(inventory_page& page, object_store& destination, object_store* source);

/// What settle_by_listing() found.
struct listing_settled {
  /// The destination's whole listing was walked: every item still pending
  /// was then moved to missing.
  bool complete = false;
  /// Why the walk stopped early: an error of the listing, or success when
  /// it reached `max_listed`.
  status stopped;
  int64_t listed = 0;
  int64_t present = 0;
  int64_t size_differs = 0;
  int64_t extra = 0;
};

/// Told about the destination's objects that do not match the inventory.
struct listing_visitors {
  /// An object the inventory does not know (extra at the destination).
  std::function<void(const object_info& held)> extra;
  /// A pending item the destination holds with another size.
  std::function<void(const object_info& held, int64_t wanted)> size_differs;
  /// Told the count of objects walked so far, every 1000.
  std::function<void(int64_t listed)> walked;
};

/// Settles the inventory's pending items from one walk of the destination's
/// listing: held with the listed size is present, with another size
/// `other_size` (missing, for a migration that copies it again).
/// A walk that ends complete moves every item still pending to missing (the
/// destination does not have it). The walk stops after `max_listed` objects
/// (negative: no limit), when asking about the rest one by one has become
/// cheaper; what it settled stays settled. Only pending items change.
result<listing_settled> settle_by_listing(object_store& destination, migration_inventory& inventory,
                                          int64_t max_listed, const listing_visitors& visitors = {},
                                          item_state other_size = item_state::missing);

} // namespace ferry
