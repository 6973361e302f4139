#pragma once

#include "actors/policy/circuit_breaker.hpp"
#include "actors/policy/engine_config.hpp"
#include "actors/interfaces.hpp"
#include "actors/policy/retry_budget.hpp"
#include "actors/policy/retry_policy.hpp"

#include <caf/actor_clock.hpp>
#include <caf/typed_response_promise.hpp>

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace ferry {

struct transfer_supervisor_state {
  /// One job and its current worker.
  struct child {
    transfer_job job;
    progress_sink_actor sink;
    caf::typed_response_promise<transfer_outcome> promise;
    /// Where the object goes to or comes from: the engine's store, or the
    /// store for the job's server action (kept across attempts).
    std::shared_ptr<object_store> store;
    /// "host:port" of the server the job talks to; empty for local stores.
    /// Rate limits and circuit breakers are per host.
    std::string host;
    /// Whether the job's workers need a thread of their own (network I/O).
    bool network = false;
    caf::actor_addr worker;
    /// Workers started for this job.
    int attempts = 0;
    /// When the first worker started (ferry.maxRetryTime counts from here).
    std::optional<caf::actor_clock::time_point> first_attempt;
    /// The failure of the latest attempt.
    status last_failure;
    /// Of those, how many found the object locked by another writer.
    int busy_waits = 0;
    /// Set by the worker's `done`, before it exits.
    std::optional<std::string> result_path;
    /// The next attempt retries a failure, so it needs a retry budget slot.
    bool retry = false;
    /// The current attempt holds a retry budget slot.
    bool retry_slot = false;
    /// The job waits for its host's circuit to let it through.
    bool waiting_for_circuit = false;
    /// The circuit breaker's admission of the current attempt.
    circuit_breaker::admission ticket;
    /// Number of the pending wake-up (see the `restart` handler): only the
    /// latest one starts the next attempt.
    uint64_t wake = 0;
  };

  std::shared_ptr<const engine_config> config;
  journal_actor journal;
  /// Paces network jobs per host; may be null (no pacing, no cooldowns).
  rate_limiter_actor limiter;
  std::optional<retry_policy> policy;
  circuit_breakers breakers;
  retry_budget budget;
  std::map<uint64_t, child> children;
  /// Jobs whose retry waits for a slot in the retry budget, oldest first.
  std::deque<uint64_t> budget_queue;
  /// Hosts whose circuit is open: when it lets the next probe through.
  std::map<std::string, caf::actor_clock::time_point> next_probe;
  /// Per host, for the message of jobs failed at once while its circuit is
  /// dead (see circuit_breaker::dead): the last transient failure and the
  /// wall-clock time its probe failed.
  struct host_failure {
    std::string last_error;
    std::string probe_failed_at;
  };
  std::map<std::string, host_failure> host_failures;

  /// The job whose current worker is `worker`, if any.
  child* find(const caf::actor_addr& worker);

  static inline const char* name = "transfer_supervisor";
};

/// Spawns the SUPERVISOR. Each `run` gets a monitored worker per attempt;
/// when a worker exits with an error, the retry policy decides: restart
/// after a jittered backoff, or no earlier than the server asked
/// (status::retry_after), with the new worker resuming from the journal; or
/// report the failure. Before each attempt of a network job it asks the
/// host's circuit breaker and `limiter`; a retry also needs a slot in the
/// retry budget. Waiting for any of them is neither an attempt nor a
/// failure. A failure with a Retry-After puts the whole host on cooldown
/// in `limiter`. A retry (or a wait for a circuit) that would start past
/// max_retry_time from the job's first attempt fails the job. Once a host's
/// probe has failed, its jobs fail at once until its circuit is half open
/// again. Each change of a circuit's state goes to config->notice.
supervisor_actor::behavior_type
transfer_supervisor(supervisor_actor::stateful_pointer<transfer_supervisor_state> self,
                    std::shared_ptr<const engine_config> config, journal_actor journal,
                    rate_limiter_actor limiter);

} // namespace ferry
