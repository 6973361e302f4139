#include "actors/transfer_supervisor.hpp"

#include "actors/logging.hpp"
#include "actors/transfer_worker.hpp"
#include "store/lfs/lfs_store.hpp"

#include <caf/all.hpp>

#include <fmt/format.h>

#include <ctime>
#include <regex>
#include <utility>
#include <vector>

namespace ferry {

namespace {

using supervisor_pointer = supervisor_actor::stateful_pointer<transfer_supervisor_state>;
using child = transfer_supervisor_state::child;
using time_point = caf::actor_clock::time_point;

/// "upload <oid>", as every log line about a job starts.
std::string label(const child& c) {
  return std::string{to_string(c.job.dir)} + " " + c.job.oid;
}

/// A wait the way a person reads it: "250 ms", "30 s", "4.5 s".
std::string describe_wait(caf::timespan wait) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(wait).count();
  if (ms < 1000)
    return fmt::format("{} ms", ms);
  if (ms % 1000 == 0)
    return fmt::format("{} s", ms / 1000);
  return fmt::format("{:.1f} s", static_cast<double>(ms) / 1000.0);
}

/// `text` without the user:password@ of any URL in it: notices and
/// messages name hosts, never credentials.
std::string redact(const std::string& text) {
  static const std::regex userinfo{R"(([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@)"};
  return std::regex_replace(text, userinfo, "$1");
}

/// The wall-clock time of day, "14:03:27".
std::string time_of_day() {
  auto now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char buffer[16];
  std::strftime(buffer, sizeof buffer, "%H:%M:%S", &local);
  return buffer;
}

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

/// Returns a retry slot and hands it straight to the oldest retry waiting
/// for one, so a newer retry cannot overtake it.
void release_retry_slot(supervisor_pointer self, child& c) {
  auto& st = self->state;
  if (!std::exchange(c.retry_slot, false))
    return;
  st.budget.retry_finished();
  while (!st.budget_queue.empty()) {
    auto i = st.children.find(st.budget_queue.front());
    st.budget_queue.pop_front();
    if (i == st.children.end())
      continue;
    i->second.retry_slot = st.budget.try_start_retry();
    wake_now(self, i->second);
    return;
  }
}

void spawn_worker(supervisor_pointer self, child& c) {
  auto& st = self->state;
  c.attempts += 1;
  if (!c.first_attempt)
    c.first_attempt = self->clock().now();
  c.result_path.reset();
  st.budget.request_started();
  auto parent = caf::actor_cast<supervisor_actor>(self);
  auto worker = st.config->detach_network_workers && c.network
                  ? self->spawn<caf::monitored + caf::detached>(transfer_worker, c.job, st.config,
                                                                c.store, st.journal, parent, c.sink)
                  : self->spawn<caf::monitored>(transfer_worker, c.job, st.config, c.store,
                                                st.journal, parent, c.sink);
  c.worker = worker.address();
}

void conclude(supervisor_pointer self, uint64_t id, transfer_outcome outcome,
              spdlog::level::level_enum failure_level = spdlog::level::warn);
transfer_outcome make_outcome(const child& c, errc code, std::string message, std::string path);

/// Why a job for a dead host (its probe failed) fails at once.
std::string dead_host_message(supervisor_pointer self, const std::string& host) {
  auto& st = self->state;
  auto& failure = st.host_failures[host];
  return fmt::format("{} is not answering (last error: {}); the circuit opened after {} "
                     "failures and the probe at {} failed; run the command again once {} is "
                     "reachable",
                     host, failure.last_error, st.config->breaker_failures,
                     failure.probe_failed_at, host);
}

void fail_dead_host(supervisor_pointer self, child& c) {
  // The notice that the host is not answering was shown once; each object
  // it fails goes to the log file only, not as one more line on stderr.
  conclude(self, c.job.id,
           make_outcome(c, errc::unavailable, dead_host_message(self, c.host), {}),
           spdlog::level::info);
}

/// Parks `c` until its host's circuit lets the next probe through; a
/// circuit that closes earlier wakes it at once.
/// A job that has been retried for long enough (ferry.maxRetryTime) fails
/// instead.
void wait_for_circuit(supervisor_pointer self, child& c, time_point now) {
  auto& st = self->state;
  auto probe = st.next_probe.find(c.host);
  // Without a known probe time the probe is out already: its outcome (or,
  // if it never reports, the breaker's next round of probes) decides.
  caf::timespan wait = st.config->breaker_open_for;
  if (probe != st.next_probe.end() && probe->second > now)
    wait = probe->second - now;
  if (c.retry && c.first_attempt && st.policy->past_retry_time(*c.first_attempt, now + wait))
    return conclude(self, c.job.id,
                    make_outcome(c, c.last_failure.code(),
                                 st.policy->timed_out().explain(c.last_failure, c.attempts),
                                 {}));
  log()->debug("{}: circuit for {} is open; next try in {}", label(c), c.host,
               describe_wait(wait));
  c.waiting_for_circuit = true;
  wake_after(self, c, wait);
}

/// Starts the next attempt of job `id` once the policies allow it: a retry
/// needs a slot in the retry budget, a network job its host's circuit and
/// the rate limiter's go-ahead.
void start_attempt(supervisor_pointer self, uint64_t id) {
  auto& st = self->state;
  auto i = st.children.find(id);
  if (i == st.children.end())
    return;
  auto& c = i->second;
  auto now = self->clock().now();
  if (c.retry && !c.retry_slot) {
    c.retry_slot = st.budget.try_start_retry();
    // With no retry in flight, none would finish to wake this one.
    if (!c.retry_slot && st.budget.active_retries() > 0) {
      log()->debug("{}: retry waits for one of the {} retries in flight to finish (retry budget)",
                   label(c), st.budget.active_retries());
      st.budget_queue.push_back(id);
      return;
    }
  }
  if (!c.host.empty()) {
    auto& breaker = st.breakers.for_host(c.host);
    if (breaker.dead(now)) {
      release_retry_slot(self, c);
      return fail_dead_host(self, c);
    }
    auto ticket = breaker.allow(now);
    if (!ticket) {
      release_retry_slot(self, c);
      return wait_for_circuit(self, c, now);
    }
    if (ticket.probe)
      log()->info("circuit for {} is half open: {} goes through as the probe", c.host, label(c));
    c.ticket = ticket;
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

/// What a finished attempt says about its host: a Retry-After puts the
/// host on cooldown for every job; transient failures count toward opening
/// its circuit, a success closes it. Permanent failures (a 404, a hash
/// mismatch) and waits for another writer say nothing about the host.
void record_host_health(supervisor_pointer self, child& c, const status& outcome,
                        time_point now) {
  auto& st = self->state;
  auto& breaker = st.breakers.for_host(c.host);
  auto before = breaker.current(now);
  if (outcome.ok()) {
    breaker.on_success(now, c.ticket);
    if (before != circuit_breaker::state::closed &&
        breaker.current(now) == circuit_breaker::state::closed) {
      log()->info("circuit for {} closed: the probe succeeded; transfers to it go on", c.host);
      notify(self, fmt::format("ferry: {} is answering again; transfers to it go on", c.host));
      st.next_probe.erase(c.host);
      st.host_failures.erase(c.host);
      for (auto& [id, other] : st.children) {
        if (other.host == c.host && std::exchange(other.waiting_for_circuit, false))
          wake_now(self, other);
      }
    }
    return;
  }
  if (outcome.retry_after() > std::chrono::milliseconds{0} && st.limiter) {
    log()->warn("host {} asked us to wait {} (Retry-After); every transfer to it pauses until then",
                c.host, describe_wait(outcome.retry_after()));
    self->send(st.limiter, atom::cooldown_v, c.host, caf::timespan{outcome.retry_after()});
  }
  if (classify(outcome.code()) != retry_class::transient || outcome.code() == errc::busy)
    return;
  st.host_failures[c.host].last_error = redact(outcome.to_string());
  bool was_dead = breaker.failed_probe();
  breaker.on_failure(now, c.ticket);
  if (before == circuit_breaker::state::open ||
      breaker.current(now) != circuit_breaker::state::open)
    return;
  st.next_probe[c.host] = now + st.config->breaker_open_for;
  auto next = describe_wait(st.config->breaker_open_for);
  if (before == circuit_breaker::state::half_open) {
    // Info, not warn: the notice below is the one line the user sees.
    log()->info("circuit for {} open again: the probe failed ({}); next probe in {}", c.host,
                redact(outcome.to_string()), next);
    st.host_failures[c.host].probe_failed_at = time_of_day();
    if (!was_dead)
      notify(self, fmt::format("ferry: {} is not answering: the probe failed ({}); its "
                               "transfers fail at once, and one more probe goes out in {}",
                               c.host, redact(outcome.to_string()), next));
    // Nothing waits for a dead host: its parked jobs fail now.
    for (auto& [id, other] : st.children) {
      if (other.host == c.host && std::exchange(other.waiting_for_circuit, false))
        wake_now(self, other);
    }
  } else {
    log()->info("circuit for {} open after {} consecutive failures (last: {}); next probe in {}",
                c.host, st.config->breaker_failures, redact(outcome.to_string()), next);
    notify(self, fmt::format("ferry: {} is failing ({} failures in a row, last: {}); pausing "
                             "transfers to it for {}",
                             c.host, st.config->breaker_failures, redact(outcome.to_string()),
                             next));
  }
}

/// Records the final outcome in the journal, then answers the job's caller.
void conclude(supervisor_pointer self, uint64_t id, transfer_outcome outcome,
              spdlog::level::level_enum failure_level) {
  auto& st = self->state;
  auto i = st.children.find(id);
  if (i == st.children.end())
    return;
  auto promise = i->second.promise;
  st.children.erase(i);
  if (outcome.ok())
    log()->info("{} {}: done", to_string(outcome.dir), outcome.oid);
  else
    log()->log(failure_level, "{} {}: failed: {}", to_string(outcome.dir), outcome.oid,
               outcome.message);
  self->request(st.journal, caf::infinite, atom::finish_v, outcome)
    .then([=](bool) mutable { promise.deliver(outcome); },
          [=](const caf::error&) mutable { promise.deliver(outcome); });
}

transfer_outcome make_outcome(const child& c, errc code, std::string message, std::string path) {
  return {c.job.id, c.job.dir, c.job.oid, code, std::move(message), std::move(path), c.attempts};
}

void on_worker_down(supervisor_pointer self, const caf::down_msg& dm) {
  auto& st = self->state;
  auto* c = st.find(dm.source);
  if (c == nullptr)
    return;
  auto id = c->job.id;
  auto now = self->clock().now();
  c->worker = caf::actor_addr{};
  st.budget.request_finished();
  release_retry_slot(self, *c);
  bool succeeded = c->result_path && !dm.reason;
  auto failure = succeeded     ? status::success()
                 : dm.reason ? to_status(dm.reason)
                             : status{errc::internal, "worker stopped without a result"};
  if (!c->host.empty())
    record_host_health(self, *c, failure, now);
  if (succeeded)
    return conclude(self, id, make_outcome(*c, errc::ok, {}, *c->result_path));
  if (failure.code() == errc::busy)
    c->busy_waits += 1;
  c->last_failure = failure;
  auto decision = st.policy->decide(failure, c->attempts - c->busy_waits, c->busy_waits, now,
                                    c->first_attempt);
  if (decision.what != retry_decision::retry)
    return conclude(self, id,
                    make_outcome(*c, failure.code(), decision.explain(failure, c->attempts), {}));
  // A host whose probe failed gets no retries: the job fails now.
  if (failure.code() != errc::busy && !c->host.empty() &&
      st.breakers.for_host(c->host).dead(now))
    return fail_dead_host(self, *c);
  auto asked = failure.retry_after() > std::chrono::milliseconds{0} &&
               decision.delay == failure.retry_after();
  log()->info("{}: attempt {} failed ({}); retrying in {}{}", label(*c), c->attempts,
              failure.to_string(), describe_wait(decision.delay),
              asked ? ", as the server asked" : "");
  // Waiting for another writer is not a retry against a failing server.
  c->retry = failure.code() != errc::busy;
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
  st.policy.emplace(st.config->max_attempts,
                    backoff{st.config->backoff_base, st.config->backoff_max, st.config->seed},
                    restart_budget{st.config->max_restarts, st.config->restart_window}, 60,
                    st.config->max_retry_time);
  st.breakers = circuit_breakers{st.config->breaker_failures, st.config->breaker_open_for};
  st.budget = retry_budget{st.config->retry_budget_percent, st.config->retry_budget_min};
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
        log()->warn("{} {}: failed: {}", to_string(job.dir), job.oid, why);
        return transfer_outcome{job.id, job.dir, job.oid, errc::config_error, why, {}, 0};
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
      c.store = std::move(store);
      // The first attempt may conclude the job at once (a dead host).
      auto promise = c.promise;
      start_attempt(self, job.id);
      return promise;
    },
    [=](atom::done, uint64_t id, std::string path) {
      auto i = self->state.children.find(id);
      if (i != self->state.children.end())
        i->second.result_path = std::move(path);
    },
    [=](atom::restart, uint64_t id, uint64_t wake) {
      auto i = self->state.children.find(id);
      if (i == self->state.children.end() || i->second.wake != wake)
        return;
      i->second.waiting_for_circuit = false;
      start_attempt(self, id);
    },
  };
}

} // namespace ferry
