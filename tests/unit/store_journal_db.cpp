#include "store/journal/journal_db.hpp"
#include "store/journal/rocksdb_support.hpp"

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <rocksdb/db.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;
using ferry::direction;
using ferry::errc;
using ferry::journal_db;
using ferry::transfer_record;
using ferry::transfer_state;

using ferry::testing::temp_dir;

namespace {

std::string oid_of(int n) {
  std::string hex = std::to_string(n);
  return std::string(64 - hex.size(), '0') + hex;
}

transfer_record make_record(int n, transfer_state state, direction dir = direction::upload) {
  transfer_record r;
  r.oid = oid_of(n);
  r.dir = dir;
  r.size = 1000 + n;
  r.state = state;
  r.committed = n;
  r.attempts = 1;
  r.backend = "folder:/srv/lfs";
  r.path = "/tmp/object-" + std::to_string(n);
  r.created_ms = 100 + n;
  r.updated_ms = 200 + n;
  if (state == transfer_state::done || state == transfer_state::failed)
    r.finished_ms = 300 + n;
  return r;
}

std::unique_ptr<journal_db> open_journal(const fs::path& dir, journal_db::options opts = {}) {
  auto db = journal_db::open(dir, opts);
  if (!db.ok())
    FAIL("open failed: " << db.error().to_string());
  return std::move(db).value();
}

// Every key/value in the journal, read with a raw RocksDB handle.
std::map<std::string, std::string> raw_contents(const fs::path& dir) {
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::OpenForReadOnly(rocksdb::Options{}, dir.string(), &raw);
  REQUIRE(s.ok());
  std::unique_ptr<rocksdb::DB> db{raw};
  std::map<std::string, std::string> out;
  std::unique_ptr<rocksdb::Iterator> it{db->NewIterator(rocksdb::ReadOptions{})};
  for (it->SeekToFirst(); it->Valid(); it->Next())
    out[it->key().ToString()] = it->value().ToString();
  REQUIRE(it->status().ok());
  return out;
}

// Writes values behind the journal's back, as a damaged disk or a buggy
// older version would.
void raw_put(const fs::path& dir, const std::string& key, const std::string& value) {
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(rocksdb::Options{}, dir.string(), &raw);
  REQUIRE(s.ok());
  std::unique_ptr<rocksdb::DB> db{raw};
  REQUIRE(db->Put(rocksdb::WriteOptions{}, key, value).ok());
}

} // namespace

TEST_CASE("journal put/get round-trips active records", "[journal]") {
  temp_dir tmp;
  fs::path dir = tmp.path / "nested" / "journal";
  auto db = open_journal(dir);
  CHECK(fs::is_directory(dir));

  auto missing = db->get(direction::upload, oid_of(1));
  REQUIRE(missing.ok());
  CHECK_FALSE(missing->has_value());

  auto up = make_record(1, transfer_state::queued, direction::upload);
  auto down = make_record(1, transfer_state::in_flight, direction::download);
  down.add_error({5, "io_error", "first try failed"});
  REQUIRE(db->put(up).ok());
  REQUIRE(db->put(down).ok());

  auto got_up = db->get(direction::upload, up.oid);
  REQUIRE(got_up.ok());
  REQUIRE(got_up->has_value());
  CHECK(got_up->value().state == transfer_state::queued);
  CHECK(got_up->value().committed == 1);

  auto got_down = db->get(direction::download, up.oid);
  REQUIRE(got_down.ok());
  REQUIRE(got_down->has_value());
  CHECK(got_down->value().state == transfer_state::in_flight);
  REQUIRE(got_down->value().errors.size() == 1);
  CHECK(got_down->value().errors[0].message == "first try failed");

  // put() replaces.
  up.state = transfer_state::in_flight;
  up.committed = 999;
  REQUIRE(db->put(up).ok());
  got_up = db->get(direction::upload, up.oid);
  REQUIRE(got_up.ok());
  REQUIRE(got_up->has_value());
  CHECK(got_up->value().state == transfer_state::in_flight);
  CHECK(got_up->value().committed == 999);

  auto all = db->active();
  REQUIRE(all.ok());
  CHECK(all->size() == 2);

  db.reset();
  auto raw = raw_contents(dir);
  CHECK(raw.count("a/u/" + up.oid) == 1);
  CHECK(raw.count("a/d/" + up.oid) == 1);
}

