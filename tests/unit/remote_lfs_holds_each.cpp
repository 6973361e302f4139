// lfs_store::holds_each (and sizes_of on top of it) against ferry-lfs-sim:
// upload batches of 100 whose answers without an upload action mean "the
// server has it", the answers in order, the actions kept for the uploads
// that follow, and per-object and whole-batch errors reported as holds()
// reports them. Batch requests are counted in the sim's /stats.

#include "store/lfs/lfs_store.hpp"

#include <catch2/catch.hpp>

#include "remote_support.hpp"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

using ferry::errc;
using ferry::object_info;
using namespace ferry::testing;

namespace {

/// `count` objects; every third one (from the first) is stored in the sim's
/// root (the sim serves whatever its root holds), the others are not.
struct page_on_sim {
  page_on_sim(lfs_sim_process& sim, size_t count, uint32_t seed) {
    for (size_t i = 0; i < count; ++i) {
      contents.push_back(random_content(64 + i, seed + static_cast<uint32_t>(i)));
      objects.push_back(info_of(contents.back()));
      if (stored(i))
        store_in_root(sim, contents.back());
    }
  }

  static bool stored(size_t index) { return index % 3 == 0; }

  static void store_in_root(lfs_sim_process& sim, const std::string& content) {
    auto path = sim.object_path(oid_of(content));
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << content;
  }

  std::vector<std::string> contents;
  std::vector<object_info> objects;
};

/// `held` answers each of `objects` as page_on_sim stored them.
void check_answers(const ferry::result<std::vector<bool>>& held, size_t count) {
  INFO(held.error().to_string());
  REQUIRE(held.ok());
  REQUIRE(held->size() == count);
  for (size_t i = 0; i < count; ++i) {
    INFO("object " << i);
    CHECK((*held)[i] == page_on_sim::stored(i));
  }
}

std::vector<object_info> first(const std::vector<object_info>& objects, size_t count) {
  return {objects.begin(), objects.begin() + static_cast<std::ptrdiff_t>(count)};
}

} // namespace

TEST_CASE("lfs holds_each: one upload batch per 100 objects, answers in order",
          "[lfs_holds_each]") {
  sim_fixture f;
  page_on_sim page(f.sim, 250, 7000);

  CHECK(f.sim.stat("requests", "batch") == 0);
  check_answers(f.store()->holds_each(first(page.objects, 100)), 100);
  CHECK(f.sim.stat("requests", "batch") == 1);
  check_answers(f.store()->holds_each(first(page.objects, 101)), 101);
  CHECK(f.sim.stat("requests", "batch") == 3);

  auto store = f.store();
  check_answers(store->holds_each(page.objects), page.objects.size());
  CHECK(f.sim.stat("requests", "batch") == 6);

  // The actions handed out serve the uploads that follow: no batch request.
  REQUIRE_FALSE(page_on_sim::stored(1));
  auto put = put_object(*store, page.contents[1]);
  INFO(put.to_string());
  REQUIRE(put.ok());
  CHECK(f.sim.stat("events", "stored") == 1);
  CHECK(f.sim.stat("requests", "batch") == 6);

  // Asked again, the store answers from what it learned, the upload included.
  auto again = store->holds_each(page.objects);
  REQUIRE(again.ok());
  REQUIRE(again->size() == page.objects.size());
  CHECK((*again)[1]);
  for (size_t i = 2; i < page.objects.size(); ++i) {
    INFO("object " << i);
    CHECK((*again)[i] == page_on_sim::stored(i));
  }
  CHECK(f.sim.stat("requests", "batch") == 6);

  auto none = store->holds_each({});
  REQUIRE(none.ok());
  CHECK(none->empty());
  CHECK(f.sim.stat("requests", "batch") == 6);
}

