// s3_store's reads, HEADs, listings and deletes against a real radosgw,
// which checks every signature: objects are put with s3::client directly,
// then read back whole, from offsets and as many parallel ranges, and the
// requests that took are counted in radosgw's own log.

#include "store/http/http_engine.hpp"
#include "store/os/sha256.hpp"
#include "store/s3/s3_client.hpp"
#include "store/s3/s3_store.hpp"
#include "store/s3/s3_url.hpp"

#include <catch2/catch.hpp>

#include "s3_store_checks.hpp"
#include "s3_support.hpp"

#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

using ferry::errc;
using ferry::object_info;
using ferry::s3_store;
using ferry::s3_store_options;
using namespace ferry::testing;

namespace {

std::string random_bytes(size_t size, uint32_t seed) {
  std::mt19937 generator(seed);
  std::string out(size, '\0');
  for (char& c : out)
    c = static_cast<char>(generator() & 0xff);
  return out;
}

std::string oid_of(const std::string& content) {
  return ferry::sha256::of(content.data(), content.size());
}

object_info info_of(const std::string& content) {
  return {oid_of(content), static_cast<int64_t>(content.size())};
}

/// Reads `oid` from `offset` to the end through the store.
ferry::result<std::string> read_back(s3_store& store, const std::string& oid, int64_t offset = 0) {
  auto reader = store.open_read(oid, offset);
  if (!reader)
    return reader.error();
  std::string out;
  std::string buffer(70001, '\0');
  while (true) {
    auto got = (*reader)->read(buffer.data(), buffer.size());
    if (!got)
      return got.error();
    if (*got == 0)
      return out;
    out.append(buffer.data(), *got);
  }
}

/// A fresh bucket on the fixture's radosgw; objects go in below "lfs/" with
/// plain signed PUTs, not through the store under test.
struct reads_case {
  no_proxy proxy;
  s3_peer peer = radosgw_peer();
  std::string bucket = fresh_bucket(peer, "reads");
  std::shared_ptr<ferry::http_engine> http = std::make_shared<ferry::http_engine>();
  std::shared_ptr<ferry::s3::client> s3 = bucket_client(peer, bucket, "lfs", http);

  std::shared_ptr<s3_store> store(s3_store_options options = {}) {
    return std::make_shared<s3_store>(http, s3->url(), ferry::s3::key_holder::fixed(peer.keys),
                                      options);
  }

  /// PUTs every content under its object key, all at once.
  void put(const std::vector<std::string>& contents) {
    std::vector<ferry::http_request> requests;
    for (const auto& content : contents) {
      auto request =
        s3->request("PUT", s3->url().object_key(oid_of(content)), {}, {}, oid_of(content));
      REQUIRE(request.ok());
      request->body = content;
      requests.push_back(std::move(*request));
    }
    auto answers = s3->send_all(std::move(requests));
    for (const auto& answer : answers) {
      REQUIRE(answer.ok());
      INFO(answer->body);
      REQUIRE(answer->status == 200);
    }
  }

  /// Requests of `method` radosgw answered for the object of `oid`.
  size_t count(const std::string& method, const std::string& oid) {
    return count_requests(peer, method, "/" + bucket + "/" + s3->url().object_key(oid), "");
  }
};

} // namespace

TEST_CASE("s3 reads: a small object is one GET, whole or from an offset", "[s3_store_reads]") {
  reads_case c;
  const std::string content = random_bytes(4096, 1);
  const std::string oid = oid_of(content);
  c.put({content});
  auto store = c.store();

  auto whole = read_back(*store, oid);
  INFO(whole.error().to_string());
  REQUIRE(whole.ok());
  CHECK(*whole == content);
  auto tail = read_back(*store, oid, 4000);
  REQUIRE(tail.ok());
  CHECK(*tail == content.substr(4000));
  REQUIRE(store->expect_reads({info_of(content)}).ok());
  auto announced = read_back(*store, oid, 17);
  REQUIRE(announced.ok());
  CHECK(*announced == content.substr(17));

  CHECK(c.count("GET", oid) == 3);
  CHECK(c.count("HEAD", oid) == 0);
}

TEST_CASE("s3 reads: a large object comes as parallel ranges, each one signed",
          "[s3_store_reads]") {
  reads_case c;
  const std::string content = random_bytes((1 << 20) + 333, 2);
  const std::string oid = oid_of(content);
  const auto size = static_cast<int64_t>(content.size());
  c.put({content});
  auto store = c.store(small_ranges());

  // The size learned from the first range, then announced.
  auto learned = read_back(*store, oid);
  INFO(learned.error().to_string());
  REQUIRE(learned.ok());
  CHECK(*learned == content);
  REQUIRE(store->expect_reads({info_of(content)}).ok());
  auto announced = read_back(*store, oid);
  REQUIRE(announced.ok());
  CHECK(*announced == content);
  auto tail = read_back(*store, oid, 300001);
  REQUIRE(tail.ok());
  CHECK(*tail == content.substr(300001));

  CHECK(static_cast<int64_t>(c.count("GET", oid)) ==
        2 * small_ranges_for(size) + small_ranges_for(size - 300001));
}

