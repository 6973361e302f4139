// The S3 writers against a small loopback S3 that fails on demand: part
// failures, wrong ETags, an <Error> inside a 200, a lost Complete answer,
// SlowDown, and the resume paths a real server will not produce at will.

#include "actors/policy/retry_policy.hpp"
#include "protocol/batch_api.hpp"
#include "protocol/s3_xml.hpp"
#include "store/http/http_engine.hpp"
#include "store/os/sha256.hpp"
#include "store/s3/s3_client.hpp"
#include "store/s3/s3_upload.hpp"

#include <catch2/catch.hpp>

#include "remote_support.hpp"
#include "upload_steps.hpp"

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

using ferry::errc;
using ferry::object_writer;
using ferry::s3_store_options;
using namespace ferry::testing;

namespace {

/// The MD5 of `data`; empty if OpenSSL has none (so nothing matches it).
std::string raw_md5(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  size_t length = 0;
  if (EVP_Q_digest(nullptr, "MD5", nullptr, data.data(), data.size(), digest, &length) != 1)
    return {};
  return std::string(reinterpret_cast<const char*>(digest), length);
}

std::string base64_md5(const std::string& data) {
  std::string digest = raw_md5(data);
  const size_t length = digest.size();
  std::string out(4 * ((length + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(digest.data()),
                          static_cast<int>(length));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string hex_md5(const std::string& data) {
  std::string out;
  static constexpr char digits[] = "0123456789abcdef";
  for (unsigned char byte : raw_md5(data)) {
    out += digits[byte >> 4];
    out += digits[byte & 0xf];
  }
  return out;
}

/// Answers with an S3 error.
void answer_error(httplib::Response& res, int status, const std::string& code) {
  res.status = status;
  res.set_content(s3_error_xml(code), "application/xml");
}

/// An S3 bucket "bucket" in memory that keeps one object and its multipart
/// uploads, checks Content-MD5 and x-amz-content-sha256 as S3 does, and lets
/// a test answer parts and Complete requests itself.
class fake_s3 {
public:
  /// How CompleteMultipartUpload is answered.
  enum class complete_answer {
    /// Stores the object; an empty ETag in the answer, as radosgw sends.
    normal,
    /// A 200 whose body is an <Error>.
    error_in_200,
    /// Stores the object but answers NoSuchUpload, as a repeated Complete
    /// after a lost answer sees it.
    lost_answer,
    /// NoSuchUpload without storing anything.
    no_such_upload,
  };

  /// Answers the upload of part `number` instead of the bucket; returns
  /// false to let the bucket answer.
  using part_hook = std::function<bool(int number, httplib::Response& res)>;

  fake_s3() {
    const std::string route = R"(/bucket/(.+))";
    server_.http().Post(route, [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (req.has_param("uploads"))
        return create(req, res);
      if (!known(req, res))
        return;
      complete(req, res);
    });
    server_.http().Put(route, [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!digests_match(req, res))
        return;
      if (!req.has_param("partNumber")) {
        object_ = req.body;
        object_etag_ = hex_md5(req.body);
        return;
      }
      if (!known(req, res))
        return;
      int number = std::stoi(req.get_param_value("partNumber"));
      requests_.push_back("part " + std::to_string(number));
      if (on_part_ && on_part_(number, res))
        return;
      parts_[number] = req.body;
      changed_etags_.erase(number);
      res.set_header("ETag", "\"" + hex_md5(req.body) + "\"");
    });
    server_.http().Get(route, [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!req.has_param("uploadId")) {
        requests_.push_back("head");
        if (!object_)
          return void(res.status = 404);
        res.set_header("ETag", "\"" + object_etag_ + "\"");
        res.set_content(*object_, "application/octet-stream");
        return;
      }
      if (!known(req, res))
        return;
      requests_.push_back("list");
      list_parts(req, res);
    });
    server_.http().Get("/bucket/", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mutex_);
      requests_.push_back("list uploads under " + req.get_param_value("prefix"));
      list_uploads(req, res);
    });
    server_.http().Delete(route, [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mutex_);
      requests_.push_back("abort " + req.get_param_value("uploadId"));
      if (!known(req, res))
        return;
      upload_id_.clear();
      parts_.clear();
      res.status = 204;
    });
    server_.start();
  }

  std::shared_ptr<ferry::s3::client> client() {
    auto url = ferry::s3::parse_s3_url("s3://bucket/lfs?endpoint=" + server_.url(""));
    REQUIRE(url.ok());
    return std::make_shared<ferry::s3::client>(
      http_, *url, ferry::s3::key_holder::fixed({"AKTEST", "secret", ""}),
      std::chrono::seconds(120));
  }

  /// Requests seen, in order: "create", "part N", "list", "complete",
  /// "head", "abort <id>".
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }

  int64_t count(const std::string& request) {
    auto seen = requests();
    return std::count(seen.begin(), seen.end(), request);
  }

  std::optional<std::string> object() {
    std::lock_guard<std::mutex> lock(mutex_);
    return object_;
  }

  std::string upload_id() {
    std::lock_guard<std::mutex> lock(mutex_);
    return upload_id_;
  }

  void on_part(part_hook hook) {
    std::lock_guard<std::mutex> lock(mutex_);
    on_part_ = std::move(hook);
  }

  /// Answers the upload of part `number` (of every part with 0) with an
  /// S3 error, and a Retry-After when `retry_after` is not empty.
  void fail_part(int number, int status, const std::string& code,
                 const std::string& retry_after = "") {
    on_part([=](int part, httplib::Response& res) {
      if (number != 0 && part != number)
        return false;
      if (!retry_after.empty())
        res.set_header("Retry-After", retry_after);
      answer_error(res, status, code);
      return true;
    });
  }

  /// Multipart uploads for ListMultipartUploads to report, one per page:
  /// key and Initiated. Their ids are "id-<index>"; the bucket knows none
  /// of them (an abort is answered NoSuchUpload).
  void report_uploads(std::vector<std::pair<std::string, std::string>> uploads) {
    std::lock_guard<std::mutex> lock(mutex_);
    reported_uploads_ = std::move(uploads);
  }

  void answer_complete(complete_answer answer) {
    std::lock_guard<std::mutex> lock(mutex_);
    complete_answer_ = answer;
  }

  /// Makes the server list part `number` with another ETag.
  void change_etag(int number) {
    std::lock_guard<std::mutex> lock(mutex_);
    changed_etags_[number] = std::string(32, 'e');
  }

  /// Forgets the multipart upload, as if it had been aborted elsewhere.
  void forget_upload() {
    std::lock_guard<std::mutex> lock(mutex_);
    upload_id_.clear();
    parts_.clear();
  }

