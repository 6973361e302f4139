#include "actors/transfer_worker.hpp"

#include "actors/logging.hpp"

#include <caf/all.hpp>

#include <exception>
#include <functional>
#include <optional>
#include <utility>

namespace ferry {

namespace {

using worker_pointer = worker_actor::stateful_pointer<transfer_worker_state>;

void report(worker_pointer self, const progress_throttle::report& r) {
  auto& st = self->state;
  self->send(st.sink, atom::progress_v,
             progress_note{st.job.id, st.job.oid, r.bytes_so_far, r.bytes_since_last});
}

void fail(worker_pointer self, const status& failure) {
  auto& st = self->state;
  if (st.task && st.task->discard_partial())
    self->send(st.journal, atom::commit_v, st.job.dir, st.job.oid, int64_t{0}, std::string{});
  self->quit(to_error(failure));
}

log_fields fields_of(const transfer_worker_state& st) { return {st.job.oid, st.cid}; }

/// Runs `call`, which may block, then `then` with its result on the actor.
/// With a pool the call runs on one of its threads and the worker goes on
/// handling messages meanwhile; the result comes back as `resume`.
/// Without one (a folder store; CAF's deterministic tests) it runs here.
template <class Call, class Then>
void run_blocking(worker_pointer self, Call call, Then then) {
  auto& st = self->state;
  if (!st.pool)
    return then(call());
  using result_type = decltype(call());
  // Filled on the pool's thread, read on the actor's after `resume`: the
  // message orders the two.
  struct outcome {
    std::optional<result_type> value;
    std::exception_ptr thrown;
  };
  auto box = std::make_shared<outcome>();
  st.resume = [box, then = std::move(then)]() mutable {
    // Rethrown here, an exception reaches the worker's handler as if the
    // call had run on the actor.
    if (box->thrown)
      std::rethrow_exception(box->thrown);
    then(std::move(*box->value));
  };
  st.pool->post([box, call = std::move(call), to = caf::actor_cast<worker_actor>(self)]() mutable {
    try {
      box->value.emplace(call());
    } catch (...) {
      box->thrown = std::current_exception();
    }
    caf::anon_send(to, atom::resume_v);
  });
}

void start_moving(worker_pointer self, const transfer_record& record, result<int64_t> offset);

void start(worker_pointer self, const transfer_record& record) {
  auto& st = self->state;
  st.cid = record.cid;
  self->send(st.parent, atom::begun_v, st.job.id, st.cid);
  auto begin = [store = st.store, config = st.config, job = st.job,
                record]() -> std::pair<std::shared_ptr<transfer_task>, result<int64_t>> {
    // Stores that ask a server for an object by size learn it here.
    if (job.dir == direction::download) {
      if (auto announced = store->expect_reads({{job.oid, job.size}}); !announced)
        return {nullptr, announced};
    }
    std::shared_ptr<transfer_task> task = make_transfer_task(
      *config, store, job.oid, job.dir, job.size, job.path, job.known_absent, job.download_dir);
    auto offset = task->start(record.committed, record.store_state);
    return {std::move(task), std::move(offset)};
  };
  run_blocking(self, std::move(begin), [self, record](auto begun) {
    self->state.task = std::move(begun.first);
    start_moving(self, record, std::move(begun.second));
  });
}

void start_moving(worker_pointer self, const transfer_record& record, result<int64_t> offset) {
  auto& st = self->state;
  if (!offset)
    return fail(self, offset.error());
  if (*offset != record.resumed_from)
    self->send(st.journal, atom::started_v, st.job.dir, st.job.oid, *offset);
  // A store that opened something it must find again (an S3 multipart
  // upload) has it recorded before any byte moves.
  if (auto state = st.task->resume_state(); state != record.store_state)
    self->send(st.journal, atom::commit_v, st.job.dir, st.job.oid, *offset, std::move(state));
  if (*offset > 0)
    log_event(spdlog::level::info, fields_of(st), "{}: continuing at byte {} of {}",
              to_string(st.job.dir), *offset, st.job.size);
  st.progress.emplace(st.job.size, self->clock().now());
  // git-lfs wants the kept bytes reported; a migration counts what moves.
  if (st.job.dir == direction::copy)
    st.progress->skip_to(*offset);
  else
    st.progress->resume_at(*offset);
  self->send(self, atom::step_v);
}

void finish(worker_pointer self, result<std::string> path) {
  auto& st = self->state;
  if (!path)
    return fail(self, path.error());
  if (auto r = st.progress->finish())
    report(self, *r);
  log_event(spdlog::level::debug, fields_of(st), "{}: all {} bytes moved, verified",
            to_string(st.job.dir), st.job.size);
  self->send(st.parent, atom::done_v, st.job.id, std::move(*path), st.task->found_present());
  self->quit();
}

void after_step(worker_pointer self, result<transfer_task::step_result> moved) {
  auto& st = self->state;
  if (!moved)
    return fail(self, moved.error());
  if (moved->synced)
    self->send(st.journal, atom::commit_v, st.job.dir, st.job.oid, *moved->synced,
               st.task->resume_state());
  if (auto r = st.progress->add(moved->bytes, self->clock().now()))
    report(self, *r);
  if (!moved->finished)
    return self->send(self, atom::step_v);
  run_blocking(self, [task = st.task] { return task->complete(); },
               [self](auto path) { finish(self, std::move(path)); });
}

} // namespace

worker_actor::behavior_type transfer_worker(worker_pointer self, transfer_job job,
                                            std::shared_ptr<const engine_config> config,
                                            std::shared_ptr<object_store> store,
                                            journal_actor journal, supervisor_actor parent,
                                            progress_sink_actor sink,
                                            std::shared_ptr<blocking_pool> pool) {
  auto& st = self->state;
  st.pool = std::move(pool);
  st.job = std::move(job);
  st.config = std::move(config);
  st.store = std::move(store);
  st.journal = std::move(journal);
  st.parent = std::move(parent);
  st.sink = std::move(sink);
  // An exception is a failed attempt like any other; keep its text.
  self->set_exception_handler([](std::exception_ptr& ptr) -> caf::error {
    try {
      std::rethrow_exception(ptr);
    } catch (const std::exception& e) {
      return to_error({errc::io_error, std::string{"unexpected error: "} + e.what()});
    } catch (...) {
      return to_error({errc::internal, "unexpected non-standard exception"});
    }
  });
  self->request(st.journal, caf::infinite, atom::begin_v, st.job, st.store->describe())
    .then([=](const transfer_record& record) { start(self, record); },
          [=](const caf::error& err) {
            fail(self, to_status(err).with_context("journal unavailable"));
          });
  return {
    [=](atom::step) {
      run_blocking(self, [task = self->state.task] { return task->step(); },
                   [self](auto moved) { after_step(self, std::move(moved)); });
    },
    [=](atom::resume) {
      auto then = std::move(self->state.resume);
      then();
    },
  };
}

} // namespace ferry
