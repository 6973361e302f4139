#include "actors_fixture.hpp"
#include "fault_store.hpp"

#include "actors/policy/backoff.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>

using namespace std::chrono_literals;
using namespace ferry;
using namespace ferry::testing;

TEST_CASE_METHOD(engine_fixture,
                 "a worker failing transiently is restarted after backoff and "
                 "resumes from the journal",
                 "[supervisor]") {
  auto faults = std::make_shared<fault_store>(folder, 1, 600 << 10);
  start(faults);
  auto bytes = random_bytes((1 << 20) + 123, 1);
  auto job = upload_job(1, bytes, "big.bin");
  auto outcome = submit(job);
  sched.run();

  // The first attempt wrote 576 KiB (syncing at 256 and 512 KiB), then failed.
  REQUIRE_FALSE(outcome->has_value());
  auto active = db->get(direction::upload, job.oid);
  REQUIRE(active);
  REQUIRE(active->has_value());
  CHECK((*active)->state == transfer_state::queued);
  CHECK((*active)->attempts == 1);
  CHECK((*active)->committed == (512 << 10));
  REQUIRE((*active)->errors.size() == 1);
  CHECK((*active)->errors[0].code == "io_error");
  CHECK_FALSE(folder->stat(job.oid)->has_value());

  // The restart waits exactly the jittered backoff the policy draws.
  REQUIRE(sched.has_pending_timeout());
  auto delay = backoff{config.backoff_base, config.backoff_max, config.seed}.next(1);
  if (delay > 0ms) {
    CHECK(sched.clock().advance_time(delay - 1ms) == 0);
    sched.run();
    CHECK(faults->opened == 1);
  }
  CHECK(sched.clock().advance_time(1ms) == 1);
  sched.run();

  REQUIRE(outcome->has_value());
  CHECK((*outcome)->ok());
  CHECK((*outcome)->attempts == 2);
  CHECK(faults->opened == 2);
  auto reader = folder->open_read(job.oid, 0);
  REQUIRE(reader);
  CHECK(read_file(folder->object_path(job.oid)) == bytes);
  auto done = newest_history();
  REQUIRE(done);
  CHECK(done->state == transfer_state::done);
  CHECK(done->attempts == 2);
  // The journal's resume point was 512 KiB; the store kept all 576 KiB the
  // first attempt wrote, and the second attempt continued from there.
  CHECK(done->resumed_from == (576 << 10));
  CHECK(done->committed == static_cast<int64_t>(bytes.size()));
  CHECK_FALSE(db->get(direction::upload, job.oid)->has_value());

  // Progress never goes backwards and ends at the size.
  REQUIRE_FALSE(notes->empty());
  CHECK(notes->back().bytes_so_far == static_cast<int64_t>(bytes.size()));
}

TEST_CASE_METHOD(engine_fixture,
                 "a source that does not match its oid fails at once and "
                 "stores nothing",
                 "[supervisor]") {
  start(folder);
  auto job = upload_job(1, random_bytes(300 << 10, 2), "liar.bin");
  job.oid = sha256::of("something else", 14);
  auto outcome = submit(job);
  sched.run();
  REQUIRE(outcome->has_value());
  CHECK((*outcome)->code == errc::hash_mismatch);
  CHECK((*outcome)->attempts == 1);
  CHECK((*outcome)->message.find("does not match oid") != std::string::npos);
  CHECK_FALSE(sched.has_pending_timeout());
  CHECK_FALSE(folder->stat(job.oid)->has_value());
  CHECK_FALSE(std::filesystem::exists(folder->partial_path(job.oid)));
  auto failed = newest_history();
  REQUIRE(failed);
  CHECK(failed->state == transfer_state::failed);
  REQUIRE_FALSE(failed->errors.empty());
  CHECK(failed->errors.back().code == "hash_mismatch");
}

