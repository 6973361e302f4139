#include "store/http/http_stream.hpp"

#include "loopback_server.hpp"
#include "store/os/sha256.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using ferry::errc;
using ferry::http_body_reader;
using ferry::http_body_writer;
using ferry::http_engine;
using ferry::http_fetch;
using ferry::http_request;
using ferry::http_response;
using ferry::result;
using ferry::sha256;

using ferry::testing::answer_puts_unread;
using ferry::testing::counter;
using ferry::testing::get_request;
using ferry::testing::no_proxy;
using ferry::testing::patterned_bytes;
using ferry::testing::serve_bytes;
using ferry::testing::serve_half_then_drop;
using ferry::testing::serve_object;
using ferry::testing::test_server;

namespace {

http_request put(const std::string& url, size_t size) {
  http_request request;
  request.method = "PUT";
  request.url = url;
  request.upload_size = static_cast<int64_t>(size);
  return request;
}

/// Reads the whole body in pieces of at most `piece` bytes.
struct read_all {
  read_all(http_body_reader& reader, size_t piece) {
    std::vector<char> buffer(piece);
    for (;;) {
      auto n = reader.read(buffer.data(), buffer.size());
      if (!n.ok()) {
        failure = n.error();
        return;
      }
      if (*n == 0)
        return;
      hash.update(buffer.data(), *n);
      bytes += *n;
    }
  }
  sha256 hash;
  size_t bytes = 0;
  ferry::status failure;
};

/// What a PUT handler that reads the body itself saw: how much arrived and
/// whether the body was complete.
struct body_received {
  std::mutex mutex;
  size_t bytes = 0;
  bool complete = false;
  std::string hash;
  /// Body bytes as they arrive.
  counter progress;
  /// Handler calls that ended.
  counter requests;

  void install(test_server& server, const std::string& path) {
    server.http().Put(path, [this](const httplib::Request&, httplib::Response& res,
                                   const httplib::ContentReader& read_body) {
      sha256 own;
      size_t got = 0;
      bool whole = read_body([&](const char* data, size_t n) {
        own.update(data, n);
        got += n;
        progress.add(static_cast<int64_t>(n));
        return true;
      });
      {
        std::lock_guard<std::mutex> lock(mutex);
        bytes = got;
        complete = whole;
        hash = own.hex_digest();
      }
      res.set_content(std::to_string(got), "text/plain");
      requests.add();
    });
  }
};

/// An engine and a loopback server whose PUT /upload is a body_received.
struct upload_fixture {
  upload_fixture() {
    received.install(server, "/upload");
    server.start();
  }
  std::string url() const { return server.url("/upload"); }

  no_proxy env;
  body_received received;
  test_server server;
  http_engine engine;
};

} // namespace

TEST_CASE("http_fetch waits for the response", "[http]") {
  no_proxy env;
  test_server server;
  server.http().Get("/hello", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("hello, ferry", "text/plain");
  });
  server.start();
  http_engine engine;

  auto response = http_fetch(engine, get_request(server.url("/hello")));
  REQUIRE(response.ok());
  CHECK(response->status == 200);
  CHECK(response->body == "hello, ferry");

  std::string closed_url;
  {
    test_server closed;
    closed.start();
    closed_url = closed.url("/nobody-home");
  }
  auto refused = http_fetch(engine, get_request(closed_url));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code() == errc::unavailable);
}

TEST_CASE("http_body_reader reads a body intact", "[http]") {
  no_proxy env;
  const std::string data = patterned_bytes((size_t{3} << 20) + 12345, 41);
  test_server server;
  server.http().Get("/object", [&](const httplib::Request&, httplib::Response& res) {
    res.set_header("X-Object", "yes");
    serve_bytes(res, data);
  });
  server.start();
  http_engine engine;

  auto reader = http_body_reader::open(engine, get_request(server.url("/object")), 256 << 10);
  REQUIRE(reader.ok());
  http_body_reader& body = **reader;
  CHECK(body.status() == 200);
  REQUIRE(body.header("x-object") != nullptr);
  CHECK(*body.header("x-object") == "yes");
  CHECK(body.header("x-absent") == nullptr);
  CHECK(body.error_body().empty());
  read_all all(body, 10007);
  CHECK(all.failure.ok());
  CHECK(all.bytes == data.size());
  CHECK(all.hash.hex_digest() == sha256::of(data.data(), data.size()));
  // The end stays the end.
  char spare[16];
  auto again = body.read(spare, sizeof spare);
  REQUIRE(again.ok());
  CHECK(*again == 0u);
}

