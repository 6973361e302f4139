// The migration plan driven directly: a folder store as the destination, a
// real inventory, both in a temp directory, and a clock the test moves.

#include "actors/policy/migration_plan.hpp"

#include "folder_support.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using namespace ferry;
using namespace ferry::testing;

namespace {

/// Forwards to a folder store and records what sizes_of() was asked, one
/// entry per call; can refuse batches and removals as servers do.
class asked_store final : public object_store {
public:
  explicit asked_store(std::shared_ptr<folder_store> inner) : inner_(std::move(inner)) {}

  std::string describe() const override { return "asked+" + inner_->describe(); }
  result<publish_failures> sync_published() override { return inner_->sync_published(); }
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
    return inner_->open_write(oid, size, resume);
  }
  status list(const std::function<bool(const object_info&)>& visit) override {
    return inner_->list(visit);
  }
  result<std::vector<std::optional<int64_t>>>
  sizes_of(const std::vector<object_info>& objects) override {
    std::vector<std::string> oids;
    for (auto& object : objects)
      oids.push_back(object.oid);
    asked.push_back(oids);
    if (down || (refuse_batches && objects.size() > 1))
      return status{errc::unavailable, "503 for a batch"};
    return object_store::sizes_of(objects);
  }
  status expect_reads(const std::vector<object_info>& objects) override {
    std::vector<std::string> oids;
    for (auto& object : objects)
      oids.push_back(object.oid);
    announced.push_back(oids);
    return status::success();
  }
  status remove(const std::string& oid) override {
    if (refuse_remove)
      return {errc::permission_denied, "this store never removes objects"};
    return inner_->remove(oid);
  }

  bool refuse_batches = false;
  /// Every sizes_of() call fails.
  bool down = false;
  bool refuse_remove = false;
  /// The oids of each sizes_of() call, in order.
  std::vector<std::vector<std::string>> asked;
  /// The oids of each expect_reads() call, in order.
  std::vector<std::vector<std::string>> announced;

private:
  std::shared_ptr<folder_store> inner_;
};

struct plan_fixture {
  temp_dir scratch;
  std::shared_ptr<folder_store> folder{open_store_at(scratch.path / "destination")};
  std::shared_ptr<asked_store> destination = std::make_shared<asked_store>(folder);
  std::shared_ptr<migration_inventory> inventory;
  migration_plan::clock::time_point now{1h};
  struct notice {
    migration_plan::notice_level level;
    std::string text;
  };
  std::vector<notice> notices;
  migration_plan::settings rules;

  plan_fixture() {
    auto opened = migration_inventory::open(scratch.path / "inventory", "plan test");
    REQUIRE(opened);
    inventory = std::move(*opened);
    rules.concurrency = concurrency_control::fixed(1000);
  }

  std::unique_ptr<migration_plan> make_plan() {
    auto plan = std::make_unique<migration_plan>(
      inventory, destination, rules, [this] { return now; },
      [this](migration_plan::notice_level level, const std::string& text) {
        notices.push_back({level, text});
      });
    REQUIRE(plan->start().ok());
    return plan;
  }

  /// Lists object `n` (its bytes are make_content(size, n)) and returns its oid.
  std::string list(uint32_t n, size_t size = 100) {
    auto oid = oid_of(make_content(size, n));
    auto added = inventory->add({{oid, static_cast<int64_t>(size)}});
    REQUIRE(added);
    return oid;
  }

  std::vector<std::string> list_many(uint32_t count) {
    std::vector<std::string> oids;
    for (uint32_t n = 0; n < count; ++n)
      oids.push_back(list(n));
    std::sort(oids.begin(), oids.end());
    return oids;
  }

  /// Puts `bytes` at the destination under `oid`, whether they match it or not.
  void place(const std::string& oid, const std::string& bytes) {
    auto path = folder->object_path(oid);
    std::filesystem::create_directories(path.parent_path());
    std::ofstream{path, std::ios::binary} << bytes;
  }

  /// Puts object `n` at the destination, intact.
  void place_intact(uint32_t n, size_t size = 100) {
    auto bytes = make_content(size, n);
    place(oid_of(bytes), bytes);
  }

  inventory_item item(const std::string& oid) {
    auto found = inventory->get(oid);
    REQUIRE(found);
    REQUIRE(found->has_value());
    return **found;
  }