TEST_CASE_METHOD(engine_fixture, "a store that keeps failing exhausts the attempt budget",
                 "[supervisor]") {
  auto faults = std::make_shared<fault_store>(folder, 100, 0);
  start(faults);
  auto job = upload_job(1, random_bytes(100 << 10, 3), "doomed.bin");
  auto outcome = submit(job);
  sched.run();
  for (int restarts = 0; restarts < 10 && !outcome->has_value(); ++restarts) {
    REQUIRE(sched.has_pending_timeout());
    sched.trigger_timeouts();
    sched.run();
  }
  REQUIRE(outcome->has_value());
  CHECK((*outcome)->code == errc::io_error);
  CHECK((*outcome)->attempts == 3);
  CHECK((*outcome)->message.find("gave up after 3 attempts") != std::string::npos);
  CHECK(faults->opened == 3);
  CHECK_FALSE(sched.has_pending_timeout());
  auto failed = newest_history();
  REQUIRE(failed);
  CHECK(failed->state == transfer_state::failed);
  CHECK(failed->attempts == 3);
  // Two retried attempt errors plus the final one.
  CHECK(failed->errors.size() == 3);
}

TEST_CASE_METHOD(engine_fixture, "downloads are verified before they are named", "[supervisor]") {
  start(folder);
  auto bytes = random_bytes(700 << 10, 4);
  auto job = stored_download_job(1, bytes);
  auto oid = job.oid;

  SECTION("an intact object arrives") {
    auto outcome = submit(job);
    sched.run();
    REQUIRE(outcome->has_value());
    REQUIRE((*outcome)->ok());
    CHECK(read_file((*outcome)->path) == bytes);
    CHECK(std::filesystem::path{(*outcome)->path}.parent_path() == config.download_dir);
  }

  SECTION("a corrupt store object is reported and leaves no file") {
    auto corrupt = bytes;
    corrupt[1000] ^= 0x5a;
    write_file(folder->object_path(oid), corrupt);
    auto outcome = submit(job);
    sched.run();
    REQUIRE(outcome->has_value());
    CHECK((*outcome)->code == errc::hash_mismatch);
    CHECK((*outcome)->message.find("is corrupt") != std::string::npos);
    CHECK((*outcome)->attempts == 1);
    CHECK(std::filesystem::is_empty(config.download_dir));
  }

  SECTION("an object missing from the store is reported as not found") {
    REQUIRE(folder->remove(oid).ok());
    auto outcome = submit(job);
    sched.run();
    REQUIRE(outcome->has_value());
    CHECK((*outcome)->code == errc::not_found);
    CHECK_FALSE(sched.has_pending_timeout());
    CHECK(std::filesystem::is_empty(config.download_dir));
  }

  SECTION("a truncated store object is reported and leaves no file") {
    write_file(folder->object_path(oid), bytes.substr(0, bytes.size() - 1));
    auto outcome = submit(job);
    sched.run();
    REQUIRE(outcome->has_value());
    CHECK((*outcome)->code == errc::size_mismatch);
    CHECK_FALSE(sched.has_pending_timeout());
    CHECK(std::filesystem::is_empty(config.download_dir));
  }
}

TEST_CASE_METHOD(engine_fixture, "the journal actor recovers transfers a crash left in flight",
                 "[journal]") {
  transfer_record crashed;
  crashed.oid = sha256::of("x", 1);
  crashed.dir = direction::upload;
  crashed.size = 1;
  crashed.state = transfer_state::in_flight;
  crashed.attempts = 1;
  REQUIRE(db->put(crashed).ok());
  start(folder);
  auto recovered = std::make_shared<std::vector<transfer_record>>();
  sys.spawn(
    [recovered](caf::event_based_actor* self, journal_actor j) {
      self->request(j, caf::infinite, atom::recover_v)
        .then([=](const std::vector<transfer_record>& records) { *recovered = records; });
    },
    journal);
  sched.run();
  REQUIRE(recovered->size() == 1);
  CHECK(recovered->front().oid == crashed.oid);
  CHECK(recovered->front().state == transfer_state::queued);
}

TEST_CASE_METHOD(engine_fixture, "an object the store already holds is verified, not re-sent",
                 "[supervisor]") {
  auto counting = std::make_shared<fault_store>(folder, 0, 0);
  start(counting);
  auto bytes = random_bytes(200 << 10, 5);
  auto first = submit(upload_job(1, bytes, "twice.bin"));
  sched.run();
  REQUIRE(first->has_value());
  REQUIRE((*first)->ok());
  CHECK(counting->opened == 1);

  SECTION("an intact copy is kept") {
    auto second = submit(upload_job(2, bytes, "twice.bin"));
    sched.run();
    REQUIRE(second->has_value());
    CHECK((*second)->ok());
    CHECK(counting->opened == 1);
    CHECK(notes->back().bytes_so_far == static_cast<int64_t>(bytes.size()));
  }

  SECTION("a corrupt copy is replaced") {
    auto oid = sha256::of(bytes.data(), bytes.size());
    auto corrupt = bytes;
    corrupt[7] ^= 1;
    write_file(folder->object_path(oid), corrupt);
    auto second = submit(upload_job(2, bytes, "twice.bin"));
    sched.run();
    REQUIRE(second->has_value());
    CHECK((*second)->ok());
    CHECK(counting->opened == 2);
    CHECK(read_file(folder->object_path(oid)) == bytes);
  }
}

