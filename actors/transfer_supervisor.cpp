#include "actors/transfer_supervisor.hpp"

#include "actors/logging.hpp"
#include "actors/transfer_worker.hpp"
#include "protocol/transfer_events.hpp"
#include "store/lfs/lfs_store.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <utility>
#include <vector>

namespace ferry {

namespace {

using supervisor_pointer = supervisor_actor::stateful_pointer<transfer_supervisor_state>;
using child = transfer_supervisor_state::child;

/// The fields of every log line about a job: its oid and correlation id.
log_fields fields_of(const child& c) { return {c.job.oid, c.cid}; }

/// "upload", as every log line about a job starts.
const char* label(const child& c) { return to_string(c.job.dir); }

void notify(supervisor_pointer self, const std::string& text) {
  auto& st = self->state;
  log()->info("notice: {}", text);
  if (st.config->notice)
    st.config->notice(text);
}

/// The next attempt of `c` starts as soon as the mailbox gets to it; any
/// earlier wake-up still on its way is ignored.
void wake_now(supervisor_pointer self, child& c) {
  self->send(self, atom::restart_v, c.job.id, ++c.wake);
}

void wake_after(supervisor_pointer self, child& c, caf::timespan delay) {
  self->delayed_send(self, delay, atom::restart_v, c.job.id, ++c.wake);
}

/// Starts each of `ids` as soon as the mailbox gets to it.
void wake_all(supervisor_pointer self, const std::vector<uint64_t>& ids) {
  for (auto id : ids)
    if (auto i = self->state.children.find(id); i != self->state.children.end())
      wake_now(self, i->second);
}

/// Bytes a finished transfer of `size` bytes wrote: none for a failure, or
/// for an object the store already held (metrics and events both count so).
int64_t bytes_moved(const transfer_outcome& recorded, int64_t size) {
  return recorded.ok() && !recorded.found_present ? size : 0;
}

// -- metrics (engine_config::metrics, docs/metrics.md) ------------------------

metrics_registry::labels job_labels(const child& c) {
  return {{"direction", to_string(c.job.dir)}, {"store", c.store_kind}};
}

/// One of closed, open, half_open is 1 for `host`, the others 0.
void show_circuit(supervisor_pointer self, const std::string& host, const char* state) {
  auto& metrics = self->state.config->metrics;
  if (!metrics || host.empty())
    return;
  for (const char* each : {"closed", "open", "half_open"})
    metrics->set(metric::host_circuit_state, {{"host", host}, {"state", each}},
                 std::string{each} == state ? 1 : 0);
}

void count_received(supervisor_pointer self, const child& c) {
  auto& metrics = self->state.config->metrics;
  if (!metrics)
    return;
  metrics->add(metric::transfers_started, job_labels(c));
  metrics->add(metric::in_flight, {});
  if (!c.host.empty() &&
      !metrics->has(metric::host_circuit_state, {{"host", c.host}, {"state", "closed"}}))
    show_circuit(self, c.host, "closed");
}

void count_retry(supervisor_pointer self, const child& c) {
  if (auto& metrics = self->state.config->metrics)
    metrics->add(metric::retries, job_labels(c));
}

/// Counts `c`'s outcome once the journal has recorded it.
std::function<void(const transfer_outcome&)> outcome_counter(supervisor_pointer self,
                                                             const child& c) {
  auto metrics = self->state.config->metrics;
  if (!metrics)
    return [](const transfer_outcome&) {};
  return [metrics, labels = job_labels(c), size = c.job.size, received = c.received,
          self](const transfer_outcome& recorded) {
    metrics->add(metric::in_flight, {}, -1);
    std::chrono::duration<double> took = self->clock().now() - received;
    metrics->observe(metric::transfer_duration, {labels[0]}, took.count());
    if (recorded.ok()) {
      metrics->add(metric::transfers_succeeded, labels);
      metrics->add(metric::transferred_bytes, labels,
                   static_cast<double>(bytes_moved(recorded, size)));
      return;
    }
    auto failed = labels;
    failed.emplace_back("error", to_string(recorded.code));
    metrics->add(metric::transfers_failed, failed);
  };
}

// -- events (engine_config::events, protocol/transfer_events.hpp) -------------

/// 0 for a job that never started an attempt.
int64_t ms_since(supervisor_pointer self, caf::actor_clock::time_point since) {
  if (since == caf::actor_clock::time_point{})
    return 0;
  return std::chrono::duration_cast<std::chrono::milliseconds>(self->clock().now() - since).count();
}

/// An event about `c`'s current attempt, its kind-specific fields left for
/// the caller.
protocol::transfer_event event_of(supervisor_pointer self, const child& c,
                                  protocol::event_kind kind) {
  protocol::transfer_event event;
  event.t_ms = now_ms();
  event.kind = kind;
  event.dir = to_string(c.job.dir);
  event.oid = c.job.oid;
  event.cid = c.cid;
  event.size = c.job.size;
  if (auto* rules = self->state.rules->find(c.job.id))
    event.attempt = rules->attempts;
  return event;
}

void emit(supervisor_pointer self, const protocol::transfer_event& event) {
  auto& events = self->state.config->events;
  if (!events)
    return;
  if (auto written = events->append(protocol::encode_event(event)); !written)
    log()->warn("{}; no more events are written", written.to_string());
}

void spawn_worker(supervisor_pointer self, child& c) {
  auto& st = self->state;
  c.attempt_started = self->clock().now();
  st.rules->attempt_started(c.job.id, c.attempt_started);
  c.result_path.reset();
  c.found_present = false;
  auto parent = caf::actor_cast<supervisor_actor>(self);
  auto worker =
    self->spawn<caf::monitored>(transfer_worker, c.job, st.config, c.store, st.journal, parent,
                                c.sink, c.network ? st.network_calls : nullptr);
  c.worker = worker.address();
}

void conclude(supervisor_pointer self, uint64_t id, transfer_outcome outcome,
              spdlog::level::level_enum failure_level = spdlog::level::warn);
void start_attempt(supervisor_pointer self, uint64_t id);

std::string object_key(direction dir, const std::string& oid) {
  return std::string{to_string(dir)} + '/' + oid;
}

/// Lets job `id` start its attempts.
void admit(supervisor_pointer self, uint64_t id) {
  auto& st = self->state;
  auto i = st.children.find(id);
  if (i == st.children.end())
    return;
  st.rules->add(id, i->second.host);
  start_attempt(self, id);
}

/// After the job of `key` has ended: the next job of that object starts.
void admit_next(supervisor_pointer self, const std::string& key) {
  auto& waiting = self->state.same_object;
  auto i = waiting.find(key);
  if (i == waiting.end())
    return;
  if (i->second.empty()) {
    waiting.erase(i);
    return;
  }
  auto next = i->second.front();
  i->second.pop_front();
  admit(self, next);
}
transfer_outcome make_outcome(supervisor_pointer self, const child& c, errc code,
                              std::string message, std::string path);

/// Starts the next attempt of job `id` once the rules allow it (a retry
/// needs a slot in the retry budget, a network job its host's circuit) and
/// the rate limiter gives the go-ahead.
void start_attempt(supervisor_pointer self, uint64_t id) {
  auto& st = self->state;
  auto i = st.children.find(id);
  if (i == st.children.end())
    return;
  auto& c = i->second;
  auto decision = st.rules->start(id, self->clock().now());
  using verdict = admission::start_decision::verdict;
  switch (decision.what) {
    case verdict::wait_for_budget:
      log_event(spdlog::level::debug, fields_of(c),
                "{}: retry waits for one of the {} retries in flight to finish (retry budget)",
                label(c), decision.retries_in_flight);
      return;
    case verdict::fail_dead_host:
      wake_all(self, decision.wake);
      // The notice that the host is not answering was shown once; each
      // object it fails goes to the log file only, not as one more line on
      // stderr.
      return conclude(self, id,
                      make_outcome(self, c, decision.code, std::move(decision.message), {}),
                      spdlog::level::info);
    case verdict::give_up:
      wake_all(self, decision.wake);
      return conclude(self, id,
                      make_outcome(self, c, decision.code, std::move(decision.message), {}));
    case verdict::wait_for_circuit:
      wake_all(self, decision.wake);
      log_event(spdlog::level::debug, fields_of(c), "{}: circuit for {} is open; next try in {}",
                label(c), c.host, describe_wait(decision.wait));
      return wake_after(self, c, caf::timespan{decision.wait});
    case verdict::start:
      break;
  }
  if (decision.probe) {
    log_event(spdlog::level::info, fields_of(c),
              "circuit for {} is half open: this {} goes through as the probe", c.host, label(c));
    show_circuit(self, c.host, "half_open");
  }
  if (c.host.empty() || !st.limiter)
    return spawn_worker(self, c);
  auto wake = ++c.wake;
  auto go = [self, id, wake] {
    auto j = self->state.children.find(id);
    if (j != self->state.children.end() && j->second.wake == wake)
      spawn_worker(self, j->second);
  };
  self->request(st.limiter, caf::infinite, atom::acquire_v, c.host, c.job.size)
    .then([go](bool) { go(); },
          [go, host = c.host](const caf::error& err) {
            log()->warn("rate limiter unavailable ({}); sending to {} unpaced",
                        to_status(err).to_string(), host);
            go();
          });
}

/// Logs and passes on what a finished attempt changed about its host.
void report_host_change(supervisor_pointer self, const std::string& host,
                        const admission::host_change& change) {
  auto& st = self->state;
  if (change.cooldown > std::chrono::milliseconds{0} && st.limiter) {
    log()->warn("host {} asked us to wait {} (Retry-After); every transfer to it pauses until then",
                host, describe_wait(change.cooldown));
    self->send(st.limiter, atom::cooldown_v, host, caf::timespan{change.cooldown});
    if (st.config->metrics) {
      st.config->metrics->add(metric::host_cooldowns, {{"host", host}});
      st.config->metrics->set(metric::host_cooldown, {{"host", host}},
                              std::chrono::duration<double>(change.cooldown).count());
    }
  }
  if (change.slow_down && st.limiter)
    self->send(st.limiter, atom::throttled_v, host);
  auto next = describe_wait(st.config->breaker_open_for);
  switch (change.what) {
    case admission::host_change::none:
      break;
    case admission::host_change::closed:
      log()->info("circuit for {} closed: the probe succeeded; transfers to it go on", host);
      show_circuit(self, host, "closed");
      break;
    case admission::host_change::reopened:
      // Info, not warn: the notice is the one line the user sees.
      log()->info("circuit for {} open again: the probe failed ({}); next probe in {}", host,
                  change.error, next);
      show_circuit(self, host, "open");
      break;
    case admission::host_change::opened:
      log()->info("circuit for {} open after {} consecutive failures (last: {}); next probe in {}",
                  host, st.config->breaker_failures, change.error, next);
      show_circuit(self, host, "open");
      break;
  }
  if (!change.notice.empty())
    notify(self, change.notice);
  wake_all(self, change.wake);
}

/// Records the final outcome in the journal, then answers the job's caller.
void conclude(supervisor_pointer self, uint64_t id, transfer_outcome outcome,
              spdlog::level::level_enum failure_level) {
  auto& st = self->state;
  auto i = st.children.find(id);
  if (i == st.children.end())
    return;
  auto promise = i->second.promise;
  auto count = outcome_counter(self, i->second);
  auto cid = i->second.cid;
  auto ended = event_of(self, i->second, protocol::event_kind::done);
  ended.ms = ms_since(self, i->second.attempt_started);
  auto key = object_key(i->second.job.dir, i->second.job.oid);
  st.children.erase(i);
  st.rules->remove(id);
  // A success is reported, logged included, only once the journal has made
  // it durable; the journal may turn it into a failure.
  auto report = [self, promise, failure_level, count, cid, ended,
                 key](transfer_outcome recorded) mutable {
    count(recorded);
    if (recorded.cid.empty())
      recorded.cid = cid;
    ended.cid = recorded.cid;
    if (recorded.ok()) {
      ended.bytes = bytes_moved(recorded, ended.size);
    } else {
      ended.kind = protocol::event_kind::fail;
      ended.error = to_string(recorded.code);
    }
    emit(self, ended);
    log_fields fields{recorded.oid, recorded.cid};
    if (recorded.ok())
      log_event(spdlog::level::info, fields, "{}: done", to_string(recorded.dir));
    else
      log_event(failure_level, fields, "{}: failed: {}", to_string(recorded.dir), recorded.message);
    promise.deliver(std::move(recorded));
    admit_next(self, key);
  };
  self->request(st.journal, caf::infinite, atom::finish_v, outcome)
    .then([report](transfer_outcome& recorded) mutable { report(std::move(recorded)); },
          [report, outcome](const caf::error& err) mutable {
            // Without the journal nothing made the object durable.
            if (outcome.ok()) {
              outcome.code = errc::io_error;
              outcome.message =
                "stored, but the journal did not answer: " + to_status(err).to_string();
            }
            report(std::move(outcome));
          });
}

transfer_outcome make_outcome(supervisor_pointer self, const child& c, errc code,
                              std::string message, std::string path) {
  auto attempts = self->state.rules->find(c.job.id)->attempts;
  return {c.job.id,           c.job.dir,       c.job.oid, code,
          std::move(message), std::move(path), attempts,  c.cid};
}

/// Whether `c` waits for the job of its object that runs.
bool waits_its_turn(const transfer_supervisor_state& st, const child& c) {
  auto queue = st.same_object.find(object_key(c.job.dir, c.job.oid));
  return queue != st.same_object.end() &&
         std::find(queue->second.begin(), queue->second.end(), c.job.id) != queue->second.end();
}

/// Ends job `id` now, its caller gone: answered with errc::cancelled, not
/// retried, not recorded as an outcome (the journal record stays as a
/// crash would leave it, so a later job of the object resumes from what is
/// durable). A job whose worker already stored the object is left to end.
void cancel_job(supervisor_pointer self, uint64_t id) {
  auto& st = self->state;
  auto i = st.children.find(id);
  if (i == st.children.end() || i->second.result_path)
    return;
  auto& c = i->second;
  auto key = object_key(c.job.dir, c.job.oid);
  // A job still waiting for the one of its object that runs leaves its queue.
  bool waiting_its_turn = waits_its_turn(st, c);
  if (waiting_its_turn) {
    auto& ids = st.same_object[key];
    ids.erase(std::find(ids.begin(), ids.end(), id));
  }
  auto* rules = st.rules->find(id);
  auto attempts = rules ? rules->attempts : 0;
  transfer_outcome outcome{id, c.job.dir, c.job.oid, errc::cancelled, "", {}, attempts, c.cid};
  outcome.message = "cancelled: the agent went away";
  auto count = outcome_counter(self, c);
  auto ended = event_of(self, c, protocol::event_kind::fail);
  ended.ms = ms_since(self, c.attempt_started);
  ended.error = to_string(errc::cancelled);
  auto promise = c.promise;
  auto worker = c.worker;
  log_event(spdlog::level::info, fields_of(c), "{}: {}", label(c), outcome.message);
  st.children.erase(i);
  // Stale timers, limiter answers and the worker's messages find no job.
  wake_all(self, st.rules->cancel(id));
  if (worker) {
    self->send_exit(worker, caf::exit_reason::user_shutdown);
    st.stopping.emplace(worker, key);
  } else if (!waiting_its_turn) {
    admit_next(self, key);
  }
  count(outcome);
  emit(self, ended);
  promise.deliver(std::move(outcome));
}

void on_worker_down(supervisor_pointer self, const caf::down_msg& dm) {
  auto& st = self->state;
  auto* c = st.find(dm.source);
  if (c == nullptr) {
    // A worker stopped for a cancelled job: the next job of its object may
    // start now.
    if (auto stopped = st.stopping.find(dm.source); stopped != st.stopping.end()) {
      auto key = std::move(stopped->second);
      st.stopping.erase(stopped);
      admit_next(self, key);
    }
    return;
  }
  auto id = c->job.id;
  c->worker = caf::actor_addr{};
  bool succeeded = c->result_path && !dm.reason;
  auto failure = succeeded   ? status::success()
                 : dm.reason ? to_status(dm.reason)
                             : status{errc::internal, "worker stopped without a result"};
  auto decision = st.rules->finish(id, failure, self->clock().now());
  wake_all(self, decision.wake);
  report_host_change(self, c->host, decision.host);
  using verdict = admission::finish_decision::verdict;
  switch (decision.what) {
    case verdict::done: {
      // The caller may start more work while the journal makes this durable.
      self->send(c->sink, atom::stored_v, id);
      auto outcome = make_outcome(self, *c, errc::ok, {}, *c->result_path);
      outcome.found_present = c->found_present;
      return conclude(self, id, std::move(outcome));
    }
    case verdict::give_up:
      return conclude(self, id,
                      make_outcome(self, *c, decision.code, std::move(decision.message), {}));
    case verdict::fail_dead_host:
      return conclude(self, id,
                      make_outcome(self, *c, decision.code, std::move(decision.message), {}),
                      spdlog::level::info);
    case verdict::retry:
      break;
  }
  count_retry(self, *c);
  auto retried = event_of(self, *c, protocol::event_kind::retry);
  retried.ms = ms_since(self, c->attempt_started);
  retried.delay_ms = decision.delay.count();
  retried.error = to_string(failure.code());
  emit(self, retried);
  log_event(spdlog::level::info, fields_of(*c), "{}: attempt {} failed ({}); retrying in {}{}",
            label(*c), st.rules->find(id)->attempts, failure.to_string(),
            describe_wait(decision.delay), decision.as_asked ? ", as the server asked" : "");
  attempt_error error{now_ms(), to_string(failure.code()), failure.message()};
  auto delay = caf::timespan{decision.delay};
  self->request(st.journal, caf::infinite, atom::failed_v, c->job.dir, c->job.oid, error)
    .then(
      [=](bool) {
        if (auto i = self->state.children.find(id); i != self->state.children.end())
          wake_after(self, i->second, delay);
      },
      [=](const caf::error&) {
        if (auto i = self->state.children.find(id); i != self->state.children.end())
          wake_after(self, i->second, delay);
      });
}

/// The store a job's object goes to or comes from; null when the job needs
/// the engine's store and there is none.
std::shared_ptr<object_store> store_for(const engine_config& config, const transfer_job& job) {
  if (!job.has_action())
    return config.store;
  lfs_action action{job.action.href, job.action.headers, std::nullopt};
  return make_action_store(config.http, {job.oid, job.size}, std::move(action), config.lfs);
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
                                                    journal_actor journal,
                                                    rate_limiter_actor limiter) {
  auto& st = self->state;
  st.config = std::move(config);
  st.journal = std::move(journal);
  st.limiter = std::move(limiter);
  st.rules.emplace(*st.config);
  if (st.config->network_threads > 0)
    st.network_calls = std::make_shared<blocking_pool>(st.config->network_threads);
  self->set_down_handler([=](const caf::down_msg& dm) { on_worker_down(self, dm); });
  return {
    [=](atom::run, const transfer_job& job,
        const progress_sink_actor& sink) -> caf::result<transfer_outcome> {
      auto& st = self->state;
      if (st.children.count(job.id) != 0)
        return to_error(
          {errc::internal, "job id " + std::to_string(job.id) + " is already running"});
      auto store = store_for(*st.config, job);
      if (!store) {
        std::string why = "no store configured: git-lfs runs ferry as its standalone agent, so "
                          "ferry needs a store of its own; run 'ferry install --store <url>' or "
                          "set ferry.store (or FERRY_STORE)";
        log_event(spdlog::level::warn, {job.oid, {}}, "{}: failed: {}", to_string(job.dir), why);
        return transfer_outcome{job.id, job.dir, job.oid, errc::config_error, why, {}, 0, {}};
      }
      auto& c = st.children[job.id];
      c.job = job;
      c.sink = sink;
      c.promise = self->make_response_promise<transfer_outcome>();
      c.host = store->endpoint();
      c.network = job.has_action() || !c.host.empty();
      // A copy is paced by its destination, else by its source; between
      // two folders by "local", so migrate's --tps and --bwlimit hold too.
      if (job.dir == direction::copy && st.config->source) {
        auto source_host = st.config->source->endpoint();
        c.network = c.network || !source_host.empty();
        if (c.host.empty())
          c.host = source_host.empty() ? std::string{"local"} : source_host;
      }
      c.received = self->clock().now();
      c.store_kind = store_kind(*store);
      c.store = std::move(store);
      count_received(self, c);
      auto promise = c.promise;
      auto key = object_key(job.dir, job.oid);
      if (auto running = st.same_object.find(key); running != st.same_object.end()) {
        log_event(spdlog::level::debug, {job.oid, {}},
                  "{}: waits for the {} of the same object already running", to_string(job.dir),
                  to_string(job.dir));
        running->second.push_back(job.id);
        return promise;
      }
      st.same_object[key];
      // The first attempt may conclude the job at once (a dead host).
      admit(self, job.id);
      return promise;
    },
    [=](atom::done, uint64_t id, std::string path, bool found_present) {
      auto i = self->state.children.find(id);
      if (i == self->state.children.end())
        return;
      i->second.result_path = std::move(path);
      i->second.found_present = found_present;
    },
    [=](atom::begun, uint64_t id, std::string cid) {
      auto i = self->state.children.find(id);
      if (i == self->state.children.end())
        return;
      i->second.cid = std::move(cid);
      emit(self, event_of(self, i->second, protocol::event_kind::start));
    },
    [=](atom::restart, uint64_t id, uint64_t wake) {
      auto i = self->state.children.find(id);
      if (i == self->state.children.end() || i->second.wake != wake)
        return;
      start_attempt(self, id);
    },
    [=](atom::cancel, uint64_t first, uint64_t last) {
      auto& st = self->state;
      // Those waiting their turn first: cancelling the job of an object that
      // runs would start the next one waiting for it.
      std::vector<uint64_t> waiting, others;
      for (auto i = st.children.lower_bound(first); i != st.children.end() && i->first <= last; ++i)
        (waits_its_turn(st, i->second) ? waiting : others).push_back(i->first);
      for (auto id : waiting)
        cancel_job(self, id);
      for (auto id : others)
        cancel_job(self, id);
    },
  };
}

} // namespace ferry
