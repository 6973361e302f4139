// lfs_store when the server misbehaves: throttling, credentials, per-object
// errors, damaged bodies, and Range answers that must not be trusted.

#include "store/http/http_classify.hpp"
#include "store/http/http_engine.hpp"
#include "store/lfs/lfs_store.hpp"

#include <catch2/catch.hpp>

#include "remote_support.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

using ferry::errc;
using ferry::lfs_store;
using ferry::lfs_store_options;
using ferry::object_info;
using namespace ferry::testing;

namespace {

bool transient(const ferry::status& failure) {
  return ferry::classify(failure.code()) == ferry::retry_class::transient;
}

std::unique_ptr<ferry::credential_source>
credentials(std::shared_ptr<counting_credentials::counts> seen, bool configured = true) {
  std::optional<ferry::http_credential> answer;
  if (configured)
    answer = ferry::http_credential{"alice", "s3cret"};
  return std::make_unique<counting_credentials>(answer, std::move(seen));
}

/// A scenario in which requests to `endpoint` without credentials get a 401.
std::string challenge_on(const std::string& endpoint) {
  return R"({"rules": [{"match": {"endpoint": ")" + endpoint +
         R"("}, "fault": {"status": 401, "then_success": true}}]})";
}

} // namespace

// -- throttling and HTTP statuses --------------------------------------------

TEST_CASE("429 with Retry-After becomes a transient failure that carries the wait",
          "[lfs_faults]") {
  sim_fixture f(R"({"rules": [{"match": {"endpoint": "batch"},
                               "fault": {"status": 429, "retry_after": "7"}, "times": 1}]})");
  auto store = f.store();
  auto first = store->stat(std::string(64, 'a'));
  REQUIRE_FALSE(first.ok());
  CHECK(first.error().code() == errc::unavailable);
  CHECK(transient(first.error()));
  CHECK(first.error().retry_after() == std::chrono::seconds(7));
  CHECK_THAT(first.error().message(), Catch::Contains("429"));
  // The next request is served.
  auto second = store->stat(std::string(64, 'a'));
  REQUIRE(second.ok());
  CHECK_FALSE(second->has_value());
}

TEST_CASE("a Retry-After beyond ferry.maxRetryWait fails the object for good", "[lfs_faults]") {
  sim_fixture f(R"({"rules": [{"match": {"endpoint": "download"},
                               "fault": {"status": 503, "retry_after": "3600"}}]})");
  auto options = f.options();
  options.max_retry_wait = std::chrono::seconds(60);
  auto store = f.store(options);
  const std::string content = random_content(1000, 1);
  REQUIRE(put_object(*store, content).ok());
  auto back = store->open_read(oid_of(content), 0);
  REQUIRE_FALSE(back.ok());
  CHECK_FALSE(transient(back.error()));
  CHECK(back.error().retry_after() == std::chrono::milliseconds(0));
  CHECK_THAT(back.error().message(), Catch::Contains("ferry.maxRetryWait"));
  CHECK_THAT(back.error().message(), Catch::Contains("3600"));
}

TEST_CASE("HTTP statuses map to the errors the retry policy expects", "[lfs_faults]") {
  struct expectation {
    int status;
    errc code;
  };
  auto want =
    GENERATE(expectation{500, errc::unavailable}, expectation{502, errc::unavailable},
             expectation{408, errc::unavailable}, expectation{403, errc::permission_denied},
             expectation{404, errc::not_found}, expectation{410, errc::not_found},
             expectation{507, errc::no_space}, expectation{422, errc::invalid_request},
             expectation{501, errc::invalid_request});
  INFO("HTTP " << want.status);
  ferry::http_response response;
  response.status = want.status;
  response.body = R"({"message": "the server's own words", "request_id": "r-1"})";
  auto failure = ferry::http_failure("download of x", response, std::chrono::seconds(60));
  CHECK(failure.code() == want.code);
  CHECK(transient(failure) == (want.code == errc::unavailable));
  CHECK_THAT(failure.message(), Catch::StartsWith("download of x: "));
  CHECK_THAT(failure.message(), Catch::Contains("the server's own words"));
}

