#include "store/journal/migration_inventory.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "test_support.hpp"

#include <rocksdb/db.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;
using ferry::attempt_error;
using ferry::errc;
using ferry::inventory_item;
using ferry::inventory_totals;
using ferry::item_state;
using ferry::migration_inventory;
using ferry::object_info;
using ferry::transfer_record;

using ferry::testing::temp_dir;

namespace {

const std::string identity = "folder:/srv/lfs -> s3://bucket/lfs shard 1/1";

constexpr item_state every_state[] = {item_state::pending, item_state::missing,  item_state::copied,
                                      item_state::present, item_state::verified, item_state::failed,
                                      item_state::corrupt};
constexpr uint64_t state_count = sizeof every_state / sizeof every_state[0];

// Distinct valid oids spread over the whole oid space like real ones, whose
// order differs from n's order, so that listing order and oid order never
// coincide by accident. Multiplying by an odd constant is a bijection, so the
// first 16 digits alone keep the oids distinct.
std::string oid_of(uint64_t n) {
  std::string oid;
  for (uint64_t factor : {0x9E3779B97F4A7C15ull, 0xC2B2AE3D27D4EB4Full, 0x165667B19E3779F9ull,
                          0xD6E8FEB86659FD93ull}) {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(n * factor));
    oid += hex;
  }
  return oid;
}

std::vector<object_info> listing(uint64_t first, uint64_t count) {
  std::vector<object_info> objects;
  for (uint64_t n = first; n < first + count; ++n)
    objects.push_back({oid_of(n), static_cast<int64_t>(100 + n)});
  return objects;
}

std::unique_ptr<migration_inventory> open_inventory(const fs::path& dir,
                                                    const std::string& name = identity) {
  auto inventory = migration_inventory::open(dir, name);
  if (!inventory.ok())
    FAIL("open failed: " << inventory.error().to_string());
  return std::move(inventory).value();
}

inventory_item require_item(const migration_inventory& inventory, const std::string& oid) {
  auto item = inventory.get(oid);
  REQUIRE(item.ok());
  REQUIRE(item->has_value());
  return item->value();
}

// Every oid in `state`, read page by page with the cursor.
std::vector<std::string> oids_in(const migration_inventory& inventory, item_state state,
                                 size_t page_size = 7) {
  std::vector<std::string> oids;
  std::string cursor;
  // Bounded, so that a cursor that does not advance fails instead of hanging.
  for (int round = 0; round < 100000; ++round) {
    auto page = inventory.page(state, cursor, page_size);
    REQUIRE(page.ok());
    for (const auto& item : page.value()) {
      CHECK(item.state == state);
      oids.push_back(item.oid);
    }
    if (page->size() < page_size)
      return oids;
    cursor = page->back().oid;
  }
  FAIL("paging " << to_string(state) << " items never ends");
  return oids;
}

std::vector<std::string> sorted(std::vector<std::string> oids) {
  std::sort(oids.begin(), oids.end());
  return oids;
}

// Direct access to the inventory's RocksDB files (while the inventory is
// closed), to look at keys or damage values.
std::unique_ptr<rocksdb::DB> open_raw(const fs::path& dir) {
  rocksdb::Options opts;
  opts.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  REQUIRE(rocksdb::DB::Open(opts, dir.string(), &raw).ok());
  return std::unique_ptr<rocksdb::DB>{raw};
}

std::vector<std::string> raw_keys(const fs::path& dir, const std::string& prefix) {
  auto db = open_raw(dir);
  std::vector<std::string> keys;
  std::unique_ptr<rocksdb::Iterator> it{db->NewIterator(rocksdb::ReadOptions{})};
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next())
    keys.push_back(it->key().ToString());
  REQUIRE(it->status().ok());
  return keys;
}

std::string raw_get(const fs::path& dir, const std::string& key) {
  auto db = open_raw(dir);
  std::string value;
  REQUIRE(db->Get(rocksdb::ReadOptions{}, key, &value).ok());
  return value;
}

void raw_put(const fs::path& dir, const std::string& key, const std::string& value) {
  auto db = open_raw(dir);
  REQUIRE(db->Put(rocksdb::WriteOptions{}, key, value).ok());
}

// The state assigned to the n-th object in the mixed-state tests.
item_state state_for(uint64_t n) { return every_state[n % state_count]; }

// Adds `count` objects and moves each to state_for(n).
std::map<std::string, item_state> add_mixed(migration_inventory& inventory, uint64_t count) {
  auto added = inventory.add(listing(0, count));
  REQUIRE(added.ok());
  REQUIRE(added.value() == count);
  std::map<std::string, item_state> states;
  for (uint64_t n = 0; n < count; ++n) {
    states[oid_of(n)] = state_for(n);
    if (state_for(n) != item_state::pending)
      REQUIRE(inventory.set_state(oid_of(n), state_for(n)).ok());
  }
  return states;
}

} // namespace

