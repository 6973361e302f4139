// run_migration end to end on a real (threaded) actor system: folder stores
// in a temp directory, a real inventory and journal, and store wrappers
// that inject faults or watch the writes.

#include "actors/migrator.hpp"

#include "actors/logging.hpp"
#include "actors_fixture.hpp"
#include "fault_store.hpp"
#include "store/folder/folder_store.hpp"
#include "store/os/sha256.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using namespace ferry;
using namespace ferry::testing;

namespace {

/// Forwards to a folder store and watches its writers: which oids were
/// written, how many writers were open at once. `trusting` makes holds()
/// believe the listing as server stores do (S3, an LFS server), instead of
/// reading the copy back. A positive `gate` holds the first writes until
/// that many writers are open at once (or a bounded wait ends), so a test
/// sees the concurrency the migrator allows instead of what the timing of
/// the moment gives.
class watched_store final : public object_store {
public:
  watched_store(std::shared_ptr<folder_store> inner, bool trusting, int gate = 0)
      : inner_(std::move(inner)), trusting_(trusting), gate_(gate) {}

  std::string describe() const override { return "watched+" + inner_->describe(); }
  result<publish_failures> sync_published() override { return inner_->sync_published(); }
  result<std::optional<object_info>> stat(const std::string& oid) override {
    return inner_->stat(oid);
  }
  result<bool> holds(const object_info& object) override {
    if (!trusting_)
      return inner_->holds(object);
    auto info = inner_->stat(object.oid);
    if (!info)
      return info.error();
    return info->has_value() && (*info)->size == object.size;
  }
  result<std::unique_ptr<object_reader>> open_read(const std::string& oid,
                                                   int64_t offset) override {
    return inner_->open_read(oid, offset);
  }
  result<std::unique_ptr<object_writer>>
  open_write(const std::string& oid, int64_t size,
             const std::optional<std::string>& resume) override {
    auto writer = inner_->open_write(oid, size, resume);
    if (!writer)
      return writer;
    std::lock_guard<std::mutex> guard{mutex_};
    written_.push_back(oid);
    open_ += 1;
    max_open_ = std::max(max_open_, open_);
    changed_.notify_all();
    return std::unique_ptr<object_writer>{
      std::make_unique<watched_writer>(*this, std::move(*writer))};
  }
  status list(const std::function<bool(const object_info&)>& visit) override {
    return inner_->list(visit);
  }
  result<std::vector<std::optional<int64_t>>>
  sizes_of(const std::vector<object_info>& objects) override {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      asked_ += static_cast<int>(objects.size());
    }
    if (refuse_batches && objects.size() > 1)
      return status{errc::unavailable, "503 for a batch"};
    return object_store::sizes_of(objects);
  }
  status remove(const std::string& oid) override {
    if (refuse_remove)
      return {errc::permission_denied, "this store never removes objects"};
    return inner_->remove(oid);
  }

  /// remove() fails, as with an LFS server (set before the migration runs).
  bool refuse_remove = false;
  /// sizes_of() of more than one object fails, as a batch request can.
  bool refuse_batches = false;

  /// How many objects sizes_of() was asked about.
  int asked() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return asked_;
  }

  /// Every oid a writer was opened for, in order.
  std::vector<std::string> written() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return written_;
  }
  /// The most writers open at the same time.
  int max_open() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return max_open_;
  }

private:
  // A folder writer keeps the defaults of resume_state(), sync_every()
  // and check_resumed(), so those need no forwarding.
  class watched_writer final : public object_writer {
  public:
    watched_writer(watched_store& store, std::unique_ptr<object_writer> inner)
        : store_(store), inner_(std::move(inner)) {}
    ~watched_writer() override { close(); }
    int64_t offset() const override { return inner_->offset(); }
    status write(const char* data, size_t size) override {
      store_.wait_at_gate();
      return inner_->write(data, size);
    }
    result<int64_t> sync() override { return inner_->sync(); }
    status commit() override {
      auto done = inner_->commit();
      close();
      return done;
    }
    void abort() override {
      inner_->abort();
      close();
    }

  private:
    void close() {
      if (std::exchange(open_, false))
        store_.writer_closed();
    }
    watched_store& store_;
    std::unique_ptr<object_writer> inner_;
    bool open_ = true;
  };

  void writer_closed() {
    std::lock_guard<std::mutex> guard{mutex_};
    open_ -= 1;
  }

  void wait_at_gate() {
    std::unique_lock<std::mutex> lock{mutex_};
    if (gate_ <= 0)
      return;
    // Bounded: a migrator that never opens `gate_` writers fails the
    // test's check on max_open() instead of hanging it.
    changed_.wait_for(lock, 5s, [&] { return open_ >= gate_; });
    gate_ = 0;
  }

  std::shared_ptr<folder_store> inner_;
  bool trusting_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  int gate_;
  int open_ = 0;
  int max_open_ = 0;
  int asked_ = 0;
  std::vector<std::string> written_;
};

