// s3_store against a small loopback S3 bucket: the answers a real server
// will not give on demand (misaligned, short or long ranges, a 200 to a
// Range, SlowDown, AccessDenied, odd listings). This server checks no
// signatures; tests/unit/s3_store_reads.cpp reads from radosgw, which does.

#include "protocol/s3_xml.hpp"
#include "store/http/http_engine.hpp"
#include "store/s3/s3_store.hpp"
#include "store/s3/s3_url.hpp"

#include <catch2/catch.hpp>

#include "remote_support.hpp"
#include "s3_store_checks.hpp"

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

using ferry::errc;
using ferry::object_info;
using ferry::s3_store;
using ferry::s3_store_options;
using namespace ferry::testing;

namespace {

const std::string bucket = "ferry-loopback";

/// A request the bucket saw.
struct seen_request {
  std::string method;
  /// The object key, empty for the bucket (listings).
  std::string key;
  std::multimap<std::string, std::string> query;
  std::string range;
  std::string authorization;
};

/// Where a GET's Range starts and ends in an object of `size` bytes;
/// nullopt when it cannot be served (416).
std::optional<std::pair<int64_t, int64_t>> satisfiable(const std::string& header, int64_t size) {
  const std::string unit = "bytes=";
  auto dash = header.find('-');
  if (header.compare(0, unit.size(), unit) != 0 || dash == std::string::npos)
    return std::nullopt;
  int64_t first = std::stoll(header.substr(unit.size(), dash - unit.size()));
  int64_t last = dash + 1 < header.size() ? std::stoll(header.substr(dash + 1)) : size - 1;
  if (first >= size)
    return std::nullopt;
  return std::make_pair(first, std::min(last, size - 1));
}

std::string error_xml(const std::string& code, const std::string& message) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>" + code + "</Code><Message>" +
         message + "</Message><RequestId>tx-loopback</RequestId></Error>";
}

/// A bucket at /<bucket>/ on 127.0.0.1: HEAD, GET (Range as radosgw answers
/// it, a 416 for any range of an empty object included), DELETE and
/// ListObjectsV2 pages of `page_keys`, with a fault switched on by `how`.
struct fake_bucket {
  enum class fault {
    none,
    /// 206s start one byte late.
    misaligned_range,
    /// 206s name a total one byte larger than the object.
    other_total,
    /// The connection drops halfway through a body.
    truncated,
    /// 200s carry 10 bytes less, or 5 more, than the object has.
    short_length,
    long_length,
    /// Range headers are ignored: every GET gets a 200 with the whole object.
    ignore_range,
    /// Every request gets 503 SlowDown with Retry-After: 3.
    slow_down,
    /// Every request gets 403 AccessDenied.
    access_denied,
    /// Truncated listing pages without NextContinuationToken, or with the
    /// token of the page before.
    no_token,
    same_token,
  };

  fake_bucket() {
    server.http().Get("/" + bucket + R"(/(.*))",
                      [this](const httplib::Request& req, httplib::Response& res) {
                        // cpp-httplib would slice bodies by Range on its own.
                        const_cast<httplib::Request&>(req).ranges.clear();
                        std::string key = req.matches[1];
                        record(req, key);
                        if (refuse(res))
                          return;
                        if (key.empty())
                          return list(req, res);
                        get(req, key, res);
                      });
    server.http().Delete("/" + bucket + R"(/(.*))",
                         [this](const httplib::Request& req, httplib::Response& res) {
                           record(req, req.matches[1]);
                           if (refuse(res))
                             return;
                           std::lock_guard<std::mutex> lock(mutex);
                           res.status = objects.erase(req.matches[1].str()) > 0 ? 204 : 404;
                         });
    server.start();
  }

  /// The URL of a store on this bucket.
  std::string url(const std::string& path, const std::string& query = "") const {
    std::string text = "s3://" + bucket + path + "?endpoint=" + server.url("");
    return query.empty() ? text : text + "&" + query;
  }

