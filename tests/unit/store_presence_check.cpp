#include "store/presence_check.hpp"
#include "store/store_compare.hpp"

#include <catch2/catch.hpp>

#include "store/folder/folder_store.hpp"
#include "store/os/sha256.hpp"
#include "test_support.hpp"

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <sys/stat.h>
#include <vector>

namespace fs = std::filesystem;
using namespace ferry;
using ferry::testing::temp_dir;

namespace {

/// A folder store that answers like a remote one can: sizes_of() of a batch
/// fails when `batch_fails` (one object at a time still works), one oid can
/// be made unanswerable (refused as an LFS server refuses an oid it holds at
/// another size), the whole store can be `down`, and list() can be refused
/// as an LFS server does.
class asking_store final : public object_store {
public:
  explicit asking_store(std::shared_ptr<folder_store> inner) : inner_(std::move(inner)) {}

  bool batch_fails = false;
  bool down = false;
  bool can_list = true;
  std::string unanswerable;
  int batches = 0;
  int singles = 0;
  int writes = 0;

  std::string describe() const override { return "asking+" + inner_->describe(); }
  result<publish_failures> sync_published() override { return inner_->sync_published(); }
  result<std::optional<object_info>> stat(const std::string& oid) override {
    return inner_->stat(oid);
  }
  result<std::vector<std::optional<int64_t>>>
  sizes_of(const std::vector<object_info>& objects) override {
    (objects.size() == 1 ? singles : batches) += 1;
    if (down)
      return status{errc::unavailable, "connection refused"};
    if (objects.size() > 1 && batch_fails)
      return status{errc::unavailable, "503 for the batch"};
    for (auto& object : objects)
      if (object.oid == unanswerable)
        return status{errc::invalid_request, "no answer about " + object.oid};
    return object_store::sizes_of(objects);
  }
  result<std::unique_ptr<object_reader>> open_read(const std::string& oid,
                                                   int64_t offset) override {
    return inner_->open_read(oid, offset);
  }
  result<std::unique_ptr<object_writer>>
  open_write(const std::string& oid, int64_t size,
             const std::optional<std::string>& resume) override {
    writes += 1;
    return inner_->open_write(oid, size, resume);
  }
  status list(const std::function<bool(const object_info&)>& visit) override {
    if (!can_list)
      return {errc::invalid_request, describe() + " cannot list its objects"};
    return inner_->list(visit);
  }
  status remove(const std::string& oid) override {
    writes += 1;
    return inner_->remove(oid);
  }

private:
  std::shared_ptr<folder_store> inner_;
};

std::shared_ptr<folder_store> folder(const fs::path& root) {
  auto store = folder_store::open(root);
  REQUIRE(store.ok());
  return std::move(store).value();
}

/// Stores `content` under its oid in the folder layout; returns its info.
object_info put(const folder_store& store, const std::string& content) {
  auto oid = sha256::of(content.data(), content.size());
  auto path = store.object_path(oid);
  fs::create_directories(path.parent_path());
  std::ofstream{path, std::ios::binary} << content;
  return {oid, static_cast<int64_t>(content.size())};
}

void overwrite(const folder_store& store, const std::string& oid, const std::string& content) {
  std::ofstream{store.object_path(oid), std::ios::binary | std::ios::trunc} << content;
}

std::unique_ptr<migration_inventory> inventory_in(const fs::path& dir) {
  auto inventory = migration_inventory::open(dir, "test");
  REQUIRE(inventory.ok());
  REQUIRE(inventory.value()->begin_run().ok());
  return std::move(inventory).value();
}

item_state state_of(const migration_inventory& inventory, const std::string& oid) {
  auto item = inventory.get(oid);
  REQUIRE(item.ok());
  REQUIRE(item->has_value());
  return item->value().state;
}

/// Every file under `root` with its size, modification time and inode.
std::map<std::string, std::string> snapshot(const fs::path& root) {
  std::map<std::string, std::string> files;
  if (!fs::exists(root))
    return files;
  for (auto& entry : fs::recursive_directory_iterator(root)) {
    struct ::stat info {};
    REQUIRE(::lstat(entry.path().c_str(), &info) == 0);
    files[entry.path().string()] =
      std::to_string(info.st_size) + "/" + std::to_string(info.st_mtim.tv_sec) + "." +
      std::to_string(info.st_mtim.tv_nsec) + "/" + std::to_string(info.st_ino);
  }
  return files;
}

/// Objects "object 0", "object 1", ... in `store`.
std::vector<object_info> put_many(const folder_store& store, int count) {
  std::vector<object_info> objects;
  for (int i = 0; i < count; ++i)
    objects.push_back(put(store, "object " + std::to_string(i) + std::string(i, 'x')));
  return objects;
}

} // namespace

