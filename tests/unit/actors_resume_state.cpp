// A store's resume state (object_writer::resume_state) travels through the
// journal to the next attempt, and a resumed prefix the store rejects sends
// the upload back to byte 0.

#include "actors_fixture.hpp"
#include "fault_store.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace std::chrono_literals;
using namespace ferry;
using namespace ferry::testing;

namespace {

/// A folder store whose writers report "kept:<durable bytes>" as their
/// resume state, and which records what resumed writers are given.
class stateful_store final : public object_store {
public:
  explicit stateful_store(std::shared_ptr<object_store> inner) : inner_(std::move(inner)) {}

  /// Resume states open_write was given, in order.
  std::vector<std::string> resumed_with;
  /// Every byte shown to check_resumed, in order.
  std::string rechecked;
  /// check_resumed answers hash_mismatch.
  bool reject_resumed = false;
  /// What writers answer to sync_every().
  int64_t sync_every = 0;
  int aborted = 0;

  std::string describe() const override { return "stateful+" + inner_->describe(); }
  result<publish_failures> sync_published() override { return inner_->sync_published(); }
  std::string endpoint() const override { return inner_->endpoint(); }
  result<std::optional<object_info>> stat(const std::string& oid) override {
    return inner_->stat(oid);
  }
  result<std::unique_ptr<object_reader>> open_read(const std::string& oid,
                                                   int64_t offset) override {
    return inner_->open_read(oid, offset);
  }
  result<std::unique_ptr<object_writer>>
  open_write(const std::string& oid, int64_t size,
             const std::optional<std::string>& resume) override {
    if (resume)
      resumed_with.push_back(*resume);
    auto writer = inner_->open_write(oid, size, resume);
    if (!writer)
      return writer;
    return std::unique_ptr<object_writer>{
      std::make_unique<writer_with_state>(*this, std::move(*writer))};
  }
  status list(const std::function<bool(const object_info&)>& visit) override {
    return inner_->list(visit);
  }
  status remove(const std::string& oid) override { return inner_->remove(oid); }

private:
  class writer_with_state final : public object_writer {
  public:
    writer_with_state(stateful_store& store, std::unique_ptr<object_writer> inner)
        : store_(store), inner_(std::move(inner)), durable_(inner_->offset()) {}
    int64_t offset() const override { return inner_->offset(); }
    status write(const char* data, size_t size) override { return inner_->write(data, size); }
    result<int64_t> sync() override {
      auto durable = inner_->sync();
      if (durable)
        durable_ = *durable;
      return durable;
    }
    std::string resume_state() const override { return "kept:" + std::to_string(durable_); }
    int64_t sync_every() const override { return store_.sync_every; }
    status check_resumed(const char* data, size_t size) override {
      store_.rechecked.append(data, size);
      if (store_.reject_resumed)
        return {errc::hash_mismatch, "part 1 differs from the source"};
      return status::success();
    }
    status commit() override { return inner_->commit(); }
    void abort() override {
      store_.aborted += 1;
      inner_->abort();
    }

  private:
    stateful_store& store_;
    std::unique_ptr<object_writer> inner_;
    int64_t durable_;
  };

  std::shared_ptr<object_store> inner_;
};

/// The journal's active record of an upload that has not finished yet.
transfer_record pending_upload(engine_fixture& engine, const transfer_job& job) {
  auto active = engine.db->get(direction::upload, job.oid);
  REQUIRE(active);
  REQUIRE(active->has_value());
  return std::move(**active);
}

} // namespace

TEST_CASE_METHOD(engine_fixture,
                 "a store's resume state is journaled and given to the next "
                 "attempt",
                 "[supervisor][resume]") {
  auto stateful = std::make_shared<stateful_store>(folder);
  auto bytes = random_bytes((1 << 20) + 123, 3);

  SECTION("the state is recorded as soon as the writer opens") {
    start(std::make_shared<fault_store>(stateful, 1, 100 << 10));
    auto job = upload_job(1, bytes, "early.bin");
    auto outcome = submit(job);
    sched.run();
    REQUIRE_FALSE(outcome->has_value());
    auto record = pending_upload(*this, job);
    CHECK(record.committed == 0);
    CHECK(record.store_state == "kept:0");
  }

  SECTION("the state at the last sync comes back, with the kept prefix to check") {
    start(std::make_shared<fault_store>(stateful, 1, 600 << 10));
    auto job = upload_job(1, bytes, "big.bin");
    auto outcome = submit(job);
    sched.run();
    REQUIRE_FALSE(outcome->has_value());
    auto record = pending_upload(*this, job);
    CHECK(record.committed == (512 << 10));
    CHECK(record.store_state == "kept:" + std::to_string(512 << 10));

    sched.clock().advance_time(config.backoff_max);
    sched.run();
    REQUIRE(outcome->has_value());
    CHECK((*outcome)->ok());
    REQUIRE(stateful->resumed_with.size() == 1);
    CHECK(stateful->resumed_with[0] == "kept:" + std::to_string(512 << 10));
    // The folder store kept all 576 KiB the first attempt wrote: exactly
    // those bytes of the source were shown again.
    CHECK(stateful->rechecked == bytes.substr(0, 576 << 10));
    CHECK(read_file(folder->object_path(job.oid)) == bytes);
  }
}

