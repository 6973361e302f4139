// Group commit: a success is reported only after the sync that makes it
// durable has returned.

#include "actors_fixture.hpp"
#include "fault_fs.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>

using namespace ferry;
using namespace ferry::testing;

namespace {

/// Where `what` on a path ending in `tail` first appears in `calls`; -1 if never.
long position_of(const std::vector<recorded_call>& calls, const std::string& what,
                 const std::string& tail) {
  for (size_t i = 0; i < calls.size(); ++i)
    if (calls[i].what == what && calls[i].path.size() >= tail.size() &&
        calls[i].path.compare(calls[i].path.size() - tail.size(), tail.size(), tail) == 0)
      return static_cast<long>(i);
  return -1;
}

} // namespace

TEST_CASE_METHOD(engine_fixture, "no upload is reported done before the sync that covers it",
                 "[group_commit]") {
  start(folder);
  call_recorder calls;
  std::map<std::string, std::shared_ptr<std::optional<transfer_outcome>>> outcomes;
  for (uint64_t id = 1; id <= 6; ++id) {
    auto job =
      upload_job(id, random_bytes(1000 + id, static_cast<uint32_t>(id)), "f" + std::to_string(id));
    outcomes[job.oid] = submit(job);
  }
  // One message at a time, noting each outcome the moment it is delivered.
  std::map<std::string, bool> reported;
  while (sched.try_run_once()) {
    for (auto& [oid, slot] : outcomes)
      if (slot->has_value() && !reported[oid]) {
        reported[oid] = true;
        calls.note("reported", oid);
      }
  }
  auto seen = calls.calls();
  for (auto& [oid, slot] : outcomes) {
    REQUIRE(slot->has_value());
    CHECK((*slot)->ok());
    auto renamed = position_of(seen, "renameat", "/" + oid);
    auto told = position_of(seen, "reported", oid);
    REQUIRE(renamed >= 0);
    REQUIRE(told > renamed);
    // A filesystem sync of the store, after the rename and before the report.
    auto covered =
      std::any_of(seen.begin() + renamed, seen.begin() + told, [&](const recorded_call& c) {
        return c.what == "syncfs" && c.result == 0 && c.path.find(root.string()) == 0;
      });
    CHECK(covered);
  }
  // Grouped: fewer store syncs than objects.
  auto syncs = std::count_if(seen.begin(), seen.end(),
                             [](const recorded_call& c) { return c.what == "syncfs"; });
  CHECK(syncs >= 1);
  CHECK(syncs < 6);
}

TEST_CASE_METHOD(engine_fixture, "an upload whose store cannot sync is reported failed",
                 "[group_commit]") {
  start(folder);
  auto job = upload_job(1, random_bytes(5000, 9), "f");
  // The partial file's fsync passes; the group's syncfs of the store fails.
  injected_fault disk{{fault_call::sync, (root / "store").string(), fault_effect::io_error, 1}};
  auto outcome = submit(job);
  sched.run();
  REQUIRE(outcome->has_value());
  CHECK((*outcome)->code == errc::io_error);
  CHECK((*outcome)->message.find("not made durable") != std::string::npos);
  CHECK(disk.faults() == 1);
  // The journal keeps the failure, not a success.
  auto history = db->history(5);
  REQUIRE(history);
  REQUIRE_FALSE(history->empty());
  CHECK(history->front().state == transfer_state::failed);
}

TEST_CASE_METHOD(engine_fixture,
                 "the caller hears that a job is stored before its outcome, and never of a failure",
                 "[group_commit]") {
  start(folder);
  auto good = upload_job(1, random_bytes(3000, 1), "good");
  auto bad = upload_job(2, random_bytes(3000, 2), "bad");
  bad.oid = std::string(64, 'a'); // the bytes do not hash to it
  auto good_outcome = submit(good);
  auto bad_outcome = submit(bad);
  std::optional<size_t> stored_when_reported;
  while (sched.try_run_once())
    if (good_outcome->has_value() && !stored_when_reported)
      stored_when_reported = stored_jobs->size();
  REQUIRE(good_outcome->has_value());
  REQUIRE(bad_outcome->has_value());
  CHECK((*good_outcome)->ok());
  CHECK_FALSE((*bad_outcome)->ok());
  CHECK(stored_when_reported == size_t{1});
  CHECK(*stored_jobs == std::vector<uint64_t>{1});
}

TEST_CASE_METHOD(engine_fixture, "an upload syncs the journal once, for its outcome",
                 "[group_commit]") {
  start(folder);
  // Syncs of the journal's write-ahead log (RocksDB also syncs its
  // directory once, after the log's first sync).
  auto journal_syncs = [&](const std::vector<recorded_call>& seen) {
    return std::count_if(seen.begin(), seen.end(), [&](const recorded_call& c) {
      auto log = c.path.size() > 4 && c.path.compare(c.path.size() - 4, 4, ".log") == 0;
      return c.what != "renameat" && log && c.path.find((root / "journal").string()) == 0;
    });
  };
  call_recorder calls;
  auto job = upload_job(1, random_bytes(3000, 4), "f");
  auto outcome = submit(job);
  sched.run();
  REQUIRE(outcome->has_value());
  CHECK((*outcome)->ok());
  // The begin record rides on the outcome's sync: one flush, not two.
  CHECK(journal_syncs(calls.calls()) == 1);
  auto record = db->history(1);
  REQUIRE(record.ok());
  REQUIRE(record->size() == 1);
  CHECK(record->front().attempts == 1);
}

TEST_CASE_METHOD(engine_fixture, "an object sent again after it finished starts a fresh record",
                 "[group_commit]") {
  start(folder);
  auto bytes = random_bytes(2000, 9);
  for (uint64_t id = 1; id <= 2; ++id) {
    auto outcome = submit(upload_job(id, bytes, "f"));
    sched.run();
    REQUIRE(outcome->has_value());
    CHECK((*outcome)->ok());
  }
  // Nothing of the first transfer's record is carried into the second.
  auto records = db->history(2);
  REQUIRE(records.ok());
  REQUIRE(records->size() == 2);
  CHECK(records->at(0).attempts == 1);
  CHECK(records->at(1).attempts == 1);
  CHECK(records->at(0).cid != records->at(1).cid);
  auto active = db->active();
  REQUIRE(active.ok());
  CHECK(active->empty());
}