TEST_CASE("inventory add counts new objects and keeps known ones", "[inventory]") {
  temp_dir tmp;
  auto inventory = open_inventory(tmp.path / "nested" / "journal");
  REQUIRE(inventory->begin_run().ok());

  auto first = inventory->add(listing(0, 5));
  REQUIRE(first.ok());
  CHECK(first.value() == 5);
  REQUIRE(inventory->set_state(oid_of(2), item_state::copied, 1).ok());

  // The next run's listing finds two new objects; oid 2 comes with another
  // size, which this run's listing decides, and is to be asked about again.
  REQUIRE(inventory->begin_run().ok());
  auto relisted = listing(0, 7);
  relisted[2].size = 999999;
  auto second = inventory->add(relisted);
  REQUIRE(second.ok());
  CHECK(second.value() == 2);
  auto kept = require_item(*inventory, oid_of(2));
  CHECK(kept.state == item_state::pending);
  CHECK(kept.size == 999999);
  CHECK(kept.attempts == 1);
  auto fresh = require_item(*inventory, oid_of(6));
  CHECK(fresh.oid == oid_of(6));
  CHECK(fresh.state == item_state::pending);
  CHECK(fresh.size == 106);
  CHECK(fresh.attempts == 0);
  CHECK(fresh.errors.empty());

  // An object named twice in one listing with one size is one object.
  auto twice = inventory->add({{oid_of(8), 8}, {oid_of(9), 9}, {oid_of(8), 8}});
  REQUIRE(twice.ok());
  CHECK(twice.value() == 2);
  CHECK(require_item(*inventory, oid_of(8)).size == 8);
  auto none = inventory->add({});
  REQUIRE(none.ok());
  CHECK(none.value() == 0);

  auto missing = inventory->get(oid_of(100));
  REQUIRE(missing.ok());
  CHECK_FALSE(missing->has_value());
  CHECK(oids_in(*inventory, item_state::pending).size() == 9);
}

TEST_CASE("inventory refuses an oid one run lists with two sizes", "[inventory]") {
  temp_dir tmp;
  auto inventory = open_inventory(tmp.path);
  REQUIRE(inventory->begin_run().ok());
  auto expected = "object " + oid_of(8) + " is listed twice, with sizes 8 and 80";

  // Within one batch: nothing of it is written.
  auto within = inventory->add({{oid_of(8), 8}, {oid_of(9), 9}, {oid_of(8), 80}});
  REQUIRE_FALSE(within.ok());
  CHECK(within.error().code() == errc::config_error);
  CHECK(within.error().message() == expected);
  auto nothing = inventory->get(oid_of(9));
  REQUIRE(nothing.ok());
  CHECK_FALSE(nothing->has_value());

  // Across two batches of the same run.
  REQUIRE(inventory->add({{oid_of(8), 8}}).ok());
  auto across = inventory->add({{oid_of(8), 80}});
  REQUIRE_FALSE(across.ok());
  CHECK(across.error().code() == errc::config_error);
  CHECK(across.error().message() == expected);
  CHECK(require_item(*inventory, oid_of(8)).size == 8);

  // A dead letter listed by a later run with another size gets a fresh chance.
  REQUIRE(inventory->set_state(oid_of(8), item_state::corrupt).ok());
  REQUIRE(inventory->begin_run().ok());
  REQUIRE(inventory->add({{oid_of(8), 80}}).ok());
  auto corrected = require_item(*inventory, oid_of(8));
  CHECK(corrected.size == 80);
  CHECK(corrected.state == item_state::pending);
}

TEST_CASE("inventory runs ask again about everything but the dead letters", "[inventory]") {
  temp_dir tmp;
  std::map<std::string, item_state> states;
  {
    auto inventory = open_inventory(tmp.path);
    auto run = inventory->begin_run();
    REQUIRE(run.ok());
    CHECK(run.value() == 1);
    states = add_mixed(*inventory, 21);
    REQUIRE(inventory
              ->set_state(oid_of(5), item_state::failed, 2,
                          attempt_error{5, "not_found", "gone from the source"})
              .ok());
  }
  // The next run, in a new process, lists all but objects 19 and 20.
  auto inventory = open_inventory(tmp.path);
  auto run = inventory->begin_run();
  REQUIRE(run.ok());
  CHECK(run.value() == 2);
  REQUIRE(inventory->add(listing(0, 19)).ok());
  for (uint64_t n = 0; n < 19; ++n) {
    INFO(n);
    auto item = require_item(*inventory, oid_of(n));
    bool dead_letter =
      states[oid_of(n)] == item_state::failed || states[oid_of(n)] == item_state::corrupt;
    CHECK(item.state == (dead_letter ? states[oid_of(n)] : item_state::pending));
    CHECK(item.run == 2);
  }
  CHECK(require_item(*inventory, oid_of(5)).errors.size() == 1);
  CHECK(require_item(*inventory, oid_of(19)).run == 1);

  auto forgotten = inventory->forget_unlisted();
  REQUIRE(forgotten.ok());
  CHECK(forgotten.value() == 2);
  for (uint64_t n : {19, 20}) {
    auto gone = inventory->get(oid_of(n));
    REQUIRE(gone.ok());
    CHECK_FALSE(gone->has_value());
    // Its index entry went with it: paging its old state does not trip on it.
    CHECK(oids_in(*inventory, states[oid_of(n)]).size() < 4);
  }
  auto totals = inventory->totals();
  REQUIRE(totals.ok());
  CHECK(totals->all().objects == 19);
  CHECK(totals->copied.objects + totals->present.objects + totals->verified.objects +
          totals->missing.objects ==
        0);
  CHECK(totals->open().objects == totals->pending.objects);
  auto again = inventory->forget_unlisted();
  REQUIRE(again.ok());
  CHECK(again.value() == 0);
}

