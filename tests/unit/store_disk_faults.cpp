// The folder store, the transfer journal and a migration's inventory on a
// disk that fills up or fails (tests/unit/fault_fs.hpp): every failure is a
// status naming it, nothing half-written is published, and what was
// committed before is there once the disk works again.

#include "store/folder/folder_store.hpp"
#include "store/journal/journal_db.hpp"
#include "store/journal/migration_inventory.hpp"
#include "store/os/sha256.hpp"

#include <catch2/catch.hpp>

#include "fault_fs.hpp"
#include "folder_support.hpp"
#include "test_support.hpp"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using ferry::direction;
using ferry::errc;
using ferry::folder_store;
using ferry::item_state;
using ferry::journal_db;
using ferry::migration_inventory;
using ferry::object_writer;
using ferry::transfer_record;
using ferry::transfer_state;

using ferry::testing::call_recorder;
using ferry::testing::fault_call;
using ferry::testing::fault_effect;
using ferry::testing::fault_plan;
using ferry::testing::injected_fault;
using ferry::testing::make_content;
using ferry::testing::oid_of;
using ferry::testing::open_store_at;
using ferry::testing::read_object;
using ferry::testing::temp_dir;

namespace {

constexpr size_t chunk = 64 * 1024;
// Seventeen chunks, the last one short.
constexpr size_t object_size = 16 * chunk + 333;
const std::string partial_suffix = ".ferry-partial";

std::unique_ptr<object_writer> open_writer(folder_store& store, const std::string& content,
                                           bool resume) {
  auto writer = store.open_write(oid_of(content), static_cast<int64_t>(content.size()),
                                 resume ? std::optional<std::string>{""} : std::nullopt);
  INFO(writer.error().to_string());
  REQUIRE(writer.ok());
  return std::move(writer).value();
}

// Writes `content` from the writer's offset on, a chunk at a time, until
// the end or the first failure, whose status it returns.
ferry::status write_rest(object_writer& writer, const std::string& content) {
  for (auto done = static_cast<size_t>(writer.offset()); done < content.size(); done += chunk) {
    auto st = writer.write(content.data() + done, std::min(chunk, content.size() - done));
    if (!st)
      return st;
  }
  return ferry::status::success();
}

bool is_visible(folder_store& store, const std::string& oid) {
  auto info = store.stat(oid);
  REQUIRE(info.ok());
  return info->has_value();
}

// The object can be written from scratch once the disk works again.
void put_succeeds(folder_store& store, const std::string& content, bool resume) {
  auto writer = open_writer(store, content, resume);
  auto written = write_rest(*writer, content);
  INFO(written.to_string());
  REQUIRE(written.ok());
  auto committed = writer->commit();
  INFO(committed.to_string());
  REQUIRE(committed.ok());
  auto published = store.sync_published();
  REQUIRE(published.ok());
  CHECK(published->empty());
  CHECK(read_object(store, oid_of(content)) == content);
  CHECK_FALSE(fs::exists(store.partial_path(oid_of(content))));
}

struct expected_failure {
  fault_effect effect;
  errc code;
  const char* reason; // strerror's text
};

const expected_failure no_space{fault_effect::no_space, errc::no_space, "No space left on device"};
const expected_failure io_error{fault_effect::io_error, errc::io_error, "Input/output error"};

} // namespace

TEST_CASE("a failing write to a folder store is named, publishes nothing and can be resumed",
          "[disk_faults][folder]") {
  auto failure = GENERATE(no_space, io_error);
  int good_chunks = GENERATE(0, 5, 16);
  CAPTURE(failure.reason, good_chunks);
  temp_dir dir;
  auto store = open_store_at(dir.path);
  std::string content = make_content(object_size, 1);
  std::string oid = oid_of(content);
  {
    injected_fault disk{{fault_call::write, partial_suffix, failure.effect, good_chunks}};
    auto writer = open_writer(*store, content, false);
    auto written = write_rest(*writer, content);
    CHECK(disk.faults() == 1);
    CHECK(written.code() == failure.code);
    CHECK_THAT(written.message(), Catch::Contains(failure.reason) &&
                                    Catch::Contains(store->partial_path(oid).string()));
    // The writer counts what reached the file, nothing more.
    CHECK(writer->offset() == static_cast<int64_t>(good_chunks * chunk));
    CHECK_FALSE(is_visible(*store, oid));
    CHECK_FALSE(fs::exists(store->object_path(oid)));
    // Dropped without commit, as the transfer does: the bytes stay for a resume.
  }
  CHECK(fs::file_size(store->partial_path(oid)) == good_chunks * chunk);
  auto writer = open_writer(*store, content, true);
  CHECK(writer->offset() == static_cast<int64_t>(good_chunks * chunk));
  writer.reset();
  put_succeeds(*store, content, true);
}