TEST_CASE("ask_sizes answers a batch at once, or each object alone when the batch fails",
          "[presence]") {
  temp_dir tmp;
  auto inner = folder(tmp.path);
  asking_store store{inner};
  auto objects = put_many(*inner, 5);
  overwrite(*inner, objects[1].oid, "short");
  REQUIRE(inner->remove(objects[2].oid).ok());
  std::vector<std::optional<int64_t>> expected = {objects[0].size, 5, std::nullopt, objects[3].size,
                                                  objects[4].size};
  auto sizes_in = [](const size_answers& answers) {
    std::vector<std::optional<int64_t>> sizes;
    for (auto& size : answers.sizes) {
      REQUIRE(size.ok());
      sizes.push_back(*size);
    }
    return sizes;
  };

  auto whole = ask_sizes(store, objects);
  CHECK(whole.batch_error.ok());
  CHECK(sizes_in(whole) == expected);
  CHECK(store.batches == 1);
  CHECK(store.singles == 0);

  store.batch_fails = true;
  auto alone = ask_sizes(store, objects);
  CHECK(alone.batch_error.code() == errc::unavailable);
  CHECK(sizes_in(alone) == expected);
  CHECK(store.singles == 5);

  // One object the store cannot answer for carries its own error; the
  // others are still known.
  store.unanswerable = objects[3].oid;
  auto partly = ask_sizes(store, objects);
  REQUIRE(partly.sizes.size() == 5);
  REQUIRE_FALSE(partly.sizes[3].ok());
  CHECK(partly.sizes[3].error().message() == "no answer about " + objects[3].oid);
  REQUIRE(partly.sizes[4].ok());
  CHECK(*partly.sizes[4] == objects[4].size);

  // Held means answered, there, and of the listed size.
  CHECK(partly.holds(0, objects[0].size));
  CHECK_FALSE(partly.holds(0, objects[0].size + 1));
  CHECK_FALSE(partly.holds(1, 4));
  CHECK(partly.holds(1, 5));
  CHECK_FALSE(partly.holds(1, objects[1].size));
  CHECK_FALSE(partly.holds(2, objects[2].size));
  CHECK_FALSE(partly.holds(3, objects[3].size));

  // A store found unavailable while asking about one object is not asked
  // about the others: each would cost a connection attempt or a timeout.
  store.down = true;
  store.singles = 0;
  auto unavailable = ask_sizes(store, objects);
  CHECK(unavailable.batch_error.message() == "connection refused");
  CHECK(store.singles == 1);
  REQUIRE(unavailable.sizes.size() == 5);
  for (auto& size : unavailable.sizes) {
    REQUIRE_FALSE(size.ok());
    CHECK(size.error().code() == errc::unavailable);
    CHECK(size.error().message() == "connection refused");
  }
}