TEST_CASE("journal put and finish reject wrong states and bad oids", "[journal]") {
  temp_dir tmp;
  auto db = open_journal(tmp.path);

  for (auto state : {transfer_state::done, transfer_state::failed}) {
    auto s = db->put(make_record(1, state));
    CHECK(s.code() == errc::internal);
    CHECK_THAT(s.message(), Catch::Contains("finish()"));
  }
  for (auto state : {transfer_state::queued, transfer_state::in_flight}) {
    auto s = db->finish(make_record(1, state));
    CHECK(s.code() == errc::internal);
  }
  for (std::string bad : {std::string{}, std::string(63, 'a'), std::string(64, 'A'),
                          std::string(64, 'g'), "../" + std::string(61, 'a')}) {
    auto queued = make_record(1, transfer_state::queued);
    queued.oid = bad;
    CHECK(db->put(queued).code() == errc::invalid_request);
    auto done = make_record(1, transfer_state::done);
    done.oid = bad;
    CHECK(db->finish(done).code() == errc::invalid_request);
  }
  // Nothing was written by the rejected calls.
  auto all = db->active();
  REQUIRE(all.ok());
  CHECK(all->empty());
  auto hist = db->history(10);
  REQUIRE(hist.ok());
  CHECK(hist->empty());
}

TEST_CASE("journal finish moves records to history, newest first", "[journal]") {
  temp_dir tmp;
  auto db = open_journal(tmp.path);
  for (int n = 1; n <= 4; ++n)
    REQUIRE(db->put(make_record(n, transfer_state::in_flight)).ok());

  REQUIRE(db->finish(make_record(3, transfer_state::done)).ok());
  REQUIRE(db->finish(make_record(1, transfer_state::failed)).ok());
  REQUIRE(db->finish(make_record(4, transfer_state::done)).ok());

  auto all = db->active();
  REQUIRE(all.ok());
  REQUIRE(all->size() == 1);
  CHECK(all->at(0).oid == oid_of(2));
  auto gone = db->get(direction::upload, oid_of(3));
  REQUIRE(gone.ok());
  CHECK_FALSE(gone->has_value());

  auto hist = db->history(10);
  REQUIRE(hist.ok());
  REQUIRE(hist->size() == 3);
  CHECK(hist->at(0).oid == oid_of(4));
  CHECK(hist->at(1).oid == oid_of(1));
  CHECK(hist->at(1).state == transfer_state::failed);
  CHECK(hist->at(2).oid == oid_of(3));

  auto two = db->history(2);
  REQUIRE(two.ok());
  REQUIRE(two->size() == 2);
  CHECK(two->at(0).oid == oid_of(4));
  CHECK(two->at(1).oid == oid_of(1));

  auto none = db->history(0);
  REQUIRE(none.ok());
  CHECK(none->empty());
}

TEST_CASE("journal history is pruned to the limit and seq survives reopen", "[journal]") {
  temp_dir tmp;
  {
    auto db = open_journal(tmp.path, {3, false});
    for (int n = 1; n <= 10; ++n)
      REQUIRE(db->finish(make_record(n, transfer_state::done)).ok());
    auto hist = db->history(100);
    REQUIRE(hist.ok());
    REQUIRE(hist->size() == 3);
    CHECK(hist->at(0).oid == oid_of(10));
    CHECK(hist->at(1).oid == oid_of(9));
    CHECK(hist->at(2).oid == oid_of(8));
  }
  auto raw = raw_contents(tmp.path);
  CHECK(raw.size() == 4);
  CHECK(raw.count("h/00000000000000000008") == 1);
  CHECK(raw.count("h/00000000000000000010") == 1);
  CHECK(raw["m/seq"] == "11");

  {
    // A larger limit after reopen: a reused seq would overwrite or sort
    // below the old entries.
    auto db = open_journal(tmp.path, {100, false});
    REQUIRE(db->finish(make_record(11, transfer_state::failed)).ok());
    auto hist = db->history(100);
    REQUIRE(hist.ok());
    REQUIRE(hist->size() == 4);
    CHECK(hist->at(0).oid == oid_of(11));
    CHECK(hist->at(1).oid == oid_of(10));
    CHECK(hist->at(3).oid == oid_of(8));
  }
  raw = raw_contents(tmp.path);
  CHECK(raw.count("h/00000000000000000011") == 1);
  CHECK(raw["m/seq"] == "12");

  {
    // A smaller limit prunes everything beyond it when the journal opens.
    auto db = open_journal(tmp.path, {2, false});
    auto before = db->history(100);
    REQUIRE(before.ok());
    REQUIRE(before->size() == 2);
    CHECK(before->at(0).oid == oid_of(11));
    REQUIRE(db->finish(make_record(12, transfer_state::done)).ok());
    auto hist = db->history(100);
    REQUIRE(hist.ok());
    REQUIRE(hist->size() == 2);
    CHECK(hist->at(0).oid == oid_of(12));
    CHECK(hist->at(1).oid == oid_of(11));
  }
}

