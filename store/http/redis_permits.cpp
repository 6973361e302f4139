#include "store/http/redis_permits.hpp"

#include <utility>

namespace ferry {

redis_permits::redis_permits(redis_address address, double requests_per_second,
                             std::chrono::milliseconds timeout,
                             std::function<void(const std::string&)> notice)
    : limit_(std::move(address), requests_per_second, 1.0), timeout_(timeout),
      notice_(std::move(notice)) {
  thread_ = std::thread([this] { run(); });
}

redis_permits::~redis_permits() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

bool redis_permits::try_take(const std::function<void()>& wake) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (given_up_)
    return true;
  if (ready_) {
    ready_ = false;
    return true;
  }
  if (!wanted_) {
    wanted_ = true;
    wake_ = wake;
    changed_.notify_all();
  }
  return false;
}

void redis_permits::give_up(const status& problem) {
  connection_.reset();
  if (notice_)
    notice_("warning: the shared rate limit in Redis (" + limit_.address().describe() +
            ") is unreachable: " + problem.message() +
            "; this process keeps to its own share of the budget (--tps-total split over "
            "--concurrent-shards) for the rest of the run");
}

void redis_permits::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    changed_.wait(lock, [&] { return stopping_ || (wanted_ && !ready_); });
    if (stopping_)
      return;
    lock.unlock();
    result<std::chrono::microseconds> wait = std::chrono::microseconds{0};
    if (!connection_) {
      auto opened = redis_connection::open(limit_.address(), timeout_);
      if (opened)
        connection_.emplace(std::move(*opened));
      else
        wait = opened.error();
    }
    if (connection_)
      wait = limit_.reserve(*connection_);
    if (!wait)
      give_up(wait.error());
    auto due = std::chrono::steady_clock::now() + (wait ? *wait : std::chrono::microseconds{0});
    lock.lock();
    if (!wait)
      given_up_ = true;
    // The slot is ours: wait for its time (or the end), then hand it over.
    if (changed_.wait_until(lock, due, [&] { return stopping_; }))
      return;
    ready_ = !given_up_;
    wanted_ = false;
    if (wake_)
      wake_();
    if (given_up_)
      return;
  }
}

} // namespace ferry