std::shared_ptr<folder_store> open_folder(const std::filesystem::path& root) {
  auto store = folder_store::open(root);
  REQUIRE(store);
  return std::shared_ptr<folder_store>{std::move(*store)};
}

struct migration_fixture {
  temp_dir scratch;
  std::shared_ptr<folder_store> source = open_folder(scratch.path / "source");
  std::shared_ptr<folder_store> destination = open_folder(scratch.path / "destination");
  std::shared_ptr<migration_inventory> inventory;
  /// Every listed object's bytes, by oid.
  std::map<std::string, std::string> objects;
  /// What the progress callback was given, in order.
  std::shared_ptr<std::vector<migration_progress>> reports =
    std::make_shared<std::vector<migration_progress>>();
  std::shared_ptr<std::mutex> reports_mutex = std::make_shared<std::mutex>();

  migration_fixture() {
    log()->set_level(spdlog::level::off);
    reopen_inventory();
  }

  /// Opens the inventory again, as a second `ferry migrate` would.
  void reopen_inventory() {
    inventory.reset();
    auto opened = migration_inventory::open(scratch.path / "inventory", "test migration");
    REQUIRE(opened);
    inventory = std::move(*opened);
  }

  /// Lists `bytes` in the inventory (with `listed_size`, or its own size)
  /// and returns its oid; the source gets nothing.
  std::string list(const std::string& bytes, std::optional<int64_t> listed_size = {}) {
    auto oid = sha256::of(bytes.data(), bytes.size());
    objects[oid] = bytes;
    auto size = listed_size.value_or(static_cast<int64_t>(bytes.size()));
    auto added = inventory->add({{oid, size}});
    REQUIRE(added);
    REQUIRE(*added == 1);
    return oid;
  }

  /// Lists `bytes` and stores them at the source.
  std::string put(const std::string& bytes) {
    auto oid = list(bytes);
    write_file(source->object_path(oid), bytes);
    return oid;
  }

  /// Lists `count` objects of assorted sizes, all at the source.
  std::vector<std::string> put_many(int count, uint32_t seed, size_t largest = 150 << 10) {
    std::vector<std::string> oids;
    for (int i = 0; i < count; ++i) {
      auto size = (static_cast<size_t>(i) * 37813 + 1) % largest;
      oids.push_back(put(random_bytes(size, seed + static_cast<uint32_t>(i))));
    }
    return oids;
  }

  migration_options options(std::shared_ptr<object_store> from, std::shared_ptr<object_store> to) {
    migration_options out;
    out.config.source = std::move(from);
    out.config.store = std::move(to);
    out.config.chunk_bytes = 64 << 10;
    out.config.sync_bytes = 128 << 10;
    out.config.max_attempts = 4;
    out.config.backoff_base = 1ms;
    out.config.backoff_max = 4ms;
    out.config.seed = 7;
    journal_db::options journal_options;
    journal_options.sync_writes = false;
    auto journal = journal_db::open(scratch.path / "journal", journal_options);
    REQUIRE(journal);
    out.journal = std::move(*journal);
    out.inventory = inventory;
    out.concurrency = concurrency_control::fixed(4);
    out.show_progress = [reports = reports, mutex = reports_mutex](const migration_progress& p) {
      std::lock_guard<std::mutex> guard{*mutex};
      reports->push_back(p);
    };
    return out;
  }

  /// Runs a migration from the source to the destination (or the given
  /// stores) and checks it ran to its end.
  void migrate(std::shared_ptr<object_store> from, std::shared_ptr<object_store> to,
               const std::function<void(migration_options&)>& adjust = nullptr) {
    auto chosen = options(std::move(from), std::move(to));
    if (adjust)
      adjust(chosen);
    auto ran = run_migration(std::move(chosen));
    INFO(ran.to_string());
    REQUIRE(ran.ok());
  }

