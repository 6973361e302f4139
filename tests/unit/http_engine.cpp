#include "store/http/http_engine.hpp"

#include "loopback_server.hpp"
#include "store/http/redis_permits.hpp"
#include "store/os/sha256.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace std::chrono_literals;
using ferry::errc;
using ferry::http_engine;
using ferry::http_request;
using ferry::http_response;
using ferry::result;
using ferry::sha256;
using ferry::sink_action;

using ferry::testing::answer_puts_unread;
using ferry::testing::counter;
using ferry::testing::gate;
using ferry::testing::get_request;
using ferry::testing::no_proxy;
using ferry::testing::patience;
using ferry::testing::patterned_bytes;
using ferry::testing::serve_bytes;
using ferry::testing::serve_half_then_drop;
using ferry::testing::serve_object;
using ferry::testing::test_server;

namespace {

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

/// One transfer whose callbacks pause it: they report each pause here, and
/// the test thread resumes it. Shared with the callbacks, so it outlives
/// them even when a test fails early.
class paused_transfer {
public:
  /// Called on the loop thread by a callback about to return pause.
  void pausing() {
    std::lock_guard<std::mutex> lock(state_->mutex);
    ++state_->pauses;
    state_->changed.notify_all();
  }

  http_engine::completion callback() {
    auto state = state_;
    return [state](uint64_t, result<http_response> outcome) {
      std::lock_guard<std::mutex> lock(state->mutex);
      state->outcome.emplace(std::move(outcome));
      state->changed.notify_all();
    };
  }

  /// Waits for the next pause; false when the transfer completed instead.
  bool next_pause() {
    std::unique_lock<std::mutex> lock(state_->mutex);
    REQUIRE(state_->changed.wait_for(lock, patience, [&] {
      return state_->pauses > state_->handled || state_->outcome.has_value();
    }));
    if (state_->pauses == state_->handled)
      return false;
    ++state_->handled;
    return true;
  }

  /// Whether the transfer completes within `time` (while nobody resumes it).
  bool completes_within(std::chrono::milliseconds time) {
    std::unique_lock<std::mutex> lock(state_->mutex);
    return state_->changed.wait_for(lock, time, [&] { return state_->outcome.has_value(); });
  }

  /// Resumes every pause until the transfer completes; returns its outcome.
  result<http_response> resume_until_done(http_engine& engine, uint64_t id) {
    while (next_pause())
      engine.resume(id);
    return outcome();
  }

  /// The outcome of a transfer that has completed.
  result<http_response> outcome() {
    std::lock_guard<std::mutex> lock(state_->mutex);
    REQUIRE(state_->outcome.has_value());
    return std::move(*state_->outcome);
  }

  int pauses() {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->pauses;
  }

private:
  struct shared {
    std::mutex mutex;
    std::condition_variable changed;
    int pauses = 0;
    int handled = 0;
    std::optional<result<http_response>> outcome;
  };
  std::shared_ptr<shared> state_ = std::make_shared<shared>();
};

/// Where a test's callback pauses: twice in a row (the second time on what
/// resume() hands back) at `next`, then again every `every` bytes.
struct pause_plan {
  size_t next = 0;
  size_t every;
  int pauses_here = 0;

  /// Asked once per callback with the bytes moved so far.
  bool pause_at(size_t position) {
    if (position >= next && pauses_here < 2) {
      ++pauses_here;
      return true;
    }
    if (pauses_here == 2) {
      pauses_here = 0;
      next += every;
    }
    return false;
  }
};

/// A GET whose sink checks every piece against `data` at the offset it has
/// accepted so far, pauses as planned and hashes what it accepts. Touched
/// on the loop thread only until the completion.
struct pausing_download {
  pausing_download(const std::string& data, size_t pause_every)
      : data(data), plan{0, pause_every} {}

  http_request request(const std::string& url) {
    http_request r = get_request(url);
    r.body_sink = [this](const char* bytes, size_t n) {
      if (accepted + n > data.size() || !std::equal(bytes, bytes + n, data.data() + accepted))
        offered_wrong_bytes = true;
      if (plan.pause_at(accepted)) {
        flow.pausing();
        return sink_action::pause;
      }
      hash.update(bytes, n);
      accepted += n;
      return sink_action::accept;
    };
    return r;
  }

  const std::string& data;
  pause_plan plan;
  paused_transfer flow;
  sha256 hash;
  size_t accepted = 0;
  bool offered_wrong_bytes = false;
};

/// A PUT of `data` whose source pauses as planned. Touched on the loop
/// thread only until the completion.
struct pausing_upload {
  pausing_upload(const std::string& data, size_t pause_every) : data(data), plan{0, pause_every} {}