private:
  void create(const httplib::Request& req, httplib::Response& res) {
    requests_.push_back("create");
    upload_id_ = "upload-" + std::to_string(++uploads_);
    parts_.clear();
    res.set_content("<InitiateMultipartUploadResult><Bucket>bucket</Bucket><Key>" +
                      req.matches[1].str() + "</Key><UploadId>" + upload_id_ +
                      "</UploadId></InitiateMultipartUploadResult>",
                    "application/xml");
  }

  /// False (and a NoSuchUpload answer) for an upload id the bucket does not know.
  bool known(const httplib::Request& req, httplib::Response& res) {
    if (!upload_id_.empty() && req.get_param_value("uploadId") == upload_id_)
      return true;
    answer_error(res, 404, "NoSuchUpload");
    return false;
  }

  bool digests_match(const httplib::Request& req, httplib::Response& res) {
    bool md5_ok =
      !req.has_header("Content-MD5") || req.get_header_value("Content-MD5") == base64_md5(req.body);
    bool sha_ok = req.get_header_value("x-amz-content-sha256") ==
                  ferry::sha256::of(req.body.data(), req.body.size());
    if (md5_ok && sha_ok)
      return true;
    answer_error(res, 400, md5_ok ? "XAmzContentSHA256Mismatch" : "BadDigest");
    return false;
  }

  std::string etag_of(int number) {
    auto changed = changed_etags_.find(number);
    return changed != changed_etags_.end() ? changed->second : hex_md5(parts_[number]);
  }

  void complete(const httplib::Request& req, httplib::Response& res) {
    requests_.push_back("complete");
    if (complete_answer_ == complete_answer::error_in_200)
      return answer_error(res, 200, "InternalError");
    if (complete_answer_ == complete_answer::no_such_upload) {
      return answer_error(res, 404, "NoSuchUpload");
    }
    auto listed = ferry::protocol::decode_complete_multipart_upload(req.body);
    bool valid = listed.ok() && listed->size() == parts_.size();
    for (size_t i = 0; valid && i < listed->size(); ++i) {
      const auto& part = (*listed)[i];
      valid = parts_.count(part.part_number) == 1 && etag_of(part.part_number) == part.etag;
    }
    if (!valid) {
      return answer_error(res, 400, "InvalidPart");
    }
    assemble();
    if (complete_answer_ == complete_answer::lost_answer) {
      return answer_error(res, 404, "NoSuchUpload");
    }
    // Like radosgw: an empty ETag in the answer.
    res.set_content("<CompleteMultipartUploadResult><Key>k</Key><ETag></ETag>"
                    "</CompleteMultipartUploadResult>",
                    "application/xml");
  }

  void assemble() {
    std::string object;
    for (const auto& part : parts_)
      object += part.second;
    object_ = object;
    object_etag_ = "0123456789abcdef0123456789abcdef-" + std::to_string(parts_.size());
    upload_id_.clear();
    parts_.clear();
  }

  /// One upload per page, so the cleanup has to follow the markers.
  void list_uploads(const httplib::Request& req, httplib::Response& res) {
    size_t next = 0;
    for (size_t i = 0; i < reported_uploads_.size(); ++i) {
      if (req.get_param_value("key-marker") == reported_uploads_[i].first &&
          req.get_param_value("upload-id-marker") == "id-" + std::to_string(i))
        next = i + 1;
    }
    std::string body = "<ListMultipartUploadsResult><IsTruncated>";
    body += next + 1 < reported_uploads_.size() ? "true" : "false";
    body += "</IsTruncated>";
    if (next < reported_uploads_.size()) {
      const auto& [key, initiated] = reported_uploads_[next];
      std::string id = "id-" + std::to_string(next);
      body += "<NextKeyMarker>" + key + "</NextKeyMarker><NextUploadIdMarker>" + id +
              "</NextUploadIdMarker><Upload><Key>" + key + "</Key><UploadId>" + id +
              "</UploadId><Initiated>" + initiated + "</Initiated></Upload>";
    }
    res.set_content(body + "</ListMultipartUploadsResult>", "application/xml");
  }

  /// Two parts per page, so the writer has to follow the markers.
  void list_parts(const httplib::Request& req, httplib::Response& res) {
    int marker = req.has_param("part-number-marker")
                   ? std::stoi(req.get_param_value("part-number-marker"))
                   : 0;
    std::string body = "<ListPartsResult>";
    int listed = 0;
    int last = marker;
    bool truncated = false;
    for (const auto& [number, bytes] : parts_) {
      if (number <= marker)
        continue;
      if (listed == 2) {
        truncated = true;
        break;
      }
      body += "<Part><PartNumber>" + std::to_string(number) + "</PartNumber><ETag>\"" +
              etag_of(number) + "\"</ETag><Size>" + std::to_string(bytes.size()) + "</Size></Part>";
      ++listed;
      last = number;
    }
    body += std::string("<IsTruncated>") + (truncated ? "true" : "false") +
            "</IsTruncated><NextPartNumberMarker>" + std::to_string(last) +
            "</NextPartNumberMarker></ListPartsResult>";
    res.set_content(body, "application/xml");
  }

  no_proxy proxy_;
  test_server server_;
  std::shared_ptr<ferry::http_engine> http_ = std::make_shared<ferry::http_engine>();
  std::mutex mutex_;
  int uploads_ = 0;
  std::string upload_id_;
  std::map<int, std::string> parts_;
  std::map<int, std::string> changed_etags_;
  part_hook on_part_;
  std::vector<std::pair<std::string, std::string>> reported_uploads_;
  complete_answer complete_answer_ = complete_answer::normal;
  std::optional<std::string> object_;
  std::string object_etag_;
  std::vector<std::string> requests_;
};