TEST_CASE_METHOD(engine_fixture, "an interrupted download resumes from its durable bytes",
                 "[supervisor]") {
  auto faults = std::make_shared<fault_store>(folder, 1, 600 << 10);
  start(faults);
  auto bytes = random_bytes((1 << 20) + 77, 6);
  auto job = stored_download_job(1, bytes);
  auto oid = job.oid;
  auto outcome = submit(job);
  sched.run();

  // The first attempt read 576 KiB (synced at 256 and 512 KiB), then failed.
  REQUIRE_FALSE(outcome->has_value());
  auto active = db->get(direction::download, oid);
  REQUIRE(active);
  REQUIRE(active->has_value());
  CHECK((*active)->committed == (512 << 10));
  REQUIRE(sched.has_pending_timeout());
  sched.trigger_timeouts();
  sched.run();

  REQUIRE(outcome->has_value());
  REQUIRE((*outcome)->ok());
  CHECK(read_file((*outcome)->path) == bytes);
  // The second attempt asked the store only for the bytes after the
  // durable resume point; unsynced bytes were dropped, not trusted.
  CHECK(faults->read_offsets == std::vector<int64_t>{0, 512 << 10});
  auto done = newest_history();
  REQUIRE(done);
  CHECK(done->dir == direction::download);
  CHECK(done->resumed_from == (512 << 10));
  CHECK(done->attempts == 2);
  CHECK_FALSE(std::filesystem::exists(config.download_dir / (oid + ".part")));
}

TEST_CASE_METHOD(engine_fixture, "the supervisor counts transfers, retries and failures",
                 "[supervisor][metrics]") {
  auto metrics = std::make_shared<metrics_registry>();
  describe_transfer_metrics(*metrics, "test");
  config.metrics = metrics;
  auto faults = std::make_shared<fault_store>(folder, 1, 0);
  start(faults);
  auto good = upload_job(1, random_bytes(100 << 10, 4), "good.bin");
  auto liar = upload_job(2, random_bytes(10 << 10, 5), "liar.bin");
  liar.oid = sha256::of("something else", 14);
  auto first = submit(good);
  sched.run();
  metrics_registry::labels upload{{"direction", "upload"}, {"store", "folder"}};
  CHECK(metrics->value(metric::transfers_started, upload) == 1);
  CHECK(metrics->value(metric::in_flight, {}) == 1);
  CHECK(metrics->value(metric::retries, upload) == 1);
  REQUIRE(sched.has_pending_timeout());
  sched.trigger_timeouts();
  sched.run();
  REQUIRE(first->has_value());
  REQUIRE((*first)->ok());
  auto second = submit(liar);
  sched.run();
  REQUIRE(second->has_value());
  CHECK((*second)->code == errc::hash_mismatch);

  CHECK(metrics->value(metric::transfers_started, upload) == 2);
  CHECK(metrics->value(metric::transfers_succeeded, upload) == 1);
  CHECK(metrics->value(metric::transferred_bytes, upload) == 100 << 10);
  auto failed = upload;
  failed.emplace_back("error", "hash_mismatch");
  CHECK(metrics->value(metric::transfers_failed, failed) == 1);
  CHECK(metrics->value(metric::retries, upload) == 1);
  CHECK(metrics->value(metric::in_flight, {}) == 0);
  CHECK(metrics->histogram(metric::transfer_duration, {{"direction", "upload"}}).counts.size() ==
        16);
  auto durations = metrics->histogram(metric::transfer_duration, {{"direction", "upload"}});
  uint64_t observed = 0;
  for (auto count : durations.counts)
    observed += count;
  CHECK(observed == 2);

  // The same object again: the store holds it, so nothing is written.
  auto again = submit(upload_job(3, random_bytes(100 << 10, 4), "again.bin"));
  sched.run();
  REQUIRE(again->has_value());
  REQUIRE((*again)->ok());
  CHECK((*again)->found_present);
  CHECK(metrics->value(metric::transfers_succeeded, upload) == 2);
  CHECK(metrics->value(metric::transferred_bytes, upload) == 100 << 10);
}

