#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace ferry {

/// Stops sending requests to a host that keeps failing, then probes it
/// before letting traffic through again. Without it, every queued transfer
/// would spend its attempts (and its backoff) on a host that is down.
///
/// closed: requests flow; `failure_threshold` consecutive failures open it.
/// open: requests are refused until `open_for` has passed, then half_open.
/// half_open: up to `half_open_probes` requests go through; a success closes
/// the breaker, a failure opens it again for another `open_for`.
///
/// A breaker that opened again because its probe failed is `dead` for that
/// open period: the host did not answer after a full `open_for` of rest, so
/// callers fail their requests at once instead of waiting. It stays marked
/// (failed_probe()) until a probe succeeds; each later half_open period lets
/// a probe through as usual.
///
/// Every answer of allow() is an `admission` ticket that the caller hands
/// back with the request's outcome. Each change of state starts a new
/// generation; a result whose ticket belongs to an older generation (a
/// request admitted before the breaker opened, or a probe that was given up
/// on) is ignored. In half_open only the current generation's probes decide.
/// Not thread-safe.
class circuit_breaker {
public:
  using clock = std::chrono::steady_clock;

  enum class state { closed, open, half_open };

  /// The answer of allow(), to be passed to on_success() / on_failure().
  struct admission {
    /// Whether the request may be sent.
    bool allowed = false;
    /// The breaker generation the request was admitted in.
    uint64_t generation = 0;
    /// Whether the request is a half_open probe.
    bool probe = false;

    explicit operator bool() const { return allowed; }
  };

  /// `failure_threshold` and `half_open_probes` are raised to at least 1,
  /// `open_for` to at least 0.
  explicit circuit_breaker(int failure_threshold = 5,
                           std::chrono::milliseconds open_for = std::chrono::seconds{30},
                           int half_open_probes = 1);

  /// Whether a request may be sent at `now` (`allowed`). In half_open, an
  /// allowed answer is an outstanding probe; the caller must report its
  /// outcome with the returned ticket.
  admission allow(clock::time_point now);

  /// The request admitted with `ticket` succeeded: a probe of the current
  /// generation closes a half_open breaker; a request admitted in the
  /// current closed period resets the failure count. Anything else (refused
  /// or stale tickets, results arriving while open) is ignored.
  void on_success(clock::time_point now, const admission& ticket);

  /// The request admitted with `ticket` failed: counts toward opening a
  /// closed breaker if admitted in the current closed period; a probe of the
  /// current generation reopens a half_open breaker. Anything else is
  /// ignored.
  void on_failure(clock::time_point now, const admission& ticket);

  /// The request admitted with `ticket` was given up before its outcome was
  /// known (its caller went away): nothing is counted, and a probe of the
  /// current generation gives its place to another. Returns whether it did.
  bool abandon(const admission& ticket);

  /// The state at `now` (an open breaker whose time is up reads half_open).
  state current(clock::time_point now) const;

  /// Consecutive failures counted while closed.
  int consecutive_failures() const { return failures_; }

  /// Whether a probe failed since the breaker last closed.
  bool failed_probe() const { return failed_probe_; }

  /// Whether requests should fail at once at `now`: a probe failed and the
  /// breaker is open (not yet half_open again).
  bool dead(clock::time_point now) const { return failed_probe_ && current(now) == state::open; }

private:
  void open(clock::time_point now);
  void enter_half_open(clock::time_point now);
  void close();
  bool current_ticket(const admission& ticket) const;

  int failure_threshold_;
  std::chrono::milliseconds open_for_;
  int half_open_probes_;

  state state_ = state::closed;
  int failures_ = 0;
  int probes_out_ = 0;
  bool failed_probe_ = false;
  uint64_t generation_ = 0;
  clock::time_point opened_at_{};
  clock::time_point half_open_since_{};
};

/// Human-readable name of a breaker state ("closed", "open", "half_open").
const char* to_string(circuit_breaker::state s);

/// One breaker per host, created on first use with shared settings.
/// Engines on other threads may share one (the daemon's do): each use of a
/// host's breaker runs under the registry's lock.
class circuit_breakers {
public:
  explicit circuit_breakers(int failure_threshold = 5,
                            std::chrono::milliseconds open_for = std::chrono::seconds{30},
                            int half_open_probes = 1);

  /// Calls `use` with the breaker of `host` (e.g. "lfs.example.com:443")
  /// under the lock, and returns what it returns.
  template <class Use>
  decltype(auto) with(const std::string& host, Use&& use) {
    std::lock_guard lock{mutex_};
    return use(for_host(host));
  }

  /// Number of hosts seen.
  size_t size() const {
    std::lock_guard lock{mutex_};
    return breakers_.size();
  }

private:
  circuit_breaker& for_host(const std::string& host);

  mutable std::mutex mutex_;
  int failure_threshold_;
  std::chrono::milliseconds open_for_;
  int half_open_probes_;
  std::map<std::string, circuit_breaker> breakers_;
};

} // namespace ferry