TEST_CASE("http_body_reader holds no more than its buffer for a slow caller", "[http]") {
  no_proxy env;
  constexpr size_t buffer = 64 << 10;
  const std::string data = patterned_bytes(size_t{32} << 20, 43);
  counter sent;
  test_server server;
  serve_object(server, "/object", data, &sent);
  server.start();
  http_engine engine;

  auto reader = http_body_reader::open(engine, get_request(server.url("/object")), buffer);
  REQUIRE(reader.ok());
  REQUIRE((*reader)->status() == 200);

  // Nobody reads yet: the paused transfer must hold the server back long
  // before the whole body. An unbounded reader would take it all within
  // this window; a bounded one never lets the server finish.
  CHECK_FALSE(sent.wait_for(static_cast<int64_t>(data.size()), 500ms));
  CHECK(sent.value() < static_cast<int64_t>(data.size()) / 2);

  // Each read asks for far more than the buffer, and only once the server is
  // more than a buffer ahead of the caller: a reader that took more than its
  // buffer would hand it over here.
  std::vector<char> piece(size_t{1} << 20);
  sha256 hash;
  size_t got = 0;
  size_t largest = 0;
  for (;;) {
    auto ahead = static_cast<int64_t>(std::min(data.size(), got + buffer + 1));
    if (!sent.wait_for(ahead))
      FAIL("the server got no buffer ahead of the caller: " << sent.value() << " sent, " << got
                                                            << " read");
    auto n = (*reader)->read(piece.data(), piece.size());
    if (!n.ok())
      FAIL("read failed after " << got << " bytes: " << n.error().to_string());
    if (*n == 0)
      break;
    largest = std::max(largest, *n);
    hash.update(piece.data(), *n);
    got += *n;
  }
  CHECK(largest <= buffer);
  CHECK(got == data.size());
  CHECK(hash.hex_digest() == sha256::of(data.data(), data.size()));
}

TEST_CASE("http_body_reader reports an error status with its body", "[http]") {
  no_proxy env;
  test_server server;
  server.http().Get("/missing", [](const httplib::Request&, httplib::Response& res) {
    res.status = 404;
    res.set_content("no such object", "text/plain");
  });
  server.start();
  http_engine engine;

  auto reader = http_body_reader::open(engine, get_request(server.url("/missing")), 64 << 10);
  REQUIRE(reader.ok());
  CHECK((*reader)->status() == 404);
  REQUIRE((*reader)->header("content-type") != nullptr);
  CHECK(*(*reader)->header("content-type") == "text/plain");
  char buffer[64];
  auto n = (*reader)->read(buffer, sizeof buffer);
  REQUIRE(n.ok());
  CHECK(*n == 0u);
  CHECK((*reader)->error_body() == "no such object");
}

TEST_CASE("http_body_reader reports transport failures", "[http]") {
  no_proxy env;
  const std::string data = patterned_bytes(size_t{1} << 20, 47);
  test_server server;
  serve_half_then_drop(server, "/cut", data);
  server.start();
  http_engine engine;

  SECTION("before the head") {
    std::string url;
    {
      test_server closed;
      closed.start();
      url = closed.url("/nobody-home");
    }
    auto reader = http_body_reader::open(engine, get_request(url));
    REQUIRE_FALSE(reader.ok());
    CHECK(reader.error().code() == errc::unavailable);
  }
  SECTION("in the middle of the body, after the bytes that came") {
    auto reader = http_body_reader::open(engine, get_request(server.url("/cut")), 64 << 10);
    REQUIRE(reader.ok());
    read_all all(**reader, 4096);
    CHECK(all.failure.code() == errc::unavailable);
    CHECK(all.bytes == data.size() / 2);
  }
}