  std::shared_ptr<s3_store> store(s3_store_options options = {}, const std::string& path = "/lfs",
                                  const std::string& query = "") {
    auto parsed = ferry::s3::parse_s3_url(url(path, query));
    REQUIRE(parsed.ok());
    ferry::s3::credentials keys{"LOOPBACKKEY", "loopback-secret", ""};
    return std::make_shared<s3_store>(http, *parsed, ferry::s3::key_holder::fixed(keys), options);
  }

  void put(const std::string& key, const std::string& content) {
    std::lock_guard<std::mutex> lock(mutex);
    objects[key] = content;
  }

  std::vector<seen_request> seen() {
    std::lock_guard<std::mutex> lock(mutex);
    return requests;
  }

  void forget_requests() {
    std::lock_guard<std::mutex> lock(mutex);
    requests.clear();
  }

  size_t count(const std::string& method) {
    size_t n = 0;
    for (const auto& request : seen())
      n += request.method == method ? 1 : 0;
    return n;
  }

  void record(const httplib::Request& req, const std::string& key) {
    seen_request request{
      req.method, key, {}, req.get_header_value("Range"), req.get_header_value("Authorization")};
    for (const auto& [name, value] : req.params)
      request.query.emplace(name, value);
    std::lock_guard<std::mutex> lock(mutex);
    requests.push_back(std::move(request));
  }

  bool refuse(httplib::Response& res) {
    if (how == fault::slow_down) {
      res.status = 503;
      res.set_header("Retry-After", "3");
      res.set_content(error_xml("SlowDown", "Please reduce your request rate."), "application/xml");
      return true;
    }
    if (how == fault::access_denied) {
      res.status = 403;
      res.set_content(error_xml("AccessDenied", "Access Denied"), "application/xml");
      return true;
    }
    return false;
  }

  void get(const httplib::Request& req, const std::string& key, httplib::Response& res) {
    std::string content;
    {
      std::lock_guard<std::mutex> lock(mutex);
      auto found = objects.find(key);
      if (found == objects.end()) {
        res.status = 404;
        // HEAD answers carry no body.
        if (req.method == "GET")
          res.set_content(error_xml("NoSuchKey", "The specified key does not exist."),
                          "application/xml");
        return;
      }
      content = found->second;
    }
    const auto size = static_cast<int64_t>(content.size());
    if (req.has_header("Range") && how != fault::ignore_range) {
      auto range = satisfiable(req.get_header_value("Range"), size);
      if (!range) {
        res.status = 416;
        res.set_content(error_xml("InvalidRange", ""), "application/xml");
        return;
      }
      auto [first, last] = *range;
      if (how == fault::misaligned_range)
        first = std::min(first + 1, last);
      const int64_t total = how == fault::other_total ? size + 1 : size;
      res.status = 206;
      res.set_header("Content-Range", "bytes " + std::to_string(first) + "-" +
                                        std::to_string(last) + "/" + std::to_string(total));
      content = content.substr(static_cast<size_t>(first), static_cast<size_t>(last - first + 1));
    } else if (how == fault::short_length) {
      content.resize(content.size() - 10);
    } else if (how == fault::long_length) {
      content += "extra";
    }
    if (how == fault::truncated)
      return serve_half_then_drop(res, std::move(content));
    res.set_content(content, "application/octet-stream");
  }

  static void serve_half_then_drop(httplib::Response& res, std::string content) {
    auto body = std::make_shared<const std::string>(std::move(content));
    res.set_content_provider(body->size(), "application/octet-stream",
                             [body](size_t offset, size_t, httplib::DataSink& sink) {
                               if (offset >= body->size() / 2)
                                 return false; // drops the connection
                               return sink.write(body->data() + offset, body->size() / 2);
                             });
  }