  /// Every copy the plan starts now.
  static std::vector<planned_copy> take_all(migration_plan& plan) {
    std::vector<planned_copy> copies;
    for (;;) {
      auto next = plan.next_copy();
      REQUIRE(next);
      if (!*next)
        return copies;
      copies.push_back(std::move(**next));
    }
  }

  static std::vector<std::string> oids_of(const std::vector<planned_copy>& copies) {
    std::vector<std::string> oids;
    for (auto& copy : copies)
      oids.push_back(copy.oid);
    return oids;
  }

  static copy_verdict finish(migration_plan& plan, const planned_copy& copy,
                             const copy_result& outcome) {
    auto verdict = plan.finish_copy(copy.id, outcome);
    INFO(verdict.error().to_string());
    REQUIRE(verdict);
    return *verdict;
  }
};

} // namespace

TEST_CASE_METHOD(plan_fixture,
                 "pending items are taken and asked about a page of 100 at a "
                 "time, in oid order",
                 "[migration_plan]") {
  auto oids = list_many(250);
  rules.concurrency = concurrency_control::fixed(1);
  auto plan = make_plan();

  auto first = plan->next_copy();
  REQUIRE(first);
  REQUIRE(*first);
  CHECK((*first)->oid == oids[0]);
  // One copy at a time: only the first page has been asked about.
  REQUIRE(destination->asked.size() == 1);
  CHECK(destination->asked[0] == std::vector<std::string>(oids.begin(), oids.begin() + 100));
  auto none = plan->next_copy();
  REQUIRE(none);
  CHECK_FALSE(*none);

  std::vector<std::string> copied{(*first)->oid};
  auto current = **first;
  while (!plan->done()) {
    CHECK(finish(*plan, current, {errc::ok, "", 1}) == copy_verdict::copied);
    auto next = take_all(*plan);
    if (next.empty())
      break;
    REQUIRE(next.size() == 1);
    current = next[0];
    copied.push_back(current.oid);
  }
  CHECK(plan->done());
  CHECK(copied == oids);
  REQUIRE(destination->asked.size() == 3);
  CHECK(destination->asked[1] == std::vector<std::string>(oids.begin() + 100, oids.begin() + 200));
  CHECK(destination->asked[2] == std::vector<std::string>(oids.begin() + 200, oids.end()));
}

TEST_CASE_METHOD(plan_fixture,
                 "items a listing walk found missing are copied first, without "
                 "asking the destination",
                 "[migration_plan]") {
  auto missing = list_many(3);
  REQUIRE(inventory->move_all({item_state::pending}, item_state::missing));
  auto pending = std::vector<std::string>{list(100), list(101)};
  std::sort(pending.begin(), pending.end());
  auto plan = make_plan();

  auto copies = oids_of(take_all(*plan));
  auto expected = missing;
  expected.insert(expected.end(), pending.begin(), pending.end());
  CHECK(copies == expected);
  REQUIRE(destination->asked.size() == 1);
  CHECK(destination->asked[0] == pending);
}

TEST_CASE_METHOD(plan_fixture,
                 "each page's copies are announced to the source at once, before "
                 "the first of them starts",
                 "[migration_plan]") {
  auto missing = list_many(3);
  REQUIRE(inventory->move_all({item_state::pending}, item_state::missing));
  std::vector<std::string> pending;
  for (uint32_t n = 100; n < 250; ++n)
    pending.push_back(list(n));
  std::sort(pending.begin(), pending.end());
  auto held = list(1000);
  place_intact(1000);
  auto source = std::make_shared<asked_store>(open_store_at(scratch.path / "source"));
  rules.source = source;
  rules.concurrency = concurrency_control::fixed(1);
  auto plan = make_plan();

  auto first = plan->next_copy();
  REQUIRE(first);
  REQUIRE(*first);
  CHECK(source->announced == std::vector<std::vector<std::string>>{missing});

  std::vector<std::string> rest(pending);
  rest.erase(std::remove(rest.begin(), rest.end(), held), rest.end());
  auto current = **first;
  while (!plan->done()) {
    REQUIRE(finish(*plan, current, {errc::ok, "", 1}) == copy_verdict::copied);
    auto next = take_all(*plan);
    if (next.empty())
      break;
    current = next[0];
  }
  // Pages of 100 pending items; the one the destination holds is not read.
  std::vector<std::string> second_page;
  std::vector<std::string> third_page;
  for (auto& oid : rest)
    (oid <= destination->asked.at(0).back() ? second_page : third_page).push_back(oid);
  CHECK(source->announced ==
        std::vector<std::vector<std::string>>{missing, second_page, third_page});
}

