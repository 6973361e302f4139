// s3_store::holds_each and sizes_of (which holds_each compares): one HEAD
// per object, several in flight, the answers in order and the errors holds()
// gives. Counted in radosgw's own log; the
// concurrency and the refusals a real server will not give on demand are
// checked against a small loopback bucket.

#include "store/http/http_engine.hpp"
#include "store/os/sha256.hpp"
#include "store/s3/s3_client.hpp"
#include "store/s3/s3_store.hpp"
#include "store/s3/s3_url.hpp"

#include <catch2/catch.hpp>

#include "s3_support.hpp"

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

using ferry::errc;
using ferry::object_info;
using ferry::s3_store;
using namespace ferry::testing;

namespace {

std::string oid_of(const std::string& content) {
  return ferry::sha256::of(content.data(), content.size());
}

/// How an object of a mixed page stands at the store.
enum class kind { absent, present, wrong_size };

kind kind_of(size_t index) { return static_cast<kind>(index % 3); }

/// `count` objects of every kind in turn: `contents[i]` is the i-th object's
/// content; its object_info names a size one byte too large for wrong_size.
struct mixed_page {
  explicit mixed_page(size_t count, uint32_t seed) {
    for (size_t i = 0; i < count; ++i) {
      contents.push_back(patterned_bytes(100 + i, seed + static_cast<uint32_t>(i)));
      const auto size = static_cast<int64_t>(contents.back().size());
      const bool wrong = kind_of(i) == kind::wrong_size;
      objects.push_back({oid_of(contents.back()), wrong ? size + 1 : size});
    }
  }

  /// The contents the store must hold: those of present and wrong-size objects.
  std::vector<std::string> stored() const {
    std::vector<std::string> out;
    for (size_t i = 0; i < contents.size(); ++i) {
      if (kind_of(i) != kind::absent)
        out.push_back(contents[i]);
    }
    return out;
  }

  /// `held` answers each object as its kind says.
  void check(const ferry::result<std::vector<bool>>& held) const {
    INFO(held.error().to_string());
    REQUIRE(held.ok());
    REQUIRE(held->size() == objects.size());
    for (size_t i = 0; i < objects.size(); ++i) {
      INFO("object " << i);
      CHECK((*held)[i] == (kind_of(i) == kind::present));
    }
  }

  std::vector<std::string> contents;
  std::vector<object_info> objects;
};

/// A fresh bucket on the fixture's radosgw, with stores below "lfs/".
struct radosgw_case {
  no_proxy proxy;
  s3_peer peer = radosgw_peer();
  std::string bucket = fresh_bucket(peer, "holds");
  std::shared_ptr<ferry::http_engine> http = std::make_shared<ferry::http_engine>();
  std::shared_ptr<ferry::s3::client> s3 = bucket_client(peer, bucket, "lfs", http);

  std::shared_ptr<s3_store> store(ferry::s3::credentials keys) {
    return std::make_shared<s3_store>(
      http, s3->url(), ferry::s3::key_holder::fixed(std::move(keys)), ferry::s3_store_options{});
  }

  /// Stores every content with a store of the peer's keys (one PUT each).
  void put(const std::vector<std::string>& contents) {
    auto writing = store(peer.keys);
    for (const auto& content : contents) {
      auto writer =
        writing->open_write(oid_of(content), static_cast<int64_t>(content.size()), std::nullopt);
      REQUIRE(writer.ok());
      REQUIRE((*writer)->write(content.data(), content.size()).ok());
      REQUIRE((*writer)->commit().ok());
    }
  }

  /// PUTs `body` under the object key of `oid`, as a tool outside Ferry could.
  void overwrite(const std::string& oid, const std::string& body) {
    auto request = s3->request("PUT", s3->url().object_key(oid), {}, {}, oid_of(body));
    REQUIRE(request.ok());
    request->body = body;
    auto answer = s3->send(std::move(*request));
    REQUIRE(answer.ok());
    INFO(answer->body);
    REQUIRE(answer->status == 200);
  }

  /// Requests of `method` radosgw answered for objects of this bucket.
  size_t count(const std::string& method) {
    return count_requests(peer, method, "/" + bucket + "/lfs/", "");
  }
};

std::string error_xml(const std::string& code, const std::string& message) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>" + code + "</Code><Message>" +
         message + "</Message><RequestId>tx-holds</RequestId></Error>";
}

/// A loopback bucket that answers HEAD and GET for the objects put into it,
/// refuses the keys in `refusals` with a status and an S3 error code (the
/// HEAD without a body, as S3 does), and keeps track of how many requests
/// it is answering at once. Each request of a group of `group` waits
/// (bounded) until the whole group has arrived, so requests sent one after
/// the other are told apart from requests sent together.
struct loopback_bucket {
  struct refusal {
    int status;
    std::string code;
  };

