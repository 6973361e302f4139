#include "actors/transfer_worker.hpp"

#include "actors/logging.hpp"

#include <caf/all.hpp>

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

void start(worker_pointer self, const transfer_record& record) {
  auto& st = self->state;
  st.cid = record.cid;
  self->send(st.parent, atom::begun_v, st.job.id, st.cid);
  // Stores that ask a server for an object by size learn it here.
  if (st.job.dir == direction::download) {
    if (auto announced = st.store->expect_reads({{st.job.oid, st.job.size}}); !announced)
      return fail(self, announced);
  }
  st.task = make_transfer_task(*st.config, st.store, st.job.oid, st.job.dir, st.job.size,
                               st.job.path, st.job.known_absent, st.job.download_dir);
  auto offset = st.task->start(record.committed, record.store_state);
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

void finish(worker_pointer self) {
  auto& st = self->state;
  auto path = st.task->complete();
  if (!path)
    return fail(self, path.error());
  if (auto r = st.progress->finish())
    report(self, *r);
  log_event(spdlog::level::debug, fields_of(st), "{}: all {} bytes moved, verified",
            to_string(st.job.dir), st.job.size);
  self->send(st.parent, atom::done_v, st.job.id, std::move(*path), st.task->found_present());
  self->quit();
}

} // namespace

worker_actor::behavior_type transfer_worker(worker_pointer self, transfer_job job,
                                            std::shared_ptr<const engine_config> config,
                                            std::shared_ptr<object_store> store,
                                            journal_actor journal, supervisor_actor parent,
                                            progress_sink_actor sink) {
  auto& st = self->state;
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
      auto& st = self->state;
      auto moved = st.task->step();
      if (!moved)
        return fail(self, moved.error());
      if (moved->synced)
        self->send(st.journal, atom::commit_v, st.job.dir, st.job.oid, *moved->synced,
                   st.task->resume_state());
      if (auto r = st.progress->add(moved->bytes, self->clock().now()))
        report(self, *r);
      if (moved->finished)
        return finish(self);
      self->send(self, atom::step_v);
    },
  };
}

} // namespace ferry