TEST_CASE("a failed upload or verify is reported and nothing is taken as stored", "[lfs_faults]") {
  SECTION("507 on the PUT") {
    sim_fixture f(R"({"rules": [{"match": {"endpoint": "upload"}, "fault": {"status": 507}}]})");
    auto put = put_object(*f.store(), random_content(2000, 2));
    CHECK(put.code() == errc::no_space);
    CHECK(f.sim.stat("events", "stored") == 0);
  }
  SECTION("500 from verify, then a retry that finds the object") {
    sim_fixture f(R"({"rules": [{"match": {"endpoint": "verify"}, "fault": {"status": 500},
                                 "times": 1}]})");
    const std::string content = random_content(2000, 3);
    auto store = f.store();
    auto put = put_object(*store, content);
    CHECK(put.code() == errc::unavailable);
    CHECK_THAT(put.message(), Catch::Contains("verify"));
    CHECK(put_object(*f.store(), content).ok());
    CHECK(f.sim.stat("requests", "upload") == 1);
  }
}

// -- credentials --------------------------------------------------------------

TEST_CASE("a 401 is answered with credentials filled once, then approved", "[lfs_faults]") {
  sim_fixture f(challenge_on("any"));
  auto seen = std::make_shared<counting_credentials::counts>();
  auto store = f.store(credentials(seen));
  const std::string content = random_content(3000, 4);
  auto put = put_object(*store, content);
  INFO(put.to_string());
  REQUIRE(put.ok());
  CHECK(seen->fills == 1);
  CHECK(seen->approves == 1);
  CHECK(seen->rejects == 0);
  CHECK(seen->last_url == f.options().endpoint);
  // Only the first request went without credentials.
  CHECK(f.sim.stat("faults", "status") == 1);

  auto back = get_object(*store, oid_of(content));
  REQUIRE(back.ok());
  CHECK(*back == content);
  CHECK(seen->fills == 1);
  CHECK(f.sim.stat("faults", "status") == 1);
}

TEST_CASE("credentials the server refuses are rejected and reported", "[lfs_faults]") {
  sim_fixture f(R"({"rules": [{"match": {"endpoint": "batch"}, "fault": {"status": 401}}]})");
  auto seen = std::make_shared<counting_credentials::counts>();
  auto store = f.store(credentials(seen));
  auto info = store->stat(std::string(64, 'c'));
  REQUIRE_FALSE(info.ok());
  CHECK(info.error().code() == errc::permission_denied);
  CHECK_FALSE(transient(info.error()));
  CHECK_THAT(info.error().message(), Catch::Contains("credential"));
  CHECK(info.error().message().find("s3cret") == std::string::npos);
  CHECK(seen->fills == 1);
  CHECK(seen->rejects == 1);
  CHECK(seen->approves == 0);
  CHECK(f.sim.stat("requests", "batch") == 2);
}

TEST_CASE("a 401 without configured credentials says how to configure them", "[lfs_faults]") {
  sim_fixture f(R"({"rules": [{"match": {"endpoint": "batch"}, "fault": {"status": 401}}]})");
  auto seen = std::make_shared<counting_credentials::counts>();
  auto info = f.store(credentials(seen, false))->stat(std::string(64, 'd'));
  REQUIRE_FALSE(info.ok());
  CHECK(info.error().code() == errc::permission_denied);
  CHECK_THAT(info.error().message(), Catch::Contains("credential.helper"));
  CHECK(seen->fills == 1);
  CHECK(f.sim.stat("requests", "batch") == 1);
}