TEST_CASE("short writes to a folder store are written to the end", "[disk_faults][folder]") {
  int at = GENERATE(0, 7, 16);
  // 0: every write from there on stores only half of its bytes.
  int times = GENERATE(1, 0);
  CAPTURE(at, times);
  temp_dir dir;
  auto store = open_store_at(dir.path);
  std::string content = make_content(object_size, 2);
  injected_fault disk{{fault_call::write, partial_suffix, fault_effect::short_write, at, times}};
  put_succeeds(*store, content, false);
  CHECK(disk.faults() >= 1);
}

TEST_CASE("a write that runs out of space part-way keeps the writer in step with its file",
          "[disk_faults][folder]") {
  int good_chunks = GENERATE(0, 9);
  CAPTURE(good_chunks);
  temp_dir dir;
  auto store = open_store_at(dir.path);
  std::string content = make_content(object_size, 3);
  std::string oid = oid_of(content);
  const auto stored = static_cast<int64_t>(good_chunks * chunk + chunk / 2);
  {
    // Half of one chunk still fits; writing the rest of it finds the disk full.
    injected_fault last_bytes{
      {fault_call::write, partial_suffix, fault_effect::short_write, good_chunks, 1}};
    injected_fault full{
      {fault_call::write, partial_suffix, fault_effect::no_space, good_chunks + 1}};
    auto writer = open_writer(*store, content, false);
    auto written = write_rest(*writer, content);
    CHECK(written.code() == errc::no_space);
    CHECK(last_bytes.faults() == 1);
    CHECK(full.faults() == 1);
    CHECK(writer->offset() == stored);
    CHECK(static_cast<int64_t>(fs::file_size(store->partial_path(oid))) == stored);
    CHECK_FALSE(is_visible(*store, oid));
  }
  auto writer = open_writer(*store, content, true);
  CHECK(writer->offset() == stored);
  writer.reset();
  put_succeeds(*store, content, true);
}

TEST_CASE("a failed sync of a partial file discards it", "[disk_faults][folder]") {
  // After a failed fsync the kernel may have dropped the pages it could not
  // write, while a read still finds them cached: the file's bytes can no
  // longer be trusted, so a resume must not build on them.
  auto failure = GENERATE(no_space, io_error);
  CAPTURE(failure.reason);
  temp_dir dir;
  auto store = open_store_at(dir.path);
  std::string content = make_content(object_size, 4);
  std::string oid = oid_of(content);
  {
    injected_fault disk{{fault_call::sync, partial_suffix, failure.effect}};
    auto writer = open_writer(*store, content, false);
    REQUIRE(writer->write(content.data(), content.size() / 2).ok());
    auto synced = writer->sync();
    REQUIRE_FALSE(synced.ok());
    CHECK(disk.faults() == 1);
    CHECK(synced.error().code() == failure.code);
    CHECK_THAT(synced.error().message(),
               Catch::Contains("cannot sync") && Catch::Contains(failure.reason));
    CHECK_FALSE(fs::exists(store->partial_path(oid)));
    CHECK_FALSE(writer->write(content.data(), 1).ok());
  }
  auto writer = open_writer(*store, content, true);
  CHECK(writer->offset() == 0);
  writer.reset();
  put_succeeds(*store, content, true);
}

