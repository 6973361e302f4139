#include "store/lfs/batch_gatherer.hpp"

#include <catch2/catch.hpp>

#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace ferry;
using ferry::lfs::batch_gatherer;

namespace {

std::string oid_of(int i) { return std::string(63, 'a') + std::to_string(i % 10); }

/// A server that answers every object it is asked about, records each
/// request, and holds the first one until the test lets it go.
struct held_server {
  std::mutex mutex;
  std::vector<std::vector<protocol::batch_object>> requests;
  std::promise<void> first_arrived;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();

  result<protocol::batch_response> send(const std::vector<protocol::batch_object>& objects) {
    bool first = false;
    {
      std::lock_guard<std::mutex> lock(mutex);
      requests.push_back(objects);
      first = requests.size() == 1;
    }
    if (first) {
      first_arrived.set_value();
      released.wait();
    }
    protocol::batch_response response;
    response.transfer = "basic";
    for (const auto& object : objects) {
      protocol::batch_object_result answer;
      answer.oid = object.oid;
      answer.size = object.size;
      response.objects.push_back(answer);
    }
    return response;
  }
};

} // namespace

TEST_CASE("batch gatherer: questions asked while a request is out go together in the next",
          "[batch_gatherer]") {
  batch_gatherer gatherer;
  held_server server;
  auto send = [&](const std::vector<protocol::batch_object>& objects) {
    return server.send(objects);
  };
  auto ask = [&](int i) {
    return std::async(std::launch::async, [&, i] {
      return gatherer.ask({{oid_of(i), 100 + i}}, send);
    });
  };

  auto first = ask(0);
  server.first_arrived.get_future().wait();
  std::vector<std::future<result<protocol::batch_response>>> later;
  for (int i = 1; i <= 5; ++i)
    later.push_back(ask(i));
  while (gatherer.waiting() < 5)
    std::this_thread::yield();
  server.release.set_value();

  auto answer = first.get();
  REQUIRE(answer.ok());
  REQUIRE(answer->objects.size() == 1);
  CHECK(answer->objects[0].oid == oid_of(0));
  for (int i = 1; i <= 5; ++i) {
    auto each = later[i - 1].get();
    REQUIRE(each.ok());
    // Each caller sees only its own object.
    REQUIRE(each->objects.size() == 1);
    CHECK(each->objects[0].oid == oid_of(i));
    CHECK(each->objects[0].size == 100 + i);
  }
  REQUIRE(server.requests.size() == 2);
  CHECK(server.requests[1].size() == 5);
}

TEST_CASE("batch gatherer: a request carries at most its limit, each oid once, oldest first",
          "[batch_gatherer]") {
  batch_gatherer gatherer{3};
  held_server server;
  auto send = [&](const std::vector<protocol::batch_object>& objects) {
    return server.send(objects);
  };
  auto first = std::async(std::launch::async, [&] { return gatherer.ask({{oid_of(0), 1}}, send); });
  server.first_arrived.get_future().wait();
  // Behind it: 1, 2, 2 again (another size), 3, 4, 5.
  std::vector<std::future<result<protocol::batch_response>>> later;
  for (auto [i, size] :
       std::vector<std::pair<int, int64_t>>{{1, 1}, {2, 1}, {2, 7}, {3, 1}, {4, 1}, {5, 1}}) {
    later.push_back(std::async(std::launch::async, [&, i = i, size = size] {
      return gatherer.ask({{oid_of(i), size}}, send);
    }));
    while (gatherer.waiting() < later.size())
      std::this_thread::yield();
  }
  server.release.set_value();
  REQUIRE(first.get().ok());
  for (auto& each : later)
    REQUIRE(each.get().ok());
  REQUIRE(server.requests.size() == 4);
  // Oldest first; the second question about oid 2 waits for the next request.
  CHECK(server.requests[1].size() == 2);
  CHECK(server.requests[1][0].oid == oid_of(1));
  CHECK(server.requests[1][1].oid == oid_of(2));
  // Then the limit: three objects, and the last question in a request of its own.
  CHECK(server.requests[2].size() == 3);
  CHECK(server.requests[2][0].size == 7);
  REQUIRE(server.requests[3].size() == 1);
  CHECK(server.requests[3][0].oid == oid_of(5));
}

TEST_CASE("batch gatherer: a failed request fails every question it carried", "[batch_gatherer]") {
  batch_gatherer gatherer;
  auto failing =
    [](const std::vector<protocol::batch_object>&) -> result<protocol::batch_response> {
    return status{errc::unavailable, "batch request: connection refused"};
  };
  auto answer = gatherer.ask({{oid_of(1), 1}}, failing);
  REQUIRE_FALSE(answer.ok());
  CHECK(answer.error().code() == errc::unavailable);
}