TEST_CASE_METHOD(engine_fixture, "the supervisor writes each attempt's start and end as events",
                 "[supervisor][events]") {
  auto path = scratch.path / "events.jsonl";
  auto events = event_file::open(path);
  REQUIRE(events);
  config.events = *events;
  auto faults = std::make_shared<fault_store>(folder, 1, 0);
  start(faults);
  auto good = upload_job(1, random_bytes(100 << 10, 4), "good.bin");
  auto liar = upload_job(2, random_bytes(10 << 10, 5), "liar.bin");
  liar.oid = sha256::of("something else", 14);
  auto first = submit(good);
  sched.run();
  REQUIRE(sched.has_pending_timeout());
  sched.trigger_timeouts();
  sched.run();
  REQUIRE(first->has_value());
  REQUIRE((*first)->ok());
  auto second = submit(liar);
  sched.run();
  REQUIRE(second->has_value());
  REQUIRE((*second)->code == errc::hash_mismatch);

  std::vector<nlohmann::json> lines;
  std::ifstream in{path};
  for (std::string line; std::getline(in, line);)
    lines.push_back(nlohmann::json::parse(line));
  std::vector<std::string> seen;
  for (auto& e : lines)
    seen.push_back(e["ev"].get<std::string>() + " " + e["oid"].get<std::string>().substr(0, 8) +
                   " " + std::to_string(e["attempt"].get<int>()));
  auto g = good.oid.substr(0, 8);
  auto l = liar.oid.substr(0, 8);
  CHECK(seen == std::vector<std::string>{"start " + g + " 1", "retry " + g + " 1",
                                         "start " + g + " 2", "done " + g + " 2",
                                         "start " + l + " 1", "fail " + l + " 1"});
  REQUIRE(lines.size() == 6);
  // One correlation id across the good object's retry, its own for the other.
  CHECK(lines[0]["cid"] == (*first)->cid);
  CHECK(lines[3]["cid"] == (*first)->cid);
  CHECK(lines[5]["cid"] == (*second)->cid);
  CHECK(lines[0]["cid"] != lines[5]["cid"]);
  CHECK(lines[1]["error"] == "io_error");
  CHECK(lines[1].contains("delay_ms"));
  CHECK(lines[3]["bytes"] == 100 << 10);
  CHECK(lines[5]["error"] == "hash_mismatch");
  for (auto& e : lines) {
    CHECK(e["dir"] == "upload");
    CHECK(e["t"].get<int64_t>() > 0);
  }
}

TEST_CASE_METHOD(engine_fixture, "two jobs of one object run one after the other", "[supervisor]") {
  // Two agents sharing the engine push the same object at once.
  start(folder);
  auto bytes = random_bytes((1 << 20) + 77, 41);
  auto first = upload_job(1, bytes, "same.bin");
  auto second = first;
  second.id = 2;
  auto first_outcome = submit(first);
  auto second_outcome = submit(second);
  sched.run();
  REQUIRE(first_outcome->has_value());
  REQUIRE(second_outcome->has_value());
  CHECK((*first_outcome)->ok());
  CHECK((*second_outcome)->ok());
  // The second began once the first was recorded: it found the object.
  CHECK_FALSE((*first_outcome)->found_present);
  CHECK((*second_outcome)->found_present);
  CHECK(read_file(folder->object_path(first.oid)) == bytes);
  auto history = db->history(2);
  REQUIRE(history);
  REQUIRE(history->size() == 2);
  for (auto& record : *history) {
    CHECK(record.state == transfer_state::done);
    CHECK(record.attempts == 1);
  }
  CHECK((*history)[0].cid != (*history)[1].cid);
  CHECK_FALSE(db->get(direction::upload, first.oid)->has_value());
}

