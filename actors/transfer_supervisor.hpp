#pragma once

#include "actors/interfaces.hpp"
#include "actors/policy/admission.hpp"
#include "actors/policy/engine_config.hpp"
#include "store/os/blocking_pool.hpp"

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
    /// Whether the job's workers block on the network (their calls then
    /// run on `network_calls`).
    bool network = false;
    caf::actor_addr worker;
    /// The transfer's correlation id, once its first attempt began.
    std::string cid;
    /// Set by the worker's `done`, before it exits.
    std::optional<std::string> result_path;
    /// Set with result_path: the store already held the object.
    bool found_present = false;
    /// Number of the pending wake-up (see the `restart` handler): only the
    /// latest one starts the next attempt.
    uint64_t wake = 0;
    /// When the job came in, and the store kind it names in metrics.
    caf::actor_clock::time_point received;
    /// When the current (or last) attempt's worker was spawned.
    caf::actor_clock::time_point attempt_started;
    std::string store_kind;
  };

  std::shared_ptr<const engine_config> config;
  journal_actor journal;
  /// Paces network jobs per host; may be null (no pacing, no cooldowns).
  rate_limiter_actor limiter;
  /// When attempts start and what their outcomes mean (the rules; this
  /// actor does the messaging).
  std::optional<admission> rules;
  std::map<uint64_t, child> children;
  /// Where network workers' calls run; null when the config keeps them on
  /// the actors (CAF's deterministic tests).
  std::shared_ptr<blocking_pool> network_calls;
  /// By "<direction>/<oid>": the jobs waiting for the job of the same object
  /// that runs (the key exists while one runs). One journal record and one
  /// partial file per object: a second job of it (another agent of the
  /// same engine) starts once the first's outcome is recorded.
  std::map<std::string, std::deque<uint64_t>> same_object;
  /// Workers stopped for a cancelled job, each with its job's key in
  /// `same_object`: the next job of that object starts once the worker is
  /// gone, after every journal message it sent.
  std::map<caf::actor_addr, std::string> stopping;

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
/// again. Each change of a circuit's state goes to config->notice. Jobs of
/// one object in one direction run one after the other. A cancelled job
/// (`cancel`) ends at once with errc::cancelled: a waiting one is dropped,
/// a running one's worker stopped; nothing about it counts for its host or
/// against the budgets.
supervisor_actor::behavior_type
transfer_supervisor(supervisor_actor::stateful_pointer<transfer_supervisor_state> self,
                    std::shared_ptr<const engine_config> config, journal_actor journal,
                    rate_limiter_actor limiter);

} // namespace ferry
