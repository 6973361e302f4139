#include "actors/migrator.hpp"

#include "actors/engine.hpp"
#include "actors/logging.hpp"
#include "actors/policy/retry_policy.hpp"
#include "store/presence_check.hpp"

#include <caf/all.hpp>

#include <utility>

namespace ferry {

namespace {

using migrator_pointer = migrator_actor::stateful_pointer<migrator_state>;
using steady = std::chrono::steady_clock;

/// Objects taken from the inventory and asked about at the destination at once.
constexpr size_t page_objects = 100;

void fail(migrator_pointer self, const status& problem) {
  log()->error("migration stopped: {}", problem.to_string());
  self->quit(to_error(problem));
}

void count_done(migrator_pointer self, const inventory_item& item, bool failed) {
  auto& progress = self->state.progress;
  progress.done_objects += 1;
  progress.done_bytes += item.size;
  if (failed)
    progress.failed_objects += 1;
}

/// With --verify-existing, reads a present object back and hashes it:
/// true when it is intact; a damaged copy is removed and goes back to the
/// copy queue, or fails when the destination cannot remove it.
result<bool> verify_copy(migrator_pointer self, inventory_item& item) {
  auto& options = *self->state.options;
  auto& destination = *options.config.store;
  auto intact = read_back_matches(destination, {item.oid, item.size});
  if (intact && *intact)
    return true;
  auto why = intact ? std::string{"does not match its oid"}
                    : "cannot be read: " + intact.error().message();
  log()->warn("{}'s copy of {} {}; copying it again", destination.describe(), item.oid, why);
  // A store that cannot remove (an LFS server) keeps the bad copy: that
  // object fails, the others go on.
  if (auto removed = destination.remove(item.oid); !removed) {
    attempt_error error{now_ms(), to_string(removed.code()),
                        "the destination's copy is damaged and cannot be replaced: " +
                          removed.message()};
    if (auto recorded = options.inventory->set_state(item.oid, item_state::failed, 0, error);
        !recorded)
      return recorded;
    count_done(self, item, true);
    return false;
  }
  self->state.ready.push_back(std::move(item));
  return false;
}

/// Takes the next page of objects to handle: first those a walk of the
/// destination's listing found missing (straight to the copy queue), then
/// pending ones, asked about at the destination a page at a time; those it
/// holds with the right size are recorded as present (or verified), the
/// rest wait in `ready`.
status fill(migrator_pointer self) {
  auto& st = self->state;
  auto& options = *st.options;
  if (!st.missing_taken) {
    auto page = options.inventory->page(item_state::missing, st.missing_cursor, page_objects);
    if (!page)
      return page.error();
    if (!page->empty()) {
      st.missing_cursor = page->back().oid;
      for (auto& item : *page)
        st.ready.push_back(std::move(item));
      return status::success();
    }
    st.missing_taken = true;
  }
  auto page = options.inventory->page(item_state::pending, st.cursor, page_objects);
  if (!page)
    return page.error();
  if (page->empty()) {
    st.exhausted = true;
    return status::success();
  }
  st.cursor = page->back().oid;
  std::vector<object_info> objects;
  objects.reserve(page->size());
  for (auto& item : *page)
    objects.push_back({item.oid, item.size});
  auto& destination = *options.config.store;
  auto answers = ask_sizes(destination, objects);
  std::vector<std::string> present;
  std::vector<std::string> verified;
  size_t unanswered = 0;
  status first_error;
  for (size_t i = 0; i < page->size(); ++i) {
    auto& item = (*page)[i];
    auto& held = answers.sizes[i];
    if (!held && unanswered++ == 0)
      first_error = held.error();
    if (!held || !*held || **held != item.size) {
      st.ready.push_back(std::move(item));
      continue;
    }
    if (options.verify_existing) {
      auto intact = verify_copy(self, item);
      if (!intact)
        return intact.error();
      if (!*intact)
        continue;
    }
    count_done(self, item, false);
    (options.verify_existing ? verified : present).push_back(item.oid);
  }
  if (!answers.batch_error) {
    // Said on stderr once per run, not per page or object: a destination
    // that is down would otherwise add a line for every page. Each copy
    // asks the destination again before it writes anything.
    auto level = std::exchange(st.told_unanswered, true) ? spdlog::level::info
                                                          : spdlog::level::warn;
    if (unanswered > 0)
      log()->log(level, "cannot ask {} whether it holds {} of these {} objects ({}); copying them",
                 destination.describe(), unanswered, objects.size(), first_error.to_string());
    else
      log()->log(level, "cannot ask {} about {} objects at once ({}); asked about each alone",
                 destination.describe(), objects.size(), answers.batch_error.to_string());
  }
  if (auto recorded = options.inventory->set_states(present, item_state::present); !recorded)
    return recorded;
  return options.inventory->set_states(verified, item_state::verified);
}

void on_outcome(migrator_pointer self, const transfer_outcome& outcome) {
  auto& st = self->state;
  auto found = st.in_flight.find(outcome.id);
  if (found == st.in_flight.end())
    return;
  auto item = std::move(found->second.item);
  auto latency = std::chrono::duration_cast<std::chrono::milliseconds>(
    steady::now() - found->second.started);
  st.in_flight.erase(found);
  st.progress.in_flight = static_cast<int>(st.in_flight.size());
  status recorded;
  if (outcome.ok()) {
    // A copy that needed retries met errors or a rate limit on the way.
    if (outcome.attempts > 1)
      st.concurrency.on_failure(true);
    else
      st.concurrency.on_success(latency, item.size);
    recorded = st.options->inventory->set_state(item.oid, item_state::copied, outcome.attempts);
    count_done(self, item, false);
  } else {
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
      return fail(self,
                  {errc::no_space, "out of space while copying " + item.oid + ": " + message});
    // A missing or corrupt object says nothing about the stores' load.
    if (classify(outcome.code) == retry_class::transient)
      st.concurrency.on_failure(outcome.code == errc::unavailable);
    // Bytes that do not match the oid or the listed size were never copied.
    bool corrupt = outcome.code == errc::hash_mismatch || outcome.code == errc::size_mismatch;
    // From a server they may have been damaged on the way: one more copy
    // decides before the source is called corrupt.
    if (corrupt && !st.options->config.source->endpoint().empty() &&
        st.second_chances.insert(item.oid).second) {
      log()->warn("{}: {}; copying it once more", item.oid, outcome.message);
      st.ready.push_back(std::move(item));
      self->send(self, atom::pump_v);
      return;
    }
    attempt_error error{now_ms(), code, message};
    recorded = st.options->inventory->set_state(
      item.oid, corrupt ? item_state::corrupt : item_state::failed, outcome.attempts, error);
    count_done(self, item, true);
  }
  if (!recorded)
    return fail(self, recorded);
  self->send(self, atom::pump_v);
}

void start_copy(migrator_pointer self, inventory_item item) {
  auto& st = self->state;
  transfer_job job;
  job.id = st.next_id++;
  job.dir = direction::copy;
  job.oid = item.oid;
  job.size = item.size;
  auto id = job.id;
  st.in_flight[id] = {std::move(item), steady::now()};
  st.progress.in_flight = static_cast<int>(st.in_flight.size());
  auto sink = caf::actor_cast<progress_sink_actor>(self);
  self->request(st.supervisor, caf::infinite, atom::run_v, std::move(job), sink)
    .then([=](const transfer_outcome& outcome) { on_outcome(self, outcome); },
          [=](const caf::error& err) {
            auto problem = to_status(err);
            transfer_outcome outcome;
            outcome.id = id;
            outcome.dir = direction::copy;
            outcome.code = problem.code();
            outcome.message = problem.message();
            on_outcome(self, outcome);
          });
}

void show(migrator_pointer self) {
  auto& st = self->state;
  if (!st.options->show_progress)
    return;
  st.progress.elapsed =
    std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - st.started);
  st.progress.concurrency = st.concurrency.limit();
  st.options->show_progress(st.progress);
}

void pump(migrator_pointer self) {
  auto& st = self->state;
  while (static_cast<int>(st.in_flight.size()) < st.concurrency.limit()) {
    if (st.ready.empty()) {
      if (st.exhausted)
        break;
      if (auto filled = fill(self); !filled)
        return fail(self, filled);
      continue;
    }
    auto item = std::move(st.ready.front());
    st.ready.pop_front();
    start_copy(self, std::move(item));
  }
  if (st.exhausted && st.ready.empty() && st.in_flight.empty()) {
    show(self);
    self->quit();
  }
}

} // namespace

