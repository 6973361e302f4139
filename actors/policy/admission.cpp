#include "actors/policy/admission.hpp"

#include "store/http/http_classify.hpp"

#include <cstdio>
#include <ctime>
#include <regex>
#include <utility>

namespace ferry {

namespace {

/// The local wall-clock time of day, "14:03:27".
std::string local_time_of_day() {
  auto now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char buffer[16];
  std::strftime(buffer, sizeof buffer, "%H:%M:%S", &local);
  return buffer;
}

} // namespace

std::string describe_wait(std::chrono::nanoseconds wait) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(wait).count();
  if (ms < 1000)
    return std::to_string(ms) + " ms";
  if (ms % 1000 == 0)
    return std::to_string(ms / 1000) + " s";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f s", static_cast<double>(ms) / 1000.0);
  return buffer;
}

std::string redact(const std::string& text) {
  static const std::regex userinfo{R"(([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@)"};
  return std::regex_replace(text, userinfo, "$1");
}

admission::admission(const engine_config& config, std::function<std::string()> time_of_day)
    : breaker_failures_(config.breaker_failures), breaker_open_for_(config.breaker_open_for),
      time_of_day_(time_of_day ? std::move(time_of_day) : local_time_of_day),
      policy_(config.max_attempts, backoff{config.backoff_base, config.backoff_max, config.seed},
              60, config.max_retry_time),
      breakers_(config.circuits ? config.circuits
                                : std::make_shared<circuit_breakers>(config.breaker_failures,
                                                                     config.breaker_open_for)),
      budget_(config.retry_budget_percent, config.retry_budget_min) {}

void admission::add(uint64_t id, std::string host) { jobs_[id].host = std::move(host); }

void admission::remove(uint64_t id) { jobs_.erase(id); }

const admission::job* admission::find(uint64_t id) const {
  auto i = jobs_.find(id);
  return i == jobs_.end() ? nullptr : &i->second;
}

/// Returns a retry slot and hands it straight to the oldest retry waiting
/// for one, so a newer retry cannot overtake it.
std::vector<uint64_t> admission::release_retry_slot(job& j) {
  if (!std::exchange(j.retry_slot, false))
    return {};
  budget_.retry_finished();
  while (!budget_queue_.empty()) {
    auto i = jobs_.find(budget_queue_.front());
    budget_queue_.pop_front();
    if (i == jobs_.end())
      continue;
    i->second.retry_slot = budget_.try_start_retry();
    return {i->first};
  }
  return {};
}

/// Why a job for a dead host (its probe failed) fails at once.
std::string admission::dead_host_message(const std::string& host) {
  auto& failure = host_failures_[host];
  // A shared circuit (the daemon's): another engine's probe failed.
  if (failure.probe_failed_at.empty())
    return host + " is not answering" +
           (failure.last_error.empty() ? "" : " (last error: " + failure.last_error + ")") +
           "; its circuit opened after " + std::to_string(breaker_failures_) +
           " failures and a probe sent for another repository failed; run the command again "
           "once " +
           host + " is reachable";
  return host + " is not answering (last error: " + failure.last_error +
         "); the circuit opened after " + std::to_string(breaker_failures_) +
         " failures and the probe at " + failure.probe_failed_at +
         " failed; run the command again once " + host + " is reachable";
}

admission::start_decision admission::start(uint64_t id, time_point now) {
  auto& j = jobs_.at(id);
  start_decision d;
  j.waiting_for_circuit = false;
  if (j.retry && !j.retry_slot) {
    j.retry_slot = budget_.try_start_retry();
    // With no retry in flight, none would finish to wake this one.
    if (!j.retry_slot && budget_.active_retries() > 0) {
      budget_queue_.push_back(id);
      d.what = start_decision::wait_for_budget;
      d.retries_in_flight = budget_.active_retries();
      return d;
    }
  }
  if (j.host.empty())
    return d;
  bool dead = false;
  auto ticket = breakers_->with(j.host, [&](circuit_breaker& breaker) {
    dead = breaker.dead(now);
    return dead ? circuit_breaker::admission{} : breaker.allow(now);
  });
  if (dead) {
    d.wake = release_retry_slot(j);
    d.what = start_decision::fail_dead_host;
    d.code = errc::unavailable;
    d.message = dead_host_message(j.host);
    return d;
  }
  if (!ticket) {
    d.wake = release_retry_slot(j);
    // Without a known probe time the probe is out already: its outcome (or,
    // if it never reports, the breaker's next round of probes) decides.
    clock::duration wait = breaker_open_for_;
    auto probe = next_probe_.find(j.host);
    if (probe != next_probe_.end() && probe->second > now)
      wait = probe->second - now;
    if (j.retry && j.first_attempt && policy_.past_retry_time(*j.first_attempt, now + wait)) {
      d.what = start_decision::give_up;
      d.code = j.last_failure.code();
      d.message = policy_.timed_out().explain(j.last_failure, j.attempts);
      return d;
    }
    j.waiting_for_circuit = true;
    d.what = start_decision::wait_for_circuit;
    d.wait = wait;
    return d;
  }
  d.probe = ticket.probe;
  j.ticket = ticket;
  j.admitted = true;
  return d;
}

void admission::attempt_started(uint64_t id, time_point now) {
  auto& j = jobs_.at(id);
  j.attempts += 1;
  j.running = true;
  if (!j.first_attempt)
    j.first_attempt = now;
  budget_.request_started();
}

