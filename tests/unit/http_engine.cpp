#include "actors/http_engine.hpp"

#include "store/sha256.hpp"
#include "loopback_server.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using ferry::errc;
using ferry::http_engine;
using ferry::http_request;
using ferry::http_response;
using ferry::result;
using ferry::sha256;

using ferry::testing::counter;
using ferry::testing::gate;
using ferry::testing::no_proxy;
using ferry::testing::patience;
using ferry::testing::test_server;

namespace {

std::string patterned_bytes(size_t size, uint32_t seed) {
  std::string bytes(size, '\0');
  uint32_t state = seed;
  for (auto& b : bytes) {
    state = state * 1103515245u + 12345u;
    b = static_cast<char>(state >> 24);
  }
  return bytes;
}

/// The outcome of one submitted request.
class awaited {
public:
  http_engine::completion callback() {
    auto promise = promise_;
    return [promise](uint64_t, result<http_response> outcome) {
      promise->set_value(std::move(outcome));
    };
  }
  result<http_response> get() {
    REQUIRE(future_.wait_for(patience) == std::future_status::ready);
    return future_.get();
  }

private:
  std::shared_ptr<std::promise<result<http_response>>> promise_ =
      std::make_shared<std::promise<result<http_response>>>();
  std::future<result<http_response>> future_ = promise_->get_future();
};

http_request get(const std::string& url) {
  http_request request;
  request.method = "GET";
  request.url = url;
  return request;
}

/// Serves `data` in pieces of at most 64 KiB.
void serve_bytes(httplib::Response& res, const std::string& data) {
  res.set_content_provider(data.size(), "application/octet-stream",
                           [&data](size_t offset, size_t length, httplib::DataSink& sink) {
                             return sink.write(data.data() + offset,
                                               std::min<size_t>(length, 64 << 10));
                           });
}

/// Sends a response head and `first` body bytes of a larger body, then
/// holds the rest until the server's gate opens; the body is never finished.
void serve_held(httplib::Response& res, test_server& server, size_t first,
                counter* entered = nullptr) {
  res.set_content_provider(
      first * 4, "application/octet-stream",
      [&server, first, entered](size_t offset, size_t, httplib::DataSink& sink) {
        if (offset == 0) {
          std::string chunk(first, 'x');
          if (!sink.write(chunk.data(), chunk.size()))
            return false;
          if (entered != nullptr)
            entered->add();
          return true;
        }
        server.held().wait();
        return false;
      });
}

} // namespace

TEST_CASE("http_engine collects a small GET body", "[http]") {
  no_proxy env;
  test_server server;
  server.http().Get("/hello", [](const httplib::Request&, httplib::Response& res) {
    res.set_header("X-Mixed-Case", "Value");
    res.set_content("hello, ferry", "text/plain");
  });
  server.start();
  http_engine engine;

  awaited done;
  engine.submit(get(server.url("/hello")), done.callback());
  auto response = done.get();
  REQUIRE(response.ok());
  CHECK(response->status == 200);
  CHECK(response->body == "hello, ferry");
  CHECK(response->bytes_received == 12);
  CHECK(response->sha256_received.empty());
  REQUIRE(response->header("x-mixed-case") != nullptr);
  CHECK(*response->header("x-mixed-case") == "Value");
  REQUIRE(response->header("content-type") != nullptr);
  CHECK(*response->header("content-type") == "text/plain");
  CHECK_FALSE(response->connection_reused);
  CHECK(engine.current_stats().transfers == 1u);
  CHECK(engine.current_stats().connections_opened == 1u);
}

TEST_CASE("http_engine sends HEAD without reading a body", "[http]") {
  no_proxy env;
  test_server server;
  server.http().Get("/object", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(1000, 'a'), "application/octet-stream");
  });
  server.start();
  http_engine engine;

  http_request request = get(server.url("/object"));
  request.method = "HEAD";
  awaited done;
  engine.submit(std::move(request), done.callback());
  auto response = done.get();
  REQUIRE(response.ok());
  CHECK(response->status == 200);
  CHECK(response->body.empty());
  CHECK(response->bytes_received == 0);
  REQUIRE(response->header("content-length") != nullptr);
  CHECK(*response->header("content-length") == "1000");
}