TEST_CASE("inventory items are stored as a json dump() writes them", "[inventory]") {
  temp_dir tmp;
  {
    auto inventory = open_inventory(tmp.path);
    REQUIRE(inventory->begin_run().ok());
    REQUIRE(inventory->add({{oid_of(1), 7}, {oid_of(2), 9}}).ok());
    REQUIRE(inventory
              ->set_state(oid_of(1), item_state::failed, 2,
                          attempt_error{12, "io_error", "said \"no\"\\ \n\xFF"}, "c1d")
              .ok());
  }
  // Values written before they were encoded by hand must read alike, and
  // tools may read them as JSON: the bytes are the same as dump()'s.
  nlohmann::ordered_json errors = nlohmann::ordered_json::array();
  errors.push_back({{"at_ms", 12}, {"code", "io_error"}, {"message", "said \"no\"\\ \n\xFF"}});
  nlohmann::ordered_json failed = {{"v", 2},        {"size", 7},        {"state", "failed"},
                                   {"attempts", 2}, {"errors", errors}, {"run", 1},
                                   {"cid", "c1d"}};
  nlohmann::ordered_json pending = {{"v", 2},
                                    {"size", 9},
                                    {"state", "pending"},
                                    {"attempts", 0},
                                    {"errors", nlohmann::ordered_json::array()},
                                    {"run", 1}};
  auto dump = [](const nlohmann::ordered_json& value) {
    return value.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  };
  CHECK(raw_get(tmp.path, "i/" + oid_of(1)) == dump(failed));
  CHECK(raw_get(tmp.path, "i/" + oid_of(2)) == dump(pending));
  auto inventory = open_inventory(tmp.path);
  auto item = require_item(*inventory, oid_of(1));
  REQUIRE(item.errors.size() == 1);
  CHECK(item.errors[0].message == "said \"no\"\\ \n\xEF\xBF\xBD");
  CHECK(item.cid == "c1d");
}

TEST_CASE("inventory reads its own encoding and any other JSON spelling alike", "[inventory]") {
  temp_dir tmp;
  raw_put(tmp.path, "m/identity", identity);
  raw_put(tmp.path, "i/" + oid_of(1),
          R"({"v":2,"size":123456789012,"state":"failed","attempts":3,"errors":[],"run":4,)"
          R"("cid":"0a1b2c3d4e5f"})");
  raw_put(tmp.path, "i/" + oid_of(2),
          R"({ "cid" : "0a1b2c3d4e5f", "run":4, "errors":[ ], "attempts":3, "state":"failed", )"
          R"("size":123456789012, "v":2 })");
  raw_put(tmp.path, "i/" + oid_of(3),
          R"({"v":2,"size":5,"state":"copied","attempts":0,)"
          R"("errors":[],"run":1})");
  auto inventory = open_inventory(tmp.path);
  for (int n : {1, 2}) {
    INFO("item " << n);
    auto item = require_item(*inventory, oid_of(n));
    CHECK(item.oid == oid_of(n));
    CHECK(item.size == 123456789012);
    CHECK(item.state == item_state::failed);
    CHECK(item.attempts == 3);
    CHECK(item.errors.empty());
    CHECK(item.run == 4);
    CHECK(item.cid == "0a1b2c3d4e5f");
  }
  auto plain = require_item(*inventory, oid_of(3));
  CHECK(plain.size == 5);
  CHECK(plain.state == item_state::copied);
  CHECK(plain.run == 1);
  CHECK(plain.cid.empty());
}

TEST_CASE("inventory refuses values that are not JSON even when they look like its own",
          "[inventory]") {
  temp_dir tmp;
  const std::string head = R"({"v":2,"size":)";
  const std::string tail = R"(,"state":"copied","attempts":0,"errors":[],"run":1})";
  const std::string bad = GENERATE_COPY(head + "07" + tail, head + "7" + tail + "x",
                                        head + "-7" + tail, head + "7" + tail.substr(0, 20));
  INFO(bad);
  raw_put(tmp.path, "m/identity", identity);
  raw_put(tmp.path, "i/" + oid_of(1), bad);
  auto inventory = open_inventory(tmp.path);
  auto item = inventory->get(oid_of(1));
  REQUIRE_FALSE(item.ok());
  CHECK(item.error().code() == errc::corrupt_record);
}

