#include "actors_fixture.hpp"
#include "fault_store.hpp"

#include <catch2/catch.hpp>

#include <regex>

using namespace ferry;
using namespace ferry::testing;

namespace {

/// The lines of `file` that contain `text`.
std::vector<std::string> lines_with(const std::filesystem::path& file, const std::string& text) {
  std::istringstream in{read_file(file)};
  std::vector<std::string> found;
  for (std::string line; std::getline(in, line);)
    if (line.find(text) != std::string::npos)
      found.push_back(line);
  return found;
}

bool is_correlation_id(const std::string& cid) {
  return std::regex_match(cid, std::regex{"[0-9a-f]{12}"});
}

} // namespace

TEST_CASE_METHOD(engine_fixture,
                 "a transfer keeps one correlation id across its retries, in the journal, the "
                 "outcome and every log line about it",
                 "[supervisor][cid]") {
  auto log_file = root / "ferry.log";
  logging_options logging;
  logging.file = log_file;
  REQUIRE(configure_logging(logging).empty());
  auto faults = std::make_shared<fault_store>(folder, 1, 600 << 10);
  start(faults);
  auto job = upload_job(1, random_bytes((1 << 20) + 5, 11), "retried.bin");
  auto outcome = submit(job);
  sched.run();
  REQUIRE_FALSE(outcome->has_value());
  auto active = db->get(direction::upload, job.oid);
  REQUIRE(active);
  REQUIRE(active->has_value());
  std::string cid = (*active)->cid;
  CHECK(is_correlation_id(cid));

  REQUIRE(sched.has_pending_timeout());
  sched.trigger_timeouts();
  sched.run();
  REQUIRE(outcome->has_value());
  CHECK((*outcome)->ok());
  CHECK((*outcome)->attempts == 2);
  CHECK((*outcome)->cid == cid);
  auto done = newest_history();
  REQUIRE(done);
  CHECK(done->cid == cid);

  // The supervisor's retry line and the final one carry it as a field.
  auto retry = lines_with(log_file, "attempt 1 failed");
  REQUIRE(retry.size() == 1);
  CHECK_THAT(retry[0], Catch::Contains("cid=" + cid + " oid=" + job.oid + " msg=\"upload: "));
  auto finished = lines_with(log_file, "msg=\"upload: done\"");
  REQUIRE(finished.size() == 1);
  CHECK_THAT(finished[0], Catch::Contains("cid=" + cid + " oid=" + job.oid));
  CHECK(lines_with(log_file, job.oid).size() == lines_with(log_file, "cid=" + cid).size());

  logging.level = "off";
  logging.file.clear();
  REQUIRE(configure_logging(logging).empty());
}

TEST_CASE_METHOD(engine_fixture, "a transfer resumed after a crash keeps its correlation id",
                 "[supervisor][cid]") {
  auto job = upload_job(1, random_bytes(300 << 10, 12), "resumed.bin");
  auto old_job = upload_job(2, random_bytes(200 << 10, 13), "old.bin");
  // Left in flight by a crashed agent; the second was written before
  // correlation ids existed.
  for (auto* crashed_job : {&job, &old_job}) {
    transfer_record crashed;
    crashed.oid = crashed_job->oid;
    crashed.dir = direction::upload;
    crashed.size = crashed_job->size;
    crashed.state = transfer_state::in_flight;
    crashed.attempts = 1;
    crashed.backend = folder->describe();
    if (crashed_job == &job)
      crashed.cid = "0123456789ab";
    REQUIRE(db->put(crashed).ok());
  }
  start(folder);
  auto recovered = std::make_shared<std::vector<transfer_record>>();
  sys.spawn(
    [recovered](caf::event_based_actor* self, journal_actor j) {
      self->request(j, caf::infinite, atom::recover_v)
        .then([=](const std::vector<transfer_record>& records) { *recovered = records; });
    },
    journal);
  sched.run();
  REQUIRE(recovered->size() == 2);

  auto resumed = submit(job);
  auto old = submit(old_job);
  sched.run();
  REQUIRE(resumed->has_value());
  REQUIRE(old->has_value());
  CHECK((*resumed)->ok());
  CHECK((*resumed)->cid == "0123456789ab");
  CHECK((*old)->ok());
  CHECK(is_correlation_id((*old)->cid));
  auto history = db->history(2);
  REQUIRE(history);
  REQUIRE(history->size() == 2);
  for (auto& record : *history)
    CHECK(record.cid == (record.oid == job.oid ? (*resumed)->cid : (*old)->cid));
}