s3_store_options multipart_options(int concurrency = 4) {
  s3_store_options options;
  options.multipart_threshold = 1;
  options.part_bytes = part_bytes;
  options.upload_concurrency = concurrency;
  return options;
}

struct upload_case {
  upload_case(fake_s3& s3, std::string object) : content(std::move(object)), client(s3.client()) {
    oid = oid_of(content);
    key = client->url().object_key(oid);
  }

  std::unique_ptr<object_writer> open(const std::optional<std::string>& resume,
                                      const s3_store_options& options) {
    auto writer = ferry::s3::open_upload(client, oid, static_cast<int64_t>(content.size()), key,
                                         resume, options);
    REQUIRE(writer.ok());
    return std::move(*writer);
  }

  std::string content;
  std::shared_ptr<ferry::s3::client> client;
  std::string oid;
  std::string key;
};

nlohmann::json state_of(const object_writer& writer) {
  auto state = nlohmann::json::parse(writer.resume_state());
  REQUIRE(state.is_object());
  return state;
}

} // namespace

TEST_CASE("s3 upload: a multipart upload sends checked parts and completes", "[s3_upload]") {
  fake_s3 s3;
  upload_case object(s3, random_content(3 * part_bytes + 777, 1));
  auto writer = object.open(std::nullopt, multipart_options());
  // The upload exists from the start, so an interruption can resume it.
  auto state = state_of(*writer);
  CHECK(state["upload_id"] == s3.upload_id());
  CHECK(state["key"] == object.key);
  CHECK(state["part_bytes"] == part_bytes);
  CHECK(state["parts"].empty());
  REQUIRE(upload_through(*writer, object.content).ok());
  CHECK(s3.object() == object.content);
  for (int number = 1; number <= 4; ++number)
    CHECK(s3.count("part " + std::to_string(number)) == 1);
  CHECK(s3.count("complete") == 1);
  CHECK(s3.count("head") == 1);
}