TEST_CASE("a failed sync of a group's bytes publishes none of it", "[disk_faults][folder]") {
  auto failure = GENERATE(no_space, io_error);
  CAPTURE(failure.reason);
  temp_dir dir;
  auto store = open_store_at(dir.path);
  std::string content = make_content(object_size, 5);
  std::string oid = oid_of(content);
  {
    injected_fault disk{{fault_call::sync, dir.path.string(), failure.effect}};
    auto writer = open_writer(*store, content, false);
    REQUIRE(write_rest(*writer, content).ok());
    REQUIRE(writer->commit().ok());
    CHECK_FALSE(is_visible(*store, oid));
    auto published = store->sync_published();
    CHECK(disk.faults() == 1);
    REQUIRE_FALSE(published.ok());
    CHECK(published.error().code() == failure.code);
    CHECK_THAT(published.error().message(), Catch::Contains(failure.reason));
    CHECK_FALSE(is_visible(*store, oid));
    CHECK_FALSE(fs::exists(store->partial_path(oid)));
  }
  put_succeeds(*store, content, false);
}

TEST_CASE("a failed sync of the published names is reported, and the next sync tries again",
          "[disk_faults][folder]") {
  temp_dir dir;
  auto store = open_store_at(dir.path);
  std::string content = make_content(object_size, 6);
  std::string oid = oid_of(content);
  auto writer = open_writer(*store, content, false);
  REQUIRE(write_rest(*writer, content).ok());
  REQUIRE(writer->commit().ok());
  {
    // The bytes' sync passes, the names' sync fails.
    injected_fault disk{{fault_call::sync, dir.path.string(), fault_effect::io_error, 1}};
    auto published = store->sync_published();
    CHECK(disk.faults() == 1);
    REQUIRE_FALSE(published.ok());
    CHECK(published.error().code() == errc::io_error);
    CHECK_THAT(published.error().message(),
               Catch::Contains("cannot sync the filesystem of store folder"));
  }
  {
    call_recorder calls;
    CHECK(store->sync_published().ok());
    CHECK(store->sync_published().ok()); // nothing new published: no second sync
    auto seen = calls.calls();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].what == "syncfs");
    CHECK(seen[0].result == 0);
  }
  // The object was whole and synced before its name changed.
  CHECK(read_object(*store, oid) == content);
}

TEST_CASE("a folder publishes a group with two filesystem syncs: the bytes, then the names",
          "[disk_faults][folder]") {
  temp_dir dir;
  auto store = open_store_at(dir.path);
  std::vector<std::string> oids;
  call_recorder calls;
  for (uint32_t seed = 10; seed < 13; ++seed) {
    std::string content = make_content(object_size, seed);
    oids.push_back(oid_of(content));
    auto writer = open_writer(*store, content, false);
    REQUIRE(write_rest(*writer, content).ok());
    REQUIRE(writer->commit().ok());
    // Committed, not yet published.
    CHECK_FALSE(is_visible(*store, oids.back()));
  }
  auto published = store->sync_published();
  REQUIRE(published.ok());
  CHECK(published->empty());
  auto seen = calls.calls();
  REQUIRE(seen.size() == 5);
  CHECK(seen[0].what == "syncfs");
  for (size_t i = 0; i < oids.size(); ++i) {
    CHECK(seen[1 + i].what == "renameat");
    CHECK(seen[1 + i].path == store->object_path(oids[i]).string());
  }
  CHECK(seen[4].what == "syncfs");
  for (auto& oid : oids)
    CHECK(is_visible(*store, oid));
}

TEST_CASE("a lone object syncs its own file, then its name with the filesystem",
          "[disk_faults][folder]") {
  temp_dir dir;
  auto store = open_store_at(dir.path);
  std::string content = make_content(object_size, 14);
  std::string oid = oid_of(content);
  call_recorder calls;
  auto writer = open_writer(*store, content, false);
  REQUIRE(write_rest(*writer, content).ok());
  REQUIRE(writer->commit().ok());
  auto published = store->sync_published();
  REQUIRE(published.ok());
  auto seen = calls.calls();
  REQUIRE(seen.size() == 3);
  CHECK(seen[0].what == "fsync");
  CHECK_THAT(seen[0].path, Catch::EndsWith(partial_suffix));
  CHECK(seen[1].what == "renameat");
  CHECK(seen[1].path == store->object_path(oid).string());
  CHECK(seen[2].what == "syncfs");
  CHECK(read_object(*store, oid) == content);
}