TEST_CASE_METHOD(plan_fixture,
                 "only a copy the destination answered \"none\" for, or its listing left out, "
                 "is known absent",
                 "[migration_plan]") {
  auto absent = list(1, 100);
  auto other_size = list(2, 100);
  place(other_size, make_content(99, 2));

  SECTION("answered") {
    auto plan = make_plan();
    auto copies = take_all(*plan);
    REQUIRE(copies.size() == 2);
    for (auto& copy : copies)
      CHECK(copy.known_absent == (copy.oid == absent));
  }
  SECTION("unanswered") {
    destination->down = true;
    auto plan = make_plan();
    auto copies = take_all(*plan);
    REQUIRE(copies.size() == 2);
    for (auto& copy : copies)
      CHECK_FALSE(copy.known_absent);
  }
  SECTION("found missing by a listing walk, but not when queued again") {
    REQUIRE(inventory->move_all({item_state::pending}, item_state::missing));
    rules.source_is_server = true;
    auto plan = make_plan();
    auto copies = take_all(*plan);
    REQUIRE(copies.size() == 2);
    CHECK(copies[0].known_absent);
    CHECK(copies[1].known_absent);
    REQUIRE(finish(*plan, copies[0], {errc::hash_mismatch, "bad", 1}) == copy_verdict::again);
    auto again = take_all(*plan);
    REQUIRE(again.size() == 1);
    CHECK_FALSE(again[0].known_absent);
  }
}

TEST_CASE_METHOD(plan_fixture, "the inventory keeps each copy's correlation id",
                 "[migration_plan]") {
  auto copied = list(1, 100);
  auto failed = list(2, 100);
  rules.concurrency = concurrency_control::fixed(2);
  auto plan = make_plan();
  auto copies = take_all(*plan);
  REQUIRE(copies.size() == 2);
  for (auto& copy : copies) {
    bool ok = copy.oid == copied;
    auto outcome = ok ? copy_result{errc::ok, "", 1, "aaaaaaaaaaaa"}
                      : copy_result{errc::not_found, "gone", 1, "bbbbbbbbbbbb"};
    CHECK(finish(*plan, copy, outcome) == (ok ? copy_verdict::copied : copy_verdict::failed));
  }
  CHECK(item(copied).cid == "aaaaaaaaaaaa");
  CHECK(item(failed).cid == "bbbbbbbbbbbb");
  CHECK(item(failed).state == item_state::failed);
}

TEST_CASE_METHOD(plan_fixture,
                 "a copy that finds the object already at the destination counts it as present",
                 "[migration_plan]") {
  auto found = list(1, 100);
  auto written = list(2, 200);
  rules.concurrency = concurrency_control::fixed(2);
  auto plan = make_plan();
  auto copies = take_all(*plan);
  REQUIRE(copies.size() == 2);
  for (auto& copy : copies) {
    bool there = copy.oid == found;
    copy_result outcome{errc::ok, "", 1, "aaaaaaaaaaaa", there};
    CHECK(finish(*plan, copy, outcome) == (there ? copy_verdict::present : copy_verdict::copied));
  }
  CHECK(item(found).state == item_state::present);
  CHECK(item(written).state == item_state::copied);
  auto totals = inventory->totals();
  REQUIRE(totals);
  CHECK(totals->present.objects == 1);
  CHECK(totals->copied.objects == 1);
  CHECK(totals->copied.bytes == 200);
}

TEST_CASE_METHOD(plan_fixture, "no more copies are started than the concurrency limit",
                 "[migration_plan]") {
  list_many(10);
  rules.concurrency = concurrency_control::fixed(3);
  auto plan = make_plan();

  auto copies = take_all(*plan);
  REQUIRE(copies.size() == 3);
  CHECK(plan->progress().in_flight == 3);
  CHECK(finish(*plan, copies[1], {errc::ok, "", 1}) == copy_verdict::copied);
  CHECK(take_all(*plan).size() == 1);
  CHECK_FALSE(plan->done());
}

