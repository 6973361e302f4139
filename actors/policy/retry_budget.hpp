#pragma once

namespace ferry {

/// Caps retries as a share of the requests in flight (Envoy's retry budget).
/// When a backend degrades, every failed request wants a retry; a per-request
/// attempt limit alone lets retries multiply the load exactly when the
/// backend can least take it. The budget allows at most
/// max(min_retry_concurrency, budget_percent% of active requests) retries at
/// once, so a quiet engine can still retry a few objects while a busy one
/// keeps retries to a fixed fraction of its traffic.
///
/// request_started()/request_finished() bracket every request in flight,
/// first attempts and retries alike; try_start_retry()/retry_finished()
/// additionally bracket the retries. Not thread-safe: one actor owns it.
class retry_budget {
public:
  /// `budget_percent` is clamped to [0, 100] and `min_retry_concurrency` to
  /// at least 0.
  explicit retry_budget(double budget_percent = 20.0, int min_retry_concurrency = 3);

  /// A request was sent.
  void request_started();

  /// A request completed (in any way). Unmatched calls are ignored, so the
  /// count never goes negative: an extra call after a bookkeeping slip must
  /// not hand out budget that nobody released.
  void request_finished();

  /// Takes a retry slot if the budget has room; false means "do not retry
  /// now" (report the failure or try later).
  bool try_start_retry();

  /// A retry that try_start_retry() admitted completed. Unmatched calls are
  /// ignored, as for request_finished().
  void retry_finished();

  /// Retries allowed at once with the current number of active requests.
  int max_active_retries() const;

  int active_requests() const { return active_requests_; }
  int active_retries() const { return active_retries_; }

private:
  double budget_percent_;
  int min_retry_concurrency_;
  int active_requests_ = 0;
  int active_retries_ = 0;
};

} // namespace ferry