TEST_CASE("s3 reads: an empty object, and reads at an object's end", "[s3_store_reads]") {
  reads_case c;
  const std::string content = random_bytes(1000, 3);
  const std::string oid = oid_of(content);
  const std::string empty_oid = oid_of("");
  c.put({content, ""});
  auto store = c.store(small_ranges());

  SECTION("sizes unknown") {
    // radosgw refuses any range of an empty object (416); the object itself tells.
    auto empty = read_back(*store, empty_oid);
    INFO(empty.error().to_string());
    REQUIRE(empty.ok());
    CHECK(empty->empty());
    auto at_end = read_back(*store, oid, 1000);
    REQUIRE(at_end.ok());
    CHECK(at_end->empty());
    CHECK(store->open_read(oid, 1001).error().code() == errc::size_mismatch);
  }
  SECTION("sizes announced: a HEAD each, no GET") {
    REQUIRE(store->expect_reads({{empty_oid, 0}, info_of(content)}).ok());
    auto empty = read_back(*store, empty_oid);
    REQUIRE(empty.ok());
    CHECK(empty->empty());
    auto at_end = read_back(*store, oid, 1000);
    REQUIRE(at_end.ok());
    CHECK(at_end->empty());
    CHECK(c.count("GET", empty_oid) == 0);
    CHECK(c.count("GET", oid) == 0);
    CHECK(c.count("HEAD", empty_oid) == 1);
    CHECK(c.count("HEAD", oid) == 1);
  }
}

TEST_CASE("s3 reads: an absent object is not_found, a wrong size a size_mismatch",
          "[s3_store_reads]") {
  reads_case c;
  const std::string content = random_bytes(200000, 4);
  const std::string oid = oid_of(content);
  c.put({content});
  const std::string absent = oid_of("absent");

  for (const auto& options : {s3_store_options{}, small_ranges()}) {
    auto store = c.store(options);
    auto missing = store->open_read(absent, 0);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().code() == errc::not_found);
    CHECK_THAT(missing.error().message(), Catch::Contains("NoSuchKey"));

    REQUIRE(store->expect_reads({{absent, 300000}, {oid, 200001}}).ok());
    CHECK(store->open_read(absent, 0).error().code() == errc::not_found);
    auto wrong = read_back(*store, oid);
    REQUIRE_FALSE(wrong.ok());
    CHECK(wrong.error().code() == errc::size_mismatch);
    CHECK_THAT(wrong.error().message(), Catch::Contains("200000") && Catch::Contains("200001"));
  }
}

TEST_CASE("s3 reads: stat and holds", "[s3_store_reads]") {
  reads_case c;
  const std::string content = random_bytes(12345, 5);
  const std::string oid = oid_of(content);
  c.put({content});
  auto store = c.store();

  auto found = store->stat(oid);
  INFO(found.error().to_string());
  REQUIRE(found.ok());
  REQUIRE(found->has_value());
  CHECK((*found)->size == 12345);
  CHECK(store->holds(info_of(content)).value());
  CHECK_FALSE(store->holds({oid, 12344}).value());
  auto absent = store->stat(oid_of("absent"));
  REQUIRE(absent.ok());
  CHECK_FALSE(absent->has_value());
  CHECK(c.count("HEAD", oid) == 3);
}

TEST_CASE("s3 reads: listing pages through more than 1000 keys", "[s3_store_reads]") {
  reads_case c;
  // ListObjectsV2 answers at most 1000 keys a page: this needs two.
  std::vector<std::string> contents;
  std::map<std::string, int64_t> stored;
  for (uint32_t i = 0; i < 1003; ++i) {
    contents.push_back(random_bytes(i % 7, 1000 + i) + std::to_string(i));
    stored[oid_of(contents.back())] = static_cast<int64_t>(contents.back().size());
  }
  c.put(contents);
  // Beside them, keys that are not objects of the store.
  auto foreign = c.s3->request("PUT", "lfs/readme.txt", {}, {}, oid_of("x"));
  REQUIRE(foreign.ok());
  foreign->body = "x";
  REQUIRE(c.s3->send(std::move(*foreign))->status == 200);

  auto listed = listed_objects(*c.store());
  INFO(listed.error().to_string());
  REQUIRE(listed.ok());
  CHECK(*listed == stored);
  const std::string bucket_path = "/" + c.bucket + "/";
  CHECK(count_requests(c.peer, "GET", bucket_path, "list-type=2") == 2);
  CHECK(count_requests(c.peer, "GET", bucket_path, "continuation-token=") == 1);
}

TEST_CASE("s3 reads: remove deletes, and an absent object is no error", "[s3_store_reads]") {
  reads_case c;
  const std::string content = random_bytes(100, 6);
  const std::string oid = oid_of(content);
  c.put({content});
  auto store = c.store();

  REQUIRE(store->remove(oid).ok());
  auto gone = store->stat(oid);
  REQUIRE(gone.ok());
  CHECK_FALSE(gone->has_value());
  REQUIRE(store->remove(oid).ok());
  CHECK(c.count("DELETE", oid) == 2);
  CHECK(store->open_read(oid, 0).error().code() == errc::not_found);
}