TEST_CASE("s3 upload: a part answered 500 fails the writer; the state keeps the parts before it",
          "[s3_upload]") {
  fake_s3 s3;
  s3.fail_part(3, 500, "InternalError");
  upload_case object(s3, random_content(3 * part_bytes + 100, 2));
  // One part at a time, so parts 1 and 2 are done before part 3 leaves.
  auto writer = object.open(std::nullopt, multipart_options(1));
  auto failed = upload_through(*writer, object.content);
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.code() == errc::unavailable);
  CHECK_THAT(failed.message(), Catch::Contains("part 3"));
  CHECK_THAT(failed.message(), Catch::Contains("InternalError"));
  // Every later call reports the same failure.
  auto durable = writer->sync();
  REQUIRE_FALSE(durable.ok());
  CHECK(durable.error().message() == failed.message());

  auto parts = state_of(*writer)["parts"];
  REQUIRE(parts.size() == 2);
  for (int i = 0; i < 2; ++i) {
    std::string bytes = object.content.substr(static_cast<size_t>(i * part_bytes), part_bytes);
    CHECK(parts[i][0] == i + 1);
    CHECK(parts[i][1] == part_bytes);
    CHECK(parts[i][2] == hex_md5(bytes));
    CHECK(parts[i][3] == oid_of(bytes));
  }
  // Dropping the writer keeps the upload for the next attempt.
  std::string resume = writer->resume_state();
  writer.reset();
  CHECK(s3.count("abort " + s3.upload_id()) == 0);

  s3.on_part(nullptr);
  auto resumed = object.open(resume, multipart_options(1));
  CHECK(resumed->offset() == 2 * part_bytes);
  REQUIRE(upload_through(*resumed, object.content).ok());
  CHECK(s3.object() == object.content);
  CHECK(s3.count("create") == 1);
  CHECK(s3.count("part 1") == 1);
  CHECK(s3.count("part 2") == 1);
  CHECK(s3.count("part 3") == 2);
}