TEST_CASE("inventory reads items written before runs were numbered", "[inventory]") {
  temp_dir tmp;
  raw_put(tmp.path, "m/identity", identity);
  raw_put(tmp.path, "i/" + oid_of(1),
          R"({"v":1,"size":7,"state":"copied","attempts":1,"errors":[]})");
  raw_put(tmp.path, "s/copied/" + oid_of(1), "");
  auto inventory = open_inventory(tmp.path);
  auto old = require_item(*inventory, oid_of(1));
  CHECK(old.state == item_state::copied);
  CHECK(old.run == 0);
  REQUIRE(inventory->begin_run().ok());
  REQUIRE(inventory->add({{oid_of(1), 7}}).ok());
  CHECK(require_item(*inventory, oid_of(1)).state == item_state::pending);
}

TEST_CASE("inventory add rejects bad oids and sizes without writing anything", "[inventory]") {
  temp_dir tmp;
  auto inventory = open_inventory(tmp.path);
  for (std::string bad :
       {std::string{}, std::string(63, 'a'), std::string(64, 'A'), "../" + std::string(61, 'a')}) {
    auto added = inventory->add({{oid_of(1), 1}, {bad, 1}});
    REQUIRE_FALSE(added.ok());
    CHECK(added.error().code() == errc::invalid_request);
    CHECK_THAT(added.error().message(), Catch::Contains("\"" + bad + "\""));
    CHECK(inventory->get(bad).error().code() == errc::invalid_request);
    CHECK(inventory->set_state(bad, item_state::copied).code() == errc::invalid_request);
  }
  auto negative = inventory->add({{oid_of(1), 1}, {oid_of(2), -1}});
  REQUIRE_FALSE(negative.ok());
  CHECK(negative.error().code() == errc::invalid_request);
  auto absent = inventory->get(oid_of(1));
  REQUIRE(absent.ok());
  CHECK_FALSE(absent->has_value());
}

TEST_CASE("inventory pages follow oid order across cursors", "[inventory]") {
  temp_dir tmp;
  auto inventory = open_inventory(tmp.path);
  std::vector<std::string> expected;
  std::map<std::string, int64_t> sizes;
  for (uint64_t start = 0; start < 2500; start += 500) {
    auto batch = listing(start, 500);
    REQUIRE(inventory->add(batch).ok());
    for (const auto& object : batch) {
      expected.push_back(object.oid);
      sizes[object.oid] = object.size;
    }
  }
  // The listing order is not oid order, so sorting is the pages' work.
  REQUIRE(sorted(expected) != expected);
  expected = sorted(expected);

  std::vector<std::string> seen;
  std::vector<size_t> page_sizes;
  std::string cursor;
  for (int round = 0; round < 4; ++round) {
    auto page = inventory->page(item_state::pending, cursor, 1000);
    REQUIRE(page.ok());
    page_sizes.push_back(page->size());
    for (const auto& item : page.value()) {
      CHECK(item.size == sizes.at(item.oid));
      seen.push_back(item.oid);
    }
    if (!page->empty())
      cursor = page->back().oid;
  }
  CHECK(page_sizes == std::vector<size_t>{1000, 1000, 500, 0});
  CHECK(seen == expected);

  // A cursor that is not itself an oid of the inventory starts at the next one.
  std::string between = expected[10].substr(0, 63);
  auto next = std::lower_bound(expected.begin(), expected.end(), between);
  auto from_between = inventory->page(item_state::pending, between, 2);
  REQUIRE(from_between.ok());
  REQUIRE(from_between->size() == 2);
  CHECK(from_between->at(0).oid == *next);
  CHECK(from_between->at(1).oid == *(next + 1));

  auto empty = inventory->page(item_state::pending, "", 0);
  REQUIRE(empty.ok());
  CHECK(empty->empty());
}

TEST_CASE("inventory pages one state through its index", "[inventory]") {
  temp_dir tmp;
  {
    auto inventory = open_inventory(tmp.path);
    auto states = add_mixed(*inventory, 42);
    for (item_state state : every_state) {
      std::vector<std::string> expected;
      for (const auto& [oid, assigned] : states)
        if (assigned == state)
          expected.push_back(oid);
      REQUIRE(expected.size() == 6);
      CHECK(oids_in(*inventory, state, 3) == expected);
    }
  }
  // Exactly one index entry per item, under its state.
  auto index = raw_keys(tmp.path, "s/");
  CHECK(index.size() == 42);
  for (uint64_t n = 0; n < 42; ++n)
    CHECK(std::count(index.begin(), index.end(),
                     "s/" + std::string{to_string(state_for(n))} + "/" + oid_of(n)) == 1);

  // page() reads the index, not the items: an entry disagreeing with its
  // item is reported rather than skipped.
  uint64_t pending_n = 0;
  raw_put(tmp.path, "s/failed/" + oid_of(pending_n), "");
  auto inventory = open_inventory(tmp.path);
  auto page = inventory->page(item_state::failed, "", 100);
  REQUIRE_FALSE(page.ok());
  CHECK(page.error().code() == errc::corrupt_record);
  CHECK(page.error().message() == "journal " + tmp.path.string() + ": s/failed/" +
                                    oid_of(pending_n) + " names an object whose state is pending");
}