  explicit loopback_bucket(size_t group = 1) : group(group) {
    server.http().Get("/holds/(.*)", [this](const httplib::Request& req, httplib::Response& res) {
      enter();
      answer(req, req.matches[1], res);
      std::lock_guard<std::mutex> lock(mutex);
      --inside;
    });
    server.start();
  }

  std::shared_ptr<s3_store> store(long max_host_connections = 8) {
    auto url = ferry::s3::parse_s3_url("s3://holds/lfs?endpoint=" + server.url(""));
    REQUIRE(url.ok());
    ferry::http_engine::options options;
    options.max_host_connections = max_host_connections;
    auto engine = std::make_shared<ferry::http_engine>(options);
    return std::make_shared<s3_store>(engine, *url,
                                      ferry::s3::key_holder::fixed({"LOOPBACKKEY", "x", ""}),
                                      ferry::s3_store_options{});
  }

  std::string key(const std::string& oid) {
    auto url = ferry::s3::parse_s3_url("s3://holds/lfs?endpoint=" + server.url(""));
    REQUIRE(url.ok());
    return url->object_key(oid);
  }

  void enter() {
    int64_t arrival = 0;
    {
      std::lock_guard<std::mutex> lock(mutex);
      arrival = ++arrivals;
      peak = std::max(peak, ++inside);
    }
    arrived.add();
    const auto group_end = static_cast<int64_t>(((arrival - 1) / group + 1) * group);
    if (!gave_up && !arrived.wait_for(group_end, std::chrono::seconds(2)))
      gave_up = true;
  }

  void answer(const httplib::Request& req, const std::string& key, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mutex);
    seen.emplace_back(req.method, key);
    if (auto refused = refusals.find(key); refused != refusals.end()) {
      res.status = refused->second.status;
      if (req.method == "GET")
        res.set_content(error_xml(refused->second.code, "refused"), "application/xml");
      return;
    }
    auto found = objects.find(key);
    if (found == objects.end()) {
      res.status = 404;
      return;
    }
    res.set_content(found->second, "application/octet-stream");
  }

  /// What the bucket saw so far, read under its lock.
  struct tally {
    int64_t arrivals;
    int64_t peak;
    std::vector<std::pair<std::string, std::string>> seen;
  };
  tally seen_so_far() {
    std::lock_guard<std::mutex> lock(mutex);
    return {arrivals, peak, seen};
  }

  no_proxy proxy;
  const size_t group;
  std::mutex mutex;
  std::map<std::string, std::string> objects;
  std::map<std::string, refusal> refusals;
  std::vector<std::pair<std::string, std::string>> seen;
  int64_t arrivals = 0;
  int64_t inside = 0;
  int64_t peak = 0;
  counter arrived;
  std::atomic<bool> gave_up{false};
  // After what its handlers use, so that it stops before that goes away.
  test_server server;
};

} // namespace

TEST_CASE("s3 holds_each: one HEAD per object, answers in order for present, absent and "
          "wrong-size objects",
          "[s3_holds_each]") {
  radosgw_case c;
  const mixed_page page(40, 100);
  c.put(page.stored());
  auto store = c.store(c.peer.keys);
  const size_t heads_before = c.count("HEAD");

  page.check(store->holds_each(page.objects));
  CHECK(c.count("HEAD") == heads_before + page.objects.size());
  // Nothing was refused, so no GET asked why.
  CHECK(c.count("GET") == 0);

  auto none = store->holds_each({});
  REQUIRE(none.ok());
  CHECK(none->empty());
  CHECK(c.count("HEAD") == heads_before + page.objects.size());
}

TEST_CASE("s3 sizes_of: one HEAD per object, the size each key holds or nothing",
          "[s3_holds_each]") {
  radosgw_case c;
  const mixed_page page(40, 500);
  c.put(page.stored());
  // A key cut short by another tool: its HEAD tells the shorter size.
  const size_t cut = 4;
  REQUIRE(kind_of(cut) == kind::present);
  c.overwrite(page.objects[cut].oid, page.contents[cut].substr(0, 10));
  auto store = c.store(c.peer.keys);
  CHECK(store->objects_per_list_request() == 1000);
  const size_t heads_before = c.count("HEAD");

  auto sizes = store->sizes_of(page.objects);
  INFO(sizes.error().to_string());
  REQUIRE(sizes.ok());
  REQUIRE(sizes->size() == page.objects.size());
  for (size_t i = 0; i < page.objects.size(); ++i) {
    INFO("object " << i);
    if (i == cut)
      CHECK((*sizes)[i] == int64_t{10});
    else if (kind_of(i) == kind::absent)
      CHECK((*sizes)[i] == std::nullopt);
    else
      CHECK((*sizes)[i] == static_cast<int64_t>(page.contents[i].size()));
  }
  CHECK(c.count("HEAD") == heads_before + page.objects.size());
  CHECK(c.count("GET") == 0);
}

