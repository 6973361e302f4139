#include "actors/migrator.hpp"

#include "actors/engine.hpp"
#include "actors/logging.hpp"

#include <caf/all.hpp>

#include <utility>

namespace ferry {

namespace {

using migrator_pointer = migrator_actor::stateful_pointer<migrator_state>;

void fail(migrator_pointer self, const status& problem) {
  log()->error("migration stopped: {}", problem.to_string());
  self->quit(to_error(problem));
}

void show(migrator_pointer self) {
  auto& st = self->state;
  if (st.options->show_progress)
    st.options->show_progress(st.plan->progress());
}

void on_outcome(migrator_pointer self, uint64_t id, const copy_result& outcome) {
  auto verdict = self->state.plan->finish_copy(id, outcome);
  if (!verdict)
    return fail(self, verdict.error());
  if (*verdict != copy_verdict::unknown)
    self->send(self, atom::pump_v);
}

void start_copy(migrator_pointer self, const planned_copy& copy) {
  transfer_job job;
  job.id = copy.id;
  job.dir = direction::copy;
  job.oid = copy.oid;
  job.size = copy.size;
  job.known_absent = copy.known_absent;
  auto id = copy.id;
  auto sink = caf::actor_cast<progress_sink_actor>(self);
  self->request(self->state.supervisor, caf::infinite, atom::run_v, std::move(job), sink)
    .then(
      [=](const transfer_outcome& outcome) {
        on_outcome(
          self, id,
          {outcome.code, outcome.message, outcome.attempts, outcome.cid, outcome.found_present});
      },
      [=](const caf::error& err) {
        auto problem = to_status(err);
        on_outcome(self, id, {problem.code(), problem.message(), 0});
      });
}

/// Sends the next page to the checker while the queued copies run, so the
/// copies do not wait for the destination's (or the source's) answers.
status check_next_page(migrator_pointer self) {
  auto& plan = *self->state.plan;
  if (!plan.wants_page())
    return status::success();
  auto page = plan.take_page();
  if (!page)
    return page.error();
  if (!*page)
    return status::success();
  self->request(self->state.checker, caf::infinite, atom::check_v, std::move(**page))
    .then(
      [=](inventory_page& checked) {
        if (auto put = self->state.plan->put_page(std::move(checked)); !put)
          return fail(self, put);
        self->send(self, atom::pump_v);
      },
      [=](const caf::error& err) { fail(self, to_status(err).with_context("page check")); });
  return status::success();
}

void pump(migrator_pointer self) {
  auto& plan = *self->state.plan;
  for (;;) {
    auto next = plan.next_copy();
    if (!next)
      return fail(self, next.error());
    if (!*next)
      break;
    start_copy(self, **next);
  }
  if (auto checking = check_next_page(self); !checking)
    return fail(self, checking);
  if (plan.done()) {
    show(self);
    self->quit();
  }
}

page_checker_actor::behavior_type page_checker(page_checker_actor::pointer,
                                               std::shared_ptr<object_store> destination,
                                               std::shared_ptr<object_store> source) {
  return {
    [=](atom::check, inventory_page& page) {
      check_page(page, *destination, source.get());
      return std::move(page);
    },
  };
}

} // namespace

migrator_actor::behavior_type migrator(migrator_actor::stateful_pointer<migrator_state> self,
                                       std::shared_ptr<const migration_options> options,
                                       supervisor_actor supervisor) {
  auto& st = self->state;
  st.options = std::move(options);
  st.supervisor = std::move(supervisor);
  migration_plan::settings rules;
  rules.verify_existing = st.options->verify_existing;
  rules.source_is_server = !st.options->config.source->endpoint().empty();
  rules.concurrency = st.options->concurrency;
  rules.source = st.options->config.source;
  st.plan = std::make_unique<migration_plan>(
    st.options->inventory, st.options->config.store, std::move(rules),
    [] { return std::chrono::steady_clock::now(); },
    [](migration_plan::notice_level level, const std::string& text) {
      log()->log(level == migration_plan::notice_level::warning ? spdlog::level::warn
                                                                : spdlog::level::info,
                 "{}", text);
    });
  if (auto started = st.plan->start(); !started) {
    fail(self, started);
    return {[](atom::pump) {}, [](atom::tick) {}, [](atom::progress, const progress_note&) {},
            [](atom::stored, uint64_t) {}};
  }
  // Blocks on the stores: a thread of its own, stopped with the MIGRATOR
  // (a link alone would keep it after a normal exit).
  st.checker = self->spawn<caf::detached + caf::linked>(page_checker, st.options->config.store,
                                                        st.options->config.source);
  self->attach_functor([checker = st.checker](const caf::error&) {
    caf::anon_send_exit(checker, caf::exit_reason::user_shutdown);
  });
  self->send(self, atom::pump_v);
  self->send(self, atom::tick_v);
  return {
    [=](atom::pump) { pump(self); },
    [=](atom::tick) {
      show(self);
      self->delayed_send(self, self->state.options->progress_every, atom::tick_v);
    },
    [=](atom::progress, const progress_note& note) {
      self->state.plan->moved(note.bytes_since_last);
    },
    [=](atom::stored, uint64_t id) {
      self->state.plan->stored(id);
      pump(self);
    },
  };
}

status run_migration(migration_options options) {
  caf::actor_system_config cfg;
  configure_scheduler(cfg);
  caf::actor_system sys{cfg};
  auto shared = std::make_shared<const migration_options>(std::move(options));
  auto config = std::make_shared<const engine_config>(shared->config);
  status outcome;
  {
    caf::scoped_actor self{sys};
    auto core =
      start_engine_core(sys, self, config, shared->journal, [](const transfer_record& record) {
        log_event(spdlog::level::info, {record.oid, record.cid},
                  "continuing the interrupted copy ({} of {} bytes durable)", record.committed,
                  record.size);
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
