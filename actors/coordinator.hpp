#pragma once

#include "actors/interfaces.hpp"
#include "actors/policy/engine_config.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace ferry {

struct coordinator_state {
  std::shared_ptr<const engine_config> config;
  supervisor_actor supervisor;
  protocol_io_actor io;
  std::optional<protocol::operation> operation;
  /// The ids of this coordinator's jobs so far: first_id up to next_id - 1.
  /// Engines that share one SUPERVISOR give each coordinator a range of its
  /// own (its ids are the supervisor's keys).
  uint64_t first_id = 1;
  uint64_t next_id = 1;
  int in_flight = 0;
  /// What config->watch_object() returned for each job in flight.
  std::map<uint64_t, std::shared_ptr<void>> watches;
  bool terminating = false;

  static inline const char* name = "coordinator";
};

/// Spawns the COORDINATOR. It answers init, turns each upload/download into a
/// job for `supervisor` (with the LFS server's action, when git-lfs passed
/// one), relays progress, and writes each outcome as a `complete` reply
/// through `io`. On terminate it waits for in-flight jobs, then stops (its
/// linked protocol IO actor stops with it); at the end of input without
/// terminate it has the supervisor cancel them first. Its jobs are
/// numbered from `first_job_id` up.
coordinator_actor::behavior_type
coordinator(coordinator_actor::stateful_pointer<coordinator_state> self,
            std::shared_ptr<const engine_config> config, supervisor_actor supervisor,
            protocol_io_actor io, uint64_t first_job_id);

/// The protocol error code git-lfs shows for a failure.
int protocol_code(errc code);

} // namespace ferry
