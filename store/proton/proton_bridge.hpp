#pragma once

// Calls into the proton-drive-cli bridge: one process per operation, a
// bounded pool of them, one rate-limit cooldown shared by every caller and
// a latch that stops everything once Proton asks for the user. The pool,
// the cooldown and the latch are the account's (proton_account), shared by
// every bridge of the process that uses the same session.

#include "protocol/proton_bridge.hpp"
#include "protocol/status.hpp"
#include "store/os/child_process.hpp"
#include "store/proton/proton_account.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ferry {

struct proton_bridge_options {
  /// The bridge's command line, split into words (ferry.proton.command);
  /// `bridge <command>` is appended.
  std::vector<std::string> command;
  /// Fields sent with every command but refresh.
  bridge::common_fields common;
  /// Bridge processes running at once (ferry.proton.processes), counted
  /// across every bridge of the account (proton_account::start_process);
  /// further calls wait for a free one, in order.
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

/// Which Proton session (account) a bridge uses: its command line and the
/// variables that choose the session files (drive-cli keeps them under
/// $HOME; PROTON_* and XDG_* settings may move them).
std::string session_identity(const proton_bridge_options& options);

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

  /// Joins the account of `options`' session_identity().
  explicit proton_bridge(proton_bridge_options options, runner run = run_child);

  /// Runs `name` with `fields` and returns the success payload.
  ///
  /// Waits first for the account to start a process (first come, first
  /// served, any cooldown passed), and gives up at once with the stop
  /// status once a call needed the user. The process's time limit is
  /// timeout_for(bytes). A failure envelope becomes its verdict's status; a
  /// 429 starts the account's cooldown and a stop verdict stops the
  /// account. The exception is a Drive command's SESSION_EXPIRED the
  /// account finds transient (proton_account::expired_during): it is
  /// errc::unavailable, so the engine retries the transfer after the store
  /// checks the session again (proton_account::session_lost). A
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

  /// The account's shared state: its stop latch, cooldown and session.
  proton_account& account() { return *account_; }

  const proton_bridge_options& options() const { return options_; }

private:
  proton_bridge_options options_;
  runner run_;
  std::shared_ptr<proton_account> account_;
};

} // namespace ferry