TEST_CASE_METHOD(engine_fixture,
                 "two downloads of one object are each named in their own directory",
                 "[supervisor]") {
  start(folder);
  auto bytes = random_bytes(900 << 10, 42);
  auto first = stored_download_job(1, bytes);
  first.download_dir = (root / "agent-a").string();
  auto second = first;
  second.id = 2;
  second.download_dir = (root / "agent-b").string();
  auto first_outcome = submit(first);
  auto second_outcome = submit(second);
  sched.run();
  REQUIRE(first_outcome->has_value());
  REQUIRE(second_outcome->has_value());
  REQUIRE((*first_outcome)->ok());
  REQUIRE((*second_outcome)->ok());
  CHECK(std::filesystem::path{(*first_outcome)->path}.parent_path() == root / "agent-a");
  CHECK(std::filesystem::path{(*second_outcome)->path}.parent_path() == root / "agent-b");
  CHECK(read_file((*first_outcome)->path) == bytes);
  CHECK(read_file((*second_outcome)->path) == bytes);
  // Both were assembled in the engine's directory, and nothing is left there.
  CHECK(std::filesystem::is_empty(config.download_dir));
}

TEST_CASE_METHOD(engine_fixture,
                 "a running job cancelled ends at once, is not retried and stores nothing; a "
                 "later job of its object resumes from its durable bytes",
                 "[supervisor][cancel]") {
  auto counting = std::make_shared<fault_store>(folder, 0, 0);
  start(counting);
  auto bytes = random_bytes(4 << 20, 51);
  auto job = upload_job(1, bytes, "cancelled.bin");
  auto outcome = submit(job);
  // Past its first sync (256 KiB) and going on.
  run_until([&] { return partial_bytes(job.oid) > (256 << 10); });
  caf::anon_send(supervisor, atom::cancel_v, uint64_t{1}, uint64_t{1});
  run_all_but_workers();
  sched.run();

  REQUIRE(outcome->has_value());
  CHECK((*outcome)->code == errc::cancelled);
  CHECK((*outcome)->message == "cancelled: the agent went away");
  CHECK((*outcome)->attempts == 1);
  CHECK_FALSE(sched.has_pending_timeout());
  CHECK(counting->opened == 1);
  CHECK_FALSE(folder->stat(job.oid)->has_value());
  CHECK(partial_bytes(job.oid) < job.size);
  CHECK(stored_jobs->empty());
  // The record stays as a crash would leave it; no outcome is recorded.
  auto active = db->get(direction::upload, job.oid);
  REQUIRE(active);
  REQUIRE(active->has_value());
  CHECK((*active)->state == transfer_state::in_flight);
  auto durable = (*active)->committed;
  CHECK(durable >= (256 << 10));
  CHECK_FALSE(newest_history());

  // The object asked for again while the engine runs.
  auto again = job;
  again.id = 2;
  auto second = submit(again);
  sched.run();
  REQUIRE(second->has_value());
  CHECK((*second)->ok());
  CHECK_FALSE((*second)->found_present);
  CHECK(counting->opened == 2);
  CHECK(read_file(folder->object_path(job.oid)) == bytes);
  auto done = newest_history();
  REQUIRE(done);
  CHECK(done->state == transfer_state::done);
  CHECK(done->attempts == 2);
  CHECK(done->resumed_from >= durable);
  CHECK(*stored_jobs == std::vector<uint64_t>{2});
}