TEST_CASE("s3 holds_each: refused HEADs fail with what holds() says about the first object",
          "[s3_holds_each]") {
  radosgw_case c;
  const mixed_page page(5, 200);
  c.put(page.stored());
  auto keys = c.peer.keys;
  keys.secret_access_key += "-wrong";
  auto store = c.store(keys);

  auto held = store->holds_each(page.objects);
  REQUIRE_FALSE(held.ok());
  auto alone = store->holds(page.objects.front());
  REQUIRE_FALSE(alone.ok());
  CHECK(held.error().code() == alone.error().code());
  CHECK(held.error().code() == errc::permission_denied);
  // The one-byte GET after the refused HEAD names the S3 error.
  CHECK_THAT(held.error().message(), Catch::Contains("check for " + page.objects.front().oid) &&
                                       Catch::Contains("SignatureDoesNotMatch"));
}

TEST_CASE("s3 holds_each: 16 HEADs in flight at once, no more", "[s3_holds_each]") {
  loopback_bucket bucket(16);
  const mixed_page page(32, 300);
  for (const auto& content : page.stored())
    bucket.objects[bucket.key(oid_of(content))] = content;
  // The engine would let 64 through: the store alone keeps it to 16.
  auto store = bucket.store(64);

  page.check(store->holds_each(page.objects));
  CHECK_FALSE(bucket.gave_up);
  auto seen = bucket.seen_so_far();
  CHECK(seen.peak == 16);
  CHECK(seen.arrivals == 32);
}

TEST_CASE("s3 sizes_of: 16 HEADs in flight at once, no more", "[s3_holds_each]") {
  loopback_bucket bucket(16);
  const mixed_page page(48, 600);
  for (const auto& content : page.stored())
    bucket.objects[bucket.key(oid_of(content))] = content;
  auto store = bucket.store(64);

  auto sizes = store->sizes_of(page.objects);
  INFO(sizes.error().to_string());
  REQUIRE(sizes.ok());
  REQUIRE(sizes->size() == page.objects.size());
  for (size_t i = 0; i < page.objects.size(); ++i) {
    INFO("object " << i);
    if (kind_of(i) == kind::absent)
      CHECK((*sizes)[i] == std::nullopt);
    else
      CHECK((*sizes)[i] == static_cast<int64_t>(page.contents[i].size()));
  }
  CHECK_FALSE(bucket.gave_up);
  auto seen = bucket.seen_so_far();
  CHECK(seen.peak == 16);
  CHECK(seen.arrivals == 48);

  // An invalid oid is refused as holds_each refuses it, before anything is asked.
  auto invalid = store->sizes_of({page.objects[0], {"not-an-oid", 1}});
  REQUIRE_FALSE(invalid.ok());
  CHECK(invalid.error().code() == errc::invalid_request);
  CHECK(invalid.error().to_string() == store->holds_each({{"not-an-oid", 1}}).error().to_string());
  CHECK(bucket.seen_so_far().arrivals == 48);
}

TEST_CASE("s3 holds_each: the first object whose HEAD is refused decides, as in holds()",
          "[s3_holds_each]") {
  loopback_bucket bucket;
  const mixed_page page(20, 400);
  for (const auto& content : page.stored())
    bucket.objects[bucket.key(oid_of(content))] = content;
  const std::string denied_key = bucket.key(page.objects[5].oid);
  const std::string failing_key = bucket.key(page.objects[12].oid);
  bucket.refusals[denied_key] = {403, "AccessDenied"};
  bucket.refusals[failing_key] = {500, "InternalError"};
  auto store = bucket.store();

  auto held = store->holds_each(page.objects);
  REQUIRE_FALSE(held.ok());
  // One GET asked why the first refused HEAD was refused; nothing else did.
  size_t gets = 0;
  for (const auto& [method, key] : bucket.seen_so_far().seen) {
    if (method == "GET") {
      ++gets;
      CHECK(key == denied_key);
    }
  }
  CHECK(gets == 1);
  auto alone = store->holds(page.objects[5]);
  REQUIRE_FALSE(alone.ok());
  CHECK(held.error().code() == errc::permission_denied);
  CHECK(held.error().to_string() == alone.error().to_string());

  // Without it, the next refused object decides.
  auto rest = page.objects;
  rest.erase(rest.begin() + 5);
  auto next = store->holds_each(rest);
  REQUIRE_FALSE(next.ok());
  auto next_alone = store->holds(page.objects[12]);
  REQUIRE_FALSE(next_alone.ok());
  CHECK(next.error().code() == errc::unavailable);
  CHECK(next.error().to_string() == next_alone.error().to_string());

  // An invalid oid is refused before anything is asked.
  const size_t seen_before = bucket.seen_so_far().seen.size();
  auto invalid = store->holds_each({page.objects[0], {"not-an-oid", 1}});
  REQUIRE_FALSE(invalid.ok());
  CHECK(invalid.error().code() == errc::invalid_request);
  CHECK(bucket.seen_so_far().seen.size() == seen_before);
}
