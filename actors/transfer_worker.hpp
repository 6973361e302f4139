#pragma once

#include "actors/interfaces.hpp"
#include "actors/policy/engine_config.hpp"
#include "actors/policy/progress_throttle.hpp"
#include "actors/policy/transfer_task.hpp"
#include "store/os/blocking_pool.hpp"

#include <memory>
#include <optional>

namespace ferry {

struct transfer_worker_state {
  transfer_job job;
  std::shared_ptr<const engine_config> config;
  /// Where the object goes to or comes from.
  std::shared_ptr<object_store> store;
  journal_actor journal;
  supervisor_actor parent;
  progress_sink_actor sink;
  /// The transfer's correlation id, from its journal record.
  std::string cid;
  /// Shared with a call running on `pool`, which may outlive the worker.
  std::shared_ptr<transfer_task> task;
  std::optional<progress_throttle> progress;
  /// Where the task's blocking calls run; null: on the actor itself.
  std::shared_ptr<blocking_pool> pool;
  /// What to do with the result of the call running on `pool`.
  std::function<void()> resume;

  static inline const char* name = "transfer_worker";
};

/// Spawns a WORKER for one attempt at `job` against `store`. It asks the
/// journal where to resume, moves the object chunk by chunk (syncing and
/// recording the resume point every engine_config::sync_bytes), reports
/// progress to `sink`, and then either sends `done` to `parent` and exits
/// normally, or exits with the error as its exit reason, leaving the
/// decision to retry to `parent`. With a `pool`, the task's calls (which
/// may block on the network) run there, one at a time.
worker_actor::behavior_type
transfer_worker(worker_actor::stateful_pointer<transfer_worker_state> self, transfer_job job,
                std::shared_ptr<const engine_config> config, std::shared_ptr<object_store> store,
                journal_actor journal, supervisor_actor parent, progress_sink_actor sink,
                std::shared_ptr<blocking_pool> pool);

} // namespace ferry