TEST_CASE_METHOD(engine_fixture, "a cancelled job of an object leaves the others of it to run",
                 "[supervisor][cancel]") {
  start(folder);
  auto bytes = random_bytes(2 << 20, 52);
  auto first = upload_job(1, bytes, "turns.bin");
  auto second = first;
  second.id = 2;
  auto third = first;
  third.id = 3;
  auto first_outcome = submit(first);
  auto second_outcome = submit(second);
  auto third_outcome = submit(third);
  run_until([&] { return partial_bytes(first.oid) > (256 << 10); });

  SECTION("one waiting its turn is dropped; the one after it still runs") {
    caf::anon_send(supervisor, atom::cancel_v, uint64_t{2}, uint64_t{2});
    run_all_but_workers();
    REQUIRE(second_outcome->has_value());
    CHECK((*second_outcome)->code == errc::cancelled);
    CHECK((*second_outcome)->attempts == 0);
    sched.run();
    REQUIRE(first_outcome->has_value());
    CHECK((*first_outcome)->ok());
    REQUIRE(third_outcome->has_value());
    CHECK((*third_outcome)->ok());
    CHECK((*third_outcome)->found_present);
    CHECK(*stored_jobs == std::vector<uint64_t>{1, 3});
  }

  SECTION("the running one: the next starts once its worker is gone, and resumes") {
    caf::anon_send(supervisor, atom::cancel_v, uint64_t{1}, uint64_t{1});
    run_all_but_workers();
    REQUIRE(first_outcome->has_value());
    CHECK((*first_outcome)->code == errc::cancelled);
    sched.run();
    REQUIRE(second_outcome->has_value());
    CHECK((*second_outcome)->ok());
    CHECK_FALSE((*second_outcome)->found_present);
    REQUIRE(third_outcome->has_value());
    CHECK((*third_outcome)->found_present);
    auto history = db->history(2);
    REQUIRE(history);
    REQUIRE(history->size() == 2);
    // Newest first: the third found it; the second resumed the first's record.
    CHECK((*history)[1].attempts == 2);
    CHECK((*history)[1].resumed_from >= (256 << 10));
    CHECK(*stored_jobs == std::vector<uint64_t>{2, 3});
  }
  CHECK(read_file(folder->object_path(first.oid)) == bytes);
  CHECK_FALSE(db->get(direction::upload, first.oid)->has_value());
}

TEST_CASE_METHOD(engine_fixture,
                 "a job cancelled while it waits for the rate limiter or its backoff never "
                 "starts again",
                 "[supervisor][cancel]") {
  auto metrics = std::make_shared<metrics_registry>();
  describe_transfer_metrics(*metrics, "test");
  config.metrics = metrics;

  SECTION("held by the rate limiter") {
    config.max_requests_per_second = 1;
    auto counting = std::make_shared<fault_store>(folder, 0, 0);
    counting->host = "store.test:443";
    start(counting);
    auto first = submit(upload_job(1, random_bytes(100 << 10, 53), "a.bin"));
    auto held = submit(upload_job(2, random_bytes(100 << 10, 54), "b.bin"));
    sched.run();
    REQUIRE(first->has_value());
    CHECK((*first)->ok());
    CHECK_FALSE(held->has_value());
    REQUIRE(sched.has_pending_timeout());
    caf::anon_send(supervisor, atom::cancel_v, uint64_t{2}, uint64_t{2});
    sched.run();
    REQUIRE(held->has_value());
    CHECK((*held)->code == errc::cancelled);
    CHECK((*held)->attempts == 0);
    // The limiter's answer comes, and finds no job to start.
    sched.trigger_timeouts();
    sched.run();
    CHECK(counting->opened == 1);
    CHECK(metrics->value(metric::transfers_failed,
                         {{"direction", "upload"}, {"store", "folder"}, {"error", "cancelled"}}) ==
          1);
  }

  SECTION("waiting for its retry, with another job of its object waiting for it") {
    auto faults = std::make_shared<fault_store>(folder, 1, 0);
    start(faults);
    auto job = upload_job(1, random_bytes(100 << 10, 55), "c.bin");
    auto again = job;
    again.id = 2;
    auto outcome = submit(job);
    auto waiting = submit(again);
    sched.run();
    REQUIRE_FALSE(outcome->has_value());
    REQUIRE(sched.has_pending_timeout());
    caf::anon_send(supervisor, atom::cancel_v, uint64_t{1}, uint64_t{2});
    sched.run();
    REQUIRE(outcome->has_value());
    CHECK((*outcome)->code == errc::cancelled);
    CHECK((*outcome)->attempts == 1);
    REQUIRE(waiting->has_value());
    CHECK((*waiting)->code == errc::cancelled);
    CHECK((*waiting)->attempts == 0);
    // The backoff's timer fires for a job that is gone.
    sched.trigger_timeouts();
    sched.run();
    CHECK(faults->opened == 1);
    // No attempt began after the failed one.
    auto active = db->get(direction::upload, job.oid);
    REQUIRE(active);
    REQUIRE(active->has_value());
    CHECK((*active)->state == transfer_state::queued);
    CHECK((*active)->attempts == 1);
    CHECK(metrics->value(metric::transfers_failed,
                         {{"direction", "upload"}, {"store", "folder"}, {"error", "cancelled"}}) ==
          2);
  }
  CHECK_FALSE(sched.has_pending_timeout());
  CHECK(metrics->value(metric::in_flight, {}) == 0);
}
