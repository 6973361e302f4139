// lfs_store against ferry-lfs-sim: uploads, downloads, batching, ranges and
// action expiry, checked on the wire through the sim's /stats.

#include "store/http/http_engine.hpp"
#include "store/lfs/lfs_store.hpp"
#include "store/open_store.hpp"

#include <catch2/catch.hpp>

#include "remote_support.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

using ferry::errc;
using ferry::lfs_store;
using ferry::lfs_store_options;
using ferry::object_info;
using namespace ferry::testing;

TEST_CASE("an uploaded object can be stat'ed, is held and reads back intact", "[lfs_store]") {
  sim_fixture f;
  auto store = f.store();
  const std::string content = random_content(300 * 1024 + 17, 1);
  const std::string oid = oid_of(content);

  CHECK(store->holds(info_of(content)).value() == false);
  auto put = put_object(*store, content);
  INFO(put.to_string());
  REQUIRE(put.ok());
  CHECK(f.sim.stat("events", "stored") == 1);
  CHECK(f.sim.stat("events", "verify_ok") == 1);
  CHECK(f.sim.stat("events", "missing_action_header") == 0);
  REQUIRE(std::filesystem::file_size(f.sim.object_path(oid)) == content.size());

  auto info = store->stat(oid);
  REQUIRE(info.ok());
  REQUIRE(info->has_value());
  CHECK((*info)->size == static_cast<int64_t>(content.size()));
  CHECK(store->holds(info_of(content)).value());

  auto back = get_object(*store, oid);
  INFO(back.error().to_string());
  REQUIRE(back.ok());
  CHECK(oid_of(*back) == oid);
  CHECK(*back == content);
  CHECK(f.sim.stat("events", "missing_action_header") == 0);
}

TEST_CASE("describe() and endpoint() name the server without secrets", "[lfs_store]") {
  sim_fixture f;
  auto store = f.store();
  CHECK(store->describe() == "lfs+" + f.sim.url("/team/repo.git/info/lfs"));
  CHECK(store->endpoint() == f.sim.url().substr(7));
  CHECK(store->list([](const object_info&) { return true; }).code() == errc::invalid_request);
  CHECK(store->remove(std::string(64, 'a')).code() == errc::invalid_request);
}

TEST_CASE("an object the server has is held and skipped without a PUT", "[lfs_store]") {
  sim_fixture f;
  const std::string content = random_content(4096, 2);
  REQUIRE(put_object(*f.store(), content).ok());
  REQUIRE(f.sim.stat("requests", "upload") == 1);

  // A fresh store knows nothing yet: it must ask the server.
  auto other = f.store();
  auto held = other->holds(info_of(content));
  REQUIRE(held.ok());
  CHECK(*held);
  // Writing it anyway sends nothing, but the bytes are still checked.
  CHECK(put_object(*other, content).ok());
  CHECK(put_object(*other, random_content(4096, 3), oid_of(content)).code() == errc::hash_mismatch);
  CHECK(f.sim.stat("requests", "upload") == 1);
  CHECK(f.sim.stat("puts", oid_of(content)) == 1);
}

TEST_CASE("prepare() sends batches of 100 and transfers then need no batch request",
          "[lfs_store]") {
  sim_fixture f;
  std::vector<std::string> contents;
  std::vector<object_info> objects;
  for (uint32_t i = 0; i < 250; ++i) {
    contents.push_back(random_content(64 + i, 1000 + i));
    objects.push_back(info_of(contents.back()));
  }
  // Every 25th object goes over the wire; the rest only through batches.
  auto sampled = [](size_t i) { return i % 25 == 3; };

  auto uploader = f.store();
  auto missing = uploader->prepare(true, objects);
  INFO(missing.error().to_string());
  REQUIRE(missing.ok());
  CHECK(missing->size() == 250);
  CHECK(f.sim.stat("requests", "batch") == 3);
  for (size_t i = 0; i < contents.size(); ++i) {
    if (!sampled(i))
      continue;
    REQUIRE(uploader->holds(objects[i]).value() == false);
    REQUIRE(put_object(*uploader, contents[i]).ok());
  }
  CHECK(f.sim.stat("requests", "batch") == 3);
  CHECK(f.sim.stat("events", "stored") == 10);

  // The sim serves whatever its root holds: store the rest directly.
  for (size_t i = 0; i < contents.size(); ++i) {
    if (sampled(i))
      continue;
    auto path = f.sim.object_path(objects[i].oid);
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << contents[i];
  }

  // Downloads: one object the server lacks is left out of the answer.
  auto downloader = f.store();
  auto with_absent = objects;
  with_absent.push_back(info_of(random_content(10, 99)));
  auto present = downloader->prepare(false, with_absent);
  REQUIRE(present.ok());
  CHECK(present->size() == 250);
  CHECK(f.sim.stat("requests", "batch") == 6);
  for (size_t i = 0; i < contents.size(); i += 13) {
    auto back = get_object(*downloader, objects[i].oid);
    REQUIRE(back.ok());
    REQUIRE(*back == contents[i]);
  }
  CHECK(f.sim.stat("requests", "batch") == 6);
  // Announced again (a copy announces what its page announced): objects
  // with a fresh download action are not asked about again; the absent
  // one, which has none, is.
  REQUIRE(downloader->expect_reads({objects[0], objects[1]}).ok());
  CHECK(f.sim.stat("requests", "batch") == 6);
  REQUIRE(downloader->expect_reads({objects[2], with_absent.back()}).ok());
  CHECK(f.sim.stat("requests", "batch") == 7);

  // Everything is on the server now.
  auto again = f.store()->prepare(true, objects);
  REQUIRE(again.ok());
  CHECK(again->empty());
}

