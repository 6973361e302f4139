#include "actors_fixture.hpp"

#include "actors/engine.hpp"
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

  /// A second agent's protocol actors on the same supervisor, as in the
  /// daemon (its jobs numbered from first_job_id(1)), with its replies in
  /// `other_lines`; both agents are sent `init` and have answered it.
  protocol_io_actor second_agent(const std::string& init) {
    auto lines = other_lines;
    auto other = sys.spawn(
      protocol_io, [lines](const std::string& line) { lines->push_back(line); }, size_t{1 << 20},
      std::make_shared<const engine_config>(config), supervisor, first_job_id(1));
    sched.run();
    REQUIRE(send(init).size() == 1);
    caf::anon_send(other, atom::input_v, init);
    sched.run();
    REQUIRE(other_lines->size() == 1);
    return other;
  }

  std::shared_ptr<std::vector<std::string>> other_lines =
    std::make_shared<std::vector<std::string>>();

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

TEST_CASE("connections to one engine core number their jobs apart", "[protocol_io]") {
  CHECK(first_job_id(0) == 1);
  CHECK(first_job_id(1) == (uint64_t{1} << 32) + 1);
  // The last id of one connection's range is below the next one's first.
  CHECK(first_job_id(7) + ((uint64_t{1} << 32) - 1) < first_job_id(8));
}

TEST_CASE_METHOD(io_fixture, "two agents on one supervisor each get their own outcomes",
                 "[protocol_io]") {
  auto other = second_agent(R"({"event":"init","operation":"upload","remote":"origin",)"
                            R"("concurrent":true,"concurrenttransfers":8})");

  // Both in flight at once: each coordinator's first job.
  auto mine = upload_job(1, random_bytes(2 << 20, 31), "mine.bin");
  auto theirs = upload_job(1, random_bytes(2 << 20, 32), "theirs.bin");
  caf::anon_send(io, atom::input_v, upload(mine));
  caf::anon_send(other, atom::input_v, upload(theirs));
  sched.run();

  auto completes = [](const std::vector<std::string>& lines) {
    std::vector<json> found;
    for (auto& line : lines)
      if (auto reply = json::parse(line); reply.value("event", "") == "complete")
        found.push_back(reply);
    return found;
  };
  auto my_completes = completes(*out);
  auto their_completes = completes(*other_lines);
  REQUIRE(my_completes.size() == 1);
  REQUIRE(their_completes.size() == 1);
  CHECK(my_completes[0] == json{{"event", "complete"}, {"oid", mine.oid}});
  CHECK(their_completes[0] == json{{"event", "complete"}, {"oid", theirs.oid}});
  CHECK(read_file(folder->object_path(mine.oid)).size() == static_cast<size_t>(mine.size));
  CHECK(read_file(folder->object_path(theirs.oid)).size() == static_cast<size_t>(theirs.size));
  caf::anon_send_exit(other, caf::exit_reason::user_shutdown);
  sched.run();
}

TEST_CASE_METHOD(io_fixture,
                 "the input ending without terminate cancels the transfers in flight; after "
                 "terminate they finish",
                 "[protocol_io][cancel]") {
  caf::scoped_actor watcher{sys};
  watcher->monitor(io);
  REQUIRE(send(R"({"event":"init","operation":"upload","remote":"origin"})").size() == 1);
  auto job = upload_job(1, random_bytes(3 << 20, 33), "leaving.bin");
  caf::anon_send(io, atom::input_v, upload(job));
  run_until([&] { return partial_bytes(job.oid) > 0; });

  SECTION("the end of input alone: git-lfs went away") {
    caf::anon_send(io, atom::eof_v);
    run_all_but_workers();
    sched.run();
    auto last = json::parse(out->back());
    CHECK(last["event"] == "complete");
    CHECK(last["oid"] == job.oid);
    CHECK(last["error"]["code"] == 503);
    CHECK(last["error"]["message"] == "cancelled: the agent went away");
    CHECK_FALSE(folder->stat(job.oid)->has_value());
    CHECK_FALSE(sched.has_pending_timeout());
  }

  SECTION("terminate, then the end of input") {
    caf::anon_send(io, atom::input_v, std::string{R"({"event":"terminate"})"});
    caf::anon_send(io, atom::eof_v);
    run_all_but_workers();
    sched.run();
    CHECK(json::parse(out->back()) == json{{"event", "complete"}, {"oid", job.oid}});
    CHECK(read_file(folder->object_path(job.oid)) == read_file(job.path));
  }

  bool stopped = false;
  watcher->receive([&](const caf::down_msg&) { stopped = true; },
                   caf::after(std::chrono::seconds(0)) >> [] {});
  CHECK(stopped);
}

TEST_CASE_METHOD(io_fixture, "an agent that goes away cancels its own transfers only",
                 "[protocol_io][cancel]") {
  auto other = second_agent(R"({"event":"init","operation":"upload","remote":"origin"})");

  // Both in flight; the other agent's under way.
  auto mine = upload_job(1, random_bytes(3 << 20, 34), "staying.bin");
  auto theirs = upload_job(1, random_bytes(3 << 20, 35), "leaving.bin");
  caf::anon_send(other, atom::input_v, upload(theirs));
  caf::anon_send(io, atom::input_v, upload(mine));
  run_until([&] { return partial_bytes(theirs.oid) > 0; });
  REQUIRE_FALSE(folder->stat(mine.oid)->has_value());
  caf::anon_send(other, atom::eof_v);
  run_all_but_workers();
  sched.run();

  auto last_complete = [](const std::vector<std::string>& lines) {
    for (auto line = lines.rbegin(); line != lines.rend(); ++line)
      if (auto reply = json::parse(*line); reply.value("event", "") == "complete")
        return reply;
    return json{};
  };
  CHECK(last_complete(*out) == json{{"event", "complete"}, {"oid", mine.oid}});
  auto cancelled = last_complete(*other_lines);
  CHECK(cancelled["oid"] == theirs.oid);
  CHECK(cancelled["error"]["message"] == "cancelled: the agent went away");
  CHECK(read_file(folder->object_path(mine.oid)) == read_file(mine.path));
  CHECK_FALSE(folder->stat(theirs.oid)->has_value());
}