  /// What kill -9 in the middle of copying `oid` leaves: a journal record
  /// in flight whose last sync point is `committed`, and the destination's
  /// partial file holding the first `kept` bytes (more than the journal
  /// knows of, as when the crash came between two syncs).
  void leave_interrupted_copy(const std::string& oid, int64_t committed, int64_t kept) {
    auto& bytes = objects.at(oid);
    auto size = static_cast<int64_t>(bytes.size());
    auto journal = journal_db::open(scratch.path / "journal", {});
    REQUIRE(journal);
    transfer_record record;
    record.oid = oid;
    record.dir = direction::copy;
    record.size = size;
    record.state = transfer_state::in_flight;
    record.committed = committed;
    record.attempts = 1;
    record.backend = destination->describe();
    REQUIRE((*journal)->put(record).ok());
    auto writer = destination->open_write(oid, size, std::nullopt);
    REQUIRE(writer);
    REQUIRE((*writer)->write(bytes.data(), static_cast<size_t>(kept)).ok());
    REQUIRE((*writer)->sync());
  }

  inventory_item item(const std::string& oid) {
    auto found = inventory->get(oid);
    REQUIRE(found);
    REQUIRE(found->has_value());
    return **found;
  }

  /// The numbers of the last progress report.
  migration_progress final_progress() {
    std::lock_guard<std::mutex> guard{*reports_mutex};
    REQUIRE_FALSE(reports->empty());
    return reports->back();
  }

  bool at_destination_intact(const std::string& oid) {
    return read_file(destination->object_path(oid)) == objects.at(oid);
  }
};

ino_t inode_of(const std::filesystem::path& path) {
  struct stat info {};
  REQUIRE(::stat(path.c_str(), &info) == 0);
  return info.st_ino;
}

std::vector<std::string> sorted(std::vector<std::string> oids) {
  std::sort(oids.begin(), oids.end());
  return oids;
}

int64_t bytes_of(const std::map<std::string, std::string>& objects,
                 const std::vector<std::string>& oids) {
  int64_t total = 0;
  for (auto& oid : oids)
    total += static_cast<int64_t>(objects.at(oid).size());
  return total;
}

} // namespace

TEST_CASE_METHOD(migration_fixture,
                 "a migration copies every pending object intact and skips "
                 "what the destination has",
                 "[migrator]") {
  auto copied = put_many(10, 100);
  // The edges of the chunking, and an empty object.
  for (size_t size : {size_t{0}, size_t{64 << 10}, size_t{(128 << 10) + 1}})
    copied.push_back(put(random_bytes(size, static_cast<uint32_t>(size))));
  std::vector<std::string> present;
  for (int i = 0; i < 3; ++i) {
    auto bytes = random_bytes(20000 + static_cast<size_t>(i), 200 + static_cast<uint32_t>(i));
    present.push_back(put(bytes));
    write_file(destination->object_path(present.back()), bytes);
  }
  std::map<std::string, ino_t> before;
  for (auto& oid : present)
    before[oid] = inode_of(destination->object_path(oid));
  auto watched = std::make_shared<watched_store>(destination, false);

  migrate(source, watched);

  for (auto& oid : copied) {
    INFO(oid);
    CHECK(item(oid).state == item_state::copied);
    CHECK(item(oid).attempts == 1);
    CHECK(at_destination_intact(oid));
  }
  for (auto& oid : present) {
    INFO(oid);
    CHECK(item(oid).state == item_state::present);
    CHECK(at_destination_intact(oid));
    CHECK(inode_of(destination->object_path(oid)) == before[oid]);
  }
  CHECK(sorted(watched->written()) == sorted(copied));

  auto totals = inventory->totals();
  REQUIRE(totals);
  CHECK(totals->pending.objects == 0);
  CHECK(totals->copied.objects == static_cast<int64_t>(copied.size()));
  CHECK(totals->present.objects == static_cast<int64_t>(present.size()));

  auto last = final_progress();
  CHECK(last.total_objects == static_cast<int64_t>(objects.size()));
  CHECK(last.done_objects == last.total_objects);
  CHECK(last.done_bytes == last.total_bytes);
  CHECK(last.failed_objects == 0);
  CHECK(last.in_flight == 0);
  CHECK(last.moved_bytes == bytes_of(objects, copied));
}

