// The S3 writers against a real radosgw: single PUTs checked by the server,
// multipart uploads, resumes proven from the server's request log, and the
// cleanup of abandoned uploads.

#include "store/s3/s3_upload.hpp"
#include "protocol/s3_xml.hpp"
#include "store/http/http_engine.hpp"
#include "store/http/http_stream.hpp"
#include "store/os/sha256.hpp"
#include "store/s3/s3_client.hpp"

#include <catch2/catch.hpp>

#include "s3_support.hpp"
#include "upload_steps.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

using ferry::errc;
using ferry::object_writer;
using ferry::s3_store_options;
using namespace ferry::testing;

namespace {

/// The fixture's radosgw and a fresh bucket on it, keys below "lfs/".
struct bucket_case {
  no_proxy proxy;
  s3_peer peer = radosgw_peer();
  std::shared_ptr<ferry::http_engine> http = std::make_shared<ferry::http_engine>();
  std::shared_ptr<ferry::s3::client> s3 =
    bucket_client(peer, fresh_bucket(peer, "upload"), "lfs", http);

  /// Runs a request without body and returns the answer.
  ferry::http_response send(const std::string& method, const std::string& key,
                            const std::vector<ferry::s3::name_value>& query = {}) {
    auto request = s3->request(method, key, query, {}, ferry::s3::empty_payload_hash);
    REQUIRE(request.ok());
    auto response = s3->send(std::move(*request));
    REQUIRE(response.ok());
    return *response;
  }

  /// The SHA-256 of the stored object, read back with a plain GET.
  std::string stored_sha256(const std::string& oid) {
    auto request =
      s3->request("GET", s3->url().object_key(oid), {}, {}, ferry::s3::empty_payload_hash);
    REQUIRE(request.ok());
    // Streamed: the engine hashes what the sink takes.
    request->body_sink = [](const char*, size_t) { return ferry::sink_action::accept; };
    auto got = ferry::http_fetch(*http, std::move(*request));
    REQUIRE(got.ok());
    REQUIRE(got->status == 200);
    return got->sha256_received;
  }

  /// The multipart uploads in progress in the bucket.
  std::vector<ferry::protocol::s3_multipart_upload_entry> uploads() {
    auto listed = send("GET", "", {{"uploads", ""}});
    REQUIRE(listed.status == 200);
    auto page = ferry::protocol::decode_list_multipart_uploads(listed.body);
    REQUIRE(page.ok());
    return page->uploads;
  }
};

std::string oid_of(const std::string& content) {
  return ferry::sha256::of(content.data(), content.size());
}

s3_store_options multipart_options(int concurrency) {
  s3_store_options options;
  options.multipart_threshold = 8 * mib;
  options.part_bytes = part_bytes;
  options.upload_concurrency = concurrency;
  return options;
}

ferry::result<std::unique_ptr<object_writer>> open_for(const std::shared_ptr<ferry::s3::client>& s3,
                                                       const std::string& content,
                                                       const std::optional<std::string>& resume,
                                                       const s3_store_options& options) {
  std::string oid = oid_of(content);
  return ferry::s3::open_upload(s3, oid, static_cast<int64_t>(content.size()),
                                s3->url().object_key(oid), resume, options);
}

} // namespace

TEST_CASE("upload: a small object goes up as one PUT and reads back intact", "[s3_upload]") {
  bucket_case bucket;
  auto& s3 = bucket.s3;
  const std::string content = patterned_bytes(1 * mib + 17, 1);
  auto writer = open_for(s3, content, std::nullopt, s3_store_options{});
  REQUIRE(writer.ok());
  CHECK((*writer)->resume_state().empty());
  REQUIRE(feed_writer(**writer, content, content.size()).ok());
  auto durable = (*writer)->sync();
  REQUIRE(durable.ok());
  CHECK(*durable == 0);
  REQUIRE((*writer)->commit().ok());
  CHECK(bucket.stored_sha256(oid_of(content)) == oid_of(content));
}

TEST_CASE("upload: a PUT of bytes that are not the object stores nothing", "[s3_upload]") {
  bucket_case bucket;
  auto& s3 = bucket.s3;
  const std::string content = patterned_bytes(2 * mib, 2);
  std::string other = content;
  other[mib] ^= 0x40;
  const std::string oid = oid_of(content);
  {
    auto writer = open_for(s3, content, std::nullopt, s3_store_options{});
    REQUIRE(writer.ok());
    REQUIRE(feed_writer(**writer, other, other.size()).ok());
    auto committed = (*writer)->commit();
    REQUIRE_FALSE(committed.ok());
    CHECK(committed.code() == errc::hash_mismatch);
    CHECK_THAT(committed.message(), Catch::Contains("nothing was stored"));
  }
  CHECK(bucket.send("HEAD", s3->url().object_key(oid)).status == 404);
}

TEST_CASE("upload: a 23 MiB object goes up in 5 MiB parts", "[s3_upload]") {
  bucket_case bucket;
  auto& s3 = bucket.s3;
  const std::string content = patterned_bytes(23 * mib + 12345, 3);
  auto writer = open_for(s3, content, std::nullopt, multipart_options(4));
  REQUIRE(writer.ok());
  REQUIRE(upload_through(**writer, content).ok());
  const std::string key = s3->url().object_key(oid_of(content));
  auto head = bucket.send("HEAD", key, {});
  REQUIRE(head.status == 200);
  REQUIRE(head.header("etag") != nullptr);
  CHECK_THAT(*head.header("etag"), Catch::EndsWith("-5\""));
  CHECK(bucket.stored_sha256(oid_of(content)) == oid_of(content));
  CHECK(bucket.uploads().empty());
}

