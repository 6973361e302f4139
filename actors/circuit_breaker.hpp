#pragma once

#include <chrono>
#include <map>
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
/// Results of requests admitted before the breaker opened may arrive while it
/// is open; they are ignored, so only the probes decide. Not thread-safe.
class circuit_breaker {
public:
  using clock = std::chrono::steady_clock;

  enum class state { closed, open, half_open };

  /// `failure_threshold` and `half_open_probes` are raised to at least 1,
  /// `open_for` to at least 0.
  explicit circuit_breaker(int failure_threshold = 5,
                           std::chrono::milliseconds open_for = std::chrono::seconds{30},
                           int half_open_probes = 1);

  /// Whether a request may be sent at `now`. In half_open, a true answer
  /// counts as an outstanding probe; the caller must report its outcome.
  bool allow(clock::time_point now);

  /// The request succeeded: closes a half_open breaker, and resets the
  /// failure count of a closed one.
  void on_success(clock::time_point now);

  /// The request failed: counts toward opening a closed breaker, and reopens
  /// a half_open one.
  void on_failure(clock::time_point now);

  /// The state at `now` (an open breaker whose time is up reads half_open).
  state current(clock::time_point now) const;

  /// Consecutive failures counted while closed.
  int consecutive_failures() const { return failures_; }

private:
  void open(clock::time_point now);
  void enter_half_open(clock::time_point now);

  int failure_threshold_;
  std::chrono::milliseconds open_for_;
  int half_open_probes_;

  state state_ = state::closed;
  int failures_ = 0;
  int probes_out_ = 0;
  clock::time_point opened_at_{};
  clock::time_point half_open_since_{};
};

/// Human-readable name of a breaker state ("closed", "open", "half_open").
const char* to_string(circuit_breaker::state s);

/// One breaker per host, created on first use with shared settings.
class circuit_breakers {
public:
  explicit circuit_breakers(int failure_threshold = 5,
                            std::chrono::milliseconds open_for = std::chrono::seconds{30},
                            int half_open_probes = 1);

  /// The breaker of `host` (e.g. "lfs.example.com:443"). The reference stays
  /// valid for the registry's lifetime.
  circuit_breaker& for_host(const std::string& host);

  /// Number of hosts seen.
  size_t size() const { return breakers_.size(); }

private:
  int failure_threshold_;
  std::chrono::milliseconds open_for_;
  int half_open_probes_;
  std::map<std::string, circuit_breaker> breakers_;
};

} // namespace ferry