TEST_CASE_METHOD(plan_fixture,
                 "the next page is taken while copies are queued, checked elsewhere, and put back",
                 "[migration_plan]") {
  auto oids = list_many(250);
  auto held = oids[150]; // on the second page
  place_intact(0);       // some object at the destination...
  place(held, "x");      // ...and one held with another size
  rules.concurrency = concurrency_control::fixed(10);
  auto plan = make_plan();

  // The first page is taken at once, for the first copies.
  REQUIRE(take_all(*plan).size() == 10);
  REQUIRE(destination->asked.size() == 1);
  CHECK(plan->wants_page()); // 90 queued, fewer than a page
  auto page = plan->take_page();
  REQUIRE(page);
  REQUIRE(page->has_value());
  CHECK((*page)->ask);
  REQUIRE((*page)->items.size() == 100);
  CHECK((*page)->items.front().oid == oids[100]);
  // Out: not taken twice, and nothing is asked until it is checked.
  CHECK_FALSE(plan->wants_page());
  auto again = plan->take_page();
  REQUIRE(again);
  CHECK_FALSE(again->has_value());
  CHECK(destination->asked.size() == 1);

  check_page(**page, *destination, nullptr);
  CHECK(destination->asked.size() == 2);
  REQUIRE(plan->put_page(std::move(**page)).ok());
  // The second page's items queue behind the first's 90.
  auto copies = oids_of(take_all(*plan));
  CHECK(copies.empty());                          // the limit of 10 is reached
  CHECK(item(held).state == item_state::pending); // another size: copied
  CHECK_FALSE(plan->done());
}

TEST_CASE_METHOD(plan_fixture, "while a page is out, the plan neither takes another nor ends",
                 "[migration_plan]") {
  list_many(150);
  rules.concurrency = concurrency_control::fixed(100);
  auto plan = make_plan();

  auto first = take_all(*plan);
  REQUIRE(first.size() == 100);
  auto page = plan->take_page();
  REQUIRE(page);
  REQUIRE(page->has_value());
  for (auto& copy : first)
    CHECK(finish(*plan, copy, {errc::ok, "", 1}) == copy_verdict::copied);
  // Nothing queued, the page still out: no copy, no synchronous page, not done.
  CHECK(take_all(*plan).empty());
  CHECK(destination->asked.size() == 1);
  CHECK_FALSE(plan->done());

  check_page(**page, *destination, nullptr);
  REQUIRE(plan->put_page(std::move(**page)).ok());
  auto second = take_all(*plan);
  CHECK(second.size() == 50);
  for (auto& copy : second)
    CHECK(finish(*plan, copy, {errc::ok, "", 1}) == copy_verdict::copied);
  CHECK(take_all(*plan).empty());
  CHECK(plan->done());
}

TEST_CASE_METHOD(plan_fixture,
                 "a stored copy frees its slot at once and counts as copied only at its outcome",
                 "[migration_plan]") {
  list_many(10);
  rules.concurrency = concurrency_control::fixed(3);
  auto plan = make_plan();

  auto copies = take_all(*plan);
  REQUIRE(copies.size() == 3);
  plan->stored(copies[0].id);
  plan->stored(copies[0].id); // twice is once
  auto next = take_all(*plan);
  CHECK(next.size() == 1);
  CHECK(plan->progress().in_flight == 4);
  CHECK(plan->progress().done_objects == 0);
  CHECK(finish(*plan, copies[0], {errc::ok, "", 1}) == copy_verdict::copied);
  CHECK(plan->progress().done_objects == 1);
  // The outcome of a stored copy frees no second slot.
  CHECK(take_all(*plan).empty());
  CHECK(finish(*plan, copies[1], {errc::ok, "", 1}) == copy_verdict::copied);
  CHECK(take_all(*plan).size() == 1);
}

TEST_CASE_METHOD(plan_fixture, "copies waiting for their sync are bounded", "[migration_plan]") {
  auto count = migration_plan::max_awaiting_sync + 5;
  list_many(static_cast<uint32_t>(count));
  rules.concurrency = concurrency_control::fixed(1);
  auto plan = make_plan();

  std::vector<planned_copy> waiting;
  for (;;) {
    auto copies = take_all(*plan);
    if (copies.empty())
      break;
    REQUIRE(copies.size() == 1);
    plan->stored(copies[0].id);
    waiting.push_back(copies[0]);
  }
  CHECK(waiting.size() == migration_plan::max_awaiting_sync);
  CHECK(finish(*plan, waiting[0], {errc::ok, "", 1}) == copy_verdict::copied);
  CHECK(take_all(*plan).size() == 1);
}