  void list(const httplib::Request& req, httplib::Response& res) {
    if (req.get_param_value("list-type") != "2") {
      res.status = 400;
      return;
    }
    const std::string prefix = req.get_param_value("prefix");
    const std::string token = req.get_param_value("continuation-token");
    std::string xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"" +
                      std::string(ferry::protocol::s3_xml_namespace) + "\"><Name>" + bucket +
                      "</Name><Prefix>" + prefix + "</Prefix>";
    std::lock_guard<std::mutex> lock(mutex);
    size_t index = 0;
    size_t listed = 0;
    size_t start = token.empty() ? 0 : std::stoul(token.substr(token.find('-') + 1));
    bool more = false;
    for (const auto& [key, content] : objects) {
      if (key.compare(0, prefix.size(), prefix) != 0)
        continue;
      if (index++ < start)
        continue;
      if (listed == page_keys) {
        more = true;
        break;
      }
      ++listed;
      xml += "<Contents><Key>" + key + "</Key><Size>" + std::to_string(content.size()) +
             "</Size><StorageClass>STANDARD</StorageClass></Contents>";
    }
    xml += "<KeyCount>" + std::to_string(listed) + "</KeyCount>";
    xml += std::string("<IsTruncated>") + (more ? "true" : "false") + "</IsTruncated>";
    if (more && how == fault::same_token && !token.empty())
      xml += "<NextContinuationToken>" + token + "</NextContinuationToken>";
    else if (more && how != fault::no_token)
      xml += "<NextContinuationToken>after-" + std::to_string(start + listed) +
             "</NextContinuationToken>";
    res.set_content(xml + "</ListBucketResult>", "application/xml");
  }

  no_proxy proxy;
  std::mutex mutex;
  std::map<std::string, std::string> objects;
  std::vector<seen_request> requests;
  std::atomic<fault> how{fault::none};
  size_t page_keys = 1000;
  // After what its handlers use, so that it stops before that goes away.
  test_server server;
  // Gone before the server stops: no idle keep-alive connection holds it up.
  std::shared_ptr<ferry::http_engine> http = std::make_shared<ferry::http_engine>();
};

std::string nested_key(const std::string& oid) {
  return "lfs/" + oid.substr(0, 2) + "/" + oid.substr(2, 2) + "/" + oid;
}

} // namespace

TEST_CASE("s3 store: describe() and endpoint() name the bucket and server, no keys", "[s3_store]") {
  fake_bucket peer;
  auto store = peer.store();
  auto parsed = ferry::s3::parse_s3_url(peer.url("/lfs"));
  REQUIRE(parsed.ok());
  CHECK(store->describe() == parsed->describe());
  CHECK_THAT(store->describe(), !Catch::Contains("LOOPBACKKEY") && !Catch::Contains("secret"));
  CHECK(store->endpoint() == peer.server.url("").substr(std::string("http://").size()));
}

TEST_CASE("s3 store: every call refuses an invalid oid before asking the server", "[s3_store]") {
  fake_bucket peer;
  auto store = peer.store();
  const std::string oid = GENERATE(std::string("abc"), std::string(64, 'A'),
                                   std::string(63, 'a') + "/", std::string(65, 'a'));
  auto refused = [&](const ferry::status& outcome) {
    CHECK(outcome.code() == errc::invalid_request);
    CHECK_THAT(outcome.message(), Catch::Contains("invalid object id"));
  };
  refused(store->stat(oid).error());
  refused(store->holds({oid, 1}).error());
  refused(store->open_read(oid, 0).error());
  refused(store->open_write(oid, 1, std::nullopt).error());
  refused(store->expect_reads({{oid, 1}}));
  refused(store->remove(oid));
  CHECK(peer.seen().empty());
}

TEST_CASE("s3 store: stat and holds ask with HEAD", "[s3_store]") {
  fake_bucket peer;
  auto store = peer.store();
  const std::string content = random_content(5000, 1);
  const std::string oid = oid_of(content);
  peer.put(nested_key(oid), content);

  auto found = store->stat(oid);
  REQUIRE(found.ok());
  REQUIRE(found->has_value());
  CHECK((*found)->size == 5000);
  CHECK((*found)->oid == oid);
  CHECK(store->holds({oid, 5000}).value());
  CHECK_FALSE(store->holds({oid, 4999}).value());

  const std::string absent = oid_of("absent");
  auto missing = store->stat(absent);
  REQUIRE(missing.ok());
  CHECK_FALSE(missing->has_value());
  CHECK_FALSE(store->holds({absent, 6}).value());

  auto seen = peer.seen();
  REQUIRE(seen.size() == 5);
  for (const auto& request : seen)
    CHECK(request.method == "HEAD");
  CHECK(seen[0].key == nested_key(oid));
  CHECK(seen[3].key == nested_key(absent));
}