TEST_CASE("journal with history_limit 0 keeps no history", "[journal]") {
  temp_dir tmp;
  auto db = open_journal(tmp.path, {0, false});
  REQUIRE(db->put(make_record(1, transfer_state::in_flight)).ok());
  REQUIRE(db->finish(make_record(1, transfer_state::done)).ok());
  auto all = db->active();
  REQUIRE(all.ok());
  CHECK(all->empty());
  auto hist = db->history(10);
  REQUIRE(hist.ok());
  CHECK(hist->empty());
}

TEST_CASE("journal recover requeues in_flight records left by a crash", "[journal]") {
  temp_dir tmp;
  auto a = make_record(1, transfer_state::in_flight);
  a.committed = 4096;
  a.attempts = 2;
  a.add_error({10, "io_error", "connection reset"});
  auto b = make_record(2, transfer_state::in_flight, direction::download);
  b.committed = 123;
  auto c = make_record(3, transfer_state::queued);
  {
    auto db = open_journal(tmp.path);
    REQUIRE(db->put(a).ok());
    REQUIRE(db->put(b).ok());
    REQUIRE(db->put(c).ok());
    // Destroyed without finish(): the process died mid-transfer.
  }
  int64_t before = ferry::now_ms();
  auto db = open_journal(tmp.path);
  auto recovered = db->recover();
  REQUIRE(recovered.ok());
  REQUIRE(recovered->size() == 2);
  for (const auto& r : recovered.value()) {
    CHECK(r.state == transfer_state::queued);
    CHECK(r.updated_ms >= before);
    auto stored = db->get(r.dir, r.oid);
    REQUIRE(stored.ok());
    REQUIRE(stored->has_value());
    CHECK(stored->value().state == transfer_state::queued);
    CHECK(stored->value().committed == r.committed);
  }
  auto got_a = db->get(direction::upload, a.oid);
  REQUIRE(got_a.ok());
  REQUIRE(got_a->has_value());
  CHECK(got_a->value().committed == 4096);
  CHECK(got_a->value().attempts == 2);
  REQUIRE(got_a->value().errors.size() == 1);
  CHECK(got_a->value().errors[0].message == "connection reset");
  auto got_b = db->get(direction::download, b.oid);
  REQUIRE(got_b.ok());
  REQUIRE(got_b->has_value());
  CHECK(got_b->value().committed == 123);
  auto got_c = db->get(direction::upload, c.oid);
  REQUIRE(got_c.ok());
  REQUIRE(got_c->has_value());
  CHECK(got_c->value().updated_ms == c.updated_ms); // queued records are left alone

  auto again = db->recover();
  REQUIRE(again.ok());
  CHECK(again->empty());
}

TEST_CASE("journal records survive the writer being killed", "[journal]") {
  temp_dir tmp;
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // No destructors, no clean close: SIGKILL right after the writes return.
    auto db = journal_db::open(tmp.path, {});
    if (!db.ok())
      _exit(2);
    auto r = make_record(7, transfer_state::in_flight);
    r.committed = 777;
    if (!db.value()->put(r).ok() || !db.value()->finish(make_record(8, transfer_state::done)).ok())
      _exit(3);
    raise(SIGKILL);
    _exit(4);
  }
  int wstatus = 0;
  REQUIRE(waitpid(child, &wstatus, 0) == child);
  REQUIRE(WIFSIGNALED(wstatus));
  REQUIRE(WTERMSIG(wstatus) == SIGKILL);

  auto db = open_journal(tmp.path);
  auto recovered = db->recover();
  REQUIRE(recovered.ok());
  REQUIRE(recovered->size() == 1);
  CHECK(recovered->at(0).oid == oid_of(7));
  CHECK(recovered->at(0).committed == 777);
  auto hist = db->history(10);
  REQUIRE(hist.ok());
  REQUIRE(hist->size() == 1);
  CHECK(hist->at(0).oid == oid_of(8));
}