TEST_CASE_METHOD(plan_fixture,
                 "an object the destination holds with the listed size is "
                 "present; absent or of another size, it is copied",
                 "[migration_plan]") {
  auto held = list(1, 300);
  place_intact(1, 300);
  auto absent = list(2, 200);
  auto other_size = list(3, 100);
  place(other_size, make_content(99, 3));
  auto plan = make_plan();

  auto copies = oids_of(take_all(*plan));
  std::sort(copies.begin(), copies.end());
  auto expected = std::vector<std::string>{absent, other_size};
  std::sort(expected.begin(), expected.end());
  CHECK(copies == expected);
  CHECK(item(held).state == item_state::present);
  CHECK(item(absent).state == item_state::pending);
  CHECK(item(other_size).state == item_state::pending);
  auto progress = plan->progress();
  CHECK(progress.total_objects == 3);
  CHECK(progress.total_bytes == 600);
  CHECK(progress.done_objects == 1);
  CHECK(progress.done_bytes == 300);
  CHECK(progress.failed_objects == 0);
}

TEST_CASE_METHOD(plan_fixture,
                 "with verify_existing an intact copy is verified and a damaged "
                 "one is removed and copied, or fails when it cannot be removed",
                 "[migration_plan]") {
  rules.verify_existing = true;
  auto intact = list(1);
  place_intact(1);
  auto damaged = list(2);
  place(damaged, make_content(100, 99));

  SECTION("the destination removes the damaged copy") {
    auto plan = make_plan();
    CHECK(oids_of(take_all(*plan)) == std::vector<std::string>{damaged});
    CHECK(item(intact).state == item_state::verified);
    CHECK(item(damaged).state == item_state::pending);
    auto removed = folder->stat(damaged);
    REQUIRE(removed);
    CHECK_FALSE(removed->has_value());
    REQUIRE(notices.size() == 1);
    CHECK(notices[0].text.find("copy of " + damaged + " does not match its oid") !=
          std::string::npos);
    CHECK(plan->progress().done_objects == 1);
  }
  SECTION("the destination cannot remove it") {
    destination->refuse_remove = true;
    auto plan = make_plan();
    CHECK(take_all(*plan).empty());
    CHECK(plan->done());
    auto failed = item(damaged);
    CHECK(failed.state == item_state::failed);
    REQUIRE(failed.errors.size() == 1);
    CHECK(failed.errors[0].code == "permission_denied");
    CHECK(item(intact).state == item_state::verified);
    CHECK(plan->progress().done_objects == 2);
    CHECK(plan->progress().failed_objects == 1);
  }
}

TEST_CASE_METHOD(plan_fixture,
                 "a destination that cannot answer for a page is told on stderr "
                 "once, later pages in the log only",
                 "[migration_plan]") {
  list_many(150);
  destination->refuse_batches = true;
  auto plan = make_plan();
  CHECK(take_all(*plan).size() == 150);
  REQUIRE(notices.size() == 2);
  CHECK(notices[0].level == migration_plan::notice_level::warning);
  CHECK(notices[0].text.find("about 100 objects at once") != std::string::npos);
  CHECK(notices[1].level == migration_plan::notice_level::info);
  CHECK(notices[1].text.find("about 50 objects at once") != std::string::npos);
}