TEST_CASE("http_body_reader refuses requests it cannot serve", "[http]") {
  http_engine engine;
  http_request request = get_request("http://127.0.0.1:9/unused");
  SECTION("one with callbacks of its own") {
    request.body_sink = [](const char*, size_t) { return ferry::sink_action::accept; };
    auto reader = http_body_reader::open(engine, std::move(request));
    REQUIRE_FALSE(reader.ok());
    CHECK(reader.error().code() == errc::invalid_request);
  }
  SECTION("a buffer of 0 bytes") {
    auto reader = http_body_reader::open(engine, std::move(request), 0);
    REQUIRE_FALSE(reader.ok());
    CHECK(reader.error().code() == errc::invalid_request);
  }
  CHECK(engine.current_stats().transfers == 0u);
}

TEST_CASE("http_body_reader can be dropped in the middle of a body", "[http]") {
  no_proxy env;
  const std::string data = patterned_bytes(size_t{16} << 20, 53);
  counter sent;
  test_server server;
  serve_object(server, "/object", data, &sent);
  server.http().Get("/small", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("small", "text/plain");
  });
  server.http().Get("/held", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content_provider(data.size(), "application/octet-stream",
                             [&](size_t offset, size_t, httplib::DataSink& sink) {
                               if (offset > 0) {
                                 server.held().wait();
                                 return false;
                               }
                               return sink.write(data.data(), 1000);
                             });
  });
  server.start();
  http_engine engine;

  // Paused with a full buffer, or waiting for a server that sends nothing.
  std::string path = GENERATE(std::string("/object"), std::string("/held"));
  auto reader = http_body_reader::open(engine, get_request(server.url(path)), 64 << 10);
  REQUIRE(reader.ok());
  char buffer[100];
  auto n = (*reader)->read(buffer, sizeof buffer);
  REQUIRE(n.ok());
  CHECK(*n > 0u);
  auto started = std::chrono::steady_clock::now();
  reader->reset();
  CHECK(std::chrono::steady_clock::now() - started < 5s);
  CHECK(engine.current_stats().transfers == 1u);

  // The engine carries on.
  auto again = http_fetch(engine, get_request(server.url("/small")));
  REQUIRE(again.ok());
  CHECK(again->status == 200);
  CHECK(again->body == "small");
}

TEST_CASE_METHOD(upload_fixture, "http_body_writer uploads a body intact", "[http]") {
  const std::string data = patterned_bytes((size_t{5} << 20) + 777, 59);
  const std::string oid = sha256::of(data.data(), data.size());

  auto writer = http_body_writer::start(engine, put(url(), data.size()), 64 << 10);
  REQUIRE(writer.ok());
  // Odd sizes, smaller and larger than the buffer.
  size_t offset = 0;
  for (size_t step = 1; offset < data.size(); step = step * 7 % 300007 + 1) {
    size_t n = std::min(step, data.size() - offset);
    REQUIRE((*writer)->write(data.data() + offset, n).ok());
    offset += n;
  }
  auto response = (*writer)->finish();
  REQUIRE(response.ok());
  CHECK(response->status == 200);
  CHECK(response->body == std::to_string(data.size()));
  CHECK(response->bytes_sent == static_cast<int64_t>(data.size()));
  CHECK(response->sha256_sent == oid);
  std::lock_guard<std::mutex> lock(received.mutex);
  CHECK(received.complete);
  CHECK(received.hash == oid);
}

TEST_CASE_METHOD(upload_fixture, "http_body_writer never completes an abandoned body", "[http]") {
  const std::string data = patterned_bytes(size_t{1} << 20, 61);

  auto writer = http_body_writer::start(engine, put(url(), data.size()), 64 << 10);
  REQUIRE(writer.ok());
  // All but the last byte, or all of them without finish().
  size_t written = GENERATE_COPY(data.size(), data.size() - 1);
  REQUIRE((*writer)->write(data.data(), written).ok());
  // Everything but the last byte has gone out.
  REQUIRE(received.progress.wait_for(static_cast<int64_t>(data.size()) - 1));

  SECTION("abort()") {
    (*writer)->abort();
    (*writer)->abort();
    CHECK((*writer)->write(data.data(), 0).code() == errc::cancelled);
    auto response = (*writer)->finish();
    REQUIRE_FALSE(response.ok());
    CHECK(response.error().code() == errc::cancelled);
  }
  SECTION("destruction") {
    auto started = std::chrono::steady_clock::now();
    writer->reset();
    CHECK(std::chrono::steady_clock::now() - started < 5s);
  }
  REQUIRE(received.requests.wait_for(1));
  std::lock_guard<std::mutex> lock(received.mutex);
  CHECK_FALSE(received.complete);
  CHECK(received.bytes == data.size() - 1);
}