TEST_CASE("journal opens read-only beside a writer", "[journal]") {
  temp_dir tmp;
  auto writer = open_journal(tmp.path);
  REQUIRE(writer->put(make_record(1, transfer_state::in_flight)).ok());
  REQUIRE(writer->finish(make_record(2, transfer_state::done)).ok());

  auto reader = open_journal(tmp.path, {1000, true});
  auto all = reader->active();
  REQUIRE(all.ok());
  REQUIRE(all->size() == 1);
  CHECK(all->at(0).oid == oid_of(1));
  auto hist = reader->history(10);
  REQUIRE(hist.ok());
  REQUIRE(hist->size() == 1);
  CHECK(hist->at(0).oid == oid_of(2));

  // A reader never writes.
  CHECK(reader->put(make_record(3, transfer_state::queued)).code() == errc::internal);
  CHECK(reader->finish(make_record(1, transfer_state::done)).code() == errc::internal);
  CHECK(reader->recover().error().code() == errc::internal);
  auto still = writer->get(direction::upload, oid_of(1));
  REQUIRE(still.ok());
  REQUIRE(still->has_value());
  CHECK(still->value().state == transfer_state::in_flight);
}

TEST_CASE("journal read-only open of a missing journal is not_found", "[journal]") {
  temp_dir tmp;
  fs::path dir = tmp.path / "absent";
  auto db = journal_db::open(dir, {1000, true});
  REQUIRE_FALSE(db.ok());
  CHECK(db.error().code() == errc::not_found);
  CHECK(db.error().message() == "no journal at " + dir.string() + " yet");
  CHECK_FALSE(fs::exists(dir));
}

TEST_CASE("journal second writer in the same process is busy", "[journal]") {
  temp_dir tmp;
  auto first = open_journal(tmp.path);
  auto second = journal_db::open(tmp.path, {});
  REQUIRE_FALSE(second.ok());
  CHECK(second.error().code() == errc::busy);
  CHECK(second.error().message() ==
        "journal " + tmp.path.string() + " is in use by another ferry process");
  first.reset();
  auto third = journal_db::open(tmp.path, {});
  CHECK(third.ok());
}

TEST_CASE("journal held by another process is busy", "[journal]") {
  temp_dir tmp;
  int ready[2];
  int release[2];
  REQUIRE(pipe(ready) == 0);
  REQUIRE(pipe(release) == 0);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    close(ready[0]);
    close(release[1]);
    auto db = journal_db::open(tmp.path, {});
    char byte = db.ok() ? 'y' : 'n';
    if (write(ready[1], &byte, 1) != 1)
      _exit(2);
    // Hold the journal until the parent closes its end.
    while (read(release[0], &byte, 1) > 0) {
    }
    _exit(0);
  }
  close(ready[1]);
  close(release[0]);
  char byte = 0;
  REQUIRE(read(ready[0], &byte, 1) == 1);
  REQUIRE(byte == 'y');

  auto db = journal_db::open(tmp.path, {});
  close(release[1]);
  int wstatus = 0;
  REQUIRE(waitpid(child, &wstatus, 0) == child);
  close(ready[0]);
  REQUIRE_FALSE(db.ok());
  CHECK(db.error().code() == errc::busy);
  CHECK_THAT(db.error().message(), Catch::Contains("in use by another ferry process"));

  // Once the other process is gone the journal opens again.
  auto after = journal_db::open(tmp.path, {});
  CHECK(after.ok());
}

