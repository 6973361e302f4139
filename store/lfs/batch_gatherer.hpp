#pragma once

// Batch API questions about a few objects each, gathered into shared
// requests the way a journal gathers commits: while one request is on the
// wire, the questions that arrive wait, then go together as the next one.

#include "protocol/batch_api.hpp"
#include "protocol/status.hpp"

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace ferry::lfs {

/// One per store and operation. A busy engine (the daemon's agents, each
/// asking about one object) makes one request for several objects, which
/// also spares a server that limits Batch API calls; a lone question is
/// sent at once. Thread-safe.
class batch_gatherer {
public:
  /// Sends one batch request for `objects` (at most max_objects).
  using send_function =
    std::function<result<protocol::batch_response>(const std::vector<protocol::batch_object>&)>;

  explicit batch_gatherer(size_t max_objects = protocol::max_batch_objects)
      : max_objects_(max_objects) {}

  /// The server's answer about `objects` (the response holding only
  /// theirs), or the failure of the request they went in. Blocks while
  /// another caller's request is on the wire; the caller whose turn it is
  /// sends, with `send`, its question and those waiting behind it that fit
  /// (in arrival order, each oid once per request).
  result<protocol::batch_response> ask(const std::vector<protocol::batch_object>& objects,
                                       const send_function& send);

  /// Questions waiting for a request (for tests).
  size_t waiting() const;

private:
  struct question {
    std::vector<protocol::batch_object> objects;
    std::optional<result<protocol::batch_response>> answer;
  };

  /// Takes the questions the next request carries, oldest first.
  std::vector<std::shared_ptr<question>> take_next();

  const size_t max_objects_;
  mutable std::mutex mutex_;
  std::condition_variable answered_;
  std::deque<std::shared_ptr<question>> waiting_;
  bool sending_ = false;
};

} // namespace ferry::lfs