TEST_CASE_METHOD(migration_fixture, "a migration pages through more objects than one page holds",
                 "[migrator]") {
  // 220 tiny objects of which the destination has all but 24 in the last
  // pages (in oid order): the first page is skipped whole, the others mix
  // skips and copies.
  std::vector<std::string> oids;
  for (uint32_t i = 0; i < 220; ++i)
    oids.push_back(list(random_bytes(64, 1000 + i)));
  std::sort(oids.begin(), oids.end());
  for (size_t i = 0; i < oids.size(); ++i) {
    write_file(source->object_path(oids[i]), objects.at(oids[i]));
    if (i < 100 || i % 5 != 0)
      write_file(destination->object_path(oids[i]), objects.at(oids[i]));
  }

  migrate(source, destination);

  auto totals = inventory->totals();
  REQUIRE(totals);
  CHECK(totals->pending.objects == 0);
  CHECK(totals->present.objects == 196);
  CHECK(totals->copied.objects == 24);
  for (auto& oid : oids)
    CHECK(at_destination_intact(oid));
  auto last = final_progress();
  CHECK(last.done_objects == 220);
  CHECK(last.total_objects == 220);
}

TEST_CASE_METHOD(migration_fixture, "verify_existing replaces a damaged destination copy",
                 "[migrator]") {
  auto damaged = put(random_bytes(90 << 10, 1));
  auto intact = put(random_bytes(30 << 10, 2));
  auto fresh = put(random_bytes(10 << 10, 3));
  auto bad = objects.at(damaged);
  bad[500] ^= 0x04;
  write_file(destination->object_path(damaged), bad);
  write_file(destination->object_path(intact), objects.at(intact));
  auto intact_inode = inode_of(destination->object_path(intact));
  // A destination that believes its listing, as S3 or an LFS server does.
  auto trusting = std::make_shared<watched_store>(destination, true);

  SECTION("without it, a listed copy is taken at its word") {
    migrate(source, trusting);
    CHECK(item(damaged).state == item_state::present);
    CHECK(read_file(destination->object_path(damaged)) == bad);
    CHECK(trusting->written() == std::vector<std::string>{fresh});
  }

  SECTION("with it, every listed copy is read back") {
    migrate(source, trusting, [](migration_options& o) { o.verify_existing = true; });
    CHECK(item(damaged).state == item_state::copied);
    CHECK(at_destination_intact(damaged));
    CHECK(item(intact).state == item_state::verified);
    CHECK(inode_of(destination->object_path(intact)) == intact_inode);
    CHECK(item(fresh).state == item_state::copied);
    CHECK(sorted(trusting->written()) == sorted({damaged, fresh}));
    auto last = final_progress();
    CHECK(last.done_objects == 3);
    CHECK(last.failed_objects == 0);
  }

  SECTION("with it, a damaged copy the destination cannot remove fails only that object") {
    trusting->refuse_remove = true;
    migrate(source, trusting, [](migration_options& o) { o.verify_existing = true; });
    auto recorded = item(damaged);
    CHECK(recorded.state == item_state::failed);
    REQUIRE(recorded.errors.size() == 1);
    CHECK(recorded.errors[0].code == "permission_denied");
    CHECK(recorded.errors[0].message.find("cannot be replaced") != std::string::npos);
    CHECK(read_file(destination->object_path(damaged)) == bad);
    CHECK(item(intact).state == item_state::verified);
    CHECK(item(fresh).state == item_state::copied);
    CHECK(trusting->written() == std::vector<std::string>{fresh});
    auto last = final_progress();
    CHECK(last.done_objects == 3);
    CHECK(last.failed_objects == 1);
  }
}

TEST_CASE_METHOD(migration_fixture,
                 "objects a listing walk found missing are copied without "
                 "asking again; pending ones are asked about first",
                 "[migrator]") {
  auto missing = put_many(5, 700);
  REQUIRE(inventory->move_all({item_state::pending}, item_state::missing));
  auto pending = put_many(4, 800);
  for (size_t i = 0; i < 2; ++i)
    write_file(destination->object_path(pending[i]), objects.at(pending[i]));
  auto watched = std::make_shared<watched_store>(destination, true);

  migrate(source, watched);

  CHECK(watched->asked() == 4);
  auto copied = missing;
  copied.insert(copied.end(), pending.begin() + 2, pending.end());
  CHECK(sorted(watched->written()) == sorted(copied));
  for (auto& oid : copied) {
    CHECK(item(oid).state == item_state::copied);
    CHECK(at_destination_intact(oid));
  }
  CHECK(item(pending[0]).state == item_state::present);
  CHECK(item(pending[1]).state == item_state::present);
  auto totals = inventory->totals();
  REQUIRE(totals);
  CHECK(totals->open().objects == 0);
  CHECK(final_progress().done_objects == 9);
}