TEST_CASE_METHOD(upload_fixture, "http_body_writer checks the upload size", "[http]") {
  const std::string data = patterned_bytes(1000, 67);

  auto writer = http_body_writer::start(engine, put(url(), data.size()), 256);
  REQUIRE(writer.ok());
  REQUIRE((*writer)->write(data.data(), 600).ok());

  SECTION("writing more than the size") {
    auto too_much = (*writer)->write(data.data(), 401);
    CHECK(too_much.code() == errc::invalid_request);
    // Nothing of the refused write was taken: the rest still fits.
    REQUIRE((*writer)->write(data.data() + 600, 400).ok());
    auto response = (*writer)->finish();
    REQUIRE(response.ok());
    CHECK(response->status == 200);
    CHECK(response->sha256_sent == sha256::of(data.data(), data.size()));
    auto twice = (*writer)->finish();
    REQUIRE_FALSE(twice.ok());
    CHECK(twice.error().code() == errc::invalid_request);
    CHECK((*writer)->write(data.data(), 1).code() == errc::invalid_request);
  }
  SECTION("finishing short") {
    auto response = (*writer)->finish();
    REQUIRE_FALSE(response.ok());
    CHECK(response.error().code() == errc::size_mismatch);
    CHECK(response.error().message() == "upload finished after 600 of 1000 bytes");
    CHECK((*writer)->write(data.data(), 1).code() == errc::cancelled);
    REQUIRE(received.requests.wait_for(1));
    std::lock_guard<std::mutex> lock(received.mutex);
    CHECK_FALSE(received.complete);
  }
}

TEST_CASE("http_body_writer refuses requests it cannot serve", "[http]") {
  http_engine engine;
  http_request request = put("http://127.0.0.1:9/unused", 10);
  size_t buffer = 1024;
  SECTION("no size") { request.upload_size = -1; }
  SECTION("a body of its own") { request.body = "inline"; }
  SECTION("an upload source of its own") {
    request.upload_source = [](char*, size_t) -> result<size_t> { return size_t{0}; };
  }
  SECTION("a buffer of 0 bytes") { buffer = 0; }
  auto writer = http_body_writer::start(engine, std::move(request), buffer);
  REQUIRE_FALSE(writer.ok());
  CHECK(writer.error().code() == errc::invalid_request);
  CHECK(engine.current_stats().transfers == 0u);
}

TEST_CASE("http_body_writer reports a server that answers early", "[http]") {
  no_proxy env;
  test_server server;
  answer_puts_unread(server, "/upload", 413, "object too large");
  server.start();
  http_engine engine;

  const std::string data = patterned_bytes(size_t{16} << 20, 71);
  auto writer = http_body_writer::start(engine, put(server.url("/upload"), data.size()), 64 << 10);
  REQUIRE(writer.ok());
  ferry::status failed;
  for (size_t offset = 0; offset < data.size() && failed.ok(); offset += 64 << 10)
    failed = (*writer)->write(data.data() + offset, 64 << 10);
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.code() == errc::unavailable);
  CHECK(failed.message() == "the server answered HTTP 413 before the upload was complete");
  // finish() hands over the early answer for the caller to classify.
  auto response = (*writer)->finish();
  REQUIRE(response.ok());
  CHECK(response->status == 413);
  CHECK(response->body == "object too large");
}

TEST_CASE_METHOD(upload_fixture, "http_body_writer sends an empty body only on finish()",
                 "[http]") {
  {
    auto abandoned = http_body_writer::start(engine, put(url(), 0));
    REQUIRE(abandoned.ok());
    (*abandoned)->abort();
  }
  {
    auto dropped = http_body_writer::start(engine, put(url(), 0));
    REQUIRE(dropped.ok());
  }
  auto writer = http_body_writer::start(engine, put(url(), 0));
  REQUIRE(writer.ok());
  CHECK((*writer)->write("x", 1).code() == errc::invalid_request);
  CHECK(engine.current_stats().transfers == 0u);
  auto response = (*writer)->finish();
  REQUIRE(response.ok());
  CHECK(response->status == 200);
  CHECK(response->body == "0");
  // Only the finished writer reached the server.
  CHECK(engine.current_stats().transfers == 1u);
  CHECK(received.requests.value() == 1);
}