TEST_CASE("inventory set_state moves an item between state indexes", "[inventory]") {
  temp_dir tmp;
  std::string oid = oid_of(1);
  {
    auto inventory = open_inventory(tmp.path);
    REQUIRE(inventory->add(listing(0, 3)).ok());

    REQUIRE(inventory->set_state(oid, item_state::failed, 2).ok());
    auto pending = oids_in(*inventory, item_state::pending);
    CHECK(std::count(pending.begin(), pending.end(), oid) == 0);
    CHECK(pending.size() == 2);
    CHECK(oids_in(*inventory, item_state::failed) == std::vector<std::string>{oid});

    REQUIRE(inventory->set_state(oid, item_state::copied, 1).ok());
    CHECK(oids_in(*inventory, item_state::failed).empty());
    CHECK(oids_in(*inventory, item_state::copied) == std::vector<std::string>{oid});
    // Staying in a state still counts attempts and keeps one index entry.
    REQUIRE(inventory->set_state(oid, item_state::copied, 1).ok());
    CHECK(oids_in(*inventory, item_state::copied) == std::vector<std::string>{oid});
    auto item = require_item(*inventory, oid);
    CHECK(item.state == item_state::copied);
    CHECK(item.attempts == 4);

    auto unknown = inventory->set_state(oid_of(50), item_state::copied);
    CHECK(unknown.code() == errc::not_found);
    CHECK_THAT(unknown.message(), Catch::Contains(oid_of(50)));
    CHECK(inventory->set_state(oid, item_state::failed, -1).code() == errc::invalid_request);
    CHECK(require_item(*inventory, oid).state == item_state::copied);
  }
  auto index = raw_keys(tmp.path, "s/");
  CHECK(std::count_if(index.begin(), index.end(), [&](const std::string& key) {
          return key.find(oid) != std::string::npos;
        }) == 1);
  CHECK(std::count(index.begin(), index.end(), "s/copied/" + oid) == 1);
}

TEST_CASE("inventory set_states moves known items together and skips unknown ones", "[inventory]") {
  temp_dir tmp;
  {
    auto inventory = open_inventory(tmp.path);
    REQUIRE(inventory->add(listing(0, 6)).ok());
    REQUIRE(inventory
              ->set_state(oid_of(1), item_state::failed, 2,
                          attempt_error{9, "io_error", "connection reset"})
              .ok());

    // oid 1 comes from failed, oid 2 is named twice, oid 40 is unknown.
    std::vector<std::string> moved = {oid_of(2), oid_of(1), oid_of(40), oid_of(4), oid_of(2)};
    REQUIRE(inventory->set_states(moved, item_state::present).ok());
    CHECK(oids_in(*inventory, item_state::present) == sorted({oid_of(1), oid_of(2), oid_of(4)}));
    CHECK(oids_in(*inventory, item_state::failed).empty());
    CHECK(oids_in(*inventory, item_state::pending) == sorted({oid_of(0), oid_of(3), oid_of(5)}));
    auto missing = inventory->get(oid_of(40));
    REQUIRE(missing.ok());
    CHECK_FALSE(missing->has_value());
    // Attempts and errors stay as they were.
    auto kept = require_item(*inventory, oid_of(1));
    CHECK(kept.attempts == 2);
    REQUIRE(kept.errors.size() == 1);
    CHECK(kept.errors[0].message == "connection reset");

    REQUIRE(inventory->set_states({}, item_state::copied).ok());
    auto bad = inventory->set_states({oid_of(0), "not-an-oid"}, item_state::copied);
    CHECK(bad.code() == errc::invalid_request);
    CHECK(require_item(*inventory, oid_of(0)).state == item_state::pending);
  }
  auto index = raw_keys(tmp.path, "s/");
  CHECK(index.size() == 6);
  CHECK(std::count(index.begin(), index.end(), "s/present/" + oid_of(2)) == 1);
  CHECK(std::count(index.begin(), index.end(), "s/failed/" + oid_of(1)) == 0);
}

TEST_CASE("inventory keeps the latest errors, oldest first, and sums attempts", "[inventory]") {
  temp_dir tmp;
  std::string oid = oid_of(3);
  const int tries = static_cast<int>(transfer_record::max_errors) + 4;
  {
    auto inventory = open_inventory(tmp.path);
    REQUIRE(inventory->add(listing(3, 1)).ok());
    for (int i = 1; i <= tries; ++i) {
      attempt_error error{1000 + i, "io_error", "attempt " + std::to_string(i)};
      auto state = i == tries ? item_state::failed : item_state::pending;
      REQUIRE(inventory->set_state(oid, state, 1, error).ok());
    }
    // No error given: the history stays as it is.
    REQUIRE(inventory->set_state(oid, item_state::failed, 0).ok());
  }
  auto inventory = open_inventory(tmp.path);
  auto item = require_item(*inventory, oid);
  CHECK(item.attempts == tries);
  CHECK(item.state == item_state::failed);
  REQUIRE(item.errors.size() == transfer_record::max_errors);
  for (size_t k = 0; k < item.errors.size(); ++k) {
    int i = tries - static_cast<int>(transfer_record::max_errors) + 1 + static_cast<int>(k);
    CHECK(item.errors[k].at_ms == 1000 + i);
    CHECK(item.errors[k].code == "io_error");
    CHECK(item.errors[k].message == "attempt " + std::to_string(i));
  }
}