TEST_CASE("s3 store: a small object is one GET, whole or from an offset", "[s3_store]") {
  fake_bucket peer;
  auto store = peer.store();
  const std::string content = random_content(4096, 2);
  const std::string oid = oid_of(content);
  peer.put(nested_key(oid), content);
  const int64_t range_bytes = s3_store_options{}.range_bytes;
  std::vector<std::string> ranges;

  SECTION("size learned from the answer") {
    auto reader = store->open_read(oid, 0);
    REQUIRE(reader.ok());
    CHECK((*reader)->size() == 4096);
    auto back = read_rest(**reader);
    REQUIRE(back.ok());
    CHECK(*back == content);
    // The first range would tell a large object's size in time to fetch
    // the rest in parallel.
    ranges = {"bytes=0-" + std::to_string(range_bytes - 1),
              "bytes=1000-" + std::to_string(1000 + range_bytes - 1)};
  }
  SECTION("size announced by expect_reads") {
    REQUIRE(store->expect_reads({info_of(content)}).ok());
    auto back = get_object(*store, oid);
    REQUIRE(back.ok());
    CHECK(*back == content);
    ranges = {"", "bytes=1000-"};
  }
  auto tail = get_object(*store, oid, 1000);
  REQUIRE(tail.ok());
  CHECK(*tail == content.substr(1000));
  auto seen = peer.seen();
  REQUIRE(seen.size() == 2);
  for (size_t i = 0; i < seen.size(); ++i) {
    CHECK(seen[i].method == "GET");
    CHECK(seen[i].range == ranges[i]);
  }
}

TEST_CASE("s3 store: large objects come as parallel ranges, each signed with its Range",
          "[s3_store]") {
  fake_bucket peer;
  auto store = peer.store(small_ranges());
  const std::string content = random_content((1 << 20) + 333, 3);
  const std::string oid = oid_of(content);
  const auto size = static_cast<int64_t>(content.size());
  peer.put(nested_key(oid), content);

  const bool announced = GENERATE(false, true);
  INFO("size announced: " << announced);
  if (announced)
    REQUIRE(store->expect_reads({info_of(content)}).ok());
  auto back = get_object(*store, oid);
  INFO(back.error().to_string());
  REQUIRE(back.ok());
  CHECK(*back == content);
  auto gets = peer.seen();
  // Without the size, the first range tells it; the rest follow as before.
  CHECK(static_cast<int64_t>(gets.size()) == small_ranges_for(size));
  std::set<std::string> ranges;
  for (const auto& get : gets) {
    CHECK(get.method == "GET");
    CHECK_THAT(get.authorization, Catch::StartsWith("AWS4-HMAC-SHA256 Credential=LOOPBACKKEY/"));
    CHECK_THAT(get.authorization, Catch::Contains(";range;"));
    ranges.insert(get.range);
  }
  CHECK(ranges.size() == gets.size());
  CHECK(ranges.count("bytes=0-65535") == 1);
  CHECK(ranges.count("bytes=1048576-1048908") == 1);

  peer.forget_requests();
  auto tail = get_object(*store, oid, 100000);
  REQUIRE(tail.ok());
  CHECK(*tail == content.substr(100000));
  CHECK(static_cast<int64_t>(peer.count("GET")) == small_ranges_for(size - 100000));
}