TEST_CASE_METHOD(plan_fixture, "each outcome is recorded by its rule", "[migration_plan]") {
  auto oid = list(1, 123);
  rules.concurrency = concurrency_control::fixed(1);
  auto plan = make_plan();
  auto copies = take_all(*plan);
  REQUIRE(copies.size() == 1);
  auto& copy = copies[0];

  SECTION("copied, with its attempts") {
    CHECK(finish(*plan, copy, {errc::ok, "", 2}) == copy_verdict::copied);
    CHECK(item(oid).state == item_state::copied);
    CHECK(item(oid).attempts == 2);
    CHECK(plan->progress().done_objects == 1);
    CHECK(plan->progress().done_bytes == 123);
    CHECK(plan->progress().failed_objects == 0);
    CHECK(take_all(*plan).empty());
    CHECK(plan->done());
  }
  SECTION("failed, with its error code apart from the message") {
    CHECK(finish(*plan, copy, {errc::not_found, "not_found: no such object", 1}) ==
          copy_verdict::failed);
    auto failed = item(oid);
    CHECK(failed.state == item_state::failed);
    REQUIRE(failed.errors.size() == 1);
    CHECK(failed.errors[0].code == "not_found");
    CHECK(failed.errors[0].message == "no such object");
    CHECK(plan->progress().done_objects == 1);
    CHECK(plan->progress().failed_objects == 1);
    CHECK(take_all(*plan).empty());
    CHECK(plan->done());
  }
  SECTION("corrupt, when a folder source's bytes do not match") {
    CHECK(finish(*plan, copy, {errc::hash_mismatch, "bad bytes", 1}) == copy_verdict::corrupt);
    CHECK(item(oid).state == item_state::corrupt);
    CHECK(plan->progress().failed_objects == 1);
    CHECK(take_all(*plan).empty());
    CHECK(plan->done());
  }
  SECTION("out of space stops the run and leaves the object to copy") {
    auto verdict = plan->finish_copy(copy.id, {errc::no_space, "disk full", 1});
    REQUIRE_FALSE(verdict);
    CHECK(verdict.error().code() == errc::no_space);
    CHECK(verdict.error().message().find(oid) != std::string::npos);
    CHECK(item(oid).state == item_state::pending);
    CHECK(plan->progress().done_objects == 0);
  }
  SECTION("an outcome for no copy in flight changes nothing") {
    CHECK(finish(*plan, copy, {errc::ok, "", 1}) == copy_verdict::copied);
    CHECK(finish(*plan, copy, {errc::not_found, "late", 1}) == copy_verdict::unknown);
    CHECK(item(oid).state == item_state::copied);
    CHECK(plan->progress().done_objects == 1);
  }
}

TEST_CASE_METHOD(plan_fixture,
                 "bad bytes from a server source get one more copy before the "
                 "source is called corrupt",
                 "[migration_plan]") {
  auto oid = list(1);
  rules.source_is_server = true;
  auto plan = make_plan();
  auto first = take_all(*plan);
  REQUIRE(first.size() == 1);

  CHECK(finish(*plan, first[0], {errc::size_mismatch, "short read", 1}) == copy_verdict::again);
  CHECK(item(oid).state == item_state::pending);
  CHECK(plan->progress().done_objects == 0);
  REQUIRE(notices.size() == 1);
  CHECK(notices[0].text == oid + ": short read; copying it once more");
  auto second = take_all(*plan);
  REQUIRE(second.size() == 1);
  CHECK(second[0].oid == oid);
  CHECK(second[0].id != first[0].id);

  SECTION("a good second copy is copied") {
    CHECK(finish(*plan, second[0], {errc::ok, "", 1}) == copy_verdict::copied);
    CHECK(item(oid).state == item_state::copied);
  }
  SECTION("bad bytes again make it corrupt") {
    CHECK(finish(*plan, second[0], {errc::hash_mismatch, "bad", 1}) == copy_verdict::corrupt);
    CHECK(item(oid).state == item_state::corrupt);
  }
  CHECK(plan->done());
}

TEST_CASE_METHOD(plan_fixture,
                 "transient failures and retried copies lower an adaptive limit; "
                 "permanent failures do not",
                 "[migration_plan]") {
  list_many(3);
  rules.concurrency = concurrency_control::adaptive(8, 64);
  auto plan = make_plan();
  auto copies = take_all(*plan);
  REQUIRE(copies.size() == 3);
  REQUIRE(plan->progress().concurrency == 8);

  SECTION("permanent") {
    CHECK(finish(*plan, copies[0], {errc::not_found, "gone", 1}) == copy_verdict::failed);
    CHECK(finish(*plan, copies[1], {errc::hash_mismatch, "bad", 1}) == copy_verdict::corrupt);
    CHECK(plan->progress().concurrency == 8);
  }
  SECTION("transient") {
    CHECK(finish(*plan, copies[0], {errc::unavailable, "503", 4}) == copy_verdict::failed);
    CHECK(plan->progress().concurrency == 4);
  }
  SECTION("copied after retries") {
    CHECK(finish(*plan, copies[0], {errc::ok, "", 3}) == copy_verdict::copied);
    CHECK(plan->progress().concurrency == 4);
  }
}