TEST_CASE_METHOD(migration_fixture, "a destination copy of another size is copied again",
                 "[migrator]") {
  auto cut = put(random_bytes(40 << 10, 31));
  auto whole = put(random_bytes(20 << 10, 32));
  write_file(destination->object_path(cut), objects.at(cut).substr(0, 1000));
  write_file(destination->object_path(whole), objects.at(whole));
  auto watched = std::make_shared<watched_store>(destination, true);

  migrate(source, watched);

  CHECK(watched->written() == std::vector<std::string>{cut});
  CHECK(item(cut).state == item_state::copied);
  CHECK(at_destination_intact(cut));
  CHECK(item(whole).state == item_state::present);
}

TEST_CASE_METHOD(migration_fixture,
                 "a page check that fails is asked object by object and "
                 "still counts what is present",
                 "[migrator]") {
  auto there = put_many(6, 900);
  for (auto& oid : there)
    write_file(destination->object_path(oid), objects.at(oid));
  auto absent = put_many(3, 950);
  auto watched = std::make_shared<watched_store>(destination, true);
  watched->refuse_batches = true;

  migrate(source, watched);

  CHECK(sorted(watched->written()) == sorted(absent));
  auto totals = inventory->totals();
  REQUIRE(totals);
  CHECK(totals->present.objects == 6);
  CHECK(totals->copied.objects == 3);
  CHECK(totals->open().objects == 0);
}

TEST_CASE_METHOD(migration_fixture,
                 "corrupt and missing source objects are recorded and the "
                 "rest is copied",
                 "[migrator]") {
  auto good = put_many(4, 300);
  // Bytes that do not hash to the oid they are stored under.
  auto forged = list(random_bytes(70 << 10, 9));
  auto wrong = objects.at(forged);
  wrong[100] ^= 0x01;
  write_file(source->object_path(forged), wrong);
  // Listed with one size, stored with another.
  auto resized_bytes = random_bytes(5000, 10);
  auto resized = list(resized_bytes, 5001);
  write_file(source->object_path(resized), resized_bytes);
  // Listed, but gone from the source.
  auto missing = list(random_bytes(3000, 11));
  auto reads = std::make_shared<fault_store>(source, 0, 0);

  migrate(reads, destination);

  for (auto& oid : good) {
    CHECK(item(oid).state == item_state::copied);
    CHECK(at_destination_intact(oid));
  }
  struct expectation {
    std::string oid;
    item_state state;
    const char* code;
    const char* says;
  };
  for (auto& bad : {expectation{forged, item_state::corrupt, "hash_mismatch", "does not match oid"},
                    expectation{resized, item_state::corrupt, "size_mismatch", "not the 5001"},
                    expectation{missing, item_state::failed, "not_found", "vanished"}}) {
    INFO(bad.code);
    auto recorded = item(bad.oid);
    CHECK(recorded.state == bad.state);
    // Bad bytes and a missing object are final: no retries.
    CHECK(recorded.attempts == 1);
    REQUIRE(recorded.errors.size() == 1);
    CHECK(recorded.errors[0].code == bad.code);
    CHECK(recorded.errors[0].message.find(bad.says) != std::string::npos);
    // The code is kept apart, not repeated at the head of the message.
    CHECK(recorded.errors[0].message.rfind(bad.code, 0) == std::string::npos);
    CHECK_FALSE(std::filesystem::exists(destination->object_path(bad.oid)));
    CHECK_FALSE(std::filesystem::exists(destination->partial_path(bad.oid)));
  }
  // A local source reads the same every time: no second copy of bad bytes.
  CHECK(reads->read_offsets.size() == 7);
  auto last = final_progress();
  CHECK(last.done_objects == last.total_objects);
  CHECK(last.total_objects == 7);
  CHECK(last.failed_objects == 3);
}

