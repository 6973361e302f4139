#pragma once

// What ferry-bridge-sim processes sharing one drive remember between runs:
// how often each scenario rule has matched, and the rate-limit cooldown
// (drive-cli keeps the latter in ~/.proton-drive-cli/rate-limit-cooldown.json).

#include "simulations/bridge_sim/scenario.hpp"

#include "protocol/status.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string_view>

namespace ferry::bridge_sim {

/// The shared state: DIR/.sim/state.json, read and rewritten (temp file +
/// rename) under an exclusive flock on DIR/.sim/lock, so concurrent sim
/// processes count and cool down together. Without a drive it lives in the
/// process only.
class shared_state {
public:
  /// The state of the drive at `drive` (DIR/.sim is created when missing).
  static result<shared_state> open(const std::filesystem::path& drive);

  /// A state nobody else sees, for runs without --drive.
  static shared_state in_memory();

  /// Runs `change` on the state under the lock and stores what it leaves.
  status update(const std::function<void(nlohmann::json&)>& change);

private:
  std::filesystem::path folder_;
  nlohmann::json memory_;
};

/// What the shared state says about one invocation.
struct decision {
  /// Seconds (rounded up) a rate-limit cooldown still has to run; set only
  /// when one is active and the command is not auth-state. No rule counts
  /// such an invocation.
  std::optional<int64_t> cooldown_seconds;
  /// Index into scenario.rules of the rule that fires, if any: the first one
  /// whose count of matching invocations is past its skip and within its times.
  /// Every matching rule counts the invocation, whether it fires or not.
  std::optional<size_t> firing_rule;
};

/// Decides, in one locked step, whether `command` with `request` is held by
/// a cooldown or which rule fires; a firing rate_limited rule starts a
/// cooldown of its retry_after (default 60 s) from `now_ms` (Unix ms), and
/// a firing session_expired rule ends a renewal (the session expired again).
result<decision> decide(shared_state& state, const scenario& scenario, std::string_view command,
                        const nlohmann::json& request, int64_t now_ms);

/// True when a renewing refresh (scenario "refresh": "renews") has renewed
/// this scenario's session and no session_expired fault has fired since.
/// Kept in the shared state under the scenario's fingerprint.
result<bool> session_renewed(shared_state& state, const scenario& scenario);

/// Records that a refresh renewed this scenario's session.
status renew_session(shared_state& state, const scenario& scenario);

/// The retryAfter, in seconds, a rate_limited rule reports.
int64_t retry_after_seconds(const fault_rule& rule);

} // namespace ferry::bridge_sim