TEST_CASE("inventory keeps the correlation id of an item's latest copy", "[inventory]") {
  temp_dir tmp;
  std::string oid = oid_of(4);
  {
    auto inventory = open_inventory(tmp.path);
    REQUIRE(inventory->add(listing(4, 1)).ok());
    CHECK(require_item(*inventory, oid).cid.empty());
    attempt_error error{1, "io_error", "x"};
    REQUIRE(inventory->set_state(oid, item_state::failed, 1, error, "aaaaaaaaaaaa").ok());
    REQUIRE(inventory->set_state(oid, item_state::failed, 1, error, "bbbbbbbbbbbb").ok());
    // No id given (a state change without a copy): the last one stays.
    REQUIRE(inventory->set_state(oid, item_state::pending).ok());
  }
  auto inventory = open_inventory(tmp.path);
  CHECK(require_item(*inventory, oid).cid == "bbbbbbbbbbbb");
}

TEST_CASE("inventory move_all puts back failed and corrupt items with their errors",
          "[inventory]") {
  temp_dir tmp;
  auto inventory = open_inventory(tmp.path);
  auto states = add_mixed(*inventory, 25);
  REQUIRE(inventory
            ->set_state(oid_of(5), item_state::failed, 3,
                        attempt_error{77, "unavailable", "503 from the destination"})
            .ok());

  std::vector<std::string> requeued;
  std::vector<std::string> pending;
  for (const auto& [oid, state] : states) {
    if (state == item_state::failed || state == item_state::corrupt)
      requeued.push_back(oid);
    if (state == item_state::failed || state == item_state::corrupt || state == item_state::pending)
      pending.push_back(oid);
  }
  auto moved = inventory->move_all({item_state::failed, item_state::corrupt}, item_state::pending);
  REQUIRE(moved.ok());
  CHECK(moved.value() == requeued.size());
  CHECK(oids_in(*inventory, item_state::failed).empty());
  CHECK(oids_in(*inventory, item_state::corrupt).empty());
  CHECK(oids_in(*inventory, item_state::pending) == pending);
  CHECK(oids_in(*inventory, item_state::copied).size() == 4);
  CHECK(oids_in(*inventory, item_state::present).size() == 4);

  auto kept = require_item(*inventory, oid_of(5));
  CHECK(kept.state == item_state::pending);
  CHECK(kept.attempts == 3);
  REQUIRE(kept.errors.size() == 1);
  CHECK(kept.errors[0].message == "503 from the destination");

  auto again = inventory->move_all({item_state::failed, item_state::corrupt}, item_state::pending);
  REQUIRE(again.ok());
  CHECK(again.value() == 0);

  // What a complete listing of the destination did not find is missing.
  auto unseen = inventory->move_all({item_state::pending}, item_state::missing);
  REQUIRE(unseen.ok());
  CHECK(unseen.value() == pending.size());
  CHECK(oids_in(*inventory, item_state::pending).empty());
  CHECK(oids_in(*inventory, item_state::missing).size() == pending.size() + 4);
}

TEST_CASE("inventory totals count objects and bytes per state", "[inventory]") {
  temp_dir tmp;
  auto inventory = open_inventory(tmp.path);
  auto empty = inventory->totals();
  REQUIRE(empty.ok());
  CHECK(empty->all().objects == 0);

  add_mixed(*inventory, 23);
  std::map<item_state, inventory_totals::count> expected;
  for (uint64_t n = 0; n < 23; ++n) {
    expected[state_for(n)].objects += 1;
    expected[state_for(n)].bytes += static_cast<int64_t>(100 + n);
  }
  auto totals = inventory->totals();
  REQUIRE(totals.ok());
  std::map<item_state, inventory_totals::count> got = {
    {item_state::pending, totals->pending},   {item_state::missing, totals->missing},
    {item_state::copied, totals->copied},     {item_state::present, totals->present},
    {item_state::verified, totals->verified}, {item_state::failed, totals->failed},
    {item_state::corrupt, totals->corrupt}};
  for (item_state state : every_state) {
    INFO(to_string(state));
    CHECK(got[state].objects == expected[state].objects);
    CHECK(got[state].bytes == expected[state].bytes);
  }
  CHECK(totals->all().objects == 23);
  CHECK(totals->all().bytes == 23 * 100 + 22 * 23 / 2);
}

TEST_CASE("inventory keeps its run number across reopen", "[inventory]") {
  temp_dir tmp;
  for (int64_t expected : {1, 2, 3}) {
    auto inventory = open_inventory(tmp.path);
    auto run = inventory->begin_run();
    REQUIRE(run.ok());
    CHECK(run.value() == expected);
    REQUIRE(inventory->add(listing(0, 2)).ok());
    CHECK(require_item(*inventory, oid_of(1)).run == expected);
  }
}