TEST_CASE("prepare() keeps several batch requests in flight", "[lfs_store]") {
  no_proxy proxy;
  test_server server;
  counter arrived;
  std::atomic<int> saw_all{0};
  server.http().Post(
    "/lfs/objects/batch", [&](const httplib::Request& req, httplib::Response& res) {
      arrived.add();
      // Serialised batches would never get here three at a time.
      if (arrived.wait_for(3))
        ++saw_all;
      auto request = nlohmann::json::parse(req.body);
      nlohmann::json objects = nlohmann::json::array();
      for (const auto& object : request["objects"])
        objects.push_back({{"oid", object["oid"]},
                           {"size", object["size"]},
                           {"error", {{"code", 404}, {"message", "not here"}}}});
      res.set_content(nlohmann::json{{"objects", objects}}.dump(), "application/vnd.git-lfs+json");
    });
  server.start();

  std::vector<object_info> objects;
  for (uint32_t i = 0; i < 300; ++i)
    objects.push_back(info_of(random_content(8, 5000 + i)));
  lfs_store_options options;
  options.endpoint = server.url("/lfs");
  lfs_store store(std::make_shared<ferry::http_engine>(), options, nullptr);
  auto present = store.prepare(false, objects);
  REQUIRE(present.ok());
  CHECK(present->empty());
  CHECK(saw_all == 3);
}

TEST_CASE("a download resumes at an offset with a matching 206", "[lfs_store]") {
  sim_fixture f;
  auto store = f.store();
  const std::string content = random_content(1 << 20, 4);
  const std::string oid = oid_of(content);
  REQUIRE(put_object(*store, content).ok());

  const int64_t offset = 300001;
  auto reader = store->open_read(oid, offset);
  REQUIRE(reader.ok());
  CHECK((*reader)->size() == static_cast<int64_t>(content.size()));
  auto rest = read_rest(**reader);
  REQUIRE(rest.ok());
  CHECK(*rest == content.substr(offset));
  CHECK(f.sim.stat("events", "range_requests") == 1);

  // At the end there is nothing left to fetch.
  auto at_end = get_object(*store, oid, static_cast<int64_t>(content.size()));
  REQUIRE(at_end.ok());
  CHECK(at_end->empty());
  CHECK(f.sim.stat("requests", "download") == 1);
  CHECK(store->open_read(oid, static_cast<int64_t>(content.size()) + 1).error().code() ==
        errc::size_mismatch);
}

TEST_CASE("large objects arrive as parallel ranges, in order", "[lfs_store]") {
  sim_fixture f;
  auto options = f.options();
  options.parallel_streams = 4;
  options.parallel_threshold = 1 << 20;
  options.range_bytes = 256 << 10;
  auto store = f.store(options);
  const std::string content = random_content((5 << 19) + 333, 5); // 2.5 MiB + 333
  const std::string oid = oid_of(content);
  REQUIRE(put_object(*store, content).ok());

  auto whole = get_object(*store, oid);
  INFO(whole.error().to_string());
  REQUIRE(whole.ok());
  CHECK(*whole == content);
  // ceil(size / 256 KiB) ranges.
  const int64_t ranges = (static_cast<int64_t>(content.size()) + (256 << 10) - 1) / (256 << 10);
  CHECK(f.sim.stat("events", "range_requests") == ranges);

  auto tail = get_object(*store, oid, 1000000);
  REQUIRE(tail.ok());
  CHECK(*tail == content.substr(1000000));
  CHECK(f.sim.stat("events", "range_requests") > ranges + 1);
}