  http_request request(const std::string& url) {
    http_request r;
    r.method = "PUT";
    r.url = url;
    r.upload_size = static_cast<int64_t>(data.size());
    r.upload_source = [this](char* buf, size_t cap) -> result<size_t> {
      if (plan.pause_at(offset)) {
        flow.pausing();
        return http_request::pause_upload;
      }
      // Stops at the next pause point, so the pause falls exactly there.
      size_t n = std::min({cap, data.size() - offset, plan.next - offset});
      std::copy_n(data.data() + offset, n, buf);
      offset += n;
      return n;
    };
    return r;
  }

  const std::string& data;
  pause_plan plan;
  paused_transfer flow;
  size_t offset = 0;
};

/// Hashes every PUT body it receives; a test waits for `count`.
struct upload_sink {
  std::mutex mutex;
  std::vector<std::string> hashes;
  counter count;

  void install(test_server& server, const std::string& path) {
    server.http().Put(path, [this](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard<std::mutex> lock(mutex);
        hashes.push_back(sha256::of(req.body.data(), req.body.size()));
      }
      count.add();
      res.set_content(std::to_string(req.body.size()), "text/plain");
    });
  }
};

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
  engine.submit(get_request(server.url("/hello")), done.callback());
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

  http_request request = get_request(server.url("/object"));
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
  server.http().Put("/upload",
                    [](const httplib::Request&, httplib::Response& res) { res.status = 200; });
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
  serve_object(server, "/objects/big", data);
  server.start();
  http_engine engine;

  sha256 own_hash;
  int64_t received = 0;
  size_t largest_piece = 0;
  http_request request = get_request(server.url("/objects/big"));
  request.body_sink = [&](const char* bytes, size_t n) {
    own_hash.update(bytes, n);
    received += static_cast<int64_t>(n);
    largest_piece = std::max(largest_piece, n);
    return sink_action::accept;
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
  http_request request = get_request(server.url("/missing"));
  request.body_sink = [&](const char*, size_t) {
    sink_called = true;
    return sink_action::accept;
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
  serve_object(server, "/object", data);
  server.start();
  http_engine engine;

  http_request request = get_request(server.url("/object"));
  request.body_sink = [](const char*, size_t) { return sink_action::abort; };

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
    http_request again = get_request(server.url("/object"));
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
  serve_object(server, "/huge", data);
  server.start();
  http_engine engine;

  awaited done;
  engine.submit(get_request(server.url("/huge")), done.callback());
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
    engine.submit(get_request(server.url("/small/" + std::to_string(i))), done[i].callback());
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

TEST_CASE("http_engine opens a connection per transfer to a host, and no more", "[http]") {
  no_proxy env;
  test_server server;
  counter entered;
  // Every request is held until the test has seen `transfers` of them at
  // once: only one connection per request gets them all there.
  server.http().Get(R"(/held/(\d+))", [&](const httplib::Request& req, httplib::Response& res) {
    entered.add();
    server.held().wait();
    res.set_content("object " + req.matches[1].str(), "text/plain");
  });
  server.start();
  constexpr int transfers = 32;
  http_engine engine(http_engine::options::for_transfers(transfers));

  constexpr int count = transfers + 8;
  std::vector<awaited> done(count);
  for (int i = 0; i < count; ++i)
    engine.submit(get_request(server.url("/held/" + std::to_string(i))), done[i].callback());
  REQUIRE(entered.wait_for(transfers));
  server.held().open();
  for (int i = 0; i < count; ++i) {
    auto response = done[i].get();
    REQUIRE(response.ok());
    CHECK(response->body == "object " + std::to_string(i));
  }
  // The 8 requests beyond the cap waited for a connection and reused it.
  CHECK(engine.current_stats().connections_opened == static_cast<uint64_t>(transfers));
}

TEST_CASE("http_engine options follow the transfers", "[http]") {
  auto many = http_engine::options::for_transfers(64);
  CHECK(many.max_host_connections == 64);
  CHECK(many.max_total_connections == 8 * 64);
  CHECK(http_engine::options::for_transfers(0).max_host_connections == 1);
  // The defaults are those of 8 transfers.
  auto eight = http_engine::options::for_transfers(8);
  http_engine::options defaults;
  CHECK(eight.max_host_connections == defaults.max_host_connections);
  CHECK(eight.max_total_connections == defaults.max_total_connections);
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
  engine.submit(get_request(server.url("/broken")), done.callback());
  auto response = done.get();
  REQUIRE(response.ok());
  CHECK(response->status == 500);
  CHECK(response->body == "internal trouble");
}

TEST_CASE("http_engine reports a connection reset mid-body as unavailable", "[http]") {
  no_proxy env;
  const std::string data = patterned_bytes(size_t{1} << 20, 9);
  test_server server;
  serve_half_then_drop(server, "/cut", data);
  server.start();
  http_engine engine;

  int64_t sunk = 0;
  http_request request = get_request(server.url("/cut"));
  request.body_sink = [&](const char*, size_t n) {
    sunk += static_cast<int64_t>(n);
    return sink_action::accept;
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
  engine.submit(get_request(url), done.callback());
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
  engine.submit(get_request(server.url("/stall")), done.callback());
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
  http_request request = get_request(server.url("/slow"));
  request.body_sink = [first_bytes, signalled](const char*, size_t) mutable {
    if (!signalled) {
      signalled = true;
      first_bytes->set_value();
    }
    return sink_action::accept;
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
  counter entered;
  test_server server;
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
    ids.push_back(engine->submit(get_request(server.url("/slow")), record));
  REQUIRE(entered.wait_for(in_flight));
  // One more that may still sit in the queue when the destructor runs.
  ids.push_back(engine->submit(get_request(server.url("/slow")), record));

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
  engine.submit(get_request(base + "1"), [&](uint64_t, result<http_response> first) {
    // Assertions belong on the test thread: just record what arrived.
    bodies.push_back(first.ok() ? first->body : first.error().to_string());
    engine.submit(get_request(base + "2"), last.callback());
  });
  auto second = last.get();
  REQUIRE(second.ok());
  CHECK(second->body == "2");
  CHECK(bodies == std::vector<std::string>{"1"});
}

TEST_CASE("http_engine pauses and resumes a download", "[http]") {
  no_proxy env;
  const std::string data = patterned_bytes(size_t{8} << 20, 13);
  const std::string oid = sha256::of(data.data(), data.size());
  test_server server;
  serve_object(server, "/object", data);
  server.start();
  http_engine engine;

  pausing_download download(data, size_t{1} << 20);
  uint64_t id = engine.submit(download.request(server.url("/object")), download.flow.callback());
  // Resuming what is not paused, or an unknown id, is harmless.
  engine.resume(id + 1000);
  auto response = download.flow.resume_until_done(engine, id);
  REQUIRE(response.ok());
  CHECK(response->status == 200);
  CHECK_FALSE(download.offered_wrong_bytes);
  CHECK(download.accepted == data.size());
  CHECK(download.hash.hex_digest() == oid);
  CHECK(response->sha256_received == oid);
  CHECK(response->bytes_received == static_cast<int64_t>(data.size()));
  // Two pauses at byte 0 and at each further MiB.
  CHECK(download.flow.pauses() == 2 * 8);
}

TEST_CASE("http_engine pauses and resumes an upload", "[http]") {
  no_proxy env;
  const std::string data = patterned_bytes(size_t{8} << 20, 17);
  const std::string oid = sha256::of(data.data(), data.size());
  upload_sink received;
  test_server server;
  received.install(server, "/upload");
  server.start();
  http_engine engine;

  pausing_upload upload(data, size_t{1} << 20);
  uint64_t id = engine.submit(upload.request(server.url("/upload")), upload.flow.callback());
  auto response = upload.flow.resume_until_done(engine, id);
  REQUIRE(response.ok());
  CHECK(response->status == 200);
  CHECK(response->body == std::to_string(data.size()));
  CHECK(response->sha256_sent == oid);
  CHECK(upload.flow.pauses() == 2 * 8);
  std::lock_guard<std::mutex> lock(received.mutex);
  CHECK(received.hashes == std::vector<std::string>{oid});
}

TEST_CASE("http_engine fails a download its sink aborts after a resume", "[http]") {
  no_proxy env;
  const std::string data = patterned_bytes(size_t{4} << 20, 19);
  test_server server;
  serve_object(server, "/object", data);
  server.start();
  http_engine engine;

  // The refusal comes while curl hands back the held bytes, inside resume.
  paused_transfer flow;
  int calls = 0;
  http_request request = get_request(server.url("/object"));
  request.body_sink = [&](const char*, size_t) {
    if (++calls > 1)
      return sink_action::abort;
    flow.pausing();
    return sink_action::pause;
  };
  request.sink_error = [] { return ferry::status(errc::no_space, "disk full"); };
  uint64_t id = engine.submit(std::move(request), flow.callback());
  auto response = flow.resume_until_done(engine, id);
  REQUIRE_FALSE(response.ok());
  CHECK(response.error().code() == errc::no_space);
  CHECK(calls == 2);
  CHECK(engine.current_stats().transfers == 1u);
}

TEST_CASE("http_engine does not count a pause as a stall", "[http]") {
  no_proxy env;
  const std::string data = patterned_bytes(size_t{2} << 20, 23);
  const std::string oid = sha256::of(data.data(), data.size());
  upload_sink received;
  test_server server;
  serve_object(server, "/object", data);
  received.install(server, "/upload");
  server.start();
  http_engine::options opts;
  opts.low_speed_limit_bytes = 1024;
  opts.low_speed_time = 2s;
  http_engine engine(opts);

  // Paused once each, mid-body, for longer than the stall window.
  pausing_download download(data, size_t{1} << 20);
  download.plan.next = size_t{1} << 20;
  pausing_upload upload(data, size_t{4} << 20);
  upload.plan.next = size_t{1} << 20;
  uint64_t download_id =
    engine.submit(download.request(server.url("/object")), download.flow.callback());
  uint64_t upload_id = engine.submit(upload.request(server.url("/upload")), upload.flow.callback());
  REQUIRE(download.flow.next_pause());
  REQUIRE(upload.flow.next_pause());
  // The pause length is what this test is about: a stall would end both
  // transfers with errc::unavailable after 2 s.
  CHECK_FALSE(download.flow.completes_within(3s));
  CHECK_FALSE(upload.flow.completes_within(0s));
  engine.resume(download_id);
  engine.resume(upload_id);

  auto downloaded = download.flow.resume_until_done(engine, download_id);
  REQUIRE(downloaded.ok());
  CHECK(downloaded->status == 200);
  CHECK(downloaded->sha256_received == oid);
  auto uploaded = upload.flow.resume_until_done(engine, upload_id);
  REQUIRE(uploaded.ok());
  CHECK(uploaded->status == 200);
  CHECK(uploaded->sha256_sent == oid);
  std::lock_guard<std::mutex> lock(received.mutex);
  CHECK(received.hashes == std::vector<std::string>{oid});
}

TEST_CASE("http_engine hands the final response head to on_headers", "[http]") {
  no_proxy env;
  const std::string data = patterned_bytes(size_t{1} << 20, 29);
  counter interim_heads;
  test_server server;
  server.http().Get("/object", [&](const httplib::Request&, httplib::Response& res) {
    res.set_header("X-Object-Kind", "  patterned ");
    serve_bytes(res, data);
  });
  server.http().Get("/missing", [](const httplib::Request&, httplib::Response& res) {
    res.status = 404;
    res.set_content("no such object", "text/plain");
  });
  server.http().Put("/upload", [](const httplib::Request& req, httplib::Response& res) {
    res.status = 201;
    res.set_content(std::to_string(req.body.size()), "text/plain");
  });
  server.http().set_expect_100_continue_handler([&](const httplib::Request&, httplib::Response&) {
    interim_heads.add();
    return 100;
  });
  server.start();
  http_engine engine;

  // Everything below runs on the loop thread until the completion.
  struct seen {
    std::vector<long> statuses;
    std::vector<std::pair<std::string, std::string>> headers;
    bool body_before_head = false;
    size_t body_bytes = 0;
  } saw;
  auto watch = [&saw](http_request& request) {
    request.on_headers = [&saw](long code, const auto& headers) {
      saw.statuses.push_back(code);
      saw.headers = headers;
      saw.body_before_head = saw.body_bytes > 0;
      return true;
    };
    request.body_sink = [&saw](const char*, size_t n) {
      saw.body_bytes += n;
      return sink_action::accept;
    };
  };

  SECTION("before the first body byte") {
    http_request request = get_request(server.url("/object"));
    watch(request);
    awaited done;
    engine.submit(std::move(request), done.callback());
    auto response = done.get();
    REQUIRE(response.ok());
    CHECK(saw.statuses == std::vector<long>{200});
    CHECK_FALSE(saw.body_before_head);
    CHECK(saw.body_bytes == data.size());
    CHECK(saw.headers == response->headers);
    CHECK(std::count(saw.headers.begin(), saw.headers.end(),
                     std::make_pair(std::string("x-object-kind"), std::string("patterned"))) == 1);
  }
  SECTION("for a response without a body") {
    http_request request = get_request(server.url("/object"));
    request.method = "HEAD";
    watch(request);
    awaited done;
    engine.submit(std::move(request), done.callback());
    auto response = done.get();
    REQUIRE(response.ok());
    CHECK(saw.statuses == std::vector<long>{200});
    CHECK(saw.body_bytes == 0u);
    CHECK(saw.headers == response->headers);
  }
  SECTION("for an error status") {
    http_request request = get_request(server.url("/missing"));
    watch(request);
    awaited done;
    engine.submit(std::move(request), done.callback());
    auto response = done.get();
    REQUIRE(response.ok());
    CHECK(saw.statuses == std::vector<long>{404});
    CHECK(response->body == "no such object");
  }
  SECTION("after skipping a 100 Continue") {
    const std::string body(100000, 'p');
    size_t offset = 0;
    http_request request;
    request.method = "PUT";
    request.url = server.url("/upload");
    request.headers = {{"Expect", "100-continue"}};
    request.upload_size = static_cast<int64_t>(body.size());
    request.upload_source = [&](char* buf, size_t cap) -> result<size_t> {
      size_t n = std::min(cap, body.size() - offset);
      std::copy_n(body.data() + offset, n, buf);
      offset += n;
      return n;
    };
    watch(request);
    awaited done;
    engine.submit(std::move(request), done.callback());
    auto response = done.get();
    REQUIRE(response.ok());
    CHECK(response->status == 201);
    CHECK(interim_heads.value() == 1);
    CHECK(saw.statuses == std::vector<long>{201});
    CHECK(response->bytes_sent == static_cast<int64_t>(body.size()));
    // The server's answer: the number of bytes it received.
    CHECK(saw.body_bytes == std::to_string(body.size()).size());
  }
}

TEST_CASE("http_engine fails a transfer that on_headers refuses", "[http]") {
  no_proxy env;
  const std::string data = patterned_bytes(size_t{1} << 20, 31);
  test_server server;
  server.http().Get("/object", [&](const httplib::Request&, httplib::Response& res) {
    res.set_header("Content-Type", "text/html");
    serve_bytes(res, data);
  });
  server.start();
  http_engine engine;

  bool sink_called = false;
  long status_seen = 0;
  http_request request = get_request(server.url("/object"));
  request.on_headers = [&](long code, const auto& headers) {
    status_seen = code;
    for (const auto& [name, value] : headers)
      if (name == "content-type" && value == "text/html")
        return false; // a login page, not object data
    return true;
  };
  request.body_sink = [&](const char*, size_t) {
    sink_called = true;
    return sink_action::accept;
  };

  SECTION("as cancelled") {
    awaited done;
    engine.submit(std::move(request), done.callback());
    auto response = done.get();
    REQUIRE_FALSE(response.ok());
    CHECK(response.error().code() == errc::cancelled);
    CHECK(response.error().message().find("on_headers") != std::string::npos);
    CHECK(status_seen == 200);
  }
  SECTION("with the sink's own error") {
    request.sink_error = [] { return ferry::status(errc::unavailable, "not object data"); };
    awaited done;
    engine.submit(std::move(request), done.callback());
    auto response = done.get();
    REQUIRE_FALSE(response.ok());
    CHECK(response.error().code() == errc::unavailable);
    CHECK(response.error().message() == "not object data");
    CHECK(status_seen == 200);
  }
  SECTION("that throws") {
    request.on_headers = [](long, const auto&) -> bool { throw std::runtime_error("parse"); };
    awaited done;
    engine.submit(std::move(request), done.callback());
    auto response = done.get();
    REQUIRE_FALSE(response.ok());
    CHECK(response.error().code() == errc::internal);
    CHECK(response.error().message() == "on_headers threw: parse");
  }
  CHECK_FALSE(sink_called);
}

TEST_CASE("http_engine ends a paused upload that the server answered", "[http]") {
  no_proxy env;
  gate upload_paused;
  test_server server;
  answer_puts_unread(server, "/upload", 413, "object too large", &upload_paused);
  server.start();
  http_engine engine;

  // The source never has anything: only the answer can end the transfer.
  paused_transfer flow;
  http_request request;
  request.method = "PUT";
  request.url = server.url("/upload");
  request.upload_size = 1 << 20;
  request.upload_source = [&flow](char*, size_t) -> result<size_t> {
    flow.pausing();
    return http_request::pause_upload;
  };
  engine.submit(std::move(request), flow.callback());
  REQUIRE(flow.next_pause());
  upload_paused.open();
  // Nobody resumes it.
  REQUIRE(flow.completes_within(patience));
  CHECK(flow.pauses() == 1);
  auto response = flow.outcome();
  REQUIRE(response.ok());
  CHECK(response->status == 413);
  CHECK(response->body == "object too large");
  CHECK(response->bytes_sent == 0);
}

namespace {

/// When requests reached a server handler, in arrival order.
class arrivals {
public:
  void note() {
    std::lock_guard<std::mutex> lock(mutex_);
    times_.push_back(std::chrono::steady_clock::now());
  }
  std::vector<std::chrono::steady_clock::time_point> times() {
    std::lock_guard<std::mutex> lock(mutex_);
    return times_;
  }

private:
  std::mutex mutex_;
  std::vector<std::chrono::steady_clock::time_point> times_;
};

/// GET `path` answers 429 with `retry_after`; the time of that answer goes
/// to `answered`. Every other GET is served and its arrival noted in `seen`.
void serve_rate_limited(test_server& server, const std::string& path,
                        const std::string& retry_after, arrivals& answered, arrivals& seen) {
  server.http().Get(path,
                    [&answered, retry_after](const httplib::Request&, httplib::Response& res) {
                      res.status = 429;
                      res.set_header("Retry-After", retry_after);
                      answered.note();
                    });
  server.http().Get("/other", [&seen](const httplib::Request&, httplib::Response& res) {
    seen.note();
    res.set_content("served", "text/plain");
  });
}

} // namespace

TEST_CASE("http_engine holds requests to a host until its Retry-After cooldown ends", "[http]") {
  no_proxy env;
  arrivals limited_answered, limited_seen, other_answered, other_seen;
  test_server limited, other;
  serve_rate_limited(limited, "/busy", "1", limited_answered, limited_seen);
  serve_rate_limited(other, "/busy", "1", other_answered, other_seen);
  limited.start();
  other.start();
  http_engine engine;

  awaited refused;
  engine.submit(get_request(limited.url("/busy")), refused.callback());
  auto answer = refused.get();
  REQUIRE(answer.ok());
  REQUIRE(answer->status == 429);
  REQUIRE(limited_answered.times().size() == 1u);
  auto cooldown_end = limited_answered.times().front() + 1s;

  // An independent request to the same host, and one to another host.
  awaited same_host, other_host;
  engine.submit(get_request(limited.url("/other")), same_host.callback());
  engine.submit(get_request(other.url("/other")), other_host.callback());
  REQUIRE(other_host.get().ok());
  REQUIRE(same_host.get().ok());

  REQUIRE(limited_seen.times().size() == 1u);
  CHECK(limited_seen.times().front() >= cooldown_end);
  REQUIRE(other_seen.times().size() == 1u);
  CHECK(other_seen.times().front() < cooldown_end);
}

TEST_CASE("http_engine shows each host's cooldown and rate in its paces", "[http]") {
  no_proxy env;
  arrivals answered, seen;
  test_server server;
  serve_rate_limited(server, "/busy", "60", answered, seen);
  server.start();
  http_engine::options options;
  options.requests_per_second = 50;
  http_engine engine(options);
  CHECK(engine.host_paces().empty());

  awaited refused;
  engine.submit(get_request(server.url("/busy")), refused.callback());
  REQUIRE(refused.get().ok());
  auto paces = engine.host_paces();
  REQUIRE(paces.size() == 1u);
  CHECK(paces[0].host == server.url(""));
  CHECK(paces[0].cooldown_seconds > 50);
  CHECK(paces[0].cooldown_seconds <= 60);
  CHECK(paces[0].full_requests_per_second == 50);
  // The 429 cut the rate.
  CHECK(paces[0].requests_per_second < 50);
  CHECK(paces[0].waiting == 0);

  awaited held;
  auto id = engine.submit(get_request(server.url("/other")), held.callback());
  CHECK(engine.host_paces()[0].waiting == 1);
  engine.cancel(id);
  CHECK_FALSE(held.get().ok());
}

TEST_CASE("http_engine puts no cooldown for a Retry-After beyond max_cooldown", "[http]") {
  no_proxy env;
  arrivals answered, seen;
  test_server server;
  serve_rate_limited(server, "/busy", "3600", answered, seen);
  server.start();
  http_engine::options options;
  options.max_cooldown = 30s;
  http_engine engine(options);

  awaited refused;
  engine.submit(get_request(server.url("/busy")), refused.callback());
  REQUIRE(refused.get().ok());
  awaited later;
  engine.submit(get_request(server.url("/other")), later.callback());
  auto response = later.get(); // within `patience`, neither an hour nor 30 s
  REQUIRE(response.ok());
  CHECK(response->status == 200);
  REQUIRE(seen.times().size() == 1u);
  CHECK(seen.times().front() < answered.times().front() + 30s);
}

TEST_CASE("http_engine cancels requests held by a cooldown", "[http]") {
  no_proxy env;
  arrivals answered, seen;
  test_server server;
  serve_rate_limited(server, "/busy", "60", answered, seen);
  server.start();
  awaited cancelled, left_behind;
  {
    http_engine engine;
    awaited refused;
    engine.submit(get_request(server.url("/busy")), refused.callback());
    REQUIRE(refused.get().ok());
    uint64_t id = engine.submit(get_request(server.url("/other")), cancelled.callback());
    engine.submit(get_request(server.url("/other")), left_behind.callback());
    engine.cancel(id);
    auto outcome = cancelled.get();
    REQUIRE_FALSE(outcome.ok());
    CHECK(outcome.error().code() == errc::cancelled);
  }
  // The engine's shutdown ends the request still held.
  auto outcome = left_behind.get();
  REQUIRE_FALSE(outcome.ok());
  CHECK(outcome.error().code() == errc::cancelled);
  CHECK(seen.times().empty());
}

namespace {

/// Every request to the server is noted in `seen`, whatever its method.
void serve_any(test_server& server, arrivals& seen) {
  auto note = [&seen](const httplib::Request&, httplib::Response& res) {
    seen.note();
    res.set_content("ok", "text/plain");
  };
  server.http().Get("/any", note);
  server.http().Post("/any", note);
  server.http().Put("/any", note);
}

/// Requests of every kind, taking turns.
http_request request_of_kind(size_t turn, const std::string& url) {
  http_request request = get_request(url);
  switch (turn % 4) {
    case 1:
      request.method = "HEAD";
      break;
    case 2:
      request.method = "POST";
      request.body = "{}";
      break;
    case 3:
      request.method = "PUT";
      request.body = "body";
      break;
  }
  return request;
}

/// Submits `n` requests of every kind to `url` at once; returns when they
/// were submitted, once all of them have succeeded.
std::chrono::steady_clock::time_point submit_and_wait(http_engine& engine, size_t n,
                                                      const std::string& url) {
  std::vector<awaited> outcomes(n);
  auto submitted = std::chrono::steady_clock::now();
  for (size_t i = 0; i < n; ++i)
    engine.submit(request_of_kind(i, url), outcomes[i].callback());
  for (auto& outcome : outcomes) {
    auto response = outcome.get();
    REQUIRE(response.ok());
    CHECK(response->status == 200);
  }
  return submitted;
}

/// Lines the engine logs about rate changes.
class rate_lines {
public:
  std::function<void(const std::string&)> sink() {
    return [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(mutex_);
      lines_.push_back(line);
    };
  }
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_;
  }

private:
  std::mutex mutex_;
  std::vector<std::string> lines_;
};

} // namespace

TEST_CASE("http_engine paces requests of every kind to a host", "[http][pacing]") {
  no_proxy env;
  arrivals seen;
  test_server server;
  serve_any(server, seen);
  server.start();
  http_engine::options options;
  options.requests_per_second = 20;
  options.request_burst = 2;
  http_engine engine(options);

  // 12 requests at 20/s, 2 of them at once: the last goes 0.5 s after the
  // first two.
  auto submitted = submit_and_wait(engine, 12, server.url("/any"));
  auto times = seen.times();
  REQUIRE(times.size() == 12u);
  CHECK(times.back() - submitted >= 500ms);
  // Evenly: by any time after the submission, no more arrived than the burst
  // plus the rate's share of that time, and 1 for rounding (unpaced, all 12
  // come at once). A late arrival only lowers the count, so a slow machine
  // cannot fail this.
  for (auto until = 50ms; until <= 500ms; until += 50ms) {
    auto arrived = std::count_if(times.begin(), times.end(),
                                 [&](auto t) { return t - submitted < until; });
    CHECK(arrived <= 2 + until.count() * 20 / 1000 + 1);
  }
}

TEST_CASE("http_engine halves a host's rate when it answers 429", "[http][pacing]") {
  no_proxy env;
  arrivals seen;
  test_server server;
  serve_any(server, seen);
  server.http().Get("/busy",
                    [](const httplib::Request&, httplib::Response& res) { res.status = 429; });
  server.start();
  rate_lines lines;
  http_engine::options options;
  options.requests_per_second = 20;
  options.on_rate_change = lines.sink();
  http_engine engine(options);

  awaited refused;
  engine.submit(get_request(server.url("/busy")), refused.callback());
  auto answer = refused.get();
  REQUIRE(answer.ok());
  REQUIRE(answer->status == 429);
  // 9 requests at 10/s take 0.8 s (0.4 s at the full 20/s); the rate climbs
  // back by 5% a second meanwhile, and the first may find a token.
  auto submitted = submit_and_wait(engine, 9, server.url("/any"));
  REQUIRE(seen.times().size() == 9u);
  CHECK(seen.times().back() - submitted >= 600ms);
  auto said = lines.lines();
  REQUIRE(said.size() == 1u);
  CHECK(said.front() == server.url("") +
                          " asked to slow down (HTTP 429 or 503): rate to it cut to 10 "
                          "requests/s, back to the full 20 requests/s step by step");
}

namespace {

/// Permits handed out by the test: counts what the engine took and notes
/// any request the server saw beyond that.
class test_permits : public ferry::request_permits {
public:
  bool try_take(const std::function<void()>& wake) override {
    std::lock_guard<std::mutex> lock(mutex_);
    wake_ = wake;
    asked_.notify_all();
    if (granted_ == 0)
      return false;
    --granted_;
    ++taken_;
    return true;
  }
  /// One more permit, and the engine is told.
  void grant() {
    std::function<void()> wake;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++granted_;
      wake = wake_;
    }
    REQUIRE(wake);
    wake();
  }
  /// Called by the server for each request it sees.
  void arrived() {
    std::lock_guard<std::mutex> lock(mutex_);
    ++arrived_;
    if (arrived_ > taken_)
      ++unpermitted_;
  }
  int unpermitted() {
    std::lock_guard<std::mutex> lock(mutex_);
    return unpermitted_;
  }
  /// Whether the engine asked for a permit within `patience`.
  bool wait_asked() {
    std::unique_lock<std::mutex> lock(mutex_);
    return asked_.wait_for(lock, patience, [&] { return static_cast<bool>(wake_); });
  }

private:
  std::mutex mutex_;
  int granted_ = 0;
  int taken_ = 0;
  int arrived_ = 0;
  int unpermitted_ = 0;
  std::function<void()> wake_;
  std::condition_variable asked_;
};

} // namespace

TEST_CASE("http_engine starts a request only with a permit", "[http][pacing]") {
  no_proxy env;
  auto permits = std::make_shared<test_permits>();
  test_server server;
  arrivals seen;
  server.http().Get("/any", [&](const httplib::Request&, httplib::Response& res) {
    permits->arrived();
    seen.note();
    res.set_content("ok", "text/plain");
  });
  server.start();
  http_engine::options options;
  options.permits = permits;
  http_engine engine(options);

  std::vector<awaited> outcomes(3);
  for (auto& outcome : outcomes)
    engine.submit(get_request(server.url("/any")), outcome.callback());
  REQUIRE(permits->wait_asked());
  for (auto& outcome : outcomes) {
    // The loop polls for a second at most: a prompt start shows the wake.
    auto granted = std::chrono::steady_clock::now();
    permits->grant();
    auto response = outcome.get();
    REQUIRE(response.ok());
    CHECK(response->status == 200);
    CHECK(seen.times().back() - granted < 700ms);
  }
  CHECK(seen.times().size() == 3u);
  CHECK(permits->unpermitted() == 0);
}

TEST_CASE("redis_permits ask Redis on their own thread and fall back when it is gone",
          "[http][pacing][redis]") {
  no_proxy env;
  ferry::testing::refusing_port refusing;
  ferry::redis_address target{"127.0.0.1", refusing.port(), "k"};

  std::mutex mutex;
  std::vector<std::pair<std::thread::id, std::string>> notices;
  auto permits =
    std::make_shared<ferry::redis_permits>(target, 100, 500ms, [&](const std::string& text) {
      std::lock_guard<std::mutex> lock(mutex);
      notices.emplace_back(std::this_thread::get_id(), text);
    });
  test_server server;
  arrivals seen;
  serve_any(server, seen);
  server.start();
  http_engine::options options;
  options.permits = permits;
  http_engine engine(options);
  // Every request still goes, paced by the engine alone.
  submit_and_wait(engine, 4, server.url("/any"));
  CHECK(seen.times().size() == 4u);
  // Completions run on the loop thread.
  std::promise<std::thread::id> loop_thread;
  engine.submit(get_request(server.url("/any")), [&](uint64_t, result<http_response>) {
    loop_thread.set_value(std::this_thread::get_id());
  });
  auto loop_id = loop_thread.get_future().get();
  std::lock_guard<std::mutex> lock(mutex);
  REQUIRE(notices.size() == 1u);
  CHECK(notices.front().first != loop_id);
  CHECK(notices.front().first != std::this_thread::get_id());
  CHECK(notices.front().second.find("warning: the shared rate limit in Redis (127.0.0.1:") == 0);
  CHECK(notices.front().second.find("is unreachable: cannot connect to 127.0.0.1:") !=
        std::string::npos);
}