TEST_CASE("http_engine POSTs a JSON body with headers", "[http]") {
  no_proxy env;
  test_server server;
  server.http().Post("/objects/batch", [](const httplib::Request& req, httplib::Response& res) {
    res.set_header("X-Echo-Accept", req.get_header_value("Accept"));
    res.set_header("X-Echo-Content-Type", req.get_header_value("Content-Type"));
    res.set_header("X-Echo-Authorization", req.get_header_value("Authorization"));
    res.set_header("X-Echo-Expect", req.has_header("Expect") ? "yes" : "no");
    res.set_header("X-Echo-User-Agent", req.get_header_value("User-Agent"));
    res.set_content(req.body, "application/vnd.git-lfs+json");
  });
  server.start();
  http_engine::options opts;
  opts.user_agent = "ferry-test/1";
  http_engine engine(opts);

  const std::string json = R"({"operation":"download","objects":[{"oid":"abc","size":3}]})";
  http_request request;
  request.method = "POST";
  request.url = server.url("/objects/batch");
  request.headers = {{"Accept", "application/vnd.git-lfs+json"},
                     {"Content-Type", "application/vnd.git-lfs+json"},
                     {"Authorization", "Basic dXNlcjpwYXNz"}};
  request.body = json;
  awaited done;
  engine.submit(std::move(request), done.callback());
  auto response = done.get();
  REQUIRE(response.ok());
  CHECK(response->status == 200);
  CHECK(response->body == json);
  CHECK(response->bytes_sent == static_cast<int64_t>(json.size()));
  CHECK(response->sha256_sent.empty());
  auto echoed = [&](const char* name) {
    const std::string* value = response->header(name);
    return value != nullptr ? *value : std::string("<missing>");
  };
  CHECK(echoed("x-echo-accept") == "application/vnd.git-lfs+json");
  CHECK(echoed("x-echo-content-type") == "application/vnd.git-lfs+json");
  CHECK(echoed("x-echo-authorization") == "Basic dXNlcjpwYXNz");
  CHECK(echoed("x-echo-expect") == "no");
  CHECK(echoed("x-echo-user-agent") == "ferry-test/1");
}

TEST_CASE("http_engine streams an 8 MiB PUT with a Content-Length", "[http]") {
  no_proxy env;
  const std::string data = patterned_bytes(size_t{8} << 20, 7);
  const std::string oid = sha256::of(data.data(), data.size());

  struct seen {
    std::mutex mutex;
    std::string hash;
    size_t size = 0;
    std::string content_length;
    bool chunked = true;
  } server_saw;
  test_server server;
  server.http().Put("/objects/upload", [&](const httplib::Request& req, httplib::Response& res) {
    {
      std::lock_guard<std::mutex> lock(server_saw.mutex);
      server_saw.hash = sha256::of(req.body.data(), req.body.size());
      server_saw.size = req.body.size();
      server_saw.content_length = req.get_header_value("Content-Length");
      server_saw.chunked = req.has_header("Transfer-Encoding");
    }
    res.status = 200;
  });
  server.start();
  http_engine engine;

  size_t offset = 0;
  size_t largest_ask = 0;
  http_request request;
  request.method = "PUT";
  request.url = server.url("/objects/upload");
  request.headers = {{"Content-Type", "application/octet-stream"}};
  request.upload_size = static_cast<int64_t>(data.size());
  // Runs on the loop thread only, so plain locals are safe to touch until
  // the completion arrives.
  request.upload_source = [&](char* buf, size_t cap) -> result<size_t> {
    largest_ask = std::max(largest_ask, cap);
    size_t n = std::min(cap, data.size() - offset);
    std::copy_n(data.data() + offset, n, buf);
    offset += n;
    return n;
  };
  awaited done;
  engine.submit(std::move(request), done.callback());
  auto response = done.get();
  REQUIRE(response.ok());
  CHECK(response->status == 200);
  CHECK(response->bytes_sent == static_cast<int64_t>(data.size()));
  CHECK(response->sha256_sent == oid);
  CHECK(largest_ask > 0);
  CHECK(largest_ask < data.size());
  std::lock_guard<std::mutex> lock(server_saw.mutex);
  CHECK(server_saw.size == data.size());
  CHECK(server_saw.hash == oid);
  CHECK(server_saw.content_length == std::to_string(data.size()));
  CHECK_FALSE(server_saw.chunked);
}

