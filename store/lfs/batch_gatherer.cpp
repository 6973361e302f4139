#include "store/lfs/batch_gatherer.hpp"

#include <set>
#include <string>
#include <utility>

namespace ferry::lfs {

namespace {

/// The part of `response` about `objects`.
protocol::batch_response answer_for(const protocol::batch_response& response,
                                    const std::vector<protocol::batch_object>& objects) {
  std::set<std::string> oids;
  for (const auto& object : objects)
    oids.insert(object.oid);
  protocol::batch_response out;
  out.transfer = response.transfer;
  for (const auto& object : response.objects)
    if (oids.count(object.oid) > 0)
      out.objects.push_back(object);
  return out;
}

} // namespace

result<protocol::batch_response>
batch_gatherer::ask(const std::vector<protocol::batch_object>& objects, const send_function& send) {
  auto mine = std::make_shared<question>();
  mine->objects = objects;
  std::unique_lock<std::mutex> lock(mutex_);
  waiting_.push_back(mine);
  while (!mine->answer) {
    if (sending_) {
      answered_.wait(lock);
      continue;
    }
    auto taken = take_next();
    std::vector<protocol::batch_object> combined;
    for (const auto& each : taken)
      combined.insert(combined.end(), each->objects.begin(), each->objects.end());
    sending_ = true;
    lock.unlock();
    auto response = send(combined);
    lock.lock();
    for (auto& each : taken)
      each->answer = response
                       ? result<protocol::batch_response>{answer_for(*response, each->objects)}
                       : result<protocol::batch_response>{response.error()};
    sending_ = false;
    answered_.notify_all();
  }
  return std::move(*mine->answer);
}

std::vector<std::shared_ptr<batch_gatherer::question>> batch_gatherer::take_next() {
  std::vector<std::shared_ptr<question>> taken;
  std::set<std::string> oids;
  size_t count = 0;
  while (!waiting_.empty()) {
    const auto& next = waiting_.front();
    bool fits = count + next->objects.size() <= max_objects_;
    for (const auto& object : next->objects)
      fits = fits && oids.count(object.oid) == 0;
    // The oldest question always goes, whatever its size.
    if (!taken.empty() && !fits)
      break;
    for (const auto& object : next->objects)
      oids.insert(object.oid);
    count += next->objects.size();
    taken.push_back(next);
    waiting_.pop_front();
  }
  return taken;
}

size_t batch_gatherer::waiting() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return waiting_.size();
}

} // namespace ferry::lfs