TEST_CASE("s3 store: an empty object and reads at the end", "[s3_store]") {
  fake_bucket peer;
  auto store = peer.store(small_ranges());
  const std::string empty_oid = oid_of("");
  peer.put(nested_key(empty_oid), "");
  const std::string content = random_content(3000, 4);
  const std::string oid = oid_of(content);
  peer.put(nested_key(oid), content);

  SECTION("sizes unknown: a 416 to the first range is answered by one GET of the object") {
    auto empty = store->open_read(empty_oid, 0);
    REQUIRE(empty.ok());
    CHECK((*empty)->size() == 0);
    CHECK(read_rest(**empty).value().empty());
    auto at_end = store->open_read(oid, 3000);
    REQUIRE(at_end.ok());
    CHECK((*at_end)->size() == 3000);
    CHECK(read_rest(**at_end).value().empty());
    CHECK(store->open_read(oid, 3001).error().code() == errc::size_mismatch);
    CHECK(peer.count("HEAD") == 0);
  }
  SECTION("sizes announced: HEAD checks the object is there, no GET") {
    REQUIRE(store->expect_reads({{empty_oid, 0}, info_of(content)}).ok());
    auto empty = store->open_read(empty_oid, 0);
    REQUIRE(empty.ok());
    CHECK((*empty)->size() == 0);
    CHECK(read_rest(**empty).value().empty());
    auto at_end = get_object(*store, oid, 3000);
    REQUIRE(at_end.ok());
    CHECK(at_end->empty());
    CHECK(peer.count("GET") == 0);
    CHECK(peer.count("HEAD") == 2);
    CHECK(store->open_read(oid, 3001).error().code() == errc::size_mismatch);

    const std::string gone = oid_of("gone");
    REQUIRE(store->expect_reads({{gone, 4}}).ok());
    CHECK(store->open_read(gone, 4).error().code() == errc::not_found);
    REQUIRE(store->expect_reads({{oid, 2999}}).ok());
    auto other = store->open_read(oid, 2999);
    REQUIRE_FALSE(other.ok());
    CHECK(other.error().code() == errc::size_mismatch);
    CHECK_THAT(other.error().message(), Catch::Contains("3000") && Catch::Contains("2999"));
  }
}

TEST_CASE("s3 store: answers that are not the range or the size asked for are refused",
          "[s3_store]") {
  fake_bucket peer;
  const std::string content = random_content(300000, 5);
  const std::string oid = oid_of(content);
  peer.put(nested_key(oid), content);

  const std::vector<s3_store_options> plans{s3_store_options{}, small_ranges()};
  // Reads from `offset` with the size announced; the read must fail.
  auto failed_read = [&](const s3_store_options& options, int64_t offset) {
    auto store = peer.store(options);
    REQUIRE(store->expect_reads({info_of(content)}).ok());
    auto back = get_object(*store, oid, offset);
    REQUIRE_FALSE(back.ok());
    return back.error();
  };

  SECTION("a misaligned 206, one GET or parallel ranges") {
    peer.how = fake_bucket::fault::misaligned_range;
    for (const auto& options : plans) {
      auto failure = failed_read(options, 1000);
      CHECK(failure.code() == errc::unavailable);
      CHECK_THAT(failure.message(), Catch::Contains("bytes 1000-"));
    }
  }
  SECTION("a 206 for an object of another size") {
    peer.how = fake_bucket::fault::other_total;
    for (const auto& options : plans) {
      auto failure = failed_read(options, 1000);
      CHECK(failure.code() == errc::size_mismatch);
      CHECK_THAT(failure.message(), Catch::Contains("300001") && Catch::Contains(oid));
    }
  }
  SECTION("a 200 whose Content-Length is not the announced size") {
    for (auto fault : {fake_bucket::fault::short_length, fake_bucket::fault::long_length}) {
      peer.how = fault;
      auto failure = failed_read(s3_store_options{}, 0);
      CHECK(failure.code() == errc::size_mismatch);
      CHECK_THAT(failure.message(), Catch::Contains("announced with 300000"));
    }
  }
  SECTION("a body cut short, whole or ranged") {
    peer.how = fake_bucket::fault::truncated;
    for (const auto& options : plans)
      CHECK(failed_read(options, 0).code() == errc::unavailable);
  }
}

TEST_CASE("s3 store: a 200 to a ranged GET is read from the offset", "[s3_store]") {
  fake_bucket peer;
  peer.how = fake_bucket::fault::ignore_range;
  const std::string content = random_content(300000, 6);
  const std::string oid = oid_of(content);
  peer.put(nested_key(oid), content);
  const bool announced = GENERATE(false, true);
  INFO("size announced: " << announced);
  auto store = peer.store(small_ranges());
  if (announced)
    REQUIRE(store->expect_reads({info_of(content)}).ok());
  auto back = get_object(*store, oid, 123456);
  INFO(back.error().to_string());
  REQUIRE(back.ok());
  CHECK(*back == content.substr(123456));
}