TEST_CASE("settle_by_listing settles pending items from one walk of the destination",
          "[presence]") {
  temp_dir tmp;
  auto source = folder(tmp.path / "source");
  auto destination = folder(tmp.path / "destination");
  auto objects = put_many(*source, 8);
  for (int i : {0, 1, 2, 3})
    put(*destination, "object " + std::to_string(i) + std::string(i, 'x'));
  overwrite(*destination, objects[3].oid, "cut");
  auto extra = put(*destination, "only at the destination");
  auto inventory = inventory_in(tmp.path / "inventory");
  REQUIRE(inventory->add(objects).ok());
  // A dead letter keeps its state even though the destination has it.
  REQUIRE(inventory->set_state(objects[2].oid, item_state::failed).ok());

  std::vector<std::string> extras;
  std::vector<std::pair<std::string, int64_t>> other_sizes;
  listing_visitors visitors;
  visitors.extra = [&](const object_info& held) { extras.push_back(held.oid); };
  visitors.size_differs = [&](const object_info& held, int64_t wanted) {
    CHECK(wanted == objects[3].size);
    other_sizes.emplace_back(held.oid, held.size);
  };
  auto settled = settle_by_listing(*destination, *inventory, -1, visitors);
  REQUIRE(settled.ok());
  CHECK(settled->complete);
  CHECK(settled->listed == 5);
  CHECK(settled->present == 2);
  CHECK(settled->size_differs == 1);
  CHECK(settled->extra == 1);
  CHECK(extras == std::vector<std::string>{extra.oid});
  CHECK(other_sizes == std::vector<std::pair<std::string, int64_t>>{{objects[3].oid, 3}});
  CHECK(state_of(*inventory, objects[0].oid) == item_state::present);
  CHECK(state_of(*inventory, objects[1].oid) == item_state::present);
  CHECK(state_of(*inventory, objects[2].oid) == item_state::failed);
  CHECK(state_of(*inventory, objects[3].oid) == item_state::missing);
  for (int i = 4; i < 8; ++i)
    CHECK(state_of(*inventory, objects[i].oid) == item_state::missing);
}

TEST_CASE("settle_by_listing stops at its limit and leaves the rest to be asked about",
          "[presence]") {
  temp_dir tmp;
  auto source = folder(tmp.path / "source");
  auto destination = folder(tmp.path / "destination");
  auto objects = put_many(*source, 6);
  for (int i = 0; i < 6; ++i)
    put(*destination, "object " + std::to_string(i) + std::string(i, 'x'));
  auto inventory = inventory_in(tmp.path / "inventory");
  REQUIRE(inventory->add(objects).ok());

  auto settled = settle_by_listing(*destination, *inventory, 2);
  REQUIRE(settled.ok());
  CHECK_FALSE(settled->complete);
  CHECK(settled->stopped.ok());
  CHECK(settled->listed == 2);
  auto totals = inventory->totals();
  REQUIRE(totals.ok());
  CHECK(totals->present.objects == 2);
  // Nothing unseen is called missing: the walk did not end.
  CHECK(totals->missing.objects == 0);
  CHECK(totals->pending.objects == 4);

  // A store that cannot list says so; nothing changes.
  asking_store lfs_like{destination};
  lfs_like.can_list = false;
  auto refused = settle_by_listing(lfs_like, *inventory, -1);
  REQUIRE(refused.ok());
  CHECK_FALSE(refused->complete);
  CHECK(refused->stopped.code() == errc::invalid_request);
  CHECK(inventory->totals()->pending.objects == 4);
}

