#include "store/os/blocking_pool.hpp"

#include <algorithm>

namespace ferry {

blocking_pool::blocking_pool(size_t max_threads) : max_threads_(std::max<size_t>(max_threads, 1)) {}

blocking_pool::~blocking_pool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  posted_.notify_all();
  for (auto& thread : threads_)
    thread.join();
}

void blocking_pool::post(std::function<void()> call) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    calls_.push_back(std::move(call));
    // An idle thread takes it; otherwise one more, while the cap allows.
    // A thread counts as idle from its start, so that calls posted before it
    // first waits do not start more threads than there are calls.
    if (idle_ < calls_.size() && threads_.size() < max_threads_) {
      ++idle_;
      threads_.emplace_back([this] { run(); });
    }
  }
  posted_.notify_one();
}

size_t blocking_pool::threads() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return threads_.size();
}

void blocking_pool::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    posted_.wait(lock, [this] { return !calls_.empty() || stopping_; });
    if (calls_.empty())
      return;
    --idle_;
    auto call = std::move(calls_.front());
    calls_.pop_front();
    lock.unlock();
    call();
    // Whatever the call captured goes before the next wait.
    call = nullptr;
    lock.lock();
    ++idle_;
  }
}

} // namespace ferry
