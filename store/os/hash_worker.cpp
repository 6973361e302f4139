#include "store/os/hash_worker.hpp"

namespace ferry {

hash_worker::hash_worker(sha256& hash) : hash_(hash), thread_([this] { run(); }) {}

hash_worker::~hash_worker() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void hash_worker::start(const char* data, size_t size) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    data_ = data;
    size_ = size;
    pending_ = true;
  }
  changed_.notify_all();
}

void hash_worker::wait() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return !pending_; });
}

void hash_worker::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    changed_.wait(lock, [this] { return pending_ || stopping_; });
    if (!pending_)
      return;
    lock.unlock();
    hash_.update(data_, size_);
    lock.lock();
    pending_ = false;
    changed_.notify_all();
  }
}

} // namespace ferry
