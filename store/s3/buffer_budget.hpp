#pragma once

// The bytes of part buffers all multipart uploads of the process may hold at
// once: each upload keeps a few parts in flight, and several uploads running
// together would otherwise hold that many times over.

#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace ferry::s3 {

/// A count of bytes shared by threads, up to a capacity. Thread-safe.
class buffer_budget {
public:
  explicit buffer_budget(int64_t capacity);

  /// Counts `bytes` as held if they fit within the capacity; a request
  /// larger than the whole capacity fits only when nothing is held, so it
  /// still goes ahead, alone.
  bool try_take(int64_t bytes);
  /// try_take(), waiting for give_back() until it succeeds.
  void take(int64_t bytes);
  /// Returns bytes taken.
  void give_back(int64_t bytes);

  int64_t held() const;
  /// Callers blocked in take().
  int waiting() const;

private:
  bool fits(int64_t bytes) const { return held_ == 0 || held_ + bytes <= capacity_; }

  const int64_t capacity_;
  mutable std::mutex mutex_;
  std::condition_variable freed_;
  int64_t held_ = 0;
  int waiting_ = 0;
};

} // namespace ferry::s3