migrator_actor::behavior_type migrator(migrator_actor::stateful_pointer<migrator_state> self,
                                       std::shared_ptr<const migration_options> options,
                                       supervisor_actor supervisor) {
  auto& st = self->state;
  st.options = std::move(options);
  st.supervisor = std::move(supervisor);
  st.concurrency = st.options->concurrency;
  st.started = steady::now();
  auto totals = st.options->inventory->totals();
  if (!totals) {
    fail(self, totals.error());
    return {[](atom::pump) {}, [](atom::tick) {}, [](atom::progress, const progress_note&) {}};
  }
  auto all = totals->all();
  st.progress.total_objects = all.objects;
  st.progress.total_bytes = all.bytes;
  st.progress.done_objects = all.objects - totals->open().objects;
  st.progress.done_bytes = all.bytes - totals->open().bytes;
  st.progress.failed_objects = totals->failed.objects + totals->corrupt.objects;
  self->send(self, atom::pump_v);
  self->send(self, atom::tick_v);
  return {
    [=](atom::pump) { pump(self); },
    [=](atom::tick) {
      show(self);
      self->delayed_send(self, self->state.options->progress_every, atom::tick_v);
    },
    [=](atom::progress, const progress_note& note) {
      self->state.progress.moved_bytes += note.bytes_since_last;
    },
  };
}

status run_migration(migration_options options) {
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 4);
  caf::actor_system sys{cfg};
  auto shared = std::make_shared<const migration_options>(std::move(options));
  auto config = std::make_shared<const engine_config>(shared->config);
  status outcome;
  {
    caf::scoped_actor self{sys};
    auto core = start_engine_core(sys, self, config, shared->journal,
                                  [](const transfer_record& record) {
                                    log()->info("continuing the interrupted copy of {} ({} of {} "
                                                "bytes durable)",
                                                record.oid, record.committed, record.size);
                                  });
    // The migrator asks the destination and the inventory directly, which
    // blocks, so it gets a thread of its own.
    auto driver = sys.spawn<caf::detached>(migrator, shared, core.supervisor);
    self->monitor(driver);
    self->receive([&](const caf::down_msg& dm) {
      if (dm.reason && dm.reason != caf::exit_reason::user_shutdown)
        outcome = to_status(dm.reason);
    });
    stop_engine_core(self, core);
  }
  sys.await_all_actors_done();
  return outcome;
}

} // namespace ferry
