#pragma once

// A loopback HTTP server for tests of the HTTP engine and actor.

#include "store/http/http_engine.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
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

/// Counts events (or bytes) from any thread; a test waits until enough
/// happened.
class counter {
public:
  void add(int64_t amount = 1) {
    std::lock_guard<std::mutex> lock(mutex_);
    count_ += amount;
    cv_.notify_all();
  }
  /// Whether the count reached `target` within `timeout`.
  bool wait_for(int64_t target, std::chrono::milliseconds timeout = patience) {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return count_ >= target; });
  }
  int64_t value() {
    std::lock_guard<std::mutex> lock(mutex_);
    return count_;
  }

private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int64_t count_ = 0;
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

/// A GET request for `url`.
inline ferry::http_request get_request(std::string url) {
  ferry::http_request request;
  request.method = "GET";
  request.url = std::move(url);
  return request;
}

/// Deterministic bytes that differ from offset to offset, so a lost,
/// repeated or reordered piece changes the hash.
inline std::string patterned_bytes(size_t size, uint32_t seed) {
  std::string bytes(size, '\0');
  uint32_t state = seed;
  for (auto& b : bytes) {
    state = state * 1103515245u + 12345u;
    b = static_cast<char>(state >> 24);
  }
  return bytes;
}

/// Serves `data` in pieces of at most 64 KiB; `sent` (if given) counts the
/// bytes handed to the socket.
inline void serve_bytes(httplib::Response& res, const std::string& data, counter* sent = nullptr) {
  res.set_content_provider(data.size(), "application/octet-stream",
                           [&data, sent](size_t offset, size_t length, httplib::DataSink& sink) {
                             size_t piece = std::min<size_t>(length, 64 << 10);
                             if (!sink.write(data.data() + offset, piece))
                               return false;
                             if (sent != nullptr)
                               sent->add(static_cast<int64_t>(piece));
                             return true;
                           });
}

/// Serves `data` at GET `path` (see serve_bytes).
inline void serve_object(test_server& server, const std::string& path, const std::string& data,
                         counter* sent = nullptr) {
  server.http().Get(path, [&data, sent](const httplib::Request&, httplib::Response& res) {
    serve_bytes(res, data, sent);
  });
}

/// Serves `data` at GET `path`, but drops the connection after half of it.
inline void serve_half_then_drop(test_server& server, const std::string& path,
                                 const std::string& data) {
  server.http().Get(path, [&data](const httplib::Request&, httplib::Response& res) {
    res.set_content_provider(data.size(), "application/octet-stream",
                             [&data](size_t offset, size_t, httplib::DataSink& sink) {
                               if (offset >= data.size() / 2)
                                 return false; // drops the connection
                               return sink.write(data.data() + offset, 64 << 10);
                             });
  });
}

/// Answers every PUT to `path` with `status` and `text` before reading its
/// body (once `before`, if given, opens), and keeps the connection open
/// until the server's gate opens: the client sees the answer while it still
/// sends, never a reset.
inline void answer_puts_unread(test_server& server, const std::string& path, int status,
                               const std::string& text, gate* before = nullptr) {
  server.http().Put(path, [&server, status, text, before](const httplib::Request&,
                                                          httplib::Response& res,
                                                          const httplib::ContentReader&) {
    if (before != nullptr)
      before->wait();
    res.status = status;
    res.set_content_provider(text.size(), "text/plain",
                             [&server, text](size_t, size_t, httplib::DataSink& sink) {
                               bool written = sink.write(text.data(), text.size());
                               server.held().wait();
                               return written;
                             });
  });
}

/// Loopback only: an http_proxy in the environment must not capture the
/// test traffic. Create before the engine (curl reads it on its thread).
struct no_proxy {
  env_var lower{"no_proxy", "*"};
  env_var upper{"NO_PROXY", "*"};
};

} // namespace ferry::testing