TEST_CASE("a 401 to a PUT fills credentials, and the retried upload carries them", "[lfs_faults]") {
  sim_fixture f(challenge_on("upload"));
  auto seen = std::make_shared<counting_credentials::counts>();
  auto store = f.store(credentials(seen));
  const std::string content = random_content(20000, 13);
  auto first = put_object(*store, content);
  CHECK(first.code() == errc::unavailable);
  CHECK(transient(first));
  CHECK(f.sim.stat("faults", "status") == 1);
  CHECK(seen->fills == 1);
  CHECK(f.sim.stat("events", "stored") == 0);

  // What the retry policy does next: the same transfer again.
  auto second = put_object(*store, content);
  INFO(second.to_string());
  REQUIRE(second.ok());
  CHECK(seen->fills == 1);
  CHECK(seen->approves == 1);
  CHECK(f.sim.stat("events", "stored") == 1);
}

TEST_CASE("parallel range GETs answer a 401 with one credential fill", "[lfs_faults]") {
  sim_fixture f(challenge_on("download"));
  auto seen = std::make_shared<counting_credentials::counts>();
  auto options = f.options();
  options.parallel_threshold = 1;
  options.range_bytes = 64 << 10;
  auto store = f.store(options, credentials(seen));
  const std::string content = random_content(500000, 14);
  REQUIRE(put_object(*store, content).ok());
  auto back = get_object(*store, oid_of(content), 10);
  INFO(back.error().to_string());
  REQUIRE(back.ok());
  CHECK(*back == content.substr(10));
  CHECK(f.sim.stat("faults", "status") >= 1);
  CHECK(seen->fills == 1);
  CHECK(seen->approves == 1);
  CHECK(seen->rejects == 0);
}

// -- per-object errors --------------------------------------------------------

TEST_CASE("per-object batch errors keep the server's message", "[lfs_faults]") {
  const std::string gone = std::string(64, '1');
  const std::string missing = std::string(64, '2');
  const std::string invalid = std::string(64, '3');
  sim_fixture f(R"({"rules": [
    {"match": {"endpoint": "batch", "oid": ")" +
                gone + R"("}, "fault": {"object_error": 410}},
    {"match": {"endpoint": "batch", "oid": ")" +
                missing + R"("}, "fault": {"object_error": 404}},
    {"match": {"endpoint": "batch", "oid": ")" +
                invalid + R"("}, "fault": {"object_error": 422}}
  ]})");
  auto store = f.store();
  for (const auto& absent : {gone, missing}) {
    auto info = store->stat(absent);
    REQUIRE(info.ok());
    CHECK_FALSE(info->has_value());
  }

  auto read_gone = store->open_read(gone, 0);
  REQUIRE_FALSE(read_gone.ok());
  CHECK(read_gone.error().code() == errc::not_found);
  CHECK_THAT(read_gone.error().message(), Catch::Contains("410"));
  CHECK_THAT(read_gone.error().message(), Catch::Contains("injected fault: object error 410"));

  auto stat_invalid = store->stat(invalid);
  REQUIRE_FALSE(stat_invalid.ok());
  CHECK(stat_invalid.error().code() == errc::invalid_request);
  CHECK_THAT(stat_invalid.error().message(), Catch::Contains("injected fault: object error 422"));
  auto write_invalid = store->open_write(invalid, 10, std::nullopt);
  REQUIRE_FALSE(write_invalid.ok());
  CHECK(write_invalid.error().code() == errc::invalid_request);
}

// -- damaged bodies -----------------------------------------------------------

TEST_CASE("damaged downloads are never taken for the object", "[lfs_faults]") {
  auto fault = GENERATE(as<std::string>{}, "truncate_at", "reset_after_bytes", "corrupt_byte_at");
  INFO("fault: " << fault);
  sim_fixture f(R"({"rules": [{"match": {"endpoint": "download"}, "fault": {")" + fault +
                R"(": 70000}}]})");
  const std::string content = random_content(200000, 5);
  auto store = f.store();
  REQUIRE(put_object(*store, content).ok());
  auto back = get_object(*store, oid_of(content));
  CHECK_FALSE((back.ok() && oid_of(*back) == oid_of(content)));
  if (fault != "corrupt_byte_at") {
    REQUIRE_FALSE(back.ok());
    CHECK(transient(back.error()));
  }
  CHECK(f.sim.stat("faults", fault) == 1);
}

