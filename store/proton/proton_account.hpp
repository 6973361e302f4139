#pragma once

// What belongs to one Proton account rather than to one store: Proton
// limits and stops the account, so the daemon's stores of every repository
// that use the same session share one cooldown, one stop latch, one count
// of bridge processes and one view of the session.

#include "protocol/status.hpp"
#include "store/proton/session_refresh.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace ferry {

/// The shared state of one Proton session (one bridge identity). Safe to use
/// from many threads at once.
class proton_account {
public:
  /// The instance for `identity` while any holder of it lives (the daemon's
  /// stores of one account at the same time); once the last one is gone,
  /// the next gets a fresh account, so a command after `proton-drive login`
  /// is not held by an earlier command's stop.
  static std::shared_ptr<proton_account> for_identity(const std::string& identity);

  /// A bridge process's place in the account's count, freed when it goes.
  class process_slot {
  public:
    process_slot(process_slot&& other) noexcept;
    process_slot& operator=(process_slot&&) = delete;
    ~process_slot();
    /// The session epoch when this caller arrived (see expired_during()).
    uint64_t epoch() const { return epoch_; }

  private:
    friend class proton_account;
    process_slot(proton_account* account, uint64_t epoch) : account_(account), epoch_(epoch) {}
    proton_account* account_;
    uint64_t epoch_;
  };

  /// Waits for a bridge process to start: callers of every store of the
  /// account are served in arrival order, and the one at the head of the
  /// line starts when fewer than `processes` (its own store's
  /// ferry.proton.processes) run and no cooldown is running. So the account
  /// never runs more than the largest setting among its callers, and a
  /// store with a smaller one waits for the count to fall below it. Fails
  /// at once with the stop status once the account is stopped.
  result<process_slot> start_process(int processes);

  /// Callers waiting in line to start a process (for tests and status).
  int waiting() const;

  /// Every process start waits until `wait` from now has passed (a 429); a
  /// running longer cooldown is kept.
  void cool_down(std::chrono::milliseconds wait);

  /// The end of the current cooldown, if one is running.
  std::optional<std::chrono::steady_clock::time_point> cooldown_until() const;

  /// Makes every later start fail with `why` (the session needs the user).
  /// The first stop is kept, so every store reports the same message.
  void stop(status why);

  /// The status every start now fails with, once stopped.
  std::optional<status> stopped() const;

  /// A Drive command that started at `epoch` answered SESSION_EXPIRED.
  /// True when the answer is transient and the session is to be checked
  /// (and refreshed) again before the next call: before any renewal, while
  /// the session is already lost (calls that ran at the same time), and
  /// for a call that started before the latest renewal (it says nothing
  /// new). False when the session was renewed and is lost again: it needs
  /// the user, so a session that refreshing does not cure never loops.
  bool expired_during(uint64_t epoch);

  /// A Drive command found the session expired and it was not checked
  /// again since: stores must check it before their next call.
  bool session_lost() const;

  /// The session was checked (and refreshed if need be) and is ready.
  void session_ready();

  /// Renews the expired session for every store of the account, one
  /// refresh at a time.
  session_refresh& refresher() { return refresher_; }

private:
  void end_process();

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  int running_ = 0;
  int waiting_ = 0;
  uint64_t next_ticket_ = 0;
  uint64_t serving_ticket_ = 0;
  std::optional<std::chrono::steady_clock::time_point> cooldown_until_;
  std::optional<status> stopped_;
  bool session_lost_ = false;
  bool session_renewed_ = false;
  // Bumped by session_ready() after a loss: a SESSION_EXPIRED from a call
  // that started before the session was renewed says nothing new.
  uint64_t session_epoch_ = 0;
  session_refresh refresher_;
};

} // namespace ferry