TEST_CASE("an object whose partial file was replaced is not published, the rest of its group is",
          "[disk_faults][folder]") {
  temp_dir dir;
  auto store = open_store_at(dir.path);
  std::string replaced = make_content(object_size, 20);
  std::string kept = make_content(object_size, 21);
  for (auto* content : {&replaced, &kept}) {
    auto writer = open_writer(*store, *content, false);
    REQUIRE(write_rest(*writer, *content).ok());
    REQUIRE(writer->commit().ok());
  }
  auto partial = store->partial_path(oid_of(replaced));
  fs::remove(partial);
  std::ofstream{partial} << "something else";
  auto published = store->sync_published();
  REQUIRE(published.ok());
  REQUIRE(published->size() == 1);
  CHECK((*published)[0].first == oid_of(replaced));
  CHECK_THAT((*published)[0].second.message(), Catch::Contains("removed or replaced"));
  CHECK_FALSE(is_visible(*store, oid_of(replaced)));
  CHECK(read_object(*store, oid_of(kept)) == kept);
}

// ---- the transfer journal -------------------------------------------------------

namespace {

std::string numbered_oid(int n) {
  std::string hex = std::to_string(n);
  return std::string(64 - hex.size(), '0') + hex;
}

transfer_record numbered_record(int n, transfer_state state) {
  transfer_record r;
  r.oid = numbered_oid(n);
  r.dir = direction::upload;
  r.size = 1000 + n;
  r.state = state;
  r.committed = n;
  r.attempts = 1;
  r.backend = "folder:/srv/lfs";
  r.created_ms = 100 + n;
  r.updated_ms = 200 + n;
  if (r.finished())
    r.finished_ms = 300 + n;
  return r;
}

std::unique_ptr<journal_db> open_journal(const fs::path& dir) {
  auto db = journal_db::open(dir, {});
  INFO(db.error().to_string());
  REQUIRE(db.ok());
  return std::move(db).value();
}

// Records 1 to 3 active, record 4 finished.
void commit_some(journal_db& db) {
  for (int n = 1; n <= 3; ++n)
    REQUIRE(db.put(numbered_record(n, transfer_state::in_flight)).ok());
  REQUIRE(db.finish(numbered_record(4, transfer_state::done)).ok());
}

// What commit_some() wrote is all there, and the journal takes writes.
void check_committed(const fs::path& dir) {
  auto db = open_journal(dir);
  for (int n = 1; n <= 3; ++n) {
    auto got = db->get(direction::upload, numbered_oid(n));
    REQUIRE(got.ok());
    REQUIRE(got->has_value());
    CHECK(got->value().committed == n);
  }
  auto history = db->history(10);
  REQUIRE(history.ok());
  REQUIRE(history->size() == 1);
  CHECK(history->front().oid == numbered_oid(4));
  REQUIRE(db->put(numbered_record(6, transfer_state::queued)).ok());
  db.reset();
  auto again = open_journal(dir);
  auto got = again->get(direction::upload, numbered_oid(6));
  REQUIRE(got.ok());
  CHECK(got->has_value());
}

} // namespace

TEST_CASE("a journal that cannot write fails the write and reopens with what was committed",
          "[disk_faults][journal]") {
  auto failure = GENERATE(no_space, io_error);
  auto call = GENERATE(fault_call::write, fault_call::sync);
  CAPTURE(failure.reason, call == fault_call::write ? "write" : "sync");
  temp_dir tmp;
  fs::path dir = tmp.path / "journal";
  {
    auto db = open_journal(dir);
    commit_some(*db);
    injected_fault disk{{call, dir.string(), failure.effect}};
    auto put = db->put(numbered_record(5, transfer_state::queued));
    CHECK(disk.faults() >= 1);
    CHECK(put.code() == failure.code);
    CHECK_THAT(put.message(),
               Catch::Contains("journal " + dir.string()) && Catch::Contains(failure.reason));
    CHECK_FALSE(db->finish(numbered_record(1, transfer_state::done)).ok());
    // Closed while the disk is still failing, as a process that gives up.
    db.reset();
    auto reopened = journal_db::open(dir, {});
    CHECK_FALSE(reopened.ok());
    CHECK(reopened.error().code() == failure.code);
    CHECK_THAT(reopened.error().message(), Catch::Contains("cannot open journal " + dir.string()));
  }
  check_committed(dir);
}