TEST_CASE("s3 upload: a part whose ETag is not the MD5 sent fails the writer", "[s3_upload]") {
  fake_s3 s3;
  s3.on_part([](int number, httplib::Response& res) {
    if (number != 2)
      return false;
    res.set_header("ETag", "\"" + std::string(32, 'a') + "\"");
    return true;
  });
  upload_case object(s3, random_content(2 * part_bytes + 100, 3));
  auto writer = object.open(std::nullopt, multipart_options(1));
  auto failed = upload_through(*writer, object.content);
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.code() == errc::unavailable);
  CHECK_THAT(failed.message(), Catch::Contains("part 2"));
  CHECK_THAT(failed.message(), Catch::Contains("is not the MD5 of the bytes sent"));
  auto parts = state_of(*writer)["parts"];
  REQUIRE(parts.size() == 1);
  CHECK(parts[0][0] == 1);
  CHECK_FALSE(s3.object().has_value());
}

TEST_CASE("s3 upload: SlowDown on a part carries the server's Retry-After", "[s3_upload]") {
  fake_s3 s3;
  s3.fail_part(0, 503, "SlowDown", "7");
  upload_case object(s3, random_content(part_bytes + 100, 4));
  auto writer = object.open(std::nullopt, multipart_options());
  auto failed = upload_through(*writer, object.content);
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.code() == errc::unavailable);
  CHECK(failed.retry_after() == std::chrono::seconds(7));
  CHECK_THAT(failed.message(), Catch::Contains("SlowDown"));
}

TEST_CASE("s3 upload: a part the server finds damaged fails the attempt, not the object",
          "[s3_upload]") {
  fake_s3 s3;
  s3.fail_part(2, 400, "BadDigest");
  upload_case object(s3, random_content(2 * part_bytes + 100, 13));
  auto writer = object.open(std::nullopt, multipart_options());
  auto failed = upload_through(*writer, object.content);
  REQUIRE_FALSE(failed.ok());
  // The digests were made from the bytes sent: another attempt can succeed.
  CHECK(ferry::classify(failed.code()) == ferry::retry_class::transient);
  CHECK_THAT(failed.message(), Catch::Contains("BadDigest"));
  CHECK_FALSE(s3.object().has_value());
}

TEST_CASE("s3 upload: an <Error> inside a 200 Complete answer fails the commit", "[s3_upload]") {
  fake_s3 s3;
  s3.answer_complete(fake_s3::complete_answer::error_in_200);
  upload_case object(s3, random_content(part_bytes + 100, 5));
  auto writer = object.open(std::nullopt, multipart_options());
  auto failed = upload_through(*writer, object.content);
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.code() == errc::unavailable);
  CHECK_THAT(failed.message(), Catch::Contains("InternalError"));
  CHECK_THAT(failed.message(), Catch::Contains("completing the multipart upload"));
  CHECK(s3.count("head") == 0);
}

TEST_CASE("s3 upload: NoSuchUpload from Complete is success when HEAD shows the completed object",
          "[s3_upload]") {
  fake_s3 s3;
  // Either an earlier Complete's answer was lost (the object is stored, the
  // upload gone) or the upload was aborted elsewhere.
  bool stored = GENERATE(true, false);
  s3.answer_complete(stored ? fake_s3::complete_answer::lost_answer
                            : fake_s3::complete_answer::no_such_upload);
  upload_case object(s3, random_content(2 * part_bytes + 100, 6));
  auto writer = object.open(std::nullopt, multipart_options());
  auto committed = upload_through(*writer, object.content);
  CHECK(s3.count("head") == 1);
  if (stored) {
    CHECK(committed.ok());
    CHECK(s3.object() == object.content);
  } else {
    // No object: the upload was aborted elsewhere, and a new attempt starts over.
    REQUIRE_FALSE(committed.ok());
    CHECK(committed.code() == errc::unavailable);
    CHECK_THAT(committed.message(), Catch::Contains("NoSuchUpload"));
  }
}

