#pragma once

#include "actors/interfaces.hpp"
#include "actors/policy/engine_config.hpp"

#include <functional>
#include <memory>
#include <string>

namespace ferry {

/// Where reply lines go: stdout in the agent, a vector in tests. Called with
/// one encoded line (no newline); must write it whole and flush.
using line_writer = std::function<void(const std::string&)>;

struct protocol_io_state {
  line_writer write;
  coordinator_actor coordinator;
  size_t max_line_bytes = 0;

  static inline const char* name = "protocol_io";
};

/// Spawns the PROTOCOL IO actor and, linked to it, the COORDINATOR. Decoded
/// requests go to the coordinator; lines that cannot be decoded are answered
/// at once with an error reply, and the agent keeps serving. The
/// coordinator numbers its jobs from `first_job_id` up.
protocol_io_actor::behavior_type
protocol_io(protocol_io_actor::stateful_pointer<protocol_io_state> self, line_writer write,
            size_t max_line_bytes, std::shared_ptr<const engine_config> config,
            supervisor_actor supervisor, uint64_t first_job_id);

} // namespace ferry
