#include "store/s3/buffer_budget.hpp"

namespace ferry::s3 {

buffer_budget::buffer_budget(int64_t capacity) : capacity_(capacity) {}

bool buffer_budget::try_take(int64_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!fits(bytes))
    return false;
  held_ += bytes;
  return true;
}

void buffer_budget::take(int64_t bytes) {
  std::unique_lock<std::mutex> lock(mutex_);
  ++waiting_;
  freed_.wait(lock, [&] { return fits(bytes); });
  --waiting_;
  held_ += bytes;
}

void buffer_budget::give_back(int64_t bytes) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    held_ -= bytes;
  }
  freed_.notify_all();
}

int64_t buffer_budget::held() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return held_;
}

int buffer_budget::waiting() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return waiting_;
}

} // namespace ferry::s3