TEST_CASE("inventory refuses a journal made for another migration", "[inventory]") {
  temp_dir tmp;
  open_inventory(tmp.path, "folder:/a -> folder:/b");
  auto other = migration_inventory::open(tmp.path, "folder:/a -> folder:/c");
  REQUIRE_FALSE(other.ok());
  CHECK(other.error().code() == errc::config_error);
  CHECK(other.error().message() ==
        "journal " + tmp.path.string() +
          " belongs to migration 'folder:/a -> folder:/b', not 'folder:/a -> folder:/c'"
          "; use another --journal or delete it");
  CHECK(migration_inventory::open(tmp.path, "folder:/a -> folder:/b").ok());

  // A directory holding some other database is not adopted.
  fs::path foreign = tmp.path / "foreign";
  raw_put(foreign, "a/u/" + oid_of(1), "{}");
  auto adopted = migration_inventory::open(foreign, identity);
  REQUIRE_FALSE(adopted.ok());
  CHECK(adopted.error().code() == errc::config_error);
}

TEST_CASE("inventory identity is read without taking the inventory", "[inventory]") {
  temp_dir tmp;
  auto none = migration_inventory::identity_in(tmp.path / "nothing");
  REQUIRE(none.ok());
  CHECK(none->empty());
  CHECK_FALSE(fs::exists(tmp.path / "nothing"));

  auto held = open_inventory(tmp.path, "folder:/a -> folder:/b shard 2/4");
  auto read = migration_inventory::identity_in(tmp.path);
  REQUIRE(read.ok());
  CHECK(*read == "folder:/a -> folder:/b shard 2/4");
  // The run holding it goes on writing.
  CHECK(held->add(listing(0, 2)).ok());
}

TEST_CASE("inventory opened twice in one process is busy", "[inventory]") {
  temp_dir tmp;
  auto first = open_inventory(tmp.path);
  auto second = migration_inventory::open(tmp.path, identity);
  REQUIRE_FALSE(second.ok());
  CHECK(second.error().code() == errc::busy);
  CHECK(second.error().message() == "another ferry migrate is using " + tmp.path.string());
  first.reset();
  CHECK(migration_inventory::open(tmp.path, identity).ok());
}

TEST_CASE("inventory held by another process is busy and keeps its writes after kill -9",
          "[inventory]") {
  temp_dir tmp;
  int ready[2];
  REQUIRE(pipe(ready) == 0);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    close(ready[0]);
    auto inventory = migration_inventory::open(tmp.path, identity);
    bool wrote = inventory.ok() && inventory.value()->add(listing(0, 50)).ok() &&
                 inventory.value()->set_state(oid_of(4), item_state::copied, 1).ok() &&
                 inventory.value()->begin_run().ok();
    char byte = wrote ? 'y' : 'n';
    if (write(ready[1], &byte, 1) != 1)
      _exit(2);
    // Hold the inventory open until the parent kills us.
    while (true)
      pause();
  }
  close(ready[1]);
  char byte = 0;
  REQUIRE(read(ready[0], &byte, 1) == 1);
  close(ready[0]);
  auto while_held = migration_inventory::open(tmp.path, identity);
  bool busy = !while_held.ok() && while_held.error().code() == errc::busy;
  REQUIRE(kill(child, SIGKILL) == 0);
  int wstatus = 0;
  REQUIRE(waitpid(child, &wstatus, 0) == child);
  REQUIRE(byte == 'y');
  CHECK(busy);

  auto inventory = open_inventory(tmp.path);
  auto run = inventory->begin_run();
  REQUIRE(run.ok());
  CHECK(run.value() == 2);
  CHECK(oids_in(*inventory, item_state::pending).size() == 49);
  CHECK(oids_in(*inventory, item_state::copied) == std::vector<std::string>{oid_of(4)});
}

