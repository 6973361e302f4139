#pragma once

#include "actors/policy/circuit_breaker.hpp"
#include "actors/policy/engine_config.hpp"
#include "actors/policy/retry_budget.hpp"
#include "actors/policy/retry_policy.hpp"
#include "protocol/status.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ferry {

/// A wait the way a person reads it: "250 ms", "30 s", "4.5 s".
std::string describe_wait(std::chrono::nanoseconds wait);

/// `text` without the user:password@ of any URL in it: notices and
/// messages name hosts, never credentials.
std::string redact(const std::string& text);

/// The SUPERVISOR's rules for its jobs' attempts: when the next one may
/// start, and what a finished one means for the job and for its host.
///
/// Before each attempt of a network job it asks the host's circuit breaker;
/// a retry also needs a slot in the retry budget. Waiting for either is
/// neither an attempt nor a failure. After an attempt, the retry policy
/// decides: retry after a delay, or give up. A retry (or a wait for a
/// circuit) that would start past max_retry_time from the job's first
/// attempt gives up. Once a host's probe has failed, its jobs fail at once
/// until its circuit is half open again.
///
/// The caller does what the answers say (start workers, set timers, notify
/// the user) and passes in `now`, so the rules run on any clock. Jobs are
/// named by id; start(), attempt_started() and finish() expect a job that
/// was added and not yet removed. Not thread-safe: one actor owns it.
class admission {
public:
  using clock = std::chrono::steady_clock;
  using time_point = clock::time_point;

  /// What the rules know about one job.
  struct job {
    /// "host:port" of the server the job talks to; empty for local stores,
    /// which have no circuit.
    std::string host;
    /// Attempts started.
    int attempts = 0;
    /// When the first attempt started (ferry.maxRetryTime counts from here).
    std::optional<time_point> first_attempt;
    /// The failure of the latest attempt.
    status last_failure;
    /// Of the failed attempts, how many found the object locked by another
    /// writer.
    int busy_waits = 0;
    /// The next attempt retries a failure, so it needs a retry budget slot.
    bool retry = false;
    /// The current attempt holds a retry budget slot.
    bool retry_slot = false;
    /// The job waits for its host's circuit to let it through.
    bool waiting_for_circuit = false;
    /// The circuit breaker's admission of the current attempt.
    circuit_breaker::admission ticket;
    /// start() let the current attempt go (it holds `ticket`) and finish()
    /// has not seen it end.
    bool admitted = false;
    /// The current attempt started (attempt_started()) and finish() has not
    /// seen it end: a request in flight for the retry budget.
    bool running = false;
  };

  /// The answer of start().
  struct start_decision {
    enum verdict {
      /// Start the attempt now.
      start,
      /// Wait for one of the `retries_in_flight` retries to finish: the job
      /// is queued and comes back in the `wake` of a later decision.
      wait_for_budget,
      /// Ask again after `wait`, or earlier if the circuit closes (then the
      /// job is in the `wake` of a later decision).
      wait_for_circuit,
      /// The host is dead: fail the job now with `code` and `message`.
      fail_dead_host,
      /// The job has been retried for long enough: fail it with `code` and
      /// `message`.
      give_up,
    };
    verdict what = start;
    /// start: the attempt is its host's half-open probe.
    bool probe = false;
    /// wait_for_budget: the retries in flight.
    int retries_in_flight = 0;
    /// wait_for_circuit: until the host's next probe.
    clock::duration wait{0};
    errc code = errc::ok;
    std::string message;
    /// Jobs to start now (ask start() for each), first to last: a retry
    /// slot this job gave back went to the oldest retry waiting for one.
    std::vector<uint64_t> wake;
  };