TEST_CASE("a journal record torn by a full disk is dropped on reopen", "[disk_faults][journal]") {
  temp_dir tmp;
  fs::path dir = tmp.path / "journal";
  {
    auto db = open_journal(dir);
    commit_some(*db);
    injected_fault torn{{fault_call::write, dir.string(), fault_effect::short_write, 0, 1}};
    injected_fault full{{fault_call::write, dir.string(), fault_effect::no_space, 1}};
    auto put = db->put(numbered_record(5, transfer_state::queued));
    CHECK(torn.faults() == 1);
    CHECK(put.code() == errc::no_space);
  }
  check_committed(dir);
  auto db = open_journal(dir);
  auto torn = db->get(direction::upload, numbered_oid(5));
  REQUIRE(torn.ok());
  CHECK_FALSE(torn->has_value());
}

// ---- a migration's inventory ------------------------------------------------------

namespace {

const std::string identity = "file:///src -> file:///dst";

std::unique_ptr<migration_inventory> open_inventory(const fs::path& dir) {
  auto inventory = migration_inventory::open(dir, identity);
  INFO(inventory.error().to_string());
  REQUIRE(inventory.ok());
  return std::move(inventory).value();
}

std::vector<ferry::object_info> listing(int count) {
  std::vector<ferry::object_info> objects;
  for (int n = 0; n < count; ++n)
    objects.push_back({numbered_oid(n), 100 + n});
  return objects;
}

} // namespace

TEST_CASE("an inventory that cannot write fails the write and reopens with what was committed",
          "[disk_faults][inventory]") {
  auto failure = GENERATE(no_space, io_error);
  CAPTURE(failure.reason);
  temp_dir tmp;
  fs::path dir = tmp.path / "inventory";
  {
    auto inventory = open_inventory(dir);
    REQUIRE(inventory->begin_run().ok());
    REQUIRE(inventory->add(listing(20)).ok());
    REQUIRE(inventory->set_state(numbered_oid(1), item_state::copied, 1).ok());

    injected_fault disk{{fault_call::write, dir.string(), failure.effect}};
    auto recorded = inventory->set_state(numbered_oid(2), item_state::copied, 1);
    CHECK(disk.faults() >= 1);
    CHECK(recorded.code() == failure.code);
    CHECK_THAT(recorded.message(),
               Catch::Contains(dir.string()) && Catch::Contains(failure.reason));
    auto added = inventory->add(listing(30));
    REQUIRE_FALSE(added.ok());
    CHECK(added.error().code() == failure.code);
    inventory.reset();
    auto reopened = migration_inventory::open(dir, identity);
    CHECK_FALSE(reopened.ok());
    CHECK(reopened.error().code() == failure.code);
  }
  auto inventory = open_inventory(dir);
  auto totals = inventory->totals();
  REQUIRE(totals.ok());
  CHECK(totals->all().objects == 20);
  CHECK(totals->copied.objects == 1);
  auto copied = inventory->get(numbered_oid(1));
  REQUIRE(copied.ok());
  REQUIRE(copied->has_value());
  CHECK(copied->value().state == item_state::copied);
  // The run number survived: the next run is the second.
  auto run = inventory->begin_run();
  REQUIRE(run.ok());
  CHECK(*run == 2);
  REQUIRE(inventory->set_state(numbered_oid(2), item_state::copied, 1).ok());
}

TEST_CASE("an inventory that cannot be created on a full disk can be once there is space",
          "[disk_faults][inventory]") {
  temp_dir tmp;
  fs::path dir = tmp.path / "inventory";
  {
    injected_fault disk{{fault_call::write, dir.string(), fault_effect::no_space}};
    auto opened = migration_inventory::open(dir, identity);
    CHECK(disk.faults() >= 1);
    REQUIRE_FALSE(opened.ok());
    CHECK(opened.error().code() == errc::no_space);
    CHECK_THAT(opened.error().message(), Catch::Contains(dir.string()));
  }
  // What the failed open left is no other migration's journal.
  auto inventory = open_inventory(dir);
  REQUIRE(inventory->begin_run().ok());
  auto added = inventory->add(listing(3));
  REQUIRE(added.ok());
  CHECK(*added == 3);
}