TEST_CASE("bytes that do not match the oid never complete an upload", "[lfs_faults]") {
  sim_fixture f;
  auto store = f.store();
  const std::string content = random_content(100000, 6);
  const std::string oid = oid_of(content);

  std::string tampered = content;
  tampered[5000] ^= 0x01;
  CHECK(put_object(*store, tampered, oid).code() == errc::hash_mismatch);
  auto short_writer = store->open_write(oid, static_cast<int64_t>(content.size()), std::nullopt);
  REQUIRE(short_writer.ok());
  REQUIRE((*short_writer)->write(content.data(), content.size() - 1).ok());
  CHECK((*short_writer)->commit().code() == errc::size_mismatch);
  CHECK(f.sim.stat("events", "stored") == 0);
  CHECK_FALSE(std::filesystem::exists(f.sim.object_path(oid)));

  // The same store still uploads the real bytes afterwards.
  REQUIRE(put_object(*store, content).ok());
  CHECK(f.sim.stat("events", "stored") == 1);
}

TEST_CASE("an upload the server finds corrupted on arrival is an error", "[lfs_faults]") {
  sim_fixture f(
    R"({"rules": [{"match": {"endpoint": "upload"}, "fault": {"corrupt_byte_at": 7}}]})");
  const std::string content = random_content(50000, 7);
  auto put = put_object(*f.store(), content);
  CHECK_FALSE(put.ok());
  CHECK_THAT(put.message(), Catch::Contains("422"));
  CHECK_FALSE(std::filesystem::exists(f.sim.object_path(oid_of(content))));
}

// -- Range answers from a server the sim cannot imitate -------------------------

namespace {

/// cpp-httplib slices bodies by the request's Range on its own; these
/// handlers decide themselves how to answer it. (The request is only const
/// in the handler's view, as in ferry-lfs-sim.)
void ignore_library_ranges(const httplib::Request& req) {
  const_cast<httplib::Request&>(req).ranges.clear();
}

/// Serves one object at /object with a configurable way of answering Range.
struct range_server {
  enum class mode { ignore_range, wrong_range, unsatisfiable, long_body, short_body };

  explicit range_server(std::string body) : content(std::move(body)) {
    server.http().Get("/object", [this](const httplib::Request& req, httplib::Response& res) {
      ignore_library_ranges(req);
      ++gets;
      if (req.has_header("Range"))
        ++ranged;
      const bool ranged_request = req.has_header("Range");
      switch (how.load()) {
        case mode::ignore_range:
          res.set_content(content, "application/octet-stream");
          return;
        case mode::wrong_range:
          res.status = 206;
          res.set_header("Content-Range", "bytes 0-" + std::to_string(content.size() - 1) + "/" +
                                            std::to_string(content.size()));
          res.set_content(content, "application/octet-stream");
          return;
        case mode::unsatisfiable:
          if (ranged_request) {
            res.status = 416;
            res.set_header("Content-Range", "bytes */" + std::to_string(content.size()));
            return;
          }
          res.set_content(content, "application/octet-stream");
          return;
        case mode::long_body:
          res.set_content(content + "extra", "application/octet-stream");
          return;
        case mode::short_body:
          res.set_content(content.substr(0, content.size() - 10), "application/octet-stream");
          return;
      }
    });
    server.start();
  }

  std::shared_ptr<ferry::object_store> store(const std::shared_ptr<ferry::http_engine>& http) {
    ferry::lfs_action action{server.url("/object"), {}, {}};
    return ferry::make_action_store(http, info_of(content), action, {});
  }