TEST_CASE("compare_stores finds missing, extra, other-size and, hashing, other-content objects",
          "[presence]") {
  temp_dir tmp;
  auto source = folder(tmp.path / "source");
  auto inner = folder(tmp.path / "destination");
  auto objects = put_many(*source, 12);
  for (int i = 0; i < 12; ++i)
    put(*inner, "object " + std::to_string(i) + std::string(i, 'x'));
  asking_store destination{inner};
  auto list = [&](const std::function<status(const std::vector<object_info>&)>& take) {
    return take(objects);
  };
  auto compare = [&](bool hash) {
    temp_dir scratch;
    auto inventory = migration_inventory::open(scratch.path, "check");
    REQUIRE(inventory.ok());
    std::vector<compare_finding> found;
    compare_options options;
    options.hash = hash;
    options.hash_workers = 3;
    options.found = [&](const compare_finding& finding) { found.push_back(finding); };
    auto totals = compare_stores(*source, destination, list, **inventory, options);
    REQUIRE(totals.ok());
    std::sort(found.begin(), found.end(), [](auto& a, auto& b) { return a.kind < b.kind; });
    return std::make_pair(*totals, found);
  };

  auto [equal, none] = compare(true);
  CHECK(equal.match());
  CHECK(none.empty());
  CHECK(equal.extra_known);
  CHECK(equal.source.objects == 12);
  CHECK(equal.matched.objects == 12);
  CHECK(equal.hashed.objects == 12);

  auto before_source = snapshot(tmp.path / "source");
  REQUIRE(inner->remove(objects[0].oid).ok());
  overwrite(*inner, objects[1].oid, "sh");
  auto flipped = "object 2" + std::string(2, 'y');
  overwrite(*inner, objects[2].oid, flipped);
  auto extra = put(*inner, "only at the destination");
  overwrite(*source, objects[3].oid, "object 3" + std::string(3, 'z'));
  auto before_destination = snapshot(tmp.path / "destination");

  auto [sizes, by_size] = compare(false);
  CHECK_FALSE(sizes.match());
  CHECK(sizes.missing.objects == 1);
  CHECK(sizes.extra.objects == 1);
  CHECK(sizes.size_differs.objects == 1);
  CHECK(sizes.content_differs.objects == 0);
  CHECK(sizes.matched.objects == 10);
  CHECK(sizes.hashed.objects == 0);
  REQUIRE(by_size.size() == 3);
  CHECK(by_size[0].kind == difference::missing);
  CHECK(by_size[0].oid == objects[0].oid);
  CHECK(by_size[1].kind == difference::extra);
  CHECK(by_size[1].oid == extra.oid);
  CHECK(by_size[2].kind == difference::size_differs);
  CHECK(by_size[2].oid == objects[1].oid);
  CHECK(by_size[2].size == objects[1].size);
  CHECK(by_size[2].destination_size == std::optional<int64_t>{2});

  auto [hashed, by_hash] = compare(true);
  CHECK(hashed.content_differs.objects == 1);
  CHECK(hashed.corrupt_at_source.objects == 1);
  CHECK(hashed.matched.objects == 8);
  CHECK(hashed.hashed.objects == 8);
  REQUIRE(by_hash.size() == 5);
  CHECK(by_hash[3].kind == difference::content_differs);
  CHECK(by_hash[3].oid == objects[2].oid);
  CHECK(by_hash[4].kind == difference::corrupt_at_source);
  CHECK(by_hash[4].oid == objects[3].oid);
  // Each object of the source is counted once.
  CHECK(hashed.matched.objects + hashed.missing.objects + hashed.size_differs.objects +
          hashed.content_differs.objects + hashed.corrupt_at_source.objects +
          hashed.unreadable.objects ==
        hashed.source.objects);

  // Comparing wrote nothing on either side.
  CHECK(destination.writes == 0);
  CHECK(snapshot(tmp.path / "destination") == before_destination);
  auto after_source = snapshot(tmp.path / "source");
  CHECK(after_source.size() == before_source.size());
}

TEST_CASE("compare_stores asks a destination that cannot list a page at a time", "[presence]") {
  temp_dir tmp;
  auto source = folder(tmp.path / "source");
  auto inner = folder(tmp.path / "destination");
  auto objects = put_many(*source, 250);
  for (int i = 1; i < 250; ++i)
    put(*inner, "object " + std::to_string(i) + std::string(i, 'x'));
  put(*inner, "only at the destination");
  asking_store destination{inner};
  destination.can_list = false;
  destination.unanswerable = objects[7].oid;
  temp_dir scratch;
  auto inventory = migration_inventory::open(scratch.path, "check");
  REQUIRE(inventory.ok());
  std::vector<compare_finding> found;
  compare_options options;
  options.found = [&](const compare_finding& finding) { found.push_back(finding); };
  auto list = [&](const std::function<status(const std::vector<object_info>&)>& take) {
    return take(objects);
  };
  auto totals = compare_stores(*source, destination, list, **inventory, options);
  REQUIRE(totals.ok());
  CHECK_FALSE(totals->extra_known);
  CHECK(totals->missing.objects == 1);
  CHECK(totals->unreadable.objects == 1);
  CHECK(totals->matched.objects == 248);
  // Pages of 100 in oid order; the page holding the unanswerable oid is
  // asked again one object at a time.
  CHECK(destination.batches == 3);
  std::vector<std::string> oids;
  for (auto& object : objects)
    oids.push_back(object.oid);
  std::sort(oids.begin(), oids.end());
  auto rank = std::find(oids.begin(), oids.end(), objects[7].oid) - oids.begin();
  auto page_start = rank / 100 * 100;
  CHECK(destination.singles == std::min<std::ptrdiff_t>(100, 250 - page_start));
  std::set<std::string> kinds;
  for (auto& finding : found)
    kinds.insert(to_string(finding.kind));
  CHECK(kinds == std::set<std::string>{"missing", "unreadable"});
  CHECK_FALSE(totals->match());
}
