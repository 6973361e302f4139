#include "actors/journal_actor.hpp"

#include "actors/logging.hpp"

#include <caf/all.hpp>

#include <algorithm>

namespace ferry {

namespace {

std::string record_key(direction dir, const std::string& oid) {
  return std::string{to_string(dir)} + '/' + oid;
}

} // namespace

result<std::optional<transfer_record>> journal_state::load(direction dir, const std::string& oid) {
  if (auto known = written.find(record_key(dir, oid)); known != written.end())
    return std::optional<transfer_record>{known->second};
  return db->get(dir, oid);
}

status journal_state::save(const transfer_record& record, journal_db::durability how) {
  auto key = record_key(record.dir, record.oid);
  auto st = db->put(record, how);
  // After a failed write the database's copy is the one to trust.
  if (st)
    written[key] = record;
  else
    written.erase(key);
  return st;
}

result<transfer_record> journal_state::begin(const transfer_job& job, const std::string& backend) {
  auto existing = load(job.dir, job.oid);
  if (!existing)
    return existing.error();
  auto now = now_ms();
  transfer_record record;
  if (*existing && (*existing)->size == job.size) {
    record = std::move(**existing);
  } else {
    // New transfer, or the same oid with another size (a different request
    // entirely): start a fresh record.
    record.oid = job.oid;
    record.dir = job.dir;
    record.size = job.size;
    record.created_ms = now;
  }
  // A record written before correlation ids gets one at its next attempt.
  if (record.cid.empty())
    record.cid = make_correlation_id();
  record.state = transfer_state::in_flight;
  record.attempts += 1;
  record.resumed_from = record.committed;
  record.backend = backend;
  record.path = job.path;
  record.updated_ms = now;
  // Only that an attempt began: nothing reported depends on it, and the
  // attempt's first synced write (progress or outcome) carries it to disk.
  // Not syncing it saves a disk flush per object for an agent.
  if (auto st = save(record, journal_db::durability::deferred); !st)
    return st;
  return record;
}

namespace {

/// Applies `change` to the active record of an object and stores it; a
/// record that finished meanwhile is left alone.
template <class Change>
status update_active(journal_state& journal, direction dir, const std::string& oid, Change change) {
  auto existing = journal.load(dir, oid);
  if (!existing)
    return existing.error();
  if (!*existing)
    return status::success();
  auto record = std::move(**existing);
  change(record);
  record.updated_ms = now_ms();
  return journal.save(record);
}

} // namespace

status journal_state::started(direction dir, const std::string& oid, int64_t offset) {
  return update_active(*this, dir, oid, [&](transfer_record& r) { r.resumed_from = offset; });
}

status journal_state::commit(direction dir, const std::string& oid, int64_t committed,
                             const std::string& store_state) {
  return update_active(*this, dir, oid, [&](transfer_record& r) {
    r.committed = committed;
    r.store_state = store_state;
  });
}

status journal_state::failed(direction dir, const std::string& oid, attempt_error error) {
  return update_active(*this, dir, oid, [&](transfer_record& r) {
    r.add_error(std::move(error));
    r.state = transfer_state::queued;
  });
}

std::vector<transfer_outcome> sync_group(object_store& store,
                                         std::vector<transfer_outcome> outcomes) {
  bool any_done =
    std::any_of(outcomes.begin(), outcomes.end(), [](const transfer_outcome& o) { return o.ok(); });
  if (!any_done)
    return outcomes;
  auto synced = store.sync_published();
  if (!synced)
    log()->error("store sync: {}", synced.error().to_string());
  for (auto& outcome : outcomes) {
    if (!outcome.ok())
      continue;
    if (!synced) {
      outcome.code = errc::io_error;
      outcome.message = "stored, but not made durable: " + synced.error().message();
      continue;
    }
    auto failed = std::find_if(synced->begin(), synced->end(),
                               [&](const auto& f) { return f.first == outcome.oid; });
    if (failed != synced->end()) {
      outcome.code = failed->second.code();
      outcome.message = "verified, but not published: " + failed->second.message();
    }
  }
  return outcomes;
}

void journal_state::finish(std::vector<transfer_outcome>& outcomes) {
  auto now = now_ms();
  std::vector<transfer_record> records;
  records.reserve(outcomes.size());
  for (auto& outcome : outcomes) {
    auto existing = load(outcome.dir, outcome.oid);
    if (!existing) {
      log()->warn("journal: reading the record of {} failed: {}", outcome.oid,
                  existing.error().to_string());
      continue;
    }
    transfer_record record;
    if (*existing) {
      record = std::move(**existing);
    } else {
      record.oid = outcome.oid;
      record.dir = outcome.dir;
      record.created_ms = now;
    }
    // A job that ended before any attempt began (a dead host) has no id yet.
    if (record.cid.empty())
      record.cid = make_correlation_id();
    outcome.cid = record.cid;
    record.updated_ms = now;
    record.finished_ms = now;
    if (outcome.ok()) {
      record.state = transfer_state::done;
      record.committed = record.size;
    } else {
      record.state = transfer_state::failed;
      record.add_error({now, to_string(outcome.code), outcome.message});
    }
    records.push_back(std::move(record));
  }
  // Bookkeeping that fails is logged, not fatal: the objects are where the
  // outcomes say, and the next write may succeed.
  if (auto st = db->finish(records); !st)
    log()->warn("journal: finishing {} transfer(s) failed: {}", records.size(), st.to_string());
  // Finished or not, the database's copy is the one to read from now on.
  for (const auto& outcome : outcomes)
    written.erase(record_key(outcome.dir, outcome.oid));
}

store_syncer_actor::behavior_type store_syncer(store_syncer_actor::pointer,
                                               std::shared_ptr<object_store> store) {
  return {
    [=](atom::flush, std::vector<transfer_outcome>& outcomes) {
      return sync_group(*store, std::move(outcomes));
    },
  };
}

namespace {

using journal_pointer = journal_actor::stateful_pointer<journal_state>;

/// Records a synced group, answers its finishes, and starts the next group
/// with whatever arrived meanwhile.
void end_group(journal_pointer self, std::vector<journal_state::pending_finish>& group,
               std::vector<transfer_outcome>& outcomes) {
  auto& st = self->state;
  st.finish(outcomes);
  for (size_t i = 0; i < group.size(); ++i)
    group[i].promise.deliver(std::move(outcomes[i]));
  st.flushing = false;
  if (!st.pending.empty())
    self->send(self, atom::flush_v);
}

/// Takes every finish received so far as one group: one store sync (on the
/// syncer's thread, while this actor goes on serving), then one journal batch.
void start_group(journal_pointer self) {
  auto& st = self->state;
  if (st.flushing || st.pending.empty())
    return;
  st.flushing = true;
  auto group = std::make_shared<std::vector<journal_state::pending_finish>>(std::move(st.pending));
  st.pending.clear();
  std::vector<transfer_outcome> outcomes;
  outcomes.reserve(group->size());
  for (auto& item : *group)
    outcomes.push_back(std::move(item.outcome));
  if (!st.syncer)
    return end_group(self, *group, outcomes);
  self->request(st.syncer, caf::infinite, atom::flush_v, outcomes)
    .then([=](std::vector<transfer_outcome>& synced) { end_group(self, *group, synced); },
          [=](const caf::error& err) mutable {
            // Without the syncer nothing made the group durable.
            for (auto& outcome : outcomes)
              if (outcome.ok()) {
                outcome.code = errc::io_error;
                outcome.message =
                  "stored, but the store sync did not answer: " + to_status(err).to_string();
              }
            end_group(self, *group, outcomes);
          });
}

} // namespace

journal_actor::behavior_type journal(journal_pointer self, std::shared_ptr<journal_db> db,
                                     store_syncer_actor syncer) {
  self->state.db = std::move(db);
  self->state.syncer = std::move(syncer);
  if (self->state.syncer)
    self->link_to(self->state.syncer);
  // Journal writes that fail are logged, not fatal: a transfer's data path
  // does not depend on its bookkeeping, and the next write may succeed.
  auto check = [](const status& st, const char* what) {
    if (!st)
      log()->warn("journal: {} failed: {}", what, st.to_string());
  };
  return {
    [=](atom::begin, const transfer_job& job,
        const std::string& backend) -> caf::result<transfer_record> {
      auto record = self->state.begin(job, backend);
      if (!record)
        return to_error(record.error());
      return std::move(*record);
    },
    [=](atom::started, direction dir, const std::string& oid, int64_t offset) {
      check(self->state.started(dir, oid, offset), "recording the resume offset");
    },
    [=](atom::commit, direction dir, const std::string& oid, int64_t committed,
        const std::string& store_state) {
      check(self->state.commit(dir, oid, committed, store_state), "recording progress");
    },
    [=](atom::failed, direction dir, const std::string& oid, attempt_error error) {
      check(self->state.failed(dir, oid, std::move(error)), "recording an attempt error");
      return true;
    },
    [=](atom::finish, transfer_outcome& outcome) -> caf::result<transfer_outcome> {
      auto& st = self->state;
      auto promise = self->make_response_promise<transfer_outcome>();
      st.pending.push_back({std::move(outcome), promise});
      // Group commit: the flush queues behind every finish already in the
      // mailbox, so they all share one store sync and one journal write.
      if (st.pending.size() == 1 && !st.flushing)
        self->send(self, atom::flush_v);
      return promise;
    },
    [=](atom::flush) { start_group(self); },
    [=](atom::recover) -> caf::result<std::vector<transfer_record>> {
      // Recovery rewrites active records in the database.
      self->state.written.clear();
      auto recovered = self->state.db->recover();
      if (!recovered)
        return to_error(recovered.error());
      return std::move(*recovered);
    },
    [=](atom::snapshot) -> caf::result<journal_snapshot> {
      auto active = self->state.db->active();
      if (!active)
        return to_error(active.error());
      auto history = self->state.db->history(50);
      if (!history)
        return to_error(history.error());
      return journal_snapshot{std::move(*active), std::move(*history)};
    },
  };
}

} // namespace ferry
