#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace ferry {

/// Decides when a transfer reports progress: often enough to look alive,
/// rarely enough not to flood git-lfs. A report is due when at least 1% of
/// the object (and at least `min_step` bytes) moved since the last one, or
/// when some bytes moved and `interval` passed; the final byte count is
/// always reported, so the last report equals the object size.
class progress_throttle {
public:
  using clock = std::chrono::steady_clock;

  struct report {
    int64_t bytes_so_far;
    int64_t bytes_since_last;
  };

  progress_throttle(int64_t total, clock::time_point start,
                    std::chrono::milliseconds interval = std::chrono::milliseconds{250},
                    int64_t min_step = 1 << 20);

  /// Starts counting from `offset` (bytes a resumed attempt already has);
  /// they are reported as moved with the next report.
  void resume_at(int64_t offset) { done_ = offset; }

  /// Like resume_at(), but the kept bytes count as reported already, so
  /// progress counts only what this attempt moves (a migration's rate).
  void skip_to(int64_t offset) { done_ = reported_ = offset; }

  /// Adds moved bytes; returns a report if one is due at `now`.
  std::optional<report> add(int64_t bytes, clock::time_point now);

  /// The report for the end of the transfer (reports 0/0 for an empty object).
  std::optional<report> finish();

private:
  report take(clock::time_point now);

  int64_t total_;
  int64_t step_;
  std::chrono::milliseconds interval_;
  int64_t done_ = 0;
  int64_t reported_ = 0;
  bool reported_any_ = false;
  clock::time_point last_;
};

} // namespace ferry