  /// What a finished attempt changed about its host.
  struct host_change {
    enum kind {
      none,
      /// The probe succeeded: the circuit closed.
      closed,
      /// Consecutive transient failures opened the circuit.
      opened,
      /// The probe failed: the circuit opened again and the host is dead.
      reopened,
    };
    kind what = none;
    /// The server asked to wait this long before any request to the host
    /// (Retry-After); 0 when it did not.
    std::chrono::milliseconds cooldown{0};
    /// The server answered 429 or 503 ("slow down", store/http's
    /// asks_to_slow_down): the host's own rate is cut (rate_backoff).
    bool slow_down = false;
    /// opened, reopened: the failure, without credentials.
    std::string error;
    /// The one line for the user; empty when there is nothing new to say.
    std::string notice;
    /// Jobs parked for the circuit that go on now (closed) or fail at once
    /// (reopened): ask start() for each.
    std::vector<uint64_t> wake;
  };

  /// The answer of finish().
  struct finish_decision {
    enum verdict {
      /// The attempt succeeded: the job is done.
      done,
      /// Ask start() again after `delay`.
      retry,
      /// The failure is final: fail the job with `code` and `message`.
      give_up,
      /// The host is dead: fail the job now with `code` and `message`.
      fail_dead_host,
    };
    verdict what = done;
    /// retry: the wait before the next attempt.
    std::chrono::milliseconds delay{0};
    /// retry: `delay` is the wait the server asked for.
    bool as_asked = false;
    errc code = errc::ok;
    std::string message;
    /// A job to start now (ask start() for it), before anything else: the
    /// retry slot this attempt held went to the oldest retry waiting.
    std::vector<uint64_t> wake;
    /// Empty (what == none, no cooldown) for jobs without a host.
    host_change host;
  };

  /// `time_of_day` names the wall-clock time a probe failed ("14:03:27")
  /// in the messages of jobs failed for a dead host; by default the local
  /// time.
  explicit admission(const engine_config& config,
                     std::function<std::string()> time_of_day = nullptr);

  /// Job `id` for `host` (empty: a local store) waits for its first attempt.
  void add(uint64_t id, std::string host);

  /// Job `id` is concluded: forget it.
  void remove(uint64_t id);

  /// What the rules know about job `id`; null if it is not known.
  const job* find(uint64_t id) const;

  /// Whether the next attempt of job `id` may start at `now`. A `start`
  /// holds the host's ticket; call attempt_started() when it does start.
  start_decision start(uint64_t id, time_point now);

  /// The attempt of job `id` admitted by start() started at `now`.
  void attempt_started(uint64_t id, time_point now);

  /// The current attempt of job `id` ended at `now` with `outcome`
  /// (success or the failure): records what it says about the host and
  /// decides the job's next step.
  finish_decision finish(uint64_t id, const status& outcome, time_point now);

  /// Job `id` is given up before its outcome is known (its caller went
  /// away) and forgotten: its attempt counts neither for nor against its
  /// host, and what it held goes back (its place in flight, its retry slot,
  /// a half-open circuit's probe). Returns the jobs to start now (ask
  /// start() for each): the oldest retry waiting for a slot, and the jobs
  /// parked for the circuit whose probe it was.
  std::vector<uint64_t> cancel(uint64_t id);

  /// The retry budget, for inspection.
  const retry_budget& budget() const { return budget_; }

private:
  /// Per host, for the message of jobs failed at once while its circuit is
  /// dead (see circuit_breaker::dead).
  struct host_failure {
    std::string last_error;
    /// The wall-clock time its probe failed.
    std::string probe_failed_at;
  };

  std::vector<uint64_t> release_retry_slot(job& j);
  host_change record_host_health(job& j, const status& outcome, time_point now);
  std::vector<uint64_t> wake_parked(const std::string& host);
  std::string dead_host_message(const std::string& host);

  int breaker_failures_;
  std::chrono::milliseconds breaker_open_for_;
  std::function<std::string()> time_of_day_;
  retry_policy policy_;
  std::shared_ptr<circuit_breakers> breakers_;
  retry_budget budget_;
  std::map<uint64_t, job> jobs_;
  /// Jobs whose retry waits for a slot in the retry budget, oldest first.
  std::deque<uint64_t> budget_queue_;
  /// Hosts whose circuit is open: when it lets the next probe through.
  std::map<std::string, time_point> next_probe_;
  std::map<std::string, host_failure> host_failures_;
};

} // namespace ferry
