#pragma once

// A loopback HTTP server for tests of the HTTP engine and actor.

#include "test_support.hpp"

#include <catch2/catch.hpp>
#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace ferry::testing {

/// Upper bound for anything a test waits for; reaching it fails the test.
inline constexpr std::chrono::seconds patience{10};

/// A flag server handlers wait on, so a test decides when a response may go
/// on. Waits are bounded so a broken test cannot hang the server's shutdown.
class gate {
public:
  void open() {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = true;
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait_for(lock, patience, [&] { return open_; });
  }

private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
};

/// Counts events from any thread; a test waits until enough happened.
class counter {
public:
  void add() {
    std::lock_guard<std::mutex> lock(mutex_);
    ++count_;
    cv_.notify_all();
  }
  bool wait_for(int target) {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, patience, [&] { return count_ >= target; });
  }

private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int count_ = 0;
};

/// A cpp-httplib server on 127.0.0.1 (any free port) running on its own
/// thread. Register routes on http() before start().
class test_server {
public:
  test_server() {
    server_.new_task_queue = [] { return new httplib::ThreadPool(40); };
    server_.set_keep_alive_max_count(1000);
    server_.set_keep_alive_timeout(2);
    // Without it, small responses wait out delayed ACKs (about 40 ms each).
    server_.set_tcp_nodelay(true);
  }
  ~test_server() { stop(); }
  test_server(const test_server&) = delete;
  test_server& operator=(const test_server&) = delete;

  httplib::Server& http() { return server_; }
  gate& held() { return gate_; }

  void start() {
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // The socket already listens; this only makes sure stop() will find the
    // server running (stop() before listen_after_bind() would be missed).
    auto deadline = std::chrono::steady_clock::now() + patience;
    while (!server_.is_running() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::yield();
    REQUIRE(server_.is_running());
  }

  void stop() {
    if (!thread_.joinable())
      return;
    gate_.open();
    server_.stop();
    thread_.join();
  }

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

private:
  httplib::Server server_;
  gate gate_;
  std::thread thread_;
  int port_ = 0;
};

/// Loopback only: an http_proxy in the environment must not capture the
/// test traffic. Create before the engine (curl reads it on its thread).
struct no_proxy {
  env_var lower{"no_proxy", "*"};
  env_var upper{"NO_PROXY", "*"};
};

} // namespace ferry::testing
