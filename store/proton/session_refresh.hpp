#pragma once

// The bridge's `refresh`, one at a time per Proton session (the session's
// proton_account holds one for all its stores). Proton rotates both tokens
// on every refresh, so two refreshes racing on one session can leave it
// invalid: the daemon's many stores (one per agent of every repository)
// that see `session_expired` at once must cause one refresh, not one each.

#include "protocol/proton_bridge.hpp"
#include "protocol/status.hpp"

#include <functional>
#include <mutex>
#include <optional>
#include <string>

namespace ferry {

/// What renewing an expired session came to.
struct session_renewal {
  /// auth-state as last seen: after the refresh when one ran, else as it
  /// was found under the lock.
  bridge::auth_state state;
  /// The refresh failed, or it answered but the session is still not ready
  /// (this caller's refresh or an earlier one that nobody has seen cured
  /// since): why. Such a session needs the user.
  std::optional<status> refresh_failure;
  /// This caller ran the refresh.
  bool refreshed = false;
};

/// Serialises refreshes of one session (one bridge identity).
class session_refresh {
public:
  using auth_check = std::function<result<bridge::auth_state>()>;
  using refresh_call = std::function<status()>;

  /// Renews a session that auth-state reported as `session_expired`. Under
  /// the lock, auth-state is asked again first, as drive-cli does under its
  /// session file lock: another store or process may have refreshed
  /// meanwhile. Only a session still expired is refreshed, and then only
  /// when no earlier refresh of it failed (that failure is answered again,
  /// so stores do not take turns refreshing a dead session); auth-state is
  /// asked once more after the refresh. An auth-state call that fails is
  /// returned as it is.
  result<session_renewal> renew(const auth_check& check, const refresh_call& refresh);

  /// A caller saw the session ready: a later expiry may be refreshed again
  /// (the user logged in since the last refresh failed).
  void session_ready();

private:
  std::mutex mutex_;
  std::optional<status> failed_;
};

} // namespace ferry
