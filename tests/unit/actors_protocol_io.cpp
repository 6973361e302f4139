#include "actors_fixture.hpp"

#include "actors/logging.hpp"
#include "actors/protocol_io.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace ferry;
using namespace ferry::testing;
using nlohmann::json;

namespace {

struct io_fixture : protocol_fixture {
  io_fixture() {
    log()->set_level(spdlog::level::off);
    start_protocol(folder);
  }

  static std::string upload(const transfer_job& job) {
    return json{{"event", "upload"},
                {"oid", job.oid},
                {"size", job.size},
                {"path", job.path},
                {"action", nullptr}}
      .dump();
  }
};

} // namespace

TEST_CASE_METHOD(io_fixture, "the protocol actors answer init, transfers and bad lines in order",
                 "[protocol_io]") {
  auto init = send(R"({"event":"init","operation":"upload","remote":"origin",)"
                   R"("concurrent":false,"concurrenttransfers":1})");
  REQUIRE(init.size() == 1);
  CHECK(init[0] == json::object());

  auto job = upload_job(1, random_bytes(3 << 20, 9), "three.bin");
  auto replies = send(upload(job));
  REQUIRE(replies.size() >= 2);
  for (size_t i = 0; i + 1 < replies.size(); ++i) {
    CHECK(replies[i]["event"] == "progress");
    CHECK(replies[i]["oid"] == job.oid);
  }
  CHECK(replies[replies.size() - 2]["bytesSoFar"] == job.size);
  CHECK(replies.back() == json{{"event", "complete"}, {"oid", job.oid}});
  CHECK(read_file(folder->object_path(job.oid)).size() == static_cast<size_t>(job.size));

  // Bad lines get an error reply each, and the agent keeps serving.
  auto garbage = send("this is not json");
  REQUIRE(garbage.size() == 1);
  CHECK(garbage[0]["error"]["code"] == 400);
  auto escape =
    send(R"({"event":"upload","oid":"../../etc/passwd","size":1,"path":"/etc/passwd"})");
  REQUIRE(escape.size() == 1);
  CHECK(escape[0]["error"]["code"] == 400);
  auto outside = send(upload({2, direction::upload, job.oid, job.size, "/etc/passwd", {}}));
  REQUIRE(outside.size() == 1);
  CHECK(outside[0]["event"] == "complete");
  CHECK(outside[0]["error"]["code"] == 400);
  CHECK(outside[0]["error"]["message"].get<std::string>().find("outside the repository") !=
        std::string::npos);
  caf::anon_send(io, atom::too_long_v);
  sched.run();
  CHECK(json::parse(out->back())["error"]["code"] == 413);

  // git-lfs starts another agent for downloads.
  new_session();
  REQUIRE(send(R"({"event":"init","operation":"download"})").size() == 1);
  auto download = send(
    json{{"event", "download"}, {"oid", job.oid}, {"size", job.size}, {"action", nullptr}}.dump());
  REQUIRE_FALSE(download.empty());
  CHECK(download.back()["event"] == "complete");
  CHECK(read_file(download.back()["path"].get<std::string>()) ==
        read_file(folder->object_path(job.oid)));
}

TEST_CASE_METHOD(io_fixture, "a transfer before init is refused", "[protocol_io]") {
  auto job = upload_job(1, "abc", "abc.txt");
  auto replies = send(upload(job));
  REQUIRE(replies.size() == 1);
  CHECK(replies[0]["error"]["code"] == 400);
  CHECK(replies[0]["error"]["message"].get<std::string>().find("init") != std::string::npos);
  CHECK_FALSE(folder->stat(job.oid)->has_value());
}

TEST_CASE_METHOD(io_fixture, "a second init and a transfer against init's direction are refused",
                 "[protocol_io]") {
  auto init = send(R"({"event":"init","operation":"download"})");
  REQUIRE(init.size() == 1);
  CHECK(init[0] == json::object());
  auto again = send(R"({"event":"init","operation":"upload"})");
  REQUIRE(again.size() == 1);
  CHECK(again[0]["error"]["code"] == 400);
  CHECK(again[0]["error"]["message"] ==
        "init was already received (for download); a second one is refused");

  auto job = upload_job(1, "abc", "abc.txt");
  auto replies = send(upload(job));
  REQUIRE(replies.size() == 1);
  CHECK(replies[0]["event"] == "complete");
  CHECK(replies[0]["oid"] == job.oid);
  CHECK(replies[0]["error"]["code"] == 400);
  CHECK(replies[0]["error"]["message"] == "the agent was initialised for download, not upload");
  CHECK_FALSE(folder->stat(job.oid)->has_value());
}

TEST_CASE_METHOD(io_fixture, "terminate stops the protocol actors", "[protocol_io]") {
  caf::scoped_actor watcher{sys};
  watcher->monitor(io);
  send(R"({"event":"init","operation":"download"})");
  send(R"({"event":"terminate"})");
  bool stopped = false;
  watcher->receive([&](const caf::down_msg&) { stopped = true; },
                   caf::after(std::chrono::seconds(0)) >> [] {});
  CHECK(stopped);
}
