// Non-standalone mode: git-lfs hands over the LFS server's action (href and
// headers) with each request, and the engine moves the object there itself,
// with no store of its own. The server is a loopback HTTP server; the
// actors run on the deterministic scheduler (workers stay on it).

#include "actors_fixture.hpp"
#include "loopback_server.hpp"

#include "store/http/http_engine.hpp"

#include <catch2/catch.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <map>
#include <mutex>

using namespace std::chrono_literals;
using namespace ferry;
using namespace ferry::testing;
using nlohmann::json;

namespace {

constexpr const char* token = "Bearer action-token";

struct action_fixture : protocol_fixture {
  no_proxy env;
  test_server server;
  std::mutex mutex;
  /// Objects the server holds, by oid.
  std::map<std::string, std::string> objects;
  /// The Authorization header of every PUT.
  std::vector<std::string> put_authorizations;

  action_fixture() {
    server.http().Put("/objects/([0-9a-f]+)",
                      [this](const httplib::Request& req, httplib::Response& res) {
                        std::lock_guard<std::mutex> lock(mutex);
                        put_authorizations.push_back(req.get_header_value("Authorization"));
                        objects[req.matches[1]] = req.body;
                        res.status = 200;
                      });
    server.http().Get(
      "/objects/([0-9a-f]+)", [this](const httplib::Request& req, httplib::Response& res) {
        std::lock_guard<std::mutex> lock(mutex);
        auto found = objects.find(req.matches[1]);
        if (found == objects.end() || req.get_header_value("Authorization") != token) {
          res.status = 404;
          return;
        }
        res.set_content(found->second, "application/octet-stream");
      });
    server.start();
    http_engine::options options;
    options.connect_timeout = 5s;
    config.http = std::make_shared<http_engine>(options);
    // No store of its own: every object goes where the server says.
    start_protocol(nullptr);
  }

  std::vector<json> send(const json& request) { return protocol_fixture::send(request.dump()); }

  json action_for(const std::string& oid) {
    return {{"href", server.url("/objects/" + oid)}, {"header", {{"Authorization", token}}}};
  }
};

} // namespace

TEST_CASE_METHOD(action_fixture,
                 "objects move to and from the href of the server's action with "
                 "its headers",
                 "[actions]") {
  auto init = send({{"event", "init"},
                    {"operation", "upload"},
                    {"remote", "origin"},
                    {"concurrent", false},
                    {"concurrenttransfers", 1}});
  REQUIRE(init.size() == 1);
  CHECK(init[0] == json::object());

  auto bytes = random_bytes((3 << 20) + 5, 31);
  auto job = upload_job(1, bytes, "big.bin");
  auto replies = send({{"event", "upload"},
                       {"oid", job.oid},
                       {"size", job.size},
                       {"path", job.path},
                       {"action", action_for(job.oid)}});
  REQUIRE(replies.size() >= 2);
  for (size_t i = 0; i + 1 < replies.size(); ++i)
    CHECK(replies[i]["event"] == "progress");
  CHECK(replies[replies.size() - 2]["bytesSoFar"] == job.size);
  CHECK(replies.back() == json{{"event", "complete"}, {"oid", job.oid}});
  {
    std::lock_guard<std::mutex> lock(mutex);
    CHECK(objects[job.oid] == bytes);
    CHECK(put_authorizations == std::vector<std::string>{token});
  }
  auto uploaded = newest_history();
  REQUIRE(uploaded);
  CHECK(uploaded->state == transfer_state::done);
  // The journal names where the object went, without the headers.
  CHECK_THAT(uploaded->backend, Catch::Contains(server.url("/objects/")));
  CHECK_THAT(uploaded->backend, !Catch::Contains("action-token"));

  new_session();
  REQUIRE(send({{"event", "init"}, {"operation", "download"}, {"remote", "origin"}}).size() == 1);
  auto download = send(
    {{"event", "download"}, {"oid", job.oid}, {"size", job.size}, {"action", action_for(job.oid)}});
  REQUIRE_FALSE(download.empty());
  CHECK(download.back()["event"] == "complete");
  REQUIRE(download.back().contains("path"));
  CHECK(read_file(download.back()["path"].get<std::string>()) == bytes);
}

TEST_CASE_METHOD(action_fixture, "a server that does not have the object gets a 404 reply at once",
                 "[actions]") {
  send({{"event", "init"}, {"operation", "download"}, {"remote", "origin"}});
  auto missing = random_bytes(1000, 32);
  auto oid = sha256::of(missing.data(), missing.size());
  auto replies =
    send({{"event", "download"}, {"oid", oid}, {"size", 1000}, {"action", action_for(oid)}});
  REQUIRE(replies.size() == 1);
  CHECK(replies[0]["event"] == "complete");
  CHECK(replies[0]["error"]["code"] == 404);
  CHECK_FALSE(sched.has_pending_timeout());
}

TEST_CASE_METHOD(action_fixture, "a request without an action needs a store", "[actions]") {
  send({{"event", "init"}, {"operation", "upload"}, {"remote", "origin"}});
  auto job = upload_job(1, "abc", "abc.txt");
  auto replies = send({{"event", "upload"},
                       {"oid", job.oid},
                       {"size", job.size},
                       {"path", job.path},
                       {"action", nullptr}});
  REQUIRE(replies.size() == 1);
  CHECK(replies[0]["event"] == "complete");
  CHECK(replies[0]["error"]["code"] == 500);
  CHECK_THAT(replies[0]["error"]["message"].get<std::string>(),
             Catch::Contains("ferry install --store"));
}

TEST_CASE("a job's action renders without its secrets", "[actions]") {
  job_action action{"https://user:pw@lfs.example:8443/objects/abc?X-Amz-Signature=s3cret#frag",
                    {{"Authorization", "Bearer s3cret"}, {"X-Custom", "s3cret"}}};
  auto text = to_string(action);
  CHECK(text == "job_action(https://lfs.example:8443/objects/abc, headers: Authorization "
                "X-Custom)");
  CHECK(caf::deep_to_string(transfer_job{1, direction::upload, "oid", 3, "/p", action})
          .find("s3cret") == std::string::npos);
}