TEST_CASE("journal reports corrupt values without crashing", "[journal]") {
  temp_dir tmp;
  auto good = make_record(1, transfer_state::queued);
  {
    auto db = open_journal(tmp.path);
    REQUIRE(db->put(good).ok());
    REQUIRE(db->finish(make_record(5, transfer_state::done)).ok());
  }

  SECTION("unreadable active value") {
    std::string key = "a/u/" + oid_of(2);
    raw_put(tmp.path, key, "not json {");
    auto db = open_journal(tmp.path);
    auto got = db->get(direction::upload, oid_of(2));
    REQUIRE_FALSE(got.ok());
    CHECK(got.error().code() == errc::corrupt_record);
    CHECK_THAT(got.error().message(), Catch::Contains(key));
    CHECK_THAT(got.error().message(), Catch::Contains("not valid JSON"));
    // One bad record fails the listing rather than silently dropping it.
    auto all = db->active();
    REQUIRE_FALSE(all.ok());
    CHECK(all.error().code() == errc::corrupt_record);
    CHECK_THAT(all.error().message(), Catch::Contains(key));
    auto recovered = db->recover();
    REQUIRE_FALSE(recovered.ok());
    CHECK(recovered.error().code() == errc::corrupt_record);
    // Other records stay readable.
    auto other = db->get(direction::upload, good.oid);
    REQUIRE(other.ok());
    CHECK(other->has_value());
  }

  SECTION("active value from a newer ferry") {
    std::string bytes = ferry::encode(make_record(2, transfer_state::queued));
    bytes.replace(0, 6, "{\"v\":9");
    raw_put(tmp.path, "a/u/" + oid_of(2), bytes);
    auto db = open_journal(tmp.path);
    auto all = db->active();
    REQUIRE_FALSE(all.ok());
    CHECK(all.error().code() == errc::corrupt_record);
    CHECK_THAT(all.error().message(),
               Catch::Contains("unsupported journal record format version 9"));
  }

  SECTION("active value stored under another object's key") {
    std::string key = "a/d/" + oid_of(2);
    raw_put(tmp.path, key, ferry::encode(make_record(3, transfer_state::in_flight)));
    auto db = open_journal(tmp.path);
    auto got = db->get(direction::download, oid_of(2));
    REQUIRE_FALSE(got.ok());
    CHECK(got.error().code() == errc::corrupt_record);
    CHECK_THAT(got.error().message(), Catch::Contains(key));
    auto recovered = db->recover();
    REQUIRE_FALSE(recovered.ok());
    CHECK(recovered.error().code() == errc::corrupt_record);
  }

  SECTION("unreadable history value") {
    raw_put(tmp.path, "h/00000000000000000001", "\xFF\xFF");
    auto db = open_journal(tmp.path);
    auto hist = db->history(10);
    REQUIRE_FALSE(hist.ok());
    CHECK(hist.error().code() == errc::corrupt_record);
    CHECK_THAT(hist.error().message(), Catch::Contains("h/00000000000000000001"));
  }

  SECTION("unreadable sequence counter") {
    raw_put(tmp.path, "m/seq", "twelve");
    auto db = journal_db::open(tmp.path, {});
    REQUIRE_FALSE(db.ok());
    CHECK(db.error().code() == errc::corrupt_record);
    CHECK_THAT(db.error().message(), Catch::Contains("m/seq"));
  }
}

TEST_CASE("journal open fails cleanly where no directory can be made", "[journal]") {
  temp_dir tmp;
  fs::path file = tmp.path / "plain-file";
  {
    std::FILE* f = std::fopen(file.c_str(), "w");
    REQUIRE(f != nullptr);
    std::fclose(f);
  }
  auto db = journal_db::open(file / "journal", {});
  REQUIRE_FALSE(db.ok());
  CHECK(db.error().code() == errc::io_error);
  CHECK_THAT(db.error().message(), Catch::Contains(file.string()));
}

TEST_CASE("journal put with deferred durability is read back at once", "[journal]") {
  temp_dir tmp;
  auto db = open_journal(tmp.path);
  transfer_record record;
  record.dir = direction::upload;
  record.oid = std::string(64, 'c');
  record.size = 5;
  record.state = transfer_state::in_flight;
  REQUIRE(db->put(record, journal_db::durability::deferred).ok());
  auto read = db->get(direction::upload, record.oid);
  REQUIRE(read.ok());
  REQUIRE(read->has_value());
  CHECK((*read)->size == 5);
}

TEST_CASE("a journal RocksDB calls corrupt is set aside whole and a new one opens", "[journal]") {
  temp_dir tmp;
  fs::path dir = tmp.path / "journal";
  {
    auto db = open_journal(dir);
    REQUIRE(db->put(make_record(1, transfer_state::queued)).ok());
  }
  // Garbage over the start of every manifest, as a failing disk leaves it.
  int overwritten = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().rfind("MANIFEST-", 0) != 0)
      continue;
    std::ofstream{entry.path(), std::ios::binary | std::ios::trunc} << std::string(4096, 'Z');
    ++overwritten;
  }
  REQUIRE(overwritten > 0);
  auto damaged = journal_db::open(dir, {});
  REQUIRE_FALSE(damaged.ok());
  REQUIRE(damaged.error().code() == errc::corrupt_record);

  auto aside = ferry::set_aside_damaged(dir);
  REQUIRE(aside.ok());
  CHECK_FALSE(fs::exists(dir));
  CHECK_THAT(aside->filename().string(), Catch::StartsWith("journal.damaged-"));
  CHECK(fs::exists(*aside / "CURRENT"));
  {
    auto fresh = journal_db::open(dir, {});
    REQUIRE(fresh.ok());
    auto active = (*fresh)->active();
    REQUIRE(active.ok());
    CHECK(active->empty());
  }

  // A second one within the same second gets a name of its own.
  auto again = ferry::set_aside_damaged(dir);
  REQUIRE(again.ok());
  CHECK(*again != *aside);
  CHECK(fs::exists(*aside / "CURRENT"));
}