TEST_CASE("s3 upload: a resume keeps only the leading parts the server lists unchanged",
          "[s3_upload]") {
  fake_s3 s3;
  upload_case object(s3, random_content(4 * part_bytes + 100, 7));
  // Every part arrives, but the Complete fails: the state lists all five.
  s3.answer_complete(fake_s3::complete_answer::error_in_200);
  std::string resume;
  {
    auto writer = object.open(std::nullopt, multipart_options());
    REQUIRE_FALSE(upload_through(*writer, object.content).ok());
    resume = writer->resume_state();
    CHECK(state_of(*writer)["parts"].size() == 5);
  }
  s3.answer_complete(fake_s3::complete_answer::normal);
  s3.change_etag(3);
  auto resumed = object.open(resume, multipart_options());
  CHECK(resumed->offset() == 2 * part_bytes);
  REQUIRE(upload_through(*resumed, object.content).ok());
  CHECK(s3.object() == object.content);
  CHECK(s3.count("create") == 1);
  // Five parts make three ListParts pages of two.
  CHECK(s3.count("list") == 3);
  CHECK(s3.count("part 1") == 1);
  CHECK(s3.count("part 2") == 1);
  for (int number = 3; number <= 5; ++number)
    CHECK(s3.count("part " + std::to_string(number)) == 2);
}

TEST_CASE("s3 upload: a resume whose kept bytes differ from the source is a hash mismatch",
          "[s3_upload]") {
  fake_s3 s3;
  upload_case object(s3, random_content(2 * part_bytes + 100, 8));
  std::string resume;
  {
    auto writer = object.open(std::nullopt, multipart_options(1));
    REQUIRE(feed_writer(*writer, object.content, object.content.size()).ok());
    REQUIRE(writer->sync().ok());
    resume = writer->resume_state();
  }
  auto resumed = object.open(resume, multipart_options());
  REQUIRE(resumed->offset() > 0);
  std::string other = object.content;
  other[100] ^= 1;
  auto checked = feed_writer(*resumed, other, other.size());
  REQUIRE_FALSE(checked.ok());
  CHECK(checked.code() == errc::hash_mismatch);
  CHECK_THAT(checked.message(), Catch::Contains("part 1"));
  resumed->abort();
  CHECK(s3.count("abort upload-1") == 1);
}

TEST_CASE("s3 upload: a resume state that cannot be used starts a new upload", "[s3_upload]") {
  fake_s3 s3;
  upload_case object(s3, random_content(part_bytes + 100, 9));
  std::string resume;
  {
    auto writer = object.open(std::nullopt, multipart_options());
    resume = writer->resume_state();
  }
  SECTION("the server no longer knows the upload") {
    s3.forget_upload();
    auto resumed = object.open(resume, multipart_options());
    CHECK(resumed->offset() == 0);
    CHECK(s3.count("list") == 0); // the NoSuchUpload answer is not listed
    CHECK(s3.count("create") == 2);
    REQUIRE(upload_through(*resumed, object.content).ok());
    CHECK(s3.object() == object.content);
  }
  SECTION("another part size: the old upload is aborted") {
    auto options = multipart_options();
    options.part_bytes = 6 * mib;
    auto resumed = object.open(resume, options);
    CHECK(resumed->offset() == 0);
    CHECK(s3.count("abort upload-1") == 1);
    CHECK(s3.count("create") == 2);
  }
  SECTION("a malformed state") {
    for (std::string bad : {std::string("{"), std::string("[]"), resume.substr(0, 40),
                            std::string(R"({"v":2,"key":"k","upload_id":"u"})")}) {
      INFO(bad);
      auto resumed = object.open(bad, multipart_options());
      CHECK(resumed->offset() == 0);
    }
    CHECK(s3.count("list") == 0);
    CHECK(s3.count("create") == 5);
  }
  SECTION("an empty state") {
    auto resumed = object.open(std::string{}, multipart_options());
    CHECK(s3.count("create") == 2);
    CHECK(s3.count("list") == 0);
  }
}