TEST_CASE("http_engine reports an upload source's failures", "[http]") {
  no_proxy env;
  test_server server;
  server.http().Put("/upload", [](const httplib::Request&, httplib::Response& res) {
    res.status = 200;
  });
  server.start();
  http_engine engine;

  http_request request;
  request.method = "PUT";
  request.url = server.url("/upload");
  request.upload_size = 1 << 20;

  SECTION("the source's own status") {
    int calls = 0;
    request.upload_source = [&](char* buf, size_t cap) -> result<size_t> {
      if (++calls > 2)
        return ferry::status(errc::io_error, "read failed: disk on fire");
      std::fill_n(buf, std::min<size_t>(cap, 1000), 'u');
      return std::min<size_t>(cap, 1000);
    };
    awaited done;
    engine.submit(std::move(request), done.callback());
    auto response = done.get();
    REQUIRE_FALSE(response.ok());
    CHECK(response.error().code() == errc::io_error);
    CHECK(response.error().message() == "read failed: disk on fire");
  }
  SECTION("a source that ends early") {
    request.upload_source = [](char*, size_t) -> result<size_t> { return size_t{0}; };
    awaited done;
    engine.submit(std::move(request), done.callback());
    auto response = done.get();
    REQUIRE_FALSE(response.ok());
    CHECK(response.error().code() == errc::size_mismatch);
  }
  SECTION("a HEAD or GET with a source") {
    request.method = GENERATE(std::string("HEAD"), std::string("GET"));
    bool asked = false;
    request.upload_source = [&](char*, size_t) -> result<size_t> {
      asked = true;
      return size_t{0};
    };
    awaited done;
    engine.submit(std::move(request), done.callback());
    auto response = done.get();
    REQUIRE_FALSE(response.ok());
    CHECK(response.error().code() == errc::invalid_request);
    CHECK_FALSE(asked);
  }
  SECTION("a source without a size") {
    request.upload_size = -1;
    request.upload_source = [](char*, size_t) -> result<size_t> { return size_t{0}; };
    awaited done;
    engine.submit(std::move(request), done.callback());
    auto response = done.get();
    REQUIRE_FALSE(response.ok());
    CHECK(response.error().code() == errc::invalid_request);
  }
}

TEST_CASE("http_engine streams a 16 MiB GET into a sink", "[http]") {
  no_proxy env;
  const std::string data = patterned_bytes(size_t{16} << 20, 11);
  const std::string oid = sha256::of(data.data(), data.size());
  test_server server;
  server.http().Get("/objects/big", [&](const httplib::Request&, httplib::Response& res) {
    serve_bytes(res, data);
  });
  server.start();
  http_engine engine;

  sha256 own_hash;
  int64_t received = 0;
  size_t largest_piece = 0;
  http_request request = get(server.url("/objects/big"));
  request.body_sink = [&](const char* bytes, size_t n) {
    own_hash.update(bytes, n);
    received += static_cast<int64_t>(n);
    largest_piece = std::max(largest_piece, n);
    return true;
  };
  awaited done;
  engine.submit(std::move(request), done.callback());
  auto response = done.get();
  REQUIRE(response.ok());
  CHECK(response->status == 200);
  CHECK(response->body.empty());
  CHECK(response->bytes_received == static_cast<int64_t>(data.size()));
  CHECK(received == static_cast<int64_t>(data.size()));
  CHECK(response->sha256_received == oid);
  CHECK(own_hash.hex_digest() == oid);
  // Streamed in pieces, never buffered whole.
  CHECK(largest_piece <= (size_t{1} << 20));
}

TEST_CASE("http_engine keeps error bodies out of the sink", "[http]") {
  no_proxy env;
  test_server server;
  server.http().Get("/missing", [](const httplib::Request&, httplib::Response& res) {
    res.status = 404;
    res.set_content(R"({"message":"not found"})", "application/json");
  });
  server.start();
  http_engine engine;

  bool sink_called = false;
  http_request request = get(server.url("/missing"));
  request.body_sink = [&](const char*, size_t) {
    sink_called = true;
    return true;
  };
  awaited done;
  engine.submit(std::move(request), done.callback());
  auto response = done.get();
  REQUIRE(response.ok());
  CHECK(response->status == 404);
  CHECK(response->body == R"({"message":"not found"})");
  CHECK_FALSE(sink_called);
  CHECK(response->sha256_received == sha256::of("", 0));
}

