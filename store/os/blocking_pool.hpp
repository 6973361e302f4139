#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ferry {

/// Threads for calls that block (a network store's reads and writes), so
/// they neither hold the actor scheduler's few threads nor cost a new
/// thread each. A call goes to an idle thread; without one, a new thread is
/// started, up to `max_threads`; beyond that, calls wait in order. Threads
/// stay until the pool is destroyed, so their number is the most calls ever
/// running at once.
class blocking_pool {
public:
  explicit blocking_pool(size_t max_threads);
  /// Runs every call already posted, then ends the threads. Must not be
  /// called from one of the pool's calls.
  ~blocking_pool();
  blocking_pool(const blocking_pool&) = delete;
  blocking_pool& operator=(const blocking_pool&) = delete;

  /// Runs `call` on one of the pool's threads. `call` must not throw.
  void post(std::function<void()> call);

  /// Threads started so far.
  size_t threads() const;

private:
  void run();

  const size_t max_threads_;
  mutable std::mutex mutex_;
  std::condition_variable posted_;
  std::deque<std::function<void()>> calls_;
  size_t idle_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

} // namespace ferry