TEST_CASE("s3 store: SlowDown is unavailable and carries the server's Retry-After", "[s3_store]") {
  fake_bucket peer;
  peer.how = fake_bucket::fault::slow_down;
  const std::string content = random_content(300000, 7);
  const std::string oid = oid_of(content);
  peer.put(nested_key(oid), content);
  auto store = peer.store(GENERATE(s3_store_options{}, small_ranges()));
  REQUIRE(store->expect_reads({info_of(content)}).ok());

  auto slowed = [](const ferry::status& outcome) {
    CHECK(outcome.code() == errc::unavailable);
    CHECK(outcome.retry_after() == std::chrono::seconds(3));
  };
  slowed(store->open_read(oid, 0).error());
  slowed(store->stat(oid).error());
  slowed(store->list([](const object_info&) { return true; }));
  slowed(store->remove(oid));
}

TEST_CASE("s3 store: AccessDenied is permission_denied and says what to check", "[s3_store]") {
  fake_bucket peer;
  peer.how = fake_bucket::fault::access_denied;
  const std::string content = random_content(300000, 8);
  const std::string oid = oid_of(content);
  peer.put(nested_key(oid), content);
  auto store = peer.store(GENERATE(s3_store_options{}, small_ranges()));
  REQUIRE(store->expect_reads({info_of(content)}).ok());

  auto denied = [](const ferry::status& outcome, const std::string& what) {
    CHECK(outcome.code() == errc::permission_denied);
    CHECK_THAT(outcome.message(), Catch::Contains(what) && Catch::Contains("AccessDenied") &&
                                    Catch::Contains("credentials"));
  };
  denied(store->open_read(oid, 0).error(), "download of " + oid);
  denied(store->list([](const object_info&) { return true; }), "listing of s3://");
  denied(store->remove(oid), "removal of " + oid);
  // HEAD answers have no body: the status alone must say it.
  CHECK(store->stat(oid).error().code() == errc::permission_denied);
}

TEST_CASE("s3 store: an absent object is not_found, one GET or parallel ranges", "[s3_store]") {
  fake_bucket peer;
  const std::string oid = oid_of("never stored");
  auto store = peer.store(small_ranges());
  const int64_t size = GENERATE(int64_t{100}, int64_t{1} << 20);
  REQUIRE(store->expect_reads({{oid, size}}).ok());
  auto missing = store->open_read(oid, 0);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code() == errc::not_found);
  CHECK_THAT(missing.error().message(), Catch::Contains("NoSuchKey"));
}