TEST_CASE("http_engine fails a download its sink refuses", "[http]") {
  no_proxy env;
  const std::string data = patterned_bytes(size_t{1} << 20, 3);
  test_server server;
  server.http().Get("/object", [&](const httplib::Request&, httplib::Response& res) {
    serve_bytes(res, data);
  });
  server.start();
  http_engine engine;

  http_request request = get(server.url("/object"));
  request.body_sink = [](const char*, size_t) { return false; };

  SECTION("as cancelled") {
    awaited done;
    engine.submit(std::move(request), done.callback());
    auto response = done.get();
    REQUIRE_FALSE(response.ok());
    CHECK(response.error().code() == errc::cancelled);
  }
  SECTION("with the sink's own error") {
    request.sink_error = [] { return ferry::status(errc::no_space, "disk full"); };
    awaited done;
    engine.submit(std::move(request), done.callback());
    auto response = done.get();
    REQUIRE_FALSE(response.ok());
    CHECK(response.error().code() == errc::no_space);
    CHECK(response.error().message() == "disk full");
  }
  SECTION("with a sink error that throws") {
    request.sink_error = []() -> ferry::status { throw std::runtime_error("no idea"); };
    awaited done;
    engine.submit(std::move(request), done.callback());
    auto response = done.get();
    REQUIRE_FALSE(response.ok());
    CHECK(response.error().code() == errc::internal);
    CHECK(response.error().message() == "sink error threw: no idea");
    // The loop thread survived: the engine still serves requests.
    http_request again = get(server.url("/object"));
    awaited next;
    engine.submit(std::move(again), next.callback());
    auto second = next.get();
    REQUIRE(second.ok());
    CHECK(second->status == 200);
  }
}

TEST_CASE("http_engine refuses to collect bodies over 8 MiB", "[http]") {
  no_proxy env;
  const std::string data = patterned_bytes((size_t{8} << 20) + 1, 5);
  test_server server;
  server.http().Get("/huge", [&](const httplib::Request&, httplib::Response& res) {
    serve_bytes(res, data);
  });
  server.start();
  http_engine engine;

  awaited done;
  engine.submit(get(server.url("/huge")), done.callback());
  auto response = done.get();
  REQUIRE_FALSE(response.ok());
  CHECK(response.error().code() == errc::invalid_request);
}

TEST_CASE("http_engine runs 32 concurrent requests over few connections", "[http]") {
  no_proxy env;
  test_server server;
  server.http().Get(R"(/small/(\d+))", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content("object " + req.matches[1].str(), "text/plain");
  });
  server.start();
  http_engine::options opts;
  opts.max_host_connections = 2;
  http_engine engine(opts);

  constexpr int count = 32;
  std::vector<awaited> done(count);
  for (int i = 0; i < count; ++i)
    engine.submit(get(server.url("/small/" + std::to_string(i))), done[i].callback());
  int reused = 0;
  for (int i = 0; i < count; ++i) {
    auto response = done[i].get();
    REQUIRE(response.ok());
    CHECK(response->status == 200);
    CHECK(response->body == "object " + std::to_string(i));
    reused += response->connection_reused ? 1 : 0;
  }
  auto stats = engine.current_stats();
  CHECK(stats.transfers == static_cast<uint64_t>(count));
  CHECK(stats.connections_opened >= 1u);
  CHECK(stats.connections_opened <= 2u);
  CHECK(reused >= count - 2);
}

TEST_CASE("http_engine delivers a 500 as a response", "[http]") {
  no_proxy env;
  test_server server;
  server.http().Get("/broken", [](const httplib::Request&, httplib::Response& res) {
    res.status = 500;
    res.set_content("internal trouble", "text/plain");
  });
  server.start();
  http_engine engine;

  awaited done;
  engine.submit(get(server.url("/broken")), done.callback());
  auto response = done.get();
  REQUIRE(response.ok());
  CHECK(response->status == 500);
  CHECK(response->body == "internal trouble");
}

TEST_CASE("http_engine reports a connection reset mid-body as unavailable", "[http]") {
  no_proxy env;
  const std::string data = patterned_bytes(size_t{1} << 20, 9);
  test_server server;
  server.http().Get("/cut", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content_provider(data.size(), "application/octet-stream",
                             [&](size_t offset, size_t, httplib::DataSink& sink) {
                               if (offset >= data.size() / 2)
                                 return false; // drops the connection
                               return sink.write(data.data() + offset, 64 << 10);
                             });
  });
  server.start();
  http_engine engine;

  int64_t sunk = 0;
  http_request request = get(server.url("/cut"));
  request.body_sink = [&](const char*, size_t n) {
    sunk += static_cast<int64_t>(n);
    return true;
  };
  awaited done;
  engine.submit(std::move(request), done.callback());
  auto response = done.get();
  REQUIRE_FALSE(response.ok());
  CHECK(response.error().code() == errc::unavailable);
  CHECK_FALSE(response.error().message().empty());
  CHECK(sunk < static_cast<int64_t>(data.size()));
}

TEST_CASE("http_engine reports a refused connection as unavailable", "[http]") {
  no_proxy env;
  std::string url;
  {
    test_server closed;
    closed.start();
    url = closed.url("/nobody-home");
  } // the port was bound and is closed again
  http_engine engine;

  auto started = std::chrono::steady_clock::now();
  awaited done;
  engine.submit(get(url), done.callback());
  auto response = done.get();
  REQUIRE_FALSE(response.ok());
  CHECK(response.error().code() == errc::unavailable);
  CHECK(response.error().message().find("127.0.0.1") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - started < 5s);
}

