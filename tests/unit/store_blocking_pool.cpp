#include "store/os/blocking_pool.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

using ferry::blocking_pool;

namespace {

/// Calls that block until released, and say how many ran at once.
class gate {
public:
  void enter() {
    std::unique_lock<std::mutex> lock(mutex_);
    ++inside_;
    most_ = std::max(most_, inside_);
    changed_.notify_all();
    changed_.wait(lock, [this] { return open_; });
    --inside_;
    ++done_;
    changed_.notify_all();
  }
  void wait_inside(int count) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return inside_ >= count; });
  }
  void open() {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }
  void wait_done(int count) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return done_ >= count; });
  }
  int most() {
    std::lock_guard<std::mutex> lock(mutex_);
    return most_;
  }

private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int inside_ = 0;
  int most_ = 0;
  int done_ = 0;
  bool open_ = false;
};

} // namespace

TEST_CASE("blocking_pool reuses an idle thread instead of starting one per call",
          "[blocking_pool]") {
  blocking_pool pool(64);
  std::mutex mutex;
  std::condition_variable finished;
  std::set<std::thread::id> ran_on;
  int done = 0;
  // One call at a time: each is posted only after the one before has ended.
  for (int i = 0; i < 20; ++i) {
    pool.post([&] {
      std::lock_guard<std::mutex> lock(mutex);
      ran_on.insert(std::this_thread::get_id());
      ++done;
      finished.notify_all();
    });
    std::unique_lock<std::mutex> lock(mutex);
    finished.wait(lock, [&] { return done == i + 1; });
  }
  // A call's thread counts as busy until it waits again, so a call posted
  // in that moment may start another one (which may then find nothing left
  // to run); but not one per call.
  CHECK(pool.threads() < 20);
  CHECK(ran_on.size() <= pool.threads());
}

TEST_CASE("blocking_pool runs blocking calls side by side up to its cap, then in order",
          "[blocking_pool]") {
  gate calls;
  {
    blocking_pool pool(3);
    for (int i = 0; i < 7; ++i)
      pool.post([&] { calls.enter(); });
    // Three block at once; the other four wait for a thread.
    calls.wait_inside(3);
    CHECK(pool.threads() == 3);
    calls.open();
    calls.wait_done(7);
    CHECK(pool.threads() == 3);
  }
  CHECK(calls.most() == 3);
}

TEST_CASE("blocking_pool runs the calls still queued before it is destroyed", "[blocking_pool]") {
  std::mutex mutex;
  int ran = 0;
  {
    blocking_pool pool(1);
    // One thread: most of these are still queued when the pool goes away.
    for (int i = 0; i < 200; ++i)
      pool.post([&] {
        std::lock_guard<std::mutex> lock(mutex);
        ++ran;
      });
  }
  CHECK(ran == 200);
}
