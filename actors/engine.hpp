#pragma once

#include "actors/policy/engine_config.hpp"
#include "actors/protocol_io.hpp"
#include "actors/rate_limiter.hpp"
#include "protocol/daemon_messages.hpp"
#include "store/journal/journal_db.hpp"

#include <caf/fwd.hpp>

#include <functional>
#include <memory>
#include <string>

namespace ferry {

struct agent_options {
  engine_config config;
  /// The repository's journal, opened for writing.
  std::shared_ptr<journal_db> journal;
  /// Longest request line accepted; longer lines are answered with an error.
  size_t max_line_bytes = 1 << 20;
  /// Where requests come from (stdin in the agent).
  int input_fd = 0;
  /// Bytes of that input read before the engine started (the agent that
  /// answered git-lfs's init itself), taken before the rest.
  std::string read_before;
  /// Whether each input line is a daemon frame (protocol/daemon_messages.hpp)
  /// around the request, as on a daemon's connection, rather than the
  /// request itself.
  bool framed_input = false;
  /// Gets the frames of framed input that carry no request (an agent's
  /// answers to the daemon), on the reading thread; may be empty.
  std::function<void(const protocol::daemon_frame&)> on_frame;
  /// Called on the reading thread once the input has ended; may be empty.
  std::function<void()> on_input_end;
  /// Where replies go (stdout in the agent).
  line_writer write;
  /// A rate limiter shared with other engines of the process (the daemon's);
  /// null: the engine spawns its own. Not used with a Redis limit
  /// (config.shared_limit), whose wrapper is linked to its own limiter.
  rate_limiter_actor limiter;
};

/// The actors every use of the engine has.
struct engine_core {
  journal_actor journal;
  rate_limiter_actor limiter;
  supervisor_actor supervisor;
  /// Whether `limiter` is another's, which stop_engine_core() leaves alone.
  bool limiter_shared = false;
};

/// Whether the host the supervisor paces jobs by (a copy's destination, else
/// its source) is an LFS server's or S3's: the HTTP engine then paces each
/// request to it, and the RATE LIMITER must not count the transfer once
/// more (it keeps the bytes per second).
bool requests_paced_by_http(const engine_config& config);

/// What the RATE LIMITER of an engine over `config` limits: the bytes per
/// second, and the transfers per second where no HTTP engine paces each
/// request (requests_paced_by_http()).
rate_limits limiter_limits(const engine_config& config);

/// Spawns the JOURNAL over `journal`, runs its start-up recovery (telling
/// `recovered` about each record a crash left in flight), then spawns the
/// RATE LIMITER (unless `shared_limiter` is given and no Redis limit is
/// configured) and the SUPERVISOR.
engine_core start_engine_core(caf::actor_system& sys, caf::scoped_actor& self,
                              std::shared_ptr<const engine_config> config,
                              std::shared_ptr<journal_db> journal,
                              const std::function<void(const transfer_record&)>& recovered,
                              rate_limiter_actor shared_limiter = {});

/// The scheduler every engine runs on: 4 threads sharing one queue. CAF's
/// default work stealing keeps idle threads polling; sharing lets them
/// sleep, which cut the CPU of 10,000 small copies by 14% and a 1,000-object
/// push through the agent from 4.3 s to 3.1 s (bench/README.md).
void configure_scheduler(caf::actor_system_config& cfg);

/// Stops what start_engine_core() spawned, and waits until the journal has
/// closed its database.
void stop_engine_core(caf::scoped_actor& self, const engine_core& core);

/// Logs a record that start-up recovery found in flight: it resumes when
/// git-lfs asks for it again.
void log_recovered(const transfer_record& record);

/// The first job id of connection `number` (from 0) to an engine core that
/// several connections share: each numbers its jobs from here up, 2^32 of
/// them, so that no two meet in the SUPERVISOR (which keys jobs by id).
constexpr uint64_t first_job_id(uint32_t number) { return (uint64_t{number} << 32) + 1; }

/// Serves one agent's requests on `core`, which other agents may share:
/// spawns its PROTOCOL IO and COORDINATOR (over `config`, this agent's view
/// of the core's config: its jobs' download directory) and a thread that
/// reads its request lines, numbering its jobs from `first_job` up. Returns
/// once git-lfs has sent terminate or closed the input and this agent's
/// jobs have ended; the exit code.
int serve_on_core(caf::actor_system& sys, const engine_core& core,
                  std::shared_ptr<const engine_config> config, const agent_options& options,
                  uint64_t first_job);

/// Runs the custom transfer agent until git-lfs sends terminate or closes
/// the input: recovers interrupted transfers from the journal, then starts
/// the journal, rate limiter, supervisor, protocol IO and coordinator actors
/// and a thread that reads request lines. Returns the process exit code.
int run_agent(agent_options options);

/// run_agent() on an actor system that outlives it (the daemon runs one for
/// every connection); returns once this agent's actors have stopped.
int run_agent_on(caf::actor_system& sys, agent_options options);

} // namespace ferry
