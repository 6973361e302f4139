#pragma once

// What the daemon shares between the agents it serves: one actor system,
// one HTTP engine (its connection pool and per-host Retry-After
// cooldowns) and one rate limiter per distinct limit. Agents of one
// repository with the same settings and environment share one engine core
// (store, journal, store syncer, supervisor); each keeps its own protocol
// IO and coordinator. An agent whose settings differ gets a core of its own,
// on a journal slot.

#include "actors/interfaces.hpp"
#include "actors/policy/circuit_breaker.hpp"
#include "cli/agent_setup.hpp"
#include "cli/daemon_server.hpp"
#include "config/settings.hpp"
#include "store/http/http_engine.hpp"

#include <caf/fwd.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <utility>

namespace ferry::cli {

class daemon_engine {
public:
  /// `settings` are the user's own (outside any repository): they set the
  /// shared HTTP engine's stall timeout and longest cooldown.
  /// `metrics` are fed by every engine (docs/metrics.md).
  static result<std::unique_ptr<daemon_engine>> start(const config::settings& settings,
                                                      std::shared_ptr<metrics_registry> metrics);
  ~daemon_engine();

  /// Serves one agent (daemon_options::serve_agent): resolves its
  /// repository and settings from the session, answers the session, then
  /// runs its engine on `fd` until either side ends.
  void serve(int fd, const protocol::daemon_session& session, agent_hooks& hooks);

  /// Every host transfers went to: its circuit, pace and cooldown
  /// (ferry daemon status). Thread-safe.
  std::vector<protocol::daemon_host> hosts();

  class shared_core;

private:
  daemon_engine() = default;

  /// The running core of `key`, or a new one this agent is to start
  /// (`starter`); either way counted as one of its agents.
  std::shared_ptr<shared_core> join(const std::string& key, bool& starter);
  /// Uncounts an agent of `core`; the last one stops it.
  void leave(const std::shared_ptr<shared_core>& core);
  /// Serves an agent on a core of its own (as every agent was served
  /// before cores were shared): its settings have no repository, or the
  /// shared core could not start.
  void serve_alone(int fd, const protocol::daemon_session& session, const agent_settings& resolved,
                   agent_hooks& hooks);

  /// The limiter with the limits an engine over `config` needs
  /// (limiter_limits()), shared by every engine with the same; spawned on
  /// first use.
  rate_limiter_actor limiter_for(const engine_config& config);

  /// Makes the LFS stores opened in `context` share their credentials with
  /// every repository served that uses the same endpoint: one SESSION per
  /// endpoint (store_context::share_credentials).
  void share_credentials(agent_context& context);

  std::unique_ptr<caf::actor_system_config> config_;
  std::unique_ptr<caf::actor_system> system_;
  std::shared_ptr<http_engine> http_;
  std::shared_ptr<metrics_registry> metrics_;
  std::mutex mutex_;
  std::map<std::pair<double, double>, rate_limiter_actor> limiters_;
  /// Every engine's circuits: a host failing for one repository is paused
  /// for all.
  std::shared_ptr<circuit_breakers> circuits_;
  /// The SESSION of each LFS endpoint, held weakly: the session, and the
  /// credentials in it, go when the last store using it closes.
  std::map<std::string, caf::weak_actor_ptr> sessions_;
  /// The cores agents share, by engine_key().
  std::map<std::string, std::shared_ptr<shared_core>> cores_;
};

} // namespace ferry::cli
