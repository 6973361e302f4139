#pragma once

// Questions about a few objects each, gathered into shared requests the way
// a journal gathers commits: while one request is out, the questions that
// arrive wait, then go together as the next one. A busy engine (the
// daemon's agents, each asking about its own object) so makes one request
// for many objects, and a lone question is sent at once.

#include "protocol/status.hpp"

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace ferry {

/// One per store and kind of request. `Item` is what one question asks
/// about (it has an `oid`), `Answer` what one request returns. Thread-safe.
template <class Item, class Answer>
class request_gatherer {
public:
  /// Sends one request about `items` (at most max_items, each oid once).
  using send_function = std::function<result<Answer>(const std::vector<Item>&)>;
  /// The part of a request's answer that belongs to the question about
  /// `items`.
  using part_function = std::function<Answer(const Answer&, const std::vector<Item>& items)>;

  request_gatherer(size_t max_items, part_function part)
      : max_items_(max_items), part_(std::move(part)) {}

  /// The answer about `items` (its part of the request they went in), or
  /// that request's failure. Blocks while another caller's request is out;
  /// the caller whose turn it is sends, with `send`, its question and those
  /// waiting behind it that fit (in arrival order, each oid once per
  /// request).
  result<Answer> ask(const std::vector<Item>& items, const send_function& send) {
    auto mine = std::make_shared<question>();
    mine->items = items;
    std::unique_lock<std::mutex> lock(mutex_);
    waiting_.push_back(mine);
    while (!mine->answer) {
      if (sending_) {
        answered_.wait(lock);
        continue;
      }
      auto taken = take_next();
      std::vector<Item> combined;
      for (const auto& each : taken)
        combined.insert(combined.end(), each->items.begin(), each->items.end());
      sending_ = true;
      lock.unlock();
      auto whole = send(combined);
      lock.lock();
      for (auto& each : taken)
        each->answer =
          whole ? result<Answer>{part_(*whole, each->items)} : result<Answer>{whole.error()};
      sending_ = false;
      answered_.notify_all();
    }
    return std::move(*mine->answer);
  }

  /// Questions waiting for a request (for tests).
  size_t waiting() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return waiting_.size();
  }

private:
  struct question {
    std::vector<Item> items;
    std::optional<result<Answer>> answer;
  };

  /// Takes the questions the next request carries, oldest first.
  std::vector<std::shared_ptr<question>> take_next() {
    std::vector<std::shared_ptr<question>> taken;
    std::set<std::string> oids;
    size_t count = 0;
    while (!waiting_.empty()) {
      const auto& next = waiting_.front();
      bool fits = count + next->items.size() <= max_items_;
      for (const auto& item : next->items)
        fits = fits && oids.count(item.oid) == 0;
      // The oldest question always goes, whatever its size.
      if (!taken.empty() && !fits)
        break;
      for (const auto& item : next->items)
        oids.insert(item.oid);
      count += next->items.size();
      taken.push_back(next);
      waiting_.pop_front();
    }
    return taken;
  }

  const size_t max_items_;
  const part_function part_;
  mutable std::mutex mutex_;
  std::condition_variable answered_;
  std::deque<std::shared_ptr<question>> waiting_;
  bool sending_ = false;
};

} // namespace ferry
