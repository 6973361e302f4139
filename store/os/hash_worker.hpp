#pragma once

#include "store/os/sha256.hpp"

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>

namespace ferry {

/// Feeds chunks to a SHA-256 on a thread of its own, so a large object's
/// bytes are hashed while the caller writes the same chunk elsewhere. One
/// chunk at a time: start() hands it over, wait() returns once it is in the
/// hash. The caller keeps the chunk unchanged and leaves the hash alone
/// between the two.
class hash_worker {
public:
  explicit hash_worker(sha256& hash);
  /// Finishes the chunk handed over, if any, and ends the thread.
  ~hash_worker();
  hash_worker(const hash_worker&) = delete;
  hash_worker& operator=(const hash_worker&) = delete;

  /// Begins hashing `size` bytes at `data`. The chunk before must have been
  /// waited for.
  void start(const char* data, size_t size);
  /// Blocks until the chunk handed over by start() is in the hash.
  void wait();

private:
  void run();

  sha256& hash_;
  std::mutex mutex_;
  std::condition_variable changed_;
  const char* data_ = nullptr;
  size_t size_ = 0;
  bool pending_ = false;
  bool stopping_ = false;
  /// Last: it starts once everything it uses is set up.
  std::thread thread_;
};

} // namespace ferry