TEST_CASE("inventory reports damaged values as corrupt_record naming the key", "[inventory]") {
  temp_dir tmp;
  std::string oid = oid_of(1);
  std::string where = "journal " + tmp.path.string() + ": ";
  REQUIRE(open_inventory(tmp.path)->add(listing(0, 3)).ok());

  auto expect_corrupt = [&](const std::string& expected_message) {
    auto inventory = open_inventory(tmp.path);
    auto got = inventory->get(oid);
    REQUIRE_FALSE(got.ok());
    CHECK(got.error().code() == errc::corrupt_record);
    CHECK(got.error().message() == expected_message);
    auto page = inventory->page(item_state::pending, "", 10);
    REQUIRE_FALSE(page.ok());
    CHECK(page.error().message() == expected_message);
    auto totals = inventory->totals();
    REQUIRE_FALSE(totals.ok());
    CHECK(totals.error().message() == expected_message);
    CHECK(inventory->set_state(oid, item_state::copied).code() == errc::corrupt_record);
  };
  SECTION("bytes that are not JSON") {
    raw_put(tmp.path, "i/" + oid, "\x01garbage");
    expect_corrupt(where + "i/" + oid + " is not a JSON object");
  }
  SECTION("an unknown format version") {
    raw_put(tmp.path, "i/" + oid,
            R"({"v":3,"size":1,"state":"pending","attempts":0,"errors":[],"run":1})");
    expect_corrupt(where + "i/" + oid + " has unsupported format version 3 (expected 1 to 2)");
  }
  SECTION("a run number that is not one") {
    raw_put(tmp.path, "i/" + oid,
            R"({"v":2,"size":1,"state":"pending","attempts":0,"errors":[],"run":"x"})");
    expect_corrupt(where + "i/" + oid + " lacks a valid run field");
  }
  SECTION("a cid that is not a string") {
    raw_put(tmp.path, "i/" + oid,
            R"({"v":2,"size":1,"state":"pending","attempts":0,"errors":[],"run":1,"cid":7})");
    expect_corrupt(where + "i/" + oid + " has a cid that is not a string");
  }
  SECTION("an unknown state") {
    raw_put(tmp.path, "i/" + oid, R"({"v":1,"size":1,"state":"lost","attempts":0,"errors":[]})");
    expect_corrupt(where + "i/" + oid + " lacks a valid size, attempts, state or errors field");
  }
  SECTION("a malformed error entry") {
    raw_put(tmp.path, "i/" + oid,
            R"({"v":1,"size":1,"state":"pending","attempts":0,"errors":[{"at_ms":-1}]})");
    expect_corrupt(where + "i/" + oid + " has a malformed errors entry");
  }
  SECTION("an index entry without its item") {
    raw_put(tmp.path, "s/copied/" + oid_of(9), "");
    auto inventory = open_inventory(tmp.path);
    auto page = inventory->page(item_state::copied, "", 10);
    REQUIRE_FALSE(page.ok());
    CHECK(page.error().code() == errc::corrupt_record);
    CHECK(page.error().message() ==
          where + "s/copied/" + oid_of(9) + " names an object that is not in the inventory");
  }
  SECTION("a run number that is not a number") {
    raw_put(tmp.path, "m/run", "yes");
    auto inventory = migration_inventory::open(tmp.path, identity);
    REQUIRE_FALSE(inventory.ok());
    CHECK(inventory.error().code() == errc::corrupt_record);
    CHECK_THAT(inventory.error().message(), Catch::Contains("m/run"));
  }
}

TEST_CASE("inventory survives close and reopen", "[inventory]") {
  temp_dir tmp;
  std::map<std::string, item_state> states;
  {
    auto inventory = open_inventory(tmp.path);
    states = add_mixed(*inventory, 30);
    REQUIRE(inventory
              ->set_state(oid_of(5), item_state::failed, 2,
                          attempt_error{5, "hash_mismatch", "source bytes differ"})
              .ok());
  }
  auto inventory = open_inventory(tmp.path);
  for (uint64_t n = 0; n < 30; ++n) {
    auto item = require_item(*inventory, oid_of(n));
    CHECK(item.state == states[oid_of(n)]);
    CHECK(item.size == static_cast<int64_t>(100 + n));
  }
  auto failed = require_item(*inventory, oid_of(5));
  CHECK(failed.attempts == 2);
  REQUIRE(failed.errors.size() == 1);
  CHECK(failed.errors[0].at_ms == 5);
  CHECK(failed.errors[0].code == "hash_mismatch");
  CHECK(failed.errors[0].message == "source bytes differ");
  auto totals = inventory->totals();
  REQUIRE(totals.ok());
  CHECK(totals->all().objects == 30);
  CHECK(totals->pending.objects == 5);
}

TEST_CASE("inventory adds and pages 100k objects in bounded batches", "[inventory]") {
  temp_dir tmp;
  auto inventory = open_inventory(tmp.path);
  const uint64_t count = 100000;
  const uint64_t batch = 5000;
  int64_t bytes = 0;
  for (uint64_t start = 0; start < count; start += batch) {
    auto added = inventory->add(listing(start, batch));
    REQUIRE(added.ok());
    REQUIRE(added.value() == batch);
  }
  for (uint64_t n = 0; n < count; ++n)
    bytes += static_cast<int64_t>(100 + n);
  auto relisted = inventory->add(listing(count - batch, batch));
  REQUIRE(relisted.ok());
  CHECK(relisted.value() == 0);

  // A few items in another state are found through the index alone.
  std::vector<std::string> failed;
  for (uint64_t n = 0; n < count; n += count / 10) {
    REQUIRE(inventory->set_state(oid_of(n), item_state::failed).ok());
    failed.push_back(oid_of(n));
  }
  CHECK(oids_in(*inventory, item_state::failed, 1000) == sorted(failed));

  size_t pages = 0;
  size_t seen = 0;
  std::string cursor;
  bool ordered = true;
  // Bounded, so that a cursor that does not advance fails instead of hanging.
  for (size_t round = 0; round <= count / 1000 + 1; ++round) {
    auto page = inventory->page(item_state::pending, cursor, 1000);
    REQUIRE(page.ok());
    if (page->empty())
      break;
    ++pages;
    for (const auto& item : page.value()) {
      ordered = ordered && item.oid > cursor;
      cursor = item.oid;
    }
    seen += page->size();
  }
  CHECK(ordered);
  CHECK(seen == count - failed.size());
  CHECK(pages == (count - failed.size() + 999) / 1000);

  auto totals = inventory->totals();
  REQUIRE(totals.ok());
  CHECK(totals->all().objects == static_cast<int64_t>(count));
  CHECK(totals->all().bytes == bytes);
  CHECK(totals->failed.objects == static_cast<int64_t>(failed.size()));
}
