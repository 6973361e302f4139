#include "actors/policy/migration_plan.hpp"

#include "store/presence_check.hpp"

#include <utility>

namespace ferry {

migration_plan::migration_plan(std::shared_ptr<migration_inventory> inventory,
                               std::shared_ptr<object_store> destination, settings rules,
                               std::function<clock::time_point()> now, tell_function tell)
    : inventory_(std::move(inventory)), destination_(std::move(destination)),
      rules_(std::move(rules)), now_(std::move(now)), tell_(std::move(tell)) {}

status migration_plan::start() {
  started_ = now_();
  auto totals = inventory_->totals();
  if (!totals)
    return totals.error();
  auto all = totals->all();
  progress_.total_objects = all.objects;
  progress_.total_bytes = all.bytes;
  progress_.done_objects = all.objects - totals->open().objects;
  progress_.done_bytes = all.bytes - totals->open().bytes;
  progress_.failed_objects = totals->failed.objects + totals->corrupt.objects;
  return status::success();
}

result<std::optional<planned_copy>> migration_plan::next_copy() {
  while (static_cast<int>(in_flight_.size() - awaiting_sync_) < rules_.concurrency.limit() &&
         awaiting_sync_ < max_awaiting_sync) {
    if (ready_.empty()) {
      // A page being checked elsewhere comes back through put_page().
      if (exhausted_ || page_out_)
        break;
      if (auto filled = fill(); !filled)
        return filled;
      continue;
    }
    auto next = std::move(ready_.front());
    ready_.pop_front();
    planned_copy copy{next_id_++, next.item.oid, next.item.size, next.known_absent};
    in_flight_[copy.id] = {std::move(next.item), now_(), std::nullopt};
    return {std::move(copy)};
  }
  return {std::nullopt};
}

bool migration_plan::done() const { return exhausted_ && ready_.empty() && in_flight_.empty(); }

migration_progress migration_plan::progress() const {
  auto out = progress_;
  out.in_flight = static_cast<int>(in_flight_.size());
  out.concurrency = rules_.concurrency.limit();
  out.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(now_() - started_);
  return out;
}

void migration_plan::count_done(const inventory_item& item, bool failed) {
  progress_.done_objects += 1;
  progress_.done_bytes += item.size;
  if (failed)
    progress_.failed_objects += 1;
}

result<bool> migration_plan::verify_copy(inventory_item& item) {
  auto intact = read_back_matches(*destination_, {item.oid, item.size});
  if (intact && *intact)
    return true;
  auto why =
    intact ? std::string{"does not match its oid"} : "cannot be read: " + intact.error().message();
  if (tell_)
    tell_(notice_level::warning,
          destination_->describe() + "'s copy of " + item.oid + " " + why + "; copying it again");
  // A store that cannot remove (an LFS server) keeps the bad copy: that
  // object fails, the others go on.
  if (auto removed = destination_->remove(item.oid); !removed) {
    attempt_error error{now_ms(), to_string(removed.code()),
                        "the destination's copy is damaged and cannot be replaced: " +
                          removed.message()};
    if (auto recorded = inventory_->set_state(item.oid, item_state::failed, 0, error); !recorded)
      return recorded;
    count_done(item, true);
    return false;
  }
  ready_.push_back({std::move(item), false});
  return false;
}

bool migration_plan::wants_page() const {
  return !page_out_ && !exhausted_ && ready_.size() < page_objects;
}

result<std::optional<inventory_page>> migration_plan::take_page() {
  if (page_out_ || exhausted_)
    return {std::nullopt};
  inventory_page out;
  if (!missing_taken_) {
    // A walk of the destination's listing found these missing: they are
    // copied without asking again.
    auto page = inventory_->page(item_state::missing, missing_cursor_, page_objects);
    if (!page)
      return page.error();
    if (!page->empty()) {
      missing_cursor_ = page->back().oid;
      out.items = std::move(*page);
      page_out_ = true;
      return {std::move(out)};
    }
    missing_taken_ = true;
  }
  auto page = inventory_->page(item_state::pending, pending_cursor_, page_objects);
  if (!page)
    return page.error();
  if (page->empty()) {
    exhausted_ = true;
    return {std::nullopt};
  }
  pending_cursor_ = page->back().oid;
  out.items = std::move(*page);
  out.ask = true;
  page_out_ = true;
  return {std::move(out)};
}

status migration_plan::put_page(inventory_page page) {
  page_out_ = false;
  if (!page.ask) {
    // This run's walk of the destination's listing did not find them.
    for (auto& item : page.items)
      ready_.push_back({std::move(item), true});
    return status::success();
  }
  auto& answers = page.answers;
  std::vector<std::string> present;
  std::vector<std::string> verified;
  size_t unanswered = 0;
  status first_error;
  for (size_t i = 0; i < page.items.size(); ++i) {
    auto& item = page.items[i];
    auto& held = answers.sizes[i];
    if (!held && unanswered++ == 0)
      first_error = held.error();
    if (!answers.holds(i, item.size)) {
      // Only an answer of "none" spares the copy its own question: an
      // unanswered object, or one held with another size, is asked again.
      bool absent = held && !*held;
      ready_.push_back({std::move(item), absent});
      continue;
    }
    if (rules_.verify_existing) {
      auto intact = verify_copy(item);
      if (!intact)
        return intact.error();
      if (!*intact)
        continue;
    }
    count_done(item, false);
    (rules_.verify_existing ? verified : present).push_back(item.oid);
  }
  if (!answers.batch_error) {
    // Said on stderr once per run, not per page or object: a destination
    // that is down would otherwise add a line for every page. Each copy
    // asks the destination again before it writes anything.
    auto level = std::exchange(told_unanswered_, true) ? notice_level::info : notice_level::warning;
    if (tell_ && unanswered > 0)
      tell_(level, "cannot ask " + destination_->describe() + " whether it holds " +
                     std::to_string(unanswered) + " of these " + std::to_string(page.items.size()) +
                     " objects (" + first_error.to_string() + "); copying them");
    else if (tell_)
      tell_(level, "cannot ask " + destination_->describe() + " about " +
                     std::to_string(page.items.size()) + " objects at once (" +
                     answers.batch_error.to_string() + "); asked about each alone");
  }
  if (auto recorded = inventory_->set_states(present, item_state::present); !recorded)
    return recorded;
  return inventory_->set_states(verified, item_state::verified);
}

status migration_plan::fill() {
  auto page = take_page();
  if (!page)
    return page.error();
  if (!*page)
    return status::success();
  check_page(**page, *destination_, rules_.source.get());
  return put_page(std::move(**page));
}

result<copy_verdict> migration_plan::finish_copy(uint64_t id, const copy_result& outcome) {
  auto found = in_flight_.find(id);
  if (found == in_flight_.end())
    return copy_verdict::unknown;
  auto item = std::move(found->second.item);
  // The latency the concurrency control learns from is the time a slot was taken.
  auto slot_freed = found->second.stored.value_or(now_());
  auto latency =
    std::chrono::duration_cast<std::chrono::milliseconds>(slot_freed - found->second.started);
  if (found->second.stored)
    --awaiting_sync_;
  in_flight_.erase(found);
  if (outcome.code == errc::ok) {
    // A copy that needed retries met errors or a rate limit on the way.
    if (outcome.attempts > 1)
      rules_.concurrency.on_failure(true);
    else
      rules_.concurrency.on_success(latency, item.size);
    auto state = outcome.found_present ? item_state::present : item_state::copied;
    auto recorded = inventory_->set_state(item.oid, state, outcome.attempts, {}, outcome.cid);
    count_done(item, false);
    if (!recorded)
      return recorded;
    return outcome.found_present ? copy_verdict::present : copy_verdict::copied;
  }
  // The error history keeps the code apart from the message.
  std::string code = to_string(outcome.code);
  std::string message = outcome.message;
  if (message.rfind(code + ": ", 0) == 0)
    message.erase(0, code.size() + 2);
  // A full disk or a used-up quota would fail every later copy as well,
  // and each would wait in the dead-letter list for --retry-failed. The
  // run stops instead: the object stays to be copied, and once there is
  // space the same command finishes the migration.
  if (outcome.code == errc::no_space)
    return status{errc::no_space, "out of space while copying " + item.oid + ": " + message};
  // A missing or corrupt object says nothing about the stores' load.
  if (classify(outcome.code) == retry_class::transient)
    rules_.concurrency.on_failure(outcome.code == errc::unavailable);
  // Bytes that do not match the oid or the listed size were never copied.
  bool corrupt = outcome.code == errc::hash_mismatch || outcome.code == errc::size_mismatch;
  // From a server they may have been damaged on the way: one more copy
  // decides before the source is called corrupt.
  if (corrupt && rules_.source_is_server && second_chances_.insert(item.oid).second) {
    if (tell_)
      tell_(notice_level::warning, item.oid + ": " + outcome.message + "; copying it once more");
    ready_.push_back({std::move(item), false});
    return copy_verdict::again;
  }
  attempt_error error{now_ms(), code, message};
  auto recorded =
    inventory_->set_state(item.oid, corrupt ? item_state::corrupt : item_state::failed,
                          outcome.attempts, error, outcome.cid);
  count_done(item, true);
  if (!recorded)
    return recorded;
  return corrupt ? copy_verdict::corrupt : copy_verdict::failed;
}

void migration_plan::stored(uint64_t id) {
  auto found = in_flight_.find(id);
  if (found == in_flight_.end() || found->second.stored)
    return;
  found->second.stored = now_();
  ++awaiting_sync_;
}

result<size_t> requeue_failed(migration_inventory& inventory) {
  return inventory.move_all({item_state::failed, item_state::corrupt}, item_state::pending);
}

inventory_totals::count failures_of(const inventory_totals& totals) {
  return {totals.failed.objects + totals.corrupt.objects,
          totals.failed.bytes + totals.corrupt.bytes};
}

status summarize(const migration_inventory& inventory, migration_summary& summary,
                 size_t max_failures) {
  auto totals = inventory.totals();
  if (!totals)
    return totals.error();
  summary.totals = *totals;
  summary.failures.clear();
  for (auto state : {item_state::failed, item_state::corrupt}) {
    auto page = inventory.page(state, "", max_failures - summary.failures.size());
    if (page)
      for (auto& item : *page)
        summary.failures.push_back(std::move(item));
  }
  summary.failures_left_out =
    failures_of(summary.totals).objects - static_cast<int64_t>(summary.failures.size());
  return status::success();
}

} // namespace ferry