TEST_CASE("s3 upload: a dropped multipart writer keeps its upload; abort() ends it",
          "[s3_upload]") {
  fake_s3 s3;
  upload_case object(s3, random_content(2 * part_bytes + 100, 10));
  auto writer = object.open(std::nullopt, multipart_options());
  REQUIRE(writer->write(object.content.data(), part_bytes).ok());
  writer.reset();
  CHECK(s3.upload_id() == "upload-1");
  CHECK(s3.count("abort upload-1") == 0);

  auto again = object.open(std::nullopt, multipart_options());
  again->abort();
  CHECK(s3.count("abort upload-2") == 1);
  CHECK_FALSE(again->write(object.content.data(), 10).ok());
}

TEST_CASE("s3 upload: a multipart commit of bytes that are not the object stores nothing",
          "[s3_upload]") {
  fake_s3 s3;
  upload_case object(s3, random_content(part_bytes + 100, 11));
  auto writer = object.open(std::nullopt, multipart_options());
  std::string other = object.content;
  other.back() ^= 1;
  auto committed = upload_through(*writer, other);
  REQUIRE_FALSE(committed.ok());
  CHECK(committed.code() == errc::hash_mismatch);
  CHECK(s3.count("complete") == 0);
  CHECK(s3.count("abort upload-1") == 1);
  CHECK_FALSE(s3.object().has_value());
}

TEST_CASE("s3 upload: abort_stale_uploads follows the listing's pages", "[s3_upload]") {
  fake_s3 s3;
  s3.report_uploads({{"lfs/aa/old", "2026-01-01T00:00:00Z"},
                     {"lfs/bb/not-ours", "2026-01-01T00:00:00Z"},
                     {"lfs/cc/young", "2026-06-01T00:00:00Z"},
                     {"lfs/dd/old", "2026-02-28T23:59:59.999Z"}});
  auto client = s3.client();
  auto before = ferry::protocol::parse_rfc3339("2026-03-01T00:00:00Z");
  REQUIRE(before.has_value());
  auto is_ours = [](const std::string& key) { return key != "lfs/bb/not-ours"; };
  std::vector<std::string> seen;
  auto visit = [&](const std::string& key, const std::string& upload_id) {
    seen.push_back(key + " " + upload_id);
  };
  bool dry_run = GENERATE(true, false);
  auto count = ferry::s3::abort_stale_uploads(*client, *before, dry_run, is_ours, visit);
  REQUIRE(count.ok());
  CHECK(*count == 2);
  CHECK(seen == std::vector<std::string>{"lfs/aa/old id-0", "lfs/dd/old id-3"});
  CHECK(s3.count("list uploads under lfs/") == 4);
  CHECK(s3.count("abort id-0") == (dry_run ? 0 : 1));
  CHECK(s3.count("abort id-3") == (dry_run ? 0 : 1));
  CHECK(s3.count("abort id-1") == 0);
  CHECK(s3.count("abort id-2") == 0);
}

TEST_CASE("s3 upload: a single PUT refused early is judged by the server's answer", "[s3_upload]") {
  no_proxy proxy;
  test_server server;
  const std::string content = random_content(3 * mib, 12);
  const std::string oid = oid_of(content);
  answer_puts_unread(server, "/bucket/lfs/" + oid, 403, s3_error_xml("AccessDenied"));
  server.start();
  auto url = ferry::s3::parse_s3_url("s3://bucket/lfs?endpoint=" + server.url("") + "&layout=flat");
  REQUIRE(url.ok());
  auto client = std::make_shared<ferry::s3::client>(std::make_shared<ferry::http_engine>(), *url,
                                                    ferry::s3::key_holder::fixed({"AK", "SK", ""}),
                                                    std::chrono::seconds(120));
  auto writer = ferry::s3::open_upload(client, oid, static_cast<int64_t>(content.size()),
                                       url->object_key(oid), std::nullopt, s3_store_options{});
  REQUIRE(writer.ok());
  CHECK((*writer)->resume_state().empty());
  auto failed = upload_through(**writer, content);
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.code() == errc::permission_denied);
  CHECK_THAT(failed.message(), Catch::Contains("AccessDenied"));
  server.held().open();
}