  no_proxy proxy;
  std::string content;
  std::atomic<mode> how{mode::ignore_range};
  std::atomic<int> gets{0};
  std::atomic<int> ranged{0};
  // Last, so that it stops before what its handler uses goes away.
  test_server server;
};

} // namespace

TEST_CASE("a 200 to a Range request is read from the offset", "[lfs_faults]") {
  range_server peer(random_content(300000, 8));
  auto http = std::make_shared<ferry::http_engine>();
  auto back = get_object(*peer.store(http), oid_of(peer.content), 123456);
  INFO(back.error().to_string());
  REQUIRE(back.ok());
  CHECK(*back == peer.content.substr(123456));
  CHECK(peer.ranged == 1);
}

TEST_CASE("a 206 whose Content-Range does not line up is refused", "[lfs_faults]") {
  range_server peer(random_content(300000, 9));
  peer.how = range_server::mode::wrong_range;
  auto http = std::make_shared<ferry::http_engine>();
  auto back = peer.store(http)->open_read(oid_of(peer.content), 1000);
  REQUIRE_FALSE(back.ok());
  CHECK(back.error().code() == errc::unavailable);
  CHECK_THAT(back.error().message(), Catch::Contains("Content-Range"));
}

TEST_CASE("a 416 falls back to the whole object", "[lfs_faults]") {
  range_server peer(random_content(300000, 10));
  peer.how = range_server::mode::unsatisfiable;
  auto http = std::make_shared<ferry::http_engine>();
  auto back = get_object(*peer.store(http), oid_of(peer.content), 5000);
  REQUIRE(back.ok());
  CHECK(*back == peer.content.substr(5000));
  CHECK(peer.gets == 2);
  CHECK(peer.ranged == 1);
}

TEST_CASE("a body longer or shorter than the object fails the read", "[lfs_faults]") {
  range_server peer(random_content(300000, 11));
  auto http = std::make_shared<ferry::http_engine>();
  peer.how = range_server::mode::long_body;
  auto too_long = get_object(*peer.store(http), oid_of(peer.content));
  REQUIRE_FALSE(too_long.ok());
  CHECK(too_long.error().code() == errc::size_mismatch);

  peer.how = range_server::mode::short_body;
  auto too_short = get_object(*peer.store(http), oid_of(peer.content));
  REQUIRE_FALSE(too_short.ok());
  CHECK(too_short.error().code() == errc::unavailable);
}

TEST_CASE("parallel ranges fall back to one GET when the server ignores Range", "[lfs_faults]") {
  no_proxy proxy;
  test_server server;
  const std::string content = random_content(1 << 20, 12);
  std::atomic<int> gets{0};
  server.http().Get("/object", [&](const httplib::Request& req, httplib::Response& res) {
    ignore_library_ranges(req);
    ++gets;
    res.set_content(content, "application/octet-stream");
  });
  server.http().Post("/lfs/objects/batch", [&](const httplib::Request&, httplib::Response& res) {
    nlohmann::json answer = {{"objects",
                              {{{"oid", oid_of(content)},
                                {"size", content.size()},
                                {"actions", {{"download", {{"href", server.url("/object")}}}}}}}}};
    res.set_content(answer.dump(), "application/vnd.git-lfs+json");
  });
  server.start();
  lfs_store_options options;
  options.endpoint = server.url("/lfs");
  options.parallel_threshold = 1;
  options.range_bytes = 128 << 10;
  lfs_store store(std::make_shared<ferry::http_engine>(), options, nullptr);
  REQUIRE(store.prepare(false, {info_of(content)}).ok());
  auto back = get_object(store, oid_of(content), 1000);
  INFO(back.error().to_string());
  REQUIRE(back.ok());
  CHECK(*back == content.substr(1000));
  CHECK(gets >= 2);
}