TEST_CASE("upload: an interrupted multipart upload resumes without sending its parts again",
          "[s3_upload]") {
  bucket_case bucket;
  auto& s3 = bucket.s3;
  const std::string content = patterned_bytes(23 * mib + 999, 4);
  std::string resume;
  {
    // One part at a time: sending part 4 waits for part 3, so parts 1-3 are
    // complete once the fourth part is written.
    auto writer = open_for(s3, content, std::nullopt, multipart_options(1));
    REQUIRE(writer.ok());
    REQUIRE(feed_writer(**writer, content, 4 * part_bytes).ok());
    auto durable = (*writer)->sync();
    REQUIRE(durable.ok());
    CHECK(*durable >= 3 * part_bytes);
    resume = (*writer)->resume_state();
  } // dropped: the upload stays on the server
  const std::string upload_id = nlohmann::json::parse(resume)["upload_id"];
  REQUIRE(bucket.uploads().size() == 1);

  auto resumed = open_for(s3, content, resume, multipart_options(4));
  REQUIRE(resumed.ok());
  const int64_t kept = (*resumed)->offset() / part_bytes;
  CHECK(kept >= 3);
  CHECK((*resumed)->offset() == kept * part_bytes);
  REQUIRE(upload_through(**resumed, content).ok());
  CHECK(bucket.stored_sha256(oid_of(content)) == oid_of(content));

  const std::string key = s3->url().object_key(oid_of(content));
  for (int64_t number = 1; number <= 5; ++number) {
    INFO("part " << number);
    size_t sent = count_requests(bucket.peer, "PUT", key,
                                 "partNumber=" + std::to_string(number) + "&uploadId=" + upload_id);
    if (number <= kept)
      CHECK(sent == 1);
    else
      CHECK(sent >= 1);
  }
}

TEST_CASE("upload: a kept part whose recorded SHA-256 differs from the source: hash mismatch",
          "[s3_upload]") {
  bucket_case bucket;
  auto& s3 = bucket.s3;
  const std::string content = patterned_bytes(12 * mib, 5);
  std::string resume;
  {
    auto writer = open_for(s3, content, std::nullopt, multipart_options(1));
    REQUIRE(writer.ok());
    REQUIRE(feed_writer(**writer, content, 2 * part_bytes).ok());
    REQUIRE((*writer)->sync().ok());
    resume = (*writer)->resume_state();
  }
  auto state = nlohmann::json::parse(resume);
  REQUIRE_FALSE(state["parts"].empty());
  state["parts"][0][3] = std::string(64, '0');

  auto resumed = open_for(s3, content, state.dump(), multipart_options(4));
  REQUIRE(resumed.ok());
  REQUIRE((*resumed)->offset() >= part_bytes);
  auto checked = feed_writer(**resumed, content, content.size());
  REQUIRE_FALSE(checked.ok());
  CHECK(checked.code() == errc::hash_mismatch);
  CHECK_THAT(checked.message(), Catch::Contains("part 1"));
  // What the upload task does next: abort, and start over from byte 0.
  (*resumed)->abort();
  CHECK(bucket.uploads().empty());
}

TEST_CASE("upload: abort_stale_uploads aborts abandoned uploads of the store's keys",
          "[s3_upload]") {
  bucket_case bucket;
  auto& s3 = bucket.s3;
  const std::string content = patterned_bytes(9 * mib, 6);
  const std::string ours = s3->url().object_key(oid_of(content));
  {
    auto writer = open_for(s3, content, std::nullopt, multipart_options(1));
    REQUIRE(writer.ok());
    REQUIRE(feed_writer(**writer, content, part_bytes).ok());
  }
  // An upload under the prefix whose key is no object of the store.
  auto foreign = bucket.send("POST", "lfs/notes.txt", {{"uploads", ""}});
  REQUIRE(foreign.status == 200);
  REQUIRE(bucket.uploads().size() == 2);

  auto is_ours = [&](const std::string& key) { return key == ours; };
  std::vector<std::string> seen;
  auto visit = [&](const std::string& key, const std::string& upload_id) {
    CHECK_FALSE(upload_id.empty());
    seen.push_back(key);
  };
  const auto now = std::chrono::system_clock::now();
  // Uploads started after `before` are not stale.
  auto young =
    ferry::s3::abort_stale_uploads(*s3, now - std::chrono::hours(1), false, is_ours, visit);
  REQUIRE(young.ok());
  CHECK(*young == 0);
  auto dry =
    ferry::s3::abort_stale_uploads(*s3, now + std::chrono::minutes(1), true, is_ours, visit);
  REQUIRE(dry.ok());
  CHECK(*dry == 1);
  CHECK(bucket.uploads().size() == 2);
  auto aborted =
    ferry::s3::abort_stale_uploads(*s3, now + std::chrono::minutes(1), false, is_ours, visit);
  REQUIRE(aborted.ok());
  CHECK(*aborted == 1);
  CHECK(seen == std::vector<std::string>{ours, ours});
  auto left = bucket.uploads();
  REQUIRE(left.size() == 1);
  CHECK(left[0].key == "lfs/notes.txt");
}