TEST_CASE_METHOD(migration_fixture,
                 "bytes from a server source that do not match get one more "
                 "copy before the object is called corrupt",
                 "[migrator]") {
  // A source behind a server (the fault store reports an endpoint).
  auto reads = std::make_shared<fault_store>(source, 0, 0);
  reads->host = "127.0.0.1:9";
  auto one_at_a_time = [](migration_options& o) { o.concurrency = concurrency_control::fixed(1); };

  SECTION("damage on the way: the second copy arrives intact") {
    auto oid = put(random_bytes(100 << 10, 12));
    reads->corrupt_streams = 1;
    migrate(reads, destination, one_at_a_time);
    CHECK(item(oid).state == item_state::copied);
    CHECK(at_destination_intact(oid));
    CHECK(reads->read_offsets.size() == 2);
    CHECK(final_progress().failed_objects == 0);
  }

  SECTION("bytes that never match: corrupt after the second copy") {
    auto oid = list(random_bytes(100 << 10, 13));
    auto wrong = objects.at(oid);
    wrong[7] ^= 0x40;
    write_file(source->object_path(oid), wrong);
    migrate(reads, destination, one_at_a_time);
    auto recorded = item(oid);
    CHECK(recorded.state == item_state::corrupt);
    REQUIRE(recorded.errors.size() == 1);
    CHECK(recorded.errors[0].code == "hash_mismatch");
    CHECK(reads->read_offsets.size() == 2);
    CHECK_FALSE(std::filesystem::exists(destination->object_path(oid)));
    CHECK(final_progress().failed_objects == 1);
  }
}

TEST_CASE_METHOD(migration_fixture,
                 "transient source and destination faults are retried until "
                 "every object arrives",
                 "[migrator]") {
  // Every object is larger than the fault thresholds, so each failing
  // stream costs exactly one attempt.
  std::vector<std::string> oids;
  for (uint32_t i = 0; i < 6; ++i)
    oids.push_back(put(random_bytes((40 << 10) + i * (30 << 10), 400 + i)));
  auto reads = std::make_shared<fault_store>(source, 0, 0);
  auto writes = std::make_shared<fault_store>(destination, 0, 0);
  SECTION("at the source") { reads = std::make_shared<fault_store>(source, 2, 16 << 10); }
  SECTION("at the destination") {
    writes = std::make_shared<fault_store>(destination, 2, 32 << 10);
  }

  // One copy at a time: the fault stores count without locks.
  migrate(reads, writes,
          [](migration_options& o) { o.concurrency = concurrency_control::fixed(1); });

  int attempts = 0;
  for (auto& oid : oids) {
    INFO(oid);
    auto recorded = item(oid);
    CHECK(recorded.state == item_state::copied);
    CHECK(at_destination_intact(oid));
    attempts += recorded.attempts;
  }
  CHECK(attempts == static_cast<int>(oids.size()) + 2);
  // One source read and one destination writer per attempt.
  CHECK(static_cast<int>(reads->read_offsets.size()) == attempts);
  CHECK(writes->opened == attempts);
  CHECK(final_progress().failed_objects == 0);
}

TEST_CASE_METHOD(migration_fixture, "a copy a crash interrupted continues where it stopped",
                 "[migrator]") {
  auto bytes = random_bytes((512 << 10) + 3, 450);
  auto oid = put(bytes);
  leave_interrupted_copy(oid, 256 << 10, 320 << 10);

  migrate(source, destination);

  CHECK(item(oid).state == item_state::copied);
  CHECK(at_destination_intact(oid));
  auto journal = journal_db::open(scratch.path / "journal", {});
  REQUIRE(journal);
  auto history = (*journal)->history(1);
  REQUIRE(history);
  REQUIRE(history->size() == 1);
  CHECK(history->front().state == transfer_state::done);
  // The partial's bytes were kept (the source's prefix only re-read).
  CHECK(history->front().resumed_from == (320 << 10));
  CHECK(history->front().attempts == 2);
}

// A resumed copy does not count the bytes it kept as moved (git-lfs's
// progress does; a migration's rate, summary and report must not).
TEST_CASE_METHOD(migration_fixture, "a resumed copy counts only the bytes it moved in this run",
                 "[migrator]") {
  auto bytes = random_bytes((512 << 10) + 3, 451);
  auto oid = put(bytes);
  const int64_t kept = 320 << 10;
  leave_interrupted_copy(oid, 256 << 10, kept);

  migrate(source, destination);

  REQUIRE(at_destination_intact(oid));
  CHECK(final_progress().moved_bytes == static_cast<int64_t>(bytes.size()) - kept);
}