TEST_CASE_METHOD(plan_fixture, "copy durations and the elapsed time come from the injected clock",
                 "[migration_plan]") {
  list_many(6);
  rules.concurrency = concurrency_control::adaptive(1, 8);
  auto plan = make_plan();
  CHECK(plan->progress().elapsed == 0ms);

  // Each round starts as many copies as the limit allows and finishes
  // them after `took`; the adaptive limit judges their time per byte.
  auto round = [&](std::chrono::milliseconds took) {
    auto copies = take_all(*plan);
    now += took;
    for (auto& copy : copies)
      CHECK(finish(*plan, copy, {errc::ok, "", 1}) == copy_verdict::copied);
    return copies.size();
  };
  CHECK(round(100ms) == 1);
  CHECK(plan->progress().concurrency == 2);
  CHECK(round(100ms) == 2);
  CHECK(plan->progress().concurrency == 3);
  // Ten times slower: the copies crowd each other, the limit shrinks.
  CHECK(round(1000ms) == 3);
  CHECK(plan->progress().concurrency == 2);
  CHECK(plan->progress().elapsed == 1200ms);
  CHECK(take_all(*plan).empty());
  CHECK(plan->done());
}

TEST_CASE_METHOD(plan_fixture, "progress starts from what the inventory holds",
                 "[migration_plan]") {
  auto failed = list(1, 10);
  auto copied = list(2, 20);
  list(3, 30);
  REQUIRE(
    inventory->set_state(failed, item_state::failed, 1, attempt_error{1, "not_found", "gone"}));
  REQUIRE(inventory->set_state(copied, item_state::copied, 1));
  auto plan = make_plan();
  auto progress = plan->progress();
  CHECK(progress.total_objects == 3);
  CHECK(progress.total_bytes == 60);
  CHECK(progress.done_objects == 2);
  CHECK(progress.done_bytes == 30);
  CHECK(progress.failed_objects == 1);
  CHECK(progress.moved_bytes == 0);
  plan->moved(7);
  CHECK(plan->progress().moved_bytes == 7);
}

TEST_CASE_METHOD(plan_fixture,
                 "retrying the failed (--retry-failed) puts failed and corrupt items "
                 "back to pending with their errors",
                 "[migration_plan]") {
  auto failed = list(1, 10);
  auto corrupt = list(2, 20);
  auto copied = list(3, 30);
  REQUIRE(inventory->set_state(failed, item_state::failed, 1, attempt_error{1, "io_error", "x"}));
  REQUIRE(inventory->set_state(corrupt, item_state::corrupt, 1));
  REQUIRE(inventory->set_state(copied, item_state::copied, 1));
  auto totals = inventory->totals();
  REQUIRE(totals);
  auto failures = failures_of(*totals);
  CHECK(failures.objects == 2);
  CHECK(failures.bytes == 30);

  auto again = requeue_failed(*inventory);
  REQUIRE(again);
  CHECK(*again == 2);
  CHECK(item(failed).state == item_state::pending);
  CHECK(item(failed).errors.size() == 1);
  CHECK(item(corrupt).state == item_state::pending);
  CHECK(item(copied).state == item_state::copied);
}

TEST_CASE_METHOD(plan_fixture,
                 "the summary holds the totals and a bounded dead-letter list, "
                 "failed before corrupt",
                 "[migration_plan]") {
  auto failed = list_many(3);
  for (auto& oid : failed)
    REQUIRE(inventory->set_state(oid, item_state::failed, 1, attempt_error{1, "not_found", "x"}));
  auto corrupt = list(10, 50);
  REQUIRE(inventory->set_state(corrupt, item_state::corrupt, 1));
  list(11, 70);

  migration_summary summary;
  SECTION("all failures fit") {
    REQUIRE(summarize(*inventory, summary));
    std::vector<std::string> listed;
    for (auto& item : summary.failures)
      listed.push_back(item.oid);
    auto expected = failed;
    expected.push_back(corrupt);
    CHECK(listed == expected);
    CHECK(summary.failures_left_out == 0);
    CHECK(summary.totals.failed.objects == 3);
    CHECK(summary.totals.corrupt.bytes == 50);
    CHECK(summary.totals.pending.objects == 1);
  }
  SECTION("the list is bounded") {
    REQUIRE(summarize(*inventory, summary, 2));
    REQUIRE(summary.failures.size() == 2);
    CHECK(summary.failures[0].oid == failed[0]);
    CHECK(summary.failures[1].oid == failed[1]);
    CHECK(summary.failures_left_out == 2);
  }
}
