#include "actors/http_actor.hpp"

#include "loopback_server.hpp"
#include "test_support.hpp"

#include <caf/all.hpp>

#include <catch2/catch.hpp>
#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>

using namespace std::chrono_literals;
using namespace ferry;

using ferry::testing::get_request;
using ferry::testing::no_proxy;
using ferry::testing::patience;
using ferry::testing::test_server;

namespace {

/// A real threaded actor system (curl runs on a real thread) and one HTTP
/// actor, stopped at the end of the test.
struct http_fixture {
  // Loopback only: an http_proxy in the environment must not capture the
  // test traffic.
  no_proxy env;
  test_server server;
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  http_actor actor;

  http_fixture() {
    http_engine::options opts;
    opts.connect_timeout = 5s;
    actor = sys.spawn(ferry::http, opts);
  }

  ~http_fixture() {
    caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
  }
};

} // namespace

TEST_CASE_METHOD(http_fixture, "http actor answers a GET with the body", "[http_actor]") {
  server.http().Get("/hello", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("hello, ferry", "text/plain");
  });
  server.start();

  caf::scoped_actor self{sys};
  bool answered = false;
  self->request(actor, patience, atom::fetch_v, get_request(server.url("/hello")))
    .receive(
      [&](const http_response& response) {
        answered = true;
        CHECK(response.status == 200);
        CHECK(response.body == "hello, ferry");
      },
      [&](const caf::error& err) { FAIL("request failed: " << to_status(err).to_string()); });
  CHECK(answered);
}

TEST_CASE_METHOD(http_fixture, "http actor answers concurrent requests", "[http_actor]") {
  server.http().Get(R"(/n/(\d+))", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content("body " + req.matches[1].str(), "text/plain");
  });
  server.start();

  constexpr int count = 20;
  caf::scoped_actor self{sys};
  // Sent without waiting, so all are in the engine at once; the answers come
  // back as ordinary messages in any order.
  for (int i = 0; i < count; ++i)
    self->send(actor, atom::fetch_v, get_request(server.url("/n/" + std::to_string(i))));
  std::set<std::string> bodies;
  for (int i = 0; i < count; ++i)
    self->receive(
      [&](const http_response& response) {
        CHECK(response.status == 200);
        bodies.insert(response.body);
      },
      [&](const caf::error& err) { FAIL("request failed: " << to_status(err).to_string()); },
      caf::after(patience) >> [&] { FAIL("only " << i << " of " << count << " answered"); });
  REQUIRE(bodies.size() == static_cast<size_t>(count));
  for (int i = 0; i < count; ++i)
    CHECK(bodies.count("body " + std::to_string(i)) == 1);
}

TEST_CASE_METHOD(http_fixture, "http actor reports a refused connection as unavailable",
                 "[http_actor]") {
  std::string url;
  {
    test_server closed;
    closed.start();
    url = closed.url("/nobody-home");
  } // the port was bound and is closed again

  caf::scoped_actor self{sys};
  bool failed = false;
  self->request(actor, patience, atom::fetch_v, get_request(url))
    .receive(
      [&](const http_response& response) {
        FAIL("unexpected response with status " << response.status);
      },
      [&](const caf::error& err) {
        failed = true;
        auto st = to_status(err);
        CHECK(st.code() == errc::unavailable);
        CHECK(st.message().find("127.0.0.1") != std::string::npos);
      });
  CHECK(failed);
}

TEST_CASE_METHOD(http_fixture, "http actor answers a pending request when it stops",
                 "[http_actor]") {
  auto entered = std::make_shared<std::promise<void>>();
  auto entered_future = entered->get_future();
  server.http().Get("/held", [&, entered](const httplib::Request&, httplib::Response& res) {
    entered->set_value();
    server.held().wait();
    res.set_content("too late", "text/plain");
  });
  server.start();

  caf::scoped_actor self{sys};
  self->monitor(actor);
  self->send(actor, atom::fetch_v, get_request(server.url("/held")));
  // The request has reached the server, so it is in flight in the engine.
  REQUIRE(entered_future.wait_for(patience) == std::future_status::ready);
  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);

  bool answered = false;
  bool down = false;
  while (!answered || !down)
    self->receive(
      [&](const http_response& response) {
        FAIL("unexpected response with status " << response.status);
      },
      [&](const caf::error& err) {
        answered = true;
        CHECK(to_status(err).code() == errc::cancelled);
      },
      [&](const caf::down_msg& msg) {
        down = true;
        CHECK(msg.source == actor.address());
      },
      caf::after(patience) >> [&] {
        FAIL("answered: " << answered << ", down: " << down);
      });
  server.held().open();
}