TEST_CASE("parallel ranges never pass on damaged bytes", "[lfs_store]") {
  const std::string content = random_content(1 << 20, 6);
  const std::string oid = oid_of(content);
  // Every range GET gets the fault (the corruption hits the one holding byte 300000).
  auto fault = GENERATE(as<std::string>{}, "truncate_at", "reset_after_bytes", "corrupt_byte_at");
  const int at = fault == "corrupt_byte_at" ? 300000 : 1000;
  INFO("fault: " << fault);
  sim_fixture f(R"({"rules": [{"match": {"endpoint": "download"}, "fault": {")" + fault +
                "\": " + std::to_string(at) + "}}]}");
  auto options = f.options();
  options.parallel_threshold = 1;
  options.range_bytes = 256 << 10;
  auto store = f.store(options);
  REQUIRE(put_object(*store, content).ok());

  auto back = get_object(*store, oid);
  // Either the reader fails or the caller's hash does: never the object.
  CHECK_FALSE((back.ok() && oid_of(*back) == oid));
  CHECK(f.sim.stat("faults", fault) >= 1);
}

TEST_CASE("expired actions are requested again before use", "[lfs_store]") {
  sim_fixture f(R"({"rules": [{"match": {"endpoint": "batch", "operation": "download"},
                               "fault": {"expired_actions": true}, "sequence": [true]}]})");
  const std::string content = random_content(5000, 7);
  const std::string oid = oid_of(content);
  REQUIRE(put_object(*f.store(), content).ok());
  const int64_t batches = f.sim.stat("requests", "batch");

  auto store = f.store();
  auto present = store->prepare(false, {info_of(content)});
  REQUIRE(present.ok());
  REQUIRE(present->size() == 1);
  CHECK(f.sim.stat("faults", "expired_actions") == 1);
  auto back = get_object(*store, oid);
  INFO(back.error().to_string());
  REQUIRE(back.ok());
  CHECK(*back == content);
  CHECK(f.sim.stat("requests", "batch") == batches + 2);
}

TEST_CASE("an action that arrives already expired is not used", "[lfs_store]") {
  sim_fixture f(R"({"rules": [{"match": {"endpoint": "batch", "operation": "download"},
                               "fault": {"expired_actions": true}}]})");
  const std::string content = random_content(5000, 8);
  auto store = f.store();
  REQUIRE(put_object(*store, content).ok());
  auto back = store->open_read(oid_of(content), 0);
  REQUIRE_FALSE(back.ok());
  CHECK(back.error().code() == errc::unavailable);
  CHECK_THAT(back.error().message(), Catch::Contains("expired"));
  CHECK(f.sim.stat("requests", "download") == 0);
}

TEST_CASE("make_action_store transfers one object through its action", "[lfs_store]") {
  sim_fixture f;
  const std::string content = random_content(70000, 9);
  const std::string oid = oid_of(content);
  ferry::lfs_action action{f.sim.url("/storage/" + oid), {{"X-Ferry-Sim-Action", "upload"}}, {}};
  auto store = ferry::make_action_store(f.http, info_of(content), action, {});
  CHECK_FALSE(store->holds(info_of(content)).value());
  CHECK(store->stat(oid).error().code() == errc::invalid_request);
  CHECK(store->describe().find(f.sim.url("/storage/")) != std::string::npos);
  REQUIRE(put_object(*store, content).ok());
  CHECK(f.sim.stat("events", "stored") == 1);

  auto back = get_object(*store, oid, 1234);
  REQUIRE(back.ok());
  CHECK(*back == content.substr(1234));
  CHECK(f.sim.stat("events", "missing_action_header") == 0);
  // Another object through the same action is refused.
  CHECK(store->open_read(std::string(64, 'b'), 0).error().code() == errc::invalid_request);
}

TEST_CASE("open_store reaches the sim through a git remote URL with an engine of its own",
          "[lfs_store]") {
  no_proxy proxy;
  lfs_sim_process sim;
  // No engine given: the store starts one when it first needs it.
  auto store = ferry::open_store(sim.url("/team/repo"));
  REQUIRE(store.ok());
  CHECK((*store)->describe() == "lfs+" + sim.url("/team/repo.git/info/lfs"));
  const std::string content = random_content(10000, 10);
  REQUIRE(put_object(**store, content).ok());
  auto back = get_object(**store, oid_of(content));
  REQUIRE(back.ok());
  CHECK(*back == content);
}