TEST_CASE_METHOD(engine_fixture,
                 "an interrupted write of an object someone else stored is "
                 "let go",
                 "[supervisor][resume]") {
  auto stateful = std::make_shared<stateful_store>(folder);
  start(std::make_shared<fault_store>(stateful, 1, 600 << 10));
  auto bytes = random_bytes((1 << 20) + 9, 6);
  auto job = upload_job(1, bytes, "raced.bin");
  auto outcome = submit(job);
  sched.run();
  REQUIRE_FALSE(outcome->has_value());

  // Another client stores the whole object before the retry.
  {
    auto other = folder->open_write(job.oid, job.size, std::nullopt);
    REQUIRE(other);
    REQUIRE((*other)->write(bytes.data(), bytes.size()).ok());
    REQUIRE((*other)->commit().ok());
    REQUIRE(folder->sync_published().ok());
  }
  sched.clock().advance_time(config.backoff_max);
  sched.run();
  REQUIRE(outcome->has_value());
  CHECK((*outcome)->ok());
  REQUIRE(stateful->resumed_with.size() == 1);
  CHECK(stateful->resumed_with[0] == "kept:" + std::to_string(512 << 10));
  CHECK(stateful->aborted == 1);
  CHECK(read_file(folder->object_path(job.oid)) == bytes);
}

TEST_CASE_METHOD(engine_fixture, "a writer that asks for more frequent syncs gets them",
                 "[supervisor][resume]") {
  // Chunks of 64 KiB; the 8th fails. The engine syncs every 256 KiB.
  auto stateful = std::make_shared<stateful_store>(folder);
  auto expected = GENERATE(std::make_pair(int64_t{0}, int64_t{256} << 10),
                           std::make_pair(int64_t{128} << 10, int64_t{384} << 10),
                           std::make_pair(int64_t{1} << 20, int64_t{256} << 10));
  stateful->sync_every = expected.first;
  start(std::make_shared<fault_store>(stateful, 1, 450 << 10));
  auto job = upload_job(1, random_bytes(1 << 20, 5), "steps.bin");
  auto outcome = submit(job);
  sched.run();
  REQUIRE_FALSE(outcome->has_value());
  auto record = pending_upload(*this, job);
  CHECK(record.committed == expected.second);
  CHECK(record.store_state == "kept:" + std::to_string(expected.second));
}

TEST_CASE_METHOD(engine_fixture,
                 "a kept prefix the store rejects is aborted and the upload "
                 "starts over",
                 "[supervisor][resume]") {
  auto stateful = std::make_shared<stateful_store>(folder);
  stateful->reject_resumed = true;
  start(std::make_shared<fault_store>(stateful, 1, 600 << 10));
  auto bytes = random_bytes((1 << 20) + 5, 4);
  auto job = upload_job(1, bytes, "rejected.bin");
  auto outcome = submit(job);
  sched.run();
  REQUIRE_FALSE(outcome->has_value());

  // Second attempt: the check fails, the writer is aborted, nothing is kept.
  sched.clock().advance_time(config.backoff_max);
  sched.run();
  REQUIRE_FALSE(outcome->has_value());
  CHECK(stateful->aborted == 1);
  auto record = pending_upload(*this, job);
  CHECK(record.committed == 0);
  CHECK(record.store_state.empty());
  REQUIRE_FALSE(record.errors.empty());
  CHECK(record.errors.back().message.find("starting over from byte 0") != std::string::npos);

  // Third attempt: a fresh write from byte 0 that nothing needs to check.
  sched.clock().advance_time(config.backoff_max);
  sched.run();
  REQUIRE(outcome->has_value());
  CHECK((*outcome)->ok());
  CHECK((*outcome)->attempts == 3);
  CHECK(stateful->resumed_with.size() == 1);
  CHECK(read_file(folder->object_path(job.oid)) == bytes);
}