TEST_CASE("s3 store: listing follows continuation tokens and skips keys outside the layout",
          "[s3_store]") {
  fake_bucket peer;
  peer.page_keys = 3;
  std::map<std::string, int64_t> stored;
  for (uint32_t i = 0; i < 10; ++i) {
    const std::string content = random_content(100 + i, 100 + i);
    stored[oid_of(content)] = static_cast<int64_t>(content.size());
    peer.put(nested_key(oid_of(content)), content);
  }
  // Keys in the bucket that are not objects of this store's layout.
  const std::string oid = oid_of("misplaced");
  const std::string upper(64, 'A');
  REQUIRE(oid.compare(0, 4, "0000") != 0);
  const std::vector<std::string> foreign{"lfs/readme.txt",
                                         "lfs/" + oid,
                                         "lfs/00/00/" + oid,
                                         nested_key(upper),
                                         nested_key(oid) + ".ferry-partial",
                                         "other/" + nested_key(oid).substr(4)};
  for (const auto& key : foreign)
    peer.put(key, "x");

  auto store = peer.store();
  auto listed = listed_objects(*store);
  INFO(listed.error().to_string());
  REQUIRE(listed.ok());
  CHECK(*listed == stored);

  // 15 keys under "lfs/", 3 per page.
  auto pages = peer.seen();
  REQUIRE(pages.size() == 5);
  for (size_t i = 0; i < pages.size(); ++i) {
    CHECK(pages[i].method == "GET");
    CHECK(pages[i].key.empty());
    CHECK(pages[i].query.find("prefix")->second == "lfs/");
    CHECK(pages[i].query.count("continuation-token") == (i == 0 ? 0 : 1));
  }

  // Stopping early: no page after the one with the fourth object.
  size_t fourth = 0;
  size_t objects_before = 0;
  for (const auto& [key, content] : peer.objects) {
    if (key.compare(0, 4, "lfs/") != 0)
      continue;
    if (stored.count(key.substr(key.rfind('/') + 1)) == 1 && ++objects_before == 4)
      break;
    ++fourth;
  }
  peer.forget_requests();
  size_t visits = 0;
  REQUIRE(store->list([&](const object_info&) { return ++visits < 4; }).ok());
  CHECK(visits == 4);
  CHECK(peer.seen().size() == fourth / 3 + 1);

  // A store at the bucket root asks for every key and still keeps only its layout.
  peer.forget_requests();
  auto root = peer.store({}, "");
  peer.put(nested_key(oid).substr(4), "at the root");
  CHECK(listed_objects(*root).value() == std::map<std::string, int64_t>{{oid, 11}});
  CHECK(peer.seen().front().query.count("prefix") == 0);

  // The flat layout keeps exactly the keys <prefix>/<oid>.
  auto flat = peer.store({}, "/lfs", "layout=flat");
  CHECK(listed_objects(*flat).value() == std::map<std::string, int64_t>{{oid, 1}});
}

TEST_CASE("s3 store: a listing that cannot go on is an error, not a short list", "[s3_store]") {
  fake_bucket peer;
  peer.page_keys = 2;
  for (uint32_t i = 0; i < 7; ++i) {
    const std::string content = random_content(10, 200 + i);
    peer.put(nested_key(oid_of(content)), content);
  }
  peer.how = GENERATE(fake_bucket::fault::no_token, fake_bucket::fault::same_token);
  size_t visits = 0;
  auto listed = peer.store()->list([&](const object_info&) {
    ++visits;
    return true;
  });
  REQUIRE_FALSE(listed.ok());
  CHECK_THAT(listed.message(), Catch::Contains("listing of s3://" + bucket + "/lfs") &&
                                 Catch::Contains("ContinuationToken"));
  CHECK(visits < 7);
}

TEST_CASE("s3 store: remove deletes, and an absent object is no error", "[s3_store]") {
  fake_bucket peer;
  auto store = peer.store();
  const std::string oid = oid_of("to remove");
  peer.put(nested_key(oid), "to remove");
  REQUIRE(store->remove(oid).ok());
  CHECK_FALSE(store->stat(oid).value().has_value());
  REQUIRE(store->remove(oid).ok());
  auto seen = peer.seen();
  REQUIRE(seen.size() == 3);
  CHECK(seen[0].method == "DELETE");
  CHECK(seen[0].key == nested_key(oid));
  CHECK(seen[2].method == "DELETE");
}

TEST_CASE("s3 store: prepare() lists at most one key under the prefix", "[s3_store]") {
  fake_bucket peer;
  auto store = peer.store();
  REQUIRE(store->prepare().ok());
  auto seen = peer.seen();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].method == "GET");
  CHECK(seen[0].key.empty());
  std::multimap<std::string, std::string> query{
    {"list-type", "2"}, {"max-keys", "1"}, {"prefix", "lfs/"}};
  CHECK(seen[0].query == query);

  // S3 answered and knew the keys: a policy without listings may still
  // allow the objects.
  peer.how = fake_bucket::fault::access_denied;
  CHECK(store->prepare().ok());
  peer.how = fake_bucket::fault::slow_down;
  CHECK(store->prepare().code() == errc::unavailable);
}