TEST_CASE("lfs sizes_of: one upload batch per 100 objects, the asked size for each held one",
          "[lfs_holds_each]") {
  sim_fixture f;
  page_on_sim page(f.sim, 250, 7200);

  auto sizes = f.store()->sizes_of(page.objects);
  INFO(sizes.error().to_string());
  REQUIRE(sizes.ok());
  REQUIRE(sizes->size() == page.objects.size());
  for (size_t i = 0; i < page.objects.size(); ++i) {
    INFO("object " << i);
    if (page_on_sim::stored(i))
      CHECK((*sizes)[i] == page.objects[i].size);
    else
      CHECK((*sizes)[i] == std::nullopt);
  }
  CHECK(f.sim.stat("requests", "batch") == 3);
}

TEST_CASE("lfs holds_each: the same oid with another size is asked about on its own",
          "[lfs_holds_each]") {
  sim_fixture f;
  const std::string content = random_content(500, 7500);
  const object_info object = info_of(content);
  auto held = f.store()->holds_each({object, {object.oid, object.size + 1}, object});
  INFO(held.error().to_string());
  REQUIRE(held.ok());
  CHECK(*held == std::vector<bool>{false, false, false});
  CHECK(f.sim.stat("requests", "batch") == 2);
}

TEST_CASE("lfs holds_each: the first object the server answers with an error decides, as in "
          "holds()",
          "[lfs_holds_each]") {
  const std::string expired = random_content(300, 7801);
  const std::string conflict = random_content(300, 7802);
  const std::string scenario =
    R"({"rules": [
           {"match": {"endpoint": "batch", "oid": ")" +
    oid_of(expired) + R"("},
            "fault": {"expired_actions": true}},
           {"match": {"endpoint": "batch", "oid": ")" +
    oid_of(conflict) + R"("},
            "fault": {"object_error": 409}}]})";
  sim_fixture f(scenario);
  page_on_sim page(f.sim, 6, 7900);
  // A stored object asked about with another size: the sim answers 422.
  REQUIRE(page_on_sim::stored(3));
  auto objects = page.objects;
  objects[3].size += 1;
  objects.insert(objects.begin() + 4, info_of(expired));
  objects.insert(objects.begin() + 5, info_of(conflict));

  // Each time, the first error in order decides; a fresh store asks alone.
  const std::vector<errc> codes{errc::invalid_request, errc::unavailable, errc::invalid_request};
  for (size_t round = 0; round < codes.size(); ++round) {
    INFO("round " << round);
    const int64_t batches = f.sim.stat("requests", "batch");
    auto held = f.store()->holds_each(objects);
    REQUIRE_FALSE(held.ok());
    CHECK(f.sim.stat("requests", "batch") == batches + 1);
    auto alone = f.store()->holds(objects[3]);
    REQUIRE_FALSE(alone.ok());
    CHECK(held.error().code() == codes[round]);
    CHECK(held.error().to_string() == alone.error().to_string());
    CHECK_THAT(held.error().message(), Catch::Contains(objects[3].oid));
    objects.erase(objects.begin() + 3);
  }
  // Without them, the rest is answered.
  auto rest = f.store()->holds_each(objects);
  INFO(rest.error().to_string());
  REQUIRE(rest.ok());
  CHECK(*rest == std::vector<bool>{true, false, false, false, false});
}

TEST_CASE("lfs holds_each: a failed batch request fails the call as holds() fails",
          "[lfs_holds_each]") {
  sim_fixture f(R"({"rules": [{"match": {"endpoint": "batch"}, "fault": {"status": 500}}]})");
  page_on_sim page(f.sim, 250, 8000);
  auto held = f.store()->holds_each(page.objects);
  REQUIRE_FALSE(held.ok());
  CHECK(f.sim.stat("requests", "batch") == 3);
  auto alone = f.store()->holds(page.objects.front());
  REQUIRE_FALSE(alone.ok());
  CHECK(held.error().code() == errc::unavailable);
  // The same but for the id the sim gives each request.
  auto without_request_id = [](const std::string& text) {
    return text.substr(0, text.find("(request id"));
  };
  CHECK_THAT(held.error().to_string(), Catch::Contains("HTTP 500"));
  CHECK(without_request_id(held.error().to_string()) ==
        without_request_id(alone.error().to_string()));
}