TEST_CASE("http_engine gives up on a stalled server", "[http]") {
  no_proxy env;
  test_server server;
  server.http().Get("/stall", [&](const httplib::Request&, httplib::Response& res) {
    serve_held(res, server, 1000);
  });
  server.start();
  http_engine::options opts;
  opts.low_speed_limit_bytes = 1024;
  opts.low_speed_time = 1s;
  http_engine engine(opts);

  auto started = std::chrono::steady_clock::now();
  awaited done;
  engine.submit(get(server.url("/stall")), done.callback());
  auto response = done.get();
  auto took = std::chrono::steady_clock::now() - started;
  REQUIRE_FALSE(response.ok());
  CHECK(response.error().code() == errc::unavailable);
  CHECK(took >= 1s);
  CHECK(took < 8s);
}

TEST_CASE("http_engine cancels an in-flight transfer", "[http]") {
  no_proxy env;
  test_server server;
  server.http().Get("/slow", [&](const httplib::Request&, httplib::Response& res) {
    serve_held(res, server, 64 << 10);
  });
  server.start();
  http_engine engine;

  auto first_bytes = std::make_shared<std::promise<void>>();
  auto first_bytes_seen = first_bytes->get_future();
  bool signalled = false;
  http_request request = get(server.url("/slow"));
  request.body_sink = [first_bytes, signalled](const char*, size_t) mutable {
    if (!signalled) {
      signalled = true;
      first_bytes->set_value();
    }
    return true;
  };
  awaited done;
  uint64_t id = engine.submit(std::move(request), done.callback());
  REQUIRE(first_bytes_seen.wait_for(patience) == std::future_status::ready);
  engine.cancel(id);
  auto response = done.get();
  REQUIRE_FALSE(response.ok());
  CHECK(response.error().code() == errc::cancelled);
  // Cancelling again, or an unknown id, is harmless.
  engine.cancel(id);
  engine.cancel(id + 1000);
  CHECK(engine.current_stats().transfers == 1u);
}

TEST_CASE("http_engine destructor cancels transfers in flight", "[http]") {
  no_proxy env;
  test_server server;
  counter entered;
  server.http().Get("/slow", [&](const httplib::Request&, httplib::Response& res) {
    serve_held(res, server, 1000, &entered);
  });
  server.start();
  auto engine = std::make_unique<http_engine>();

  struct outcomes {
    std::mutex mutex;
    std::vector<std::pair<uint64_t, errc>> seen;
  };
  auto results = std::make_shared<outcomes>();
  auto record = [results](uint64_t id, result<http_response> outcome) {
    std::lock_guard<std::mutex> lock(results->mutex);
    results->seen.emplace_back(id, outcome.ok() ? errc::ok : outcome.error().code());
  };
  constexpr int in_flight = 3;
  std::vector<uint64_t> ids;
  for (int i = 0; i < in_flight; ++i)
    ids.push_back(engine->submit(get(server.url("/slow")), record));
  REQUIRE(entered.wait_for(in_flight));
  // One more that may still sit in the queue when the destructor runs.
  ids.push_back(engine->submit(get(server.url("/slow")), record));

  auto started = std::chrono::steady_clock::now();
  engine.reset();
  CHECK(std::chrono::steady_clock::now() - started < 5s);

  std::lock_guard<std::mutex> lock(results->mutex);
  REQUIRE(results->seen.size() == ids.size());
  std::vector<uint64_t> completed;
  for (const auto& [id, code] : results->seen) {
    CHECK(code == errc::cancelled);
    completed.push_back(id);
  }
  std::sort(completed.begin(), completed.end());
  CHECK(completed == ids);
}

TEST_CASE("http_engine lets completions submit follow-up requests", "[http]") {
  no_proxy env;
  test_server server;
  server.http().Get(R"(/step/(\d+))", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content(req.matches[1].str(), "text/plain");
  });
  server.start();
  http_engine engine;

  awaited last;
  std::vector<std::string> bodies; // touched on the loop thread only
  const std::string base = server.url("/step/");
  engine.submit(get(base + "1"), [&](uint64_t, result<http_response> first) {
    // Assertions belong on the test thread: just record what arrived.
    bodies.push_back(first.ok() ? first->body : first.error().to_string());
    engine.submit(get(base + "2"), last.callback());
  });
  auto second = last.get();
  REQUIRE(second.ok());
  CHECK(second->body == "2");
  CHECK(bodies == std::vector<std::string>{"1"});
}