TEST_CASE_METHOD(migration_fixture,
                 "a second run over a finished inventory copies nothing; a "
                 "retry of the failed ones copies only those",
                 "[migrator]") {
  auto oids = put_many(6, 500);
  auto missing = list(random_bytes(1000, 506));
  migrate(source, destination);
  auto first = inventory->totals();
  REQUIRE(first);
  REQUIRE(first->copied.objects == 6);
  REQUIRE(first->failed.objects == 1);

  reopen_inventory();
  reports->clear();
  auto watched = std::make_shared<watched_store>(destination, false);
  auto reads = std::make_shared<fault_store>(source, 0, 0);
  migrate(reads, watched);

  CHECK(watched->written().empty());
  CHECK(reads->read_offsets.empty());
  auto second = inventory->totals();
  REQUIRE(second);
  CHECK(second->copied.objects == 6);
  CHECK(second->failed.objects == 1);
  CHECK(item(missing).attempts == 1);
  auto last = final_progress();
  CHECK(last.done_objects == 7);
  CHECK(last.total_objects == 7);
  CHECK(last.failed_objects == 1);
  CHECK(last.moved_bytes == 0);

  // --retry-failed: the object that was missing has turned up since.
  write_file(source->object_path(missing), objects.at(missing));
  auto again = inventory->move_all({item_state::failed, item_state::corrupt}, item_state::pending);
  REQUIRE(again);
  CHECK(*again == 1);
  migrate(source, watched);
  CHECK(watched->written() == std::vector<std::string>{missing});
  CHECK(item(missing).state == item_state::copied);
  CHECK(item(missing).attempts == 2);
  CHECK(at_destination_intact(missing));
}

TEST_CASE_METHOD(migration_fixture, "a migration never has more copies writing than its limit",
                 "[migrator]") {
  const int limit = 3;
  auto oids = put_many(12, 600, 100 << 10);
  // The first writes wait until `limit` writers are open: the limit is
  // reached, so exceeding it would show.
  auto watched = std::make_shared<watched_store>(destination, false, limit);

  migrate(source, watched,
          [&](migration_options& o) { o.concurrency = concurrency_control::fixed(limit); });

  CHECK(watched->max_open() == limit);
  // The migrator's own count, reported first right after it started its
  // first copies, stays within the limit too.
  int most_in_flight = 0;
  {
    std::lock_guard<std::mutex> guard{*reports_mutex};
    for (auto& report : *reports)
      most_in_flight = std::max(most_in_flight, report.in_flight);
  }
  CHECK(most_in_flight == limit);
  for (auto& oid : oids) {
    CHECK(item(oid).state == item_state::copied);
    CHECK(at_destination_intact(oid));
  }
  CHECK(final_progress().done_objects == 12);
}

TEST_CASE_METHOD(migration_fixture,
                 "a destination out of space stops the migration, and the "
                 "same run finishes once there is space",
                 "[migrator]") {
  std::vector<std::string> oids;
  for (uint32_t i = 0; i < 5; ++i)
    oids.push_back(put(random_bytes((40 << 10) + i * 1000, 700 + i)));
  // Every writer finds the disk full after its first 16 KiB.
  auto full = std::make_shared<fault_store>(destination, 1000, 16 << 10);
  full->failure_code = errc::no_space;
  auto one_at_a_time = [](migration_options& o) { o.concurrency = concurrency_control::fixed(1); };
  auto chosen = options(source, full);
  one_at_a_time(chosen);
  auto ran = run_migration(std::move(chosen));

  CHECK(ran.code() == errc::no_space);
  CHECK_THAT(ran.message(), Catch::Contains("out of space while copying"));
  // One copy found the disk full; no other was tried, none became a dead letter.
  CHECK(full->opened == 1);
  auto stopped = inventory->totals();
  REQUIRE(stopped);
  CHECK(stopped->failed.objects == 0);
  CHECK(stopped->open().objects == 5);
  for (auto& oid : oids)
    CHECK_FALSE(std::filesystem::exists(destination->object_path(oid)));

  full->heal();
  migrate(source, full, one_at_a_time);
  for (auto& oid : oids) {
    CHECK(item(oid).state == item_state::copied);
    CHECK(at_destination_intact(oid));
  }
}
