#include "actors/transfer_supervisor.hpp"

#include "actors/logging.hpp"
#include "actors/transfer_worker.hpp"

#include <caf/all.hpp>

namespace ferry {

namespace {

using supervisor_pointer = supervisor_actor::stateful_pointer<transfer_supervisor_state>;

void spawn_worker(supervisor_pointer self, uint64_t id) {
  auto& st = self->state;
  auto i = st.children.find(id);
  if (i == st.children.end())
    return;
  auto& c = i->second;
  c.attempts += 1;
  c.result_path.reset();
  auto worker = self->spawn<caf::monitored>(transfer_worker, c.job, st.config, st.journal,
                                            caf::actor_cast<supervisor_actor>(self), c.sink);
  c.worker = worker.address();
}

/// Records the final outcome in the journal, then answers the job's caller.
void conclude(supervisor_pointer self, uint64_t id, transfer_outcome outcome) {
  auto& st = self->state;
  auto i = st.children.find(id);
  if (i == st.children.end())
    return;
  auto promise = i->second.promise;
  st.children.erase(i);
  if (outcome.ok())
    log()->info("{} {}: done", to_string(outcome.dir), outcome.oid);
  else
    log()->warn("{} {}: failed: {}", to_string(outcome.dir), outcome.oid, outcome.message);
  self->request(st.journal, caf::infinite, atom::finish_v, outcome)
    .then([=](bool) mutable { promise.deliver(outcome); },
          [=](const caf::error&) mutable { promise.deliver(outcome); });
}

transfer_outcome make_outcome(const transfer_supervisor_state::child& c, errc code,
                              std::string message, std::string path) {
  return {c.job.id, c.job.dir, c.job.oid, code, std::move(message), std::move(path), c.attempts};
}

void on_worker_down(supervisor_pointer self, const caf::down_msg& dm) {
  auto& st = self->state;
  auto* c = st.find(dm.source);
  if (c == nullptr)
    return;
  auto id = c->job.id;
  if (c->result_path && !dm.reason)
    return conclude(self, id, make_outcome(*c, errc::ok, {}, *c->result_path));
  auto failure = dm.reason ? to_status(dm.reason)
                           : status{errc::internal, "worker stopped without a result"};
  if (failure.code() == errc::busy)
    c->busy_waits += 1;
  auto decision =
    st.policy->decide(failure, c->attempts - c->busy_waits, c->busy_waits, self->clock().now());
  if (decision.what != retry_decision::retry)
    return conclude(self, id,
                    make_outcome(*c, failure.code(), decision.explain(failure, c->attempts), {}));
  log()->info("{} {}: attempt {} failed ({}); retrying in {} ms", to_string(c->job.dir),
              c->job.oid, c->attempts, failure.to_string(), decision.delay.count());
  c->worker = caf::actor_addr{};
  attempt_error error{now_ms(), to_string(failure.code()), failure.message()};
  self->request(st.journal, caf::infinite, atom::failed_v, c->job.dir, c->job.oid, error)
    .then([=](bool) { self->delayed_send(self, decision.delay, atom::restart_v, id); },
          [=](const caf::error&) {
            self->delayed_send(self, decision.delay, atom::restart_v, id);
          });
}

} // namespace

transfer_supervisor_state::child* transfer_supervisor_state::find(const caf::actor_addr& worker) {
  for (auto& [id, c] : children)
    if (c.worker == worker)
      return &c;
  return nullptr;
}

supervisor_actor::behavior_type transfer_supervisor(supervisor_pointer self,
                                                    std::shared_ptr<const engine_config> config,
                                                    journal_actor journal) {
  auto& st = self->state;
  st.config = std::move(config);
  st.journal = std::move(journal);
  st.policy.emplace(st.config->max_attempts,
                    backoff{st.config->backoff_base, st.config->backoff_max, st.config->seed},
                    restart_budget{st.config->max_restarts, st.config->restart_window});
  self->set_down_handler([=](const caf::down_msg& dm) { on_worker_down(self, dm); });
  return {
    [=](atom::run, const transfer_job& job,
        const progress_sink_actor& sink) -> caf::result<transfer_outcome> {
      auto& st = self->state;
      if (st.children.count(job.id) != 0)
        return to_error({errc::internal, "job id " + std::to_string(job.id) + " is already running"});
      auto& c = st.children[job.id];
      c.job = job;
      c.sink = sink;
      c.promise = self->make_response_promise<transfer_outcome>();
      spawn_worker(self, job.id);
      return c.promise;
    },
    [=](atom::done, uint64_t id, std::string path) {
      auto i = self->state.children.find(id);
      if (i != self->state.children.end())
        i->second.result_path = std::move(path);
    },
    [=](atom::restart, uint64_t id) { spawn_worker(self, id); },
  };
}

} // namespace ferry
