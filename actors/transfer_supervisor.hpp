#pragma once

#include "actors/engine_config.hpp"
#include "actors/interfaces.hpp"
#include "actors/retry_policy.hpp"

#include <caf/typed_response_promise.hpp>

#include <map>
#include <memory>
#include <optional>

namespace ferry {

struct transfer_supervisor_state {
  /// One job and its current worker.
  struct child {
    transfer_job job;
    progress_sink_actor sink;
    caf::typed_response_promise<transfer_outcome> promise;
    caf::actor_addr worker;
    /// Workers started for this job.
    int attempts = 0;
    /// Of those, how many found the object locked by another writer.
    int busy_waits = 0;
    /// Set by the worker's `done`, before it exits.
    std::optional<std::string> result_path;
  };

  std::shared_ptr<const engine_config> config;
  journal_actor journal;
  std::optional<retry_policy> policy;
  std::map<uint64_t, child> children;

  /// The job whose current worker is `worker`, if any.
  child* find(const caf::actor_addr& worker);

  static inline const char* name = "transfer_supervisor";
};

/// Spawns the SUPERVISOR. Each `run` gets a monitored worker; when a worker
/// exits with an error, the retry policy decides: restart after a jittered
/// backoff (the new worker resumes from the journal), or report the failure.
supervisor_actor::behavior_type
transfer_supervisor(supervisor_actor::stateful_pointer<transfer_supervisor_state> self,
                    std::shared_ptr<const engine_config> config, journal_actor journal);

} // namespace ferry
