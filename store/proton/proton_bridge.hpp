#pragma once

// Calls into the proton-drive-cli bridge: one process per operation, a
// bounded pool of them, one rate-limit cooldown shared by every caller and
// a latch that stops everything once Proton asks for the user.

#include "protocol/proton_bridge.hpp"
#include "protocol/status.hpp"
#include "store/os/child_process.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace ferry {

struct proton_bridge_options {
  /// The bridge's command line, split into words (ferry.proton.command);
  /// `bridge <command>` is appended.
  std::vector<std::string> command;
  /// Fields sent with every command but refresh.
  bridge::common_fields common;
  /// Bridge processes running at once (ferry.proton.processes); further
  /// calls wait for a free one, in order.
  int processes = 2;
  /// Every call may take this long (ferry.proton.timeout): process start,
  /// key unlock and the walk to the object's folder...
  std::chrono::milliseconds base_timeout{std::chrono::minutes{2}};
  /// ...plus the object's size at this rate (ferry.proton.minRate), so that
  /// large objects are not cut off as a fixed limit would.
  int64_t min_bytes_per_second = 256 << 10;
  /// The cooldown after a 429 that does not say how long (the bridge's own
  /// default).
  std::chrono::seconds default_cooldown{60};
  /// Longest cooldown waited out (ferry.maxRetryWait); a 429 asking for
  /// more fails the call for good, as an HTTP store's Retry-After does.
  std::chrono::seconds max_retry_wait{120};
  /// The environment the bridge gets; empty means Ferry's own, filtered by
  /// bridge_environment().
  std::vector<std::string> environment;
};

/// The variables the bridge is given out of `environ`-style entries: the
/// names PATH HOME USER SHELL LANG TERM NODE_ENV NODE_OPTIONS NODE_PATH
/// NODE_BIN TMPDIR TMP TEMP XDG_CONFIG_HOME XDG_DATA_HOME XDG_CACHE_HOME
/// XDG_RUNTIME_DIR and the prefixes LC_ MOCK_BRIDGE_ PROTON_ LFS_ SDK_ (the
/// bridge's own allow-list); nothing else, so Ferry's settings and any
/// other service's secrets stay out.
std::vector<std::string> bridge_environment(char** entries);

/// What a failure envelope means for Ferry.
///
/// | bridge answer                                  | errc               | stops all |
/// |------------------------------------------------|--------------------|-----------|
/// | 401, or errorCode *_REQUIRED / SESSION_EXPIRED | permission_denied  | yes       |
/// | 407 (CAPTCHA)                                  | permission_denied  | yes       |
/// | 403 with protonCode 9101 / INSUFFICIENT_SCOPE  | permission_denied  | yes       |
/// | other 403                                      | permission_denied  | no        |
/// | 429 / RATE_LIMITED                             | unavailable + wait | no        |
/// | 404                                            | not_found          | no        |
/// | 507, QUOTA_EXCEEDED, DISK_FULL                 | no_space           | no        |
/// | 400, 413 and other 4xx                         | invalid_request    | no        |
/// | 499, 5xx (502, 503, 504, 500...)               | unavailable        | no        |
///
/// The message names the command, the code, the errorCode and the bridge's
/// own message, followed by what to do (`details.action`, a CAPTCHA's
/// verification URL, "run: proton-drive login"). A 429 carries
/// `details.retryAfter` (or `default_cooldown`) as status::retry_after();
/// one asking for more than `max_wait` is errc::config_error instead (the
/// fix is a setting), still with the wait, so the cooldown holds.
struct bridge_verdict {
  status failure;
  /// The failure needs the user (login, CAPTCHA, scope): no later call may
  /// start a bridge process.
  bool stop = false;
  /// A stop whose errorCode is SESSION_EXPIRED: a refresh may cure it.
  bool session_expired = false;
};
bridge_verdict classify_bridge_failure(bridge::command name, const bridge::envelope& failure,
                                       std::chrono::seconds default_cooldown,
                                       std::chrono::seconds max_wait);

/// Runs bridge operations. Safe to use from many threads at once.
class proton_bridge {
public:
  /// How a child is run; tests of the pool pass their own.
  using runner = std::function<result<child_result>(const child_options&)>;

  explicit proton_bridge(proton_bridge_options options, runner run = run_child);

  /// Runs `name` with `fields` and returns the success payload.
  ///
  /// Waits first for a free process slot (first come, first served), for
  /// any rate-limit cooldown to pass, and gives up at once with the stop
  /// status once a call needed the user. The process's time limit is
  /// timeout_for(bytes). A failure envelope becomes its verdict's status; a
  /// 429 starts the shared cooldown and a stop verdict sets the latch (but
  /// see session_lost() for a session that expires mid-run). A
  /// process that crashed, was killed, timed out, or wrote no valid
  /// envelope is errc::unavailable (transient), with sanitized stderr in
  /// the message; but auth-state, which the bridge always answers, is
  /// errc::config_error naming ferry.proton.command when the process ended
  /// by itself without an answer (a missing script, another program). A
  /// bridge that cannot be started is errc::config_error naming
  /// ferry.proton.command.
  result<nlohmann::json> call(bridge::command name, const bridge::request_fields& fields,
                              int64_t bytes = 0);

  /// The time limit for a call moving `bytes`.
  std::chrono::milliseconds timeout_for(int64_t bytes) const;

  /// The status every call now fails with, once a stop verdict was seen.
  std::optional<status> stopped() const;

  /// Makes every later call fail with `why` (a session that needs the user).
  void stop(status why);

  /// A Drive command answered SESSION_EXPIRED after the session was found
  /// ready: the caller must check the session again (and refresh it) before
  /// the next call. The first such answer (and any other answer of calls
  /// that ran at the same time) is errc::unavailable instead of a stop, so
  /// the engine retries the transfer; a second one, after session_ready(),
  /// stops as any other needs-the-user answer does, so a session that
  /// refreshing does not cure never loops.
  bool session_lost() const;

  /// The session was checked (and refreshed if need be) and is ready.
  void session_ready();

  /// The end of the current rate-limit cooldown, if one is running.
  std::optional<std::chrono::steady_clock::time_point> cooldown_until() const;

  const proton_bridge_options& options() const { return options_; }

private:
  proton_bridge_options options_;
  runner run_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  int running_ = 0;
  uint64_t next_ticket_ = 0;
  uint64_t serving_ticket_ = 0;
  std::optional<std::chrono::steady_clock::time_point> cooldown_until_;
  std::optional<status> stopped_;
  bool session_lost_ = false;
  bool session_renewed_ = false;
  // Bumped by session_ready() after a loss: a SESSION_EXPIRED from a call
  // that started before the session was renewed says nothing new.
  uint64_t session_epoch_ = 0;
};

} // namespace ferry
