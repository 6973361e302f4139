#include "store/presence_check.hpp"

#include <string>

namespace ferry {

namespace {

/// Settled items are written in batches of this many.
constexpr size_t settle_batch = 1000;

} // namespace

size_answers ask_sizes(object_store& store, const std::vector<object_info>& objects) {
  size_answers answers;
  auto batch = store.sizes_of(objects);
  if (batch && batch->size() == objects.size()) {
    answers.sizes.assign(batch->begin(), batch->end());
    return answers;
  }
  answers.batch_error = batch
                          ? status{errc::unavailable, store.describe() + " answered about " +
                                                        std::to_string(batch->size()) + " of " +
                                                        std::to_string(objects.size()) + " objects"}
                          : batch.error();
  answers.sizes.reserve(objects.size());
  // A store found unavailable while asking about one object is not asked
  // about the rest: each question to a host that is down would cost a
  // connection attempt or a timeout, and would end the same way.
  std::optional<status> down;
  for (const auto& object : objects) {
    if (down) {
      answers.sizes.emplace_back(*down);
      continue;
    }
    auto one = store.sizes_of({object});
    if (!one && one.error().code() == errc::unavailable)
      down = one.error();
    if (!one)
      answers.sizes.emplace_back(one.error());
    else if (one->size() != 1)
      answers.sizes.emplace_back(
        status{errc::unavailable, store.describe() + " gave no answer about " + object.oid});
    else
      answers.sizes.emplace_back(one->front());
  }
  return answers;
}

result<listing_settled> settle_by_listing(object_store& destination, migration_inventory& inventory,
                                          int64_t max_listed, const listing_visitors& visitors,
                                          item_state other_size) {
  listing_settled settled;
  std::vector<std::string> present;
  std::vector<std::string> other;
  status recorded;
  auto record = [&](size_t at_least) {
    if (present.size() >= at_least && !present.empty()) {
      recorded = inventory.set_states(present, item_state::present);
      present.clear();
    }
    if (recorded && other.size() >= at_least && !other.empty()) {
      recorded = inventory.set_states(other, other_size);
      other.clear();
    }
    return recorded.ok();
  };
  bool reached_limit = false;
  auto walked = destination.list([&](const object_info& held) {
    if (max_listed >= 0 && settled.listed >= max_listed) {
      reached_limit = true;
      return false;
    }
    if (++settled.listed % settle_batch == 0 && visitors.walked)
      visitors.walked(settled.listed);
    auto known = inventory.get(held.oid);
    if (!known) {
      recorded = known.error();
      return false;
    }
    if (!known->has_value()) {
      ++settled.extra;
      if (visitors.extra)
        visitors.extra(held);
      return true;
    }
    const inventory_item& item = known->value();
    if (item.state != item_state::pending)
      return true;
    if (held.size == item.size) {
      ++settled.present;
      present.push_back(item.oid);
    } else {
      ++settled.size_differs;
      other.push_back(item.oid);
      if (visitors.size_differs)
        visitors.size_differs(held, item.size);
    }
    return record(settle_batch);
  });
  if (!recorded || !record(0))
    return recorded;
  if (!walked) {
    settled.stopped = walked;
    return settled;
  }
  if (reached_limit)
    return settled;
  settled.complete = true;
  auto moved = inventory.move_all({item_state::pending}, item_state::missing);
  if (!moved)
    return moved.error();
  return settled;
}

void check_page(inventory_page& page, object_store& destination, object_store* source) {
  std::vector<object_info> objects;
  objects.reserve(page.items.size());
  for (auto& item : page.items)
    objects.push_back({item.oid, item.size});
  if (page.ask)
    page.answers = ask_sizes(destination, objects);
  if (!source)
    return;
  std::vector<object_info> to_read;
  for (size_t i = 0; i < objects.size(); ++i)
    if (!page.ask || !page.answers.holds(i, objects[i].size))
      to_read.push_back(objects[i]);
  // A failure here is met again, and reported, by each copy's own read.
  if (!to_read.empty())
    (void)source->expect_reads(to_read);
}

} // namespace ferry