/// The jobs of `host` parked for its circuit, no longer parked.
std::vector<uint64_t> admission::wake_parked(const std::string& host) {
  std::vector<uint64_t> woken;
  for (auto& [id, other] : jobs_)
    if (other.host == host && std::exchange(other.waiting_for_circuit, false))
      woken.push_back(id);
  return woken;
}

/// What a finished attempt says about its host: a Retry-After puts the
/// host on cooldown for every job, a 429 or 503 cuts its rate; transient
/// failures count toward opening its circuit, a success closes it.
/// Permanent failures (a 404, a hash mismatch) and waits for another writer
/// say nothing about the host.
admission::host_change admission::record_host_health(job& j, const status& outcome,
                                                     time_point now) {
  host_change change;
  // The breaker may be shared with other engines: its state before and
  // after this outcome is read in one go.
  auto before = circuit_breaker::state::closed;
  auto after = before;
  bool was_dead = false;
  auto counts = outcome.ok() || (classify(outcome.code()) == retry_class::transient &&
                                 outcome.code() != errc::busy);
  if (counts)
    breakers_->with(j.host, [&](circuit_breaker& breaker) {
      before = breaker.current(now);
      was_dead = breaker.failed_probe();
      if (outcome.ok())
        breaker.on_success(now, j.ticket);
      else
        breaker.on_failure(now, j.ticket);
      after = breaker.current(now);
    });
  if (outcome.ok()) {
    if (before != circuit_breaker::state::closed && after == circuit_breaker::state::closed) {
      change.what = host_change::closed;
      change.notice = "ferry: " + j.host + " is answering again; transfers to it go on";
      next_probe_.erase(j.host);
      host_failures_.erase(j.host);
      change.wake = wake_parked(j.host);
    }
    return change;
  }
  if (outcome.retry_after() > std::chrono::milliseconds{0})
    change.cooldown = outcome.retry_after();
  change.slow_down = asks_to_slow_down(outcome);
  if (!counts)
    return change;
  auto error = redact(outcome.to_string());
  host_failures_[j.host].last_error = error;
  if (before == circuit_breaker::state::open || after != circuit_breaker::state::open)
    return change;
  next_probe_[j.host] = now + breaker_open_for_;
  auto next = describe_wait(breaker_open_for_);
  change.error = error;
  if (before == circuit_breaker::state::half_open) {
    change.what = host_change::reopened;
    host_failures_[j.host].probe_failed_at = time_of_day_();
    if (!was_dead)
      change.notice = "ferry: " + j.host + " is not answering: the probe failed (" + error +
                      "); its transfers fail at once, and one more probe goes out in " + next;
    // Nothing waits for a dead host: its parked jobs fail now.
    change.wake = wake_parked(j.host);
  } else {
    change.what = host_change::opened;
    change.notice = "ferry: " + j.host + " is failing (" + std::to_string(breaker_failures_) +
                    " failures in a row, last: " + error + "); pausing transfers to it for " + next;
  }
  return change;
}

admission::finish_decision admission::finish(uint64_t id, const status& outcome, time_point now) {
  auto& j = jobs_.at(id);
  finish_decision d;
  j.admitted = false;
  j.running = false;
  budget_.request_finished();
  d.wake = release_retry_slot(j);
  if (!j.host.empty())
    d.host = record_host_health(j, outcome, now);
  if (outcome.ok())
    return d;
  if (outcome.code() == errc::busy)
    j.busy_waits += 1;
  j.last_failure = outcome;
  auto decision =
    policy_.decide(outcome, j.attempts - j.busy_waits, j.busy_waits, now, j.first_attempt);
  if (decision.what != retry_decision::retry) {
    d.what = finish_decision::give_up;
    d.code = outcome.code();
    d.message = decision.explain(outcome, j.attempts);
    return d;
  }
  // A host whose probe failed gets no retries: the job fails now.
  if (outcome.code() != errc::busy && !j.host.empty() &&
      breakers_->with(j.host, [&](circuit_breaker& breaker) { return breaker.dead(now); })) {
    d.what = finish_decision::fail_dead_host;
    d.code = errc::unavailable;
    d.message = dead_host_message(j.host);
    return d;
  }
  d.what = finish_decision::retry;
  d.delay = decision.delay;
  d.as_asked =
    outcome.retry_after() > std::chrono::milliseconds{0} && decision.delay == outcome.retry_after();
  // Waiting for another writer is not a retry against a failing server.
  j.retry = outcome.code() != errc::busy;
  return d;
}

std::vector<uint64_t> admission::cancel(uint64_t id) {
  auto i = jobs_.find(id);
  if (i == jobs_.end())
    return {};
  auto& j = i->second;
  if (j.running)
    budget_.request_finished();
  auto wake = release_retry_slot(j);
  // A probe that will never report would hold the circuit half open until
  // the breaker's next round of probes: one of the parked jobs takes it now.
  if (j.admitted && j.ticket.probe &&
      breakers_->with(j.host, [&](circuit_breaker& breaker) { return breaker.abandon(j.ticket); }))
    for (auto parked : wake_parked(j.host))
      wake.push_back(parked);
  // budget_queue_ may still name it; release_retry_slot() skips unknown jobs.
  jobs_.erase(i);
  return wake;
}

} // namespace ferry