namespace {

ferry::http_response answer_of(long status, const std::string& type, const std::string& body,
                               std::vector<std::pair<std::string, std::string>> headers = {}) {
  ferry::http_response answer;
  answer.status = status;
  answer.headers = std::move(headers);
  if (!type.empty())
    answer.headers.emplace_back("content-type", type);
  answer.body = body;
  return answer;
}

ferry::status verdict_of(const ferry::http_response& answer) {
  auto url = ferry::s3::parse_s3_url("s3://ferry-check/lfs?endpoint=http://127.0.0.1:9");
  REQUIRE(url.ok());
  return ferry::s3_check_verdict(*url, answer);
}

} // namespace

TEST_CASE("s3 check: a listing passes; an answer that is not S3 is a setting", "[s3_store]") {
  const std::string listing =
    "<?xml version=\"1.0\"?><ListBucketResult xmlns=\"" +
    std::string(ferry::protocol::s3_xml_namespace) +
    "\"><Name>ferry-check</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated>"
    "</ListBucketResult>";
  CHECK(verdict_of(answer_of(200, "application/xml", listing)).ok());

  struct case_ {
    ferry::http_response answer;
    std::string shown;
  };
  const std::vector<case_> not_s3{
    {answer_of(200, "text/html", "<!DOCTYPE HTML><html><title>Directory listing for /</title>"),
     "HTTP 200 (text/html): "},
    {answer_of(404, "application/vnd.git-lfs+json",
               R"({"message":"no such endpoint: GET /ferry-check","request_id":"sim-3"})"),
     "no such endpoint: GET /ferry-check"},
    {answer_of(301, "", "", {{"location", "/ferry-check/?list-type=2"}}),
     "HTTP 301 redirecting to /ferry-check/"},
    {answer_of(200, "", ""), "answered HTTP 200;"},
    {answer_of(403, "text/html", "<html>Forbidden by the proxy</html>"), "HTTP 403 (text/html)"},
  };
  for (const auto& each : not_s3) {
    auto verdict = verdict_of(each.answer);
    CHECK(verdict.code() == errc::config_error);
    CHECK_THAT(
      verdict.message(),
      Catch::StartsWith("s3://ferry-check/lfs?endpoint=http://127.0.0.1:9&path_style=true: ") &&
        Catch::Contains("http://127.0.0.1:9 is not an S3 endpoint") &&
        Catch::Contains(each.shown) && Catch::Contains("set endpoint="));
  }
}

TEST_CASE("s3 check: S3 errors that no retry mends are a setting; outages may pass", "[s3_store]") {
  auto missing = verdict_of(
    answer_of(404, "application/xml", error_xml("NoSuchBucket", "The bucket does not exist")));
  CHECK(missing.code() == errc::config_error);
  CHECK_THAT(missing.message(), Catch::Contains("there is no bucket 'ferry-check' at "
                                                "http://127.0.0.1:9") &&
                                  Catch::Contains("NoSuchBucket") && Catch::Contains("create it"));

  for (std::string code : {"InvalidAccessKeyId", "SignatureDoesNotMatch", "RequestTimeTooSkewed",
                           "AuthorizationHeaderMalformed"}) {
    auto refused = verdict_of(answer_of(code == "AuthorizationHeaderMalformed" ? 400 : 403,
                                        "application/xml", error_xml(code, "no")));
    CHECK(refused.code() == errc::config_error);
    CHECK_THAT(refused.message(), Catch::Contains("S3 error " + code));
  }
  auto moved = verdict_of(answer_of(301, "application/xml", error_xml("PermanentRedirect", "")));
  CHECK(moved.code() == errc::config_error);
  CHECK_THAT(moved.message(), Catch::Contains("PermanentRedirect") && Catch::Contains("region="));

  CHECK(verdict_of(answer_of(403, "application/xml", error_xml("AccessDenied", "no"))).ok());

  const std::vector<ferry::http_response> outages{
    answer_of(503, "application/xml", error_xml("SlowDown", "slow down")),
    answer_of(500, "application/xml", error_xml("InternalError", "oops")),
    answer_of(502, "text/html", "<html>Bad Gateway</html>"),
    answer_of(503, "", ""),
    answer_of(429, "", ""),
  };
  for (const auto& answer : outages)
    CHECK(verdict_of(answer).code() == errc::unavailable);
}
