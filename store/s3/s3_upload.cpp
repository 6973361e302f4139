#include "store/s3/s3_upload.hpp"

#include "protocol/parsing.hpp"
#include "protocol/s3_xml.hpp"
#include "store/http/http_download.hpp"
#include "store/http/http_stream.hpp"
#include "store/http/verified_put.hpp"
#include "store/os/sha256.hpp"
#include "store/s3/buffer_budget.hpp"

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <algorithm>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

namespace ferry::s3 {

namespace {

/// S3's smallest part; only the last part of an upload may be smaller.
constexpr int64_t min_part_bytes = int64_t{5} << 20;

/// The format version of a multipart writer's resume_state().
constexpr int64_t resume_format = 1;

/// The part buffers of all multipart uploads together: eight parts of the
/// default size. Without it, 8 copies at once with 4 parts in flight each
/// and one being filled held up to 320 MiB. Never destroyed: a completion
/// on an engine thread may give bytes back while the process exits.
buffer_budget& part_buffers() {
  static auto* budget = new buffer_budget{int64_t{64} << 20};
  return *budget;
}

/// A part's MD5, as S3 wants it: base64 for Content-MD5, hex to compare
/// with the ETag the server answers.
struct md5_digest {
  std::string base64;
  std::string hex;
};

result<md5_digest> md5_of(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  size_t length = 0;
  if (EVP_Q_digest(nullptr, "MD5", nullptr, data.data(), data.size(), digest, &length) != 1)
    return status{errc::internal, "OpenSSL offers no MD5, which S3's Content-MD5 needs"};
  md5_digest out;
  out.base64.resize(4 * ((length + 2) / 3) + 1);
  int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.base64.data()), digest,
                                static_cast<int>(length));
  out.base64.resize(static_cast<size_t>(written));
  static constexpr char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < length; ++i) {
    out.hex += digits[digest[i] >> 4];
    out.hex += digits[digest[i] & 0xf];
  }
  return out;
}

bool is_lower_hex(const std::string& text, size_t length) {
  return text.size() == length && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

/// Whether the server's ETag is a plain MD5 of the part (AWS, radosgw,
/// MinIO); servers that encrypt or compress answer something else.
bool looks_like_md5(const std::string& etag) {
  return is_lower_hex(protocol::lower_ascii(etag), 32);
}

/// Takes a 2xx, and the answer that the multipart upload is gone.
bool done_or_gone(const http_response& answer) {
  return is_success(answer.status) || error_code(answer) == "NoSuchUpload";
}

/// Sends AbortMultipartUpload and ignores the outcome: an upload left
/// behind costs storage until abort_stale_uploads finds it, nothing more.
void abort_upload_quietly(client& s3, const std::string& key, const std::string& upload_id) {
  (void)s3.call("abort of upload " + upload_id, "DELETE", key, {{"uploadId", upload_id}}, {}, {},
                any_answer);
}

// -- single PUT ----------------------------------------------------------------

/// One PUT signed with the object's SHA-256 (its oid), so the server refuses
/// bytes that do not match; the last byte waits for commit()'s own check.
class put_writer final : public object_writer {
public:
  put_writer(std::shared_ptr<client> s3, const std::string& oid, int64_t size)
      : s3_(std::move(s3)), what_("upload of " + oid), oid_(oid),
        put_(oid, size, what_, [this](const http_response& response) {
          return is_success(response.status)
                   ? status::success()
                   : s3_->streamed_failure(what_, response, key_generation_);
        }) {}

  status start(http_engine& engine, const std::string& key) {
    auto request = s3_->request("PUT", key, {}, {{"Content-Type", "application/octet-stream"}},
                                oid_, &key_generation_);
    if (!request)
      return request.error().with_context(what_);
    return put_.start(engine, std::move(*request));
  }

  int64_t offset() const override { return 0; }

  status write(const char* data, size_t size) override { return put_.write(data, size); }

  // A PUT cannot resume: nothing is durable before commit().
  result<int64_t> sync() override { return int64_t{0}; }

  status commit() override { return put_.finish(); }

  void abort() override { put_.abort(); }

private:
  std::shared_ptr<client> s3_;
  std::string what_;
  std::string oid_;
  uint64_t key_generation_ = 0;
  verified_put put_;
};

// -- multipart -----------------------------------------------------------------

/// A part the server confirmed.
struct part_record {
  int number = 0;
  int64_t size = 0;
  /// Quotes stripped.
  std::string etag;
  /// Hex SHA-256 of the part's bytes.
  std::string sha256;
};

/// What a multipart writer's resume_state() holds.
struct upload_state {
  std::string key;
  std::string upload_id;
  int64_t part_bytes = 0;
  /// Ascending part numbers.
  std::vector<part_record> parts;
};

std::string encode_state(const upload_state& state) {
  nlohmann::ordered_json parts = nlohmann::ordered_json::array();
  for (const auto& part : state.parts)
    parts.push_back({part.number, part.size, part.etag, part.sha256});
  nlohmann::ordered_json out;
  out["v"] = resume_format;
  out["key"] = state.key;
  out["upload_id"] = state.upload_id;
  out["part_bytes"] = state.part_bytes;
  out["parts"] = std::move(parts);
  return protocol::dump(out);
}

/// Decodes a resume state into `state`. A malformed one still fills in the
/// key and upload id when it has them, so that its upload can be aborted.
status decode_state(const std::string& text, upload_state& state) {
  auto malformed = [](const std::string& why) {
    return status{errc::corrupt_record, "the multipart resume state " + why};
  };
  if (protocol::nests_too_deep(text))
    return malformed("nests too deep");
  auto root = nlohmann::json::parse(text, nullptr, false);
  if (root.is_discarded() || !root.is_object())
    return malformed("is not a JSON object");
  const auto* key = protocol::find_member(root, "key");
  const auto* upload_id = protocol::find_member(root, "upload_id");
  if (key != nullptr && key->is_string())
    state.key = key->get<std::string>();
  if (upload_id != nullptr && upload_id->is_string())
    state.upload_id = upload_id->get<std::string>();
  const auto* version = protocol::find_member(root, "v");
  if (version == nullptr || protocol::as_int64(*version) != resume_format)
    return malformed("has an unknown format version");
  if (state.key.empty() || state.upload_id.empty())
    return malformed("names no key or upload id");
  const auto* part_bytes = protocol::find_member(root, "part_bytes");
  const auto bytes = part_bytes == nullptr ? std::nullopt : protocol::as_int64(*part_bytes);
  if (!bytes || *bytes < min_part_bytes)
    return malformed("has no valid part size");
  state.part_bytes = *bytes;
  const auto* parts = protocol::find_member(root, "parts");
  if (parts == nullptr || !parts->is_array())
    return malformed("has no part list");
  for (const auto& entry : *parts) {
    if (!entry.is_array() || entry.size() != 4 || !entry[2].is_string() || !entry[3].is_string())
      return malformed("has a part that is not [number, size, etag, sha256]");
    part_record part;
    auto number = protocol::as_int64(entry[0]);
    auto size = protocol::as_int64(entry[1]);
    part.etag = entry[2].get<std::string>();
    part.sha256 = entry[3].get<std::string>();
    int previous = state.parts.empty() ? 0 : state.parts.back().number;
    if (!number || *number <= previous || *number > protocol::max_s3_part_number || !size ||
        *size <= 0 || part.etag.empty() || !is_lower_hex(part.sha256, 64))
      return malformed("has an invalid part");
    part.number = static_cast<int>(*number);
    part.size = *size;
    state.parts.push_back(std::move(part));
  }
  return status::success();
}

/// Part size for an object: the configured size, raised so the object fits
/// in max_s3_part_number parts, and never below S3's minimum.
int64_t part_size_for(int64_t size, const s3_store_options& options) {
  int64_t fitting = (size + protocol::max_s3_part_number - 1) / protocol::max_s3_part_number;
  return std::max({options.part_bytes, fitting, min_part_bytes});
}

/// What a failed part upload left: an HTTP answer (translated into a status
/// on the writer's thread, where the client may be used) or an error.
struct part_failure {
  int number = 0;
  std::optional<http_response> response;
  status error;
  /// Of the keys the part was signed with.
  uint64_t key_generation = 0;
};

/// The parts in flight and their outcomes, shared with the engine's
/// completions (which must not hold the client: it may own the engine).
struct part_flights {
  std::mutex mutex;
  std::condition_variable changed;
  /// Part number -> engine request id (0 until submit() returned).
  std::map<int, uint64_t> in_flight;
  std::map<int, part_record> completed;
  /// The first failure.
  std::optional<part_failure> failure;
};

/// Records the answer to the upload of part `sent` (on the engine's loop
/// thread): completed with the server's ETag, or the writer's failure.
void record_outcome(part_flights& flights, const part_record& sent, const std::string& md5_hex,
                    const std::string& what, uint64_t key_generation,
                    result<http_response> outcome) {
  std::lock_guard<std::mutex> lock(flights.mutex);
  flights.in_flight.erase(sent.number);
  flights.changed.notify_all();
  auto fail = [&](std::optional<http_response> response, status error) {
    if (!flights.failure)
      flights.failure =
        part_failure{sent.number, std::move(response), std::move(error), key_generation};
  };
  if (!outcome)
    return fail(std::nullopt, outcome.error().with_context(what));
  if (!is_success(outcome->status))
    return fail(std::move(*outcome), status{});
  const std::string* header = outcome->header("etag");
  std::string etag = header != nullptr ? protocol::strip_etag_quotes(*header) : "";
  if (etag.empty())
    return fail(std::nullopt,
                {errc::unavailable, what + ": the server answered HTTP " +
                                      std::to_string(outcome->status) + " without an ETag"});
  if (looks_like_md5(etag) && protocol::lower_ascii(etag) != md5_hex)
    return fail(std::nullopt,
                {errc::unavailable, what + ": the server's ETag " + etag +
                                      " is not the MD5 of the bytes sent (" + md5_hex +
                                      "); the part was damaged on the way"});
  part_record done = sent;
  done.etag = std::move(etag);
  flights.completed[sent.number] = std::move(done);
}

/// A multipart upload: parts are hashed, then sent by the engine while the
/// caller fills the next one; at most `concurrency` are in flight, and a
/// part is filled only once part_buffers() has room for it.
class multipart_writer final : public object_writer {
public:
  multipart_writer(std::shared_ptr<client> s3, http_engine& engine, const std::string& oid,
                   int64_t size, std::string key, int64_t part_bytes, int concurrency)
      : s3_(std::move(s3)), engine_(engine), oid_(oid), what_("upload of " + oid),
        key_(std::move(key)), size_(size), part_bytes_(part_bytes),
        concurrency_(static_cast<size_t>(std::max(concurrency, 1))), digest_(oid, size),
        flights_(std::make_shared<part_flights>()) {}

  /// Cancels the parts in flight but keeps the upload for a later resume.
  ~multipart_writer() override {
    cancel_in_flight();
    drop_part();
  }

  /// CreateMultipartUpload.
  status create() {
    const std::string what = what_ + ": starting the multipart upload";
    auto response = s3_->call(what, "POST", key_, {{"uploads", ""}},
                              {{"Content-Type", "application/octet-stream"}});
    if (!response)
      return response.error();
    auto started = protocol::decode_initiate_multipart_upload(response->body);
    if (!started)
      return started.error().with_context(what);
    upload_id_ = started->upload_id;
    return status::success();
  }

  /// Continues the upload an earlier writer recorded in `earlier`: keeps the
  /// leading run of its parts that the server lists unchanged. False when
  /// the server no longer knows the upload.
  result<bool> resume(const upload_state& earlier) {
    upload_id_ = earlier.upload_id;
    auto listed = list_parts();
    if (!listed)
      return listed.error();
    if (!*listed)
      return false;
    const std::map<int, protocol::s3_part_entry>& on_server = **listed;
    for (const auto& part : earlier.parts) {
      int expected = static_cast<int>(kept_.size()) + 1;
      int64_t first = int64_t{expected - 1} * part_bytes_;
      auto found = on_server.find(part.number);
      if (part.number != expected || first >= size_ ||
          part.size != std::min(part_bytes_, size_ - first) || found == on_server.end() ||
          found->second.size != part.size || found->second.etag != part.etag)
        break;
      kept_.push_back(part);
      offset_ += part.size;
    }
    for (const auto& part : kept_)
      flights_->completed.emplace(part.number, part);
    next_number_ = static_cast<int>(kept_.size()) + 1;
    return true;
  }

  int64_t offset() const override { return offset_; }

  status check_resumed(const char* data, size_t size) override {
    if (static_cast<uint64_t>(offset_ - digest_.count()) < size)
      return {errc::invalid_request, what_ + ": shown more than the " + std::to_string(offset_) +
                                       " bytes kept from the interrupted upload"};
    while (size > 0) {
      const part_record& part = kept_[checked_parts_];
      size_t take = static_cast<size_t>(
        std::min<int64_t>(part.size - check_hash_.bytes(), static_cast<int64_t>(size)));
      check_hash_.update(data, take);
      if (auto counted = digest_.add(data, take); !counted)
        return counted;
      data += take;
      size -= take;
      if (check_hash_.bytes() < part.size)
        continue;
      std::string digest = check_hash_.hex_digest();
      if (digest != part.sha256)
        return {errc::hash_mismatch,
                what_ + ": part " + std::to_string(part.number) +
                  " of the interrupted upload was sent from other bytes (SHA-256 " + part.sha256 +
                  ", the source's bytes hash to " + digest + ")"};
      ++checked_parts_;
    }
    return status::success();
  }

  status write(const char* data, size_t size) override {
    if (auto usable = check_usable(); !usable)
      return usable;
    if (digest_.count() < offset_)
      return {errc::internal, what_ + ": write() before check_resumed() was shown the " +
                                std::to_string(offset_) + " bytes kept"};
    if (auto counted = digest_.add(data, size); !counted)
      return counted;
    while (size > 0) {
      if (part_taken_ == 0) {
        part_taken_ = next_part_size();
        part_buffers().take(part_taken_);
        part_.reserve(static_cast<size_t>(part_taken_));
      }
      size_t take = std::min(size, static_cast<size_t>(next_part_size()) - part_.size());
      part_.append(data, take);
      data += take;
      size -= take;
      if (part_.size() == static_cast<size_t>(part_bytes_)) {
        if (auto sent = send_part(); !sent)
          return sent;
      }
    }
    return status::success();
  }

  int64_t sync_every() const override { return part_bytes_; }

  result<int64_t> sync() override {
    if (auto usable = check_usable(); !usable)
      return usable;
    std::lock_guard<std::mutex> lock(flights_->mutex);
    // Only a run of completed parts from part 1 on can be resumed.
    int64_t durable = 0;
    int number = 1;
    for (const auto& [completed_number, part] : flights_->completed) {
      if (completed_number != number++)
        break;
      durable += part.size;
    }
    return durable;
  }

  std::string resume_state() const override {
    upload_state state{key_, upload_id_, part_bytes_, {}};
    std::lock_guard<std::mutex> lock(flights_->mutex);
    for (const auto& completed : flights_->completed)
      state.parts.push_back(completed.second);
    return encode_state(state);
  }

  status commit() override {
    if (auto usable = check_usable(); !usable)
      return usable;
    if (auto verified = digest_.verify(); !verified) {
      abort();
      return verified;
    }
    if (!part_.empty()) {
      if (auto sent = send_part(); !sent)
        return sent;
    }
    std::map<int, part_record> completed;
    {
      std::unique_lock<std::mutex> lock(flights_->mutex);
      flights_->changed.wait(lock, [&] { return flights_->in_flight.empty(); });
      completed = flights_->completed;
    }
    if (auto usable = check_usable(); !usable)
      return usable;
    std::vector<protocol::s3_completed_part> parts;
    int64_t total = 0;
    for (const auto& [number, part] : completed) {
      if (number != static_cast<int>(parts.size()) + 1)
        break;
      parts.push_back({number, part.etag, std::nullopt});
      total += part.size;
    }
    if (total != size_ || parts.size() != completed.size())
      return {errc::internal, what_ + ": the completed parts cover " + std::to_string(total) +
                                " of " + std::to_string(size_) + " bytes"};
    if (auto completed_upload = complete(parts); !completed_upload)
      return completed_upload;
    finished_ = true;
    return status::success();
  }

  void abort() override {
    if (finished_ || aborted_)
      return;
    aborted_ = true;
    cancel_in_flight();
    drop_part();
    abort_upload_quietly(*s3_, key_, upload_id_);
  }

private:
  std::string part_what(int number) const { return what_ + ", part " + std::to_string(number); }

  int64_t next_part_size() const {
    return std::min(part_bytes_, size_ - int64_t{next_number_ - 1} * part_bytes_);
  }

  /// The writer's failure, if any: aborted, committed, or a part failed.
  status check_usable() {
    if (aborted_)
      return {errc::cancelled, what_ + ": the upload was aborted"};
    if (finished_)
      return {errc::invalid_request, what_ + ": the upload is already complete"};
    if (!failed_.ok())
      return failed_;
    std::optional<part_failure> failure;
    {
      std::lock_guard<std::mutex> lock(flights_->mutex);
      failure = flights_->failure;
    }
    if (!failure)
      return status::success();
    // A part refused for keys that have changed since fails retryably: its
    // bytes went to the engine and are gone, but the parts confirmed stay in
    // resume_state(), so the transfer's retry sends only the rest.
    failed_ = failure->response ? s3_->streamed_failure(part_what(failure->number),
                                                        *failure->response, failure->key_generation)
                                : failure->error;
    // A new attempt can succeed where the upload is gone (a cleanup aborted
    // it: the attempt starts a new one) or the server found a part damaged
    // (its digests were made from the very bytes sent).
    bool gone = failure->response && error_code(*failure->response) == "NoSuchUpload";
    if (gone || failed_.code() == errc::hash_mismatch)
      failed_ = status{errc::unavailable, failed_.message()};
    return failed_;
  }

  /// Hashes the filled part and hands it to the engine once fewer than
  /// `concurrency_` parts are in flight.
  status send_part() {
    const int number = next_number_;
    const auto size = static_cast<int64_t>(part_.size());
    // The two digests of a part are independent: MD5 on a second thread
    // while SHA-256 runs here, both done before the part is handed on.
    auto md5_pending = std::async(std::launch::async, [this] { return md5_of(part_); });
    std::string sha = sha256::of(part_.data(), part_.size());
    auto md5 = md5_pending.get();
    if (!md5)
      return md5.error();
    {
      std::unique_lock<std::mutex> lock(flights_->mutex);
      flights_->changed.wait(lock, [&] {
        return flights_->in_flight.size() < concurrency_ || flights_->failure.has_value();
      });
    }
    if (auto usable = check_usable(); !usable)
      return usable;
    uint64_t key_generation = 0;
    auto request =
      s3_->request("PUT", key_, {{"partNumber", std::to_string(number)}, {"uploadId", upload_id_}},
                   {{"Content-Length", std::to_string(size)},
                    {"Content-MD5", md5->base64},
                    {"Content-Type", "application/octet-stream"}},
                   sha, &key_generation);
    if (!request)
      return request.error().with_context(part_what(number));
    // Moved, not copied: the engine owns the part's only copy until it is sent.
    request->body = std::move(part_);
    part_ = std::string{};
    const int64_t taken = std::exchange(part_taken_, 0);
    ++next_number_;
    {
      std::lock_guard<std::mutex> lock(flights_->mutex);
      flights_->in_flight[number] = 0;
    }
    auto flights = flights_;
    part_record sent{number, size, {}, std::move(sha)};
    uint64_t id = engine_.submit(
      std::move(*request),
      [flights, sent = std::move(sent), md5_hex = md5->hex, what = part_what(number), taken,
       key_generation](uint64_t, result<http_response> outcome) {
        record_outcome(*flights, sent, md5_hex, what, key_generation, std::move(outcome));
        part_buffers().give_back(taken);
      });
    std::lock_guard<std::mutex> lock(flights_->mutex);
    if (auto found = flights_->in_flight.find(number); found != flights_->in_flight.end())
      found->second = id;
    return status::success();
  }

  /// Frees the part being filled and gives its bytes back.
  void drop_part() {
    part_ = std::string{};
    part_buffers().give_back(std::exchange(part_taken_, 0));
  }

  void cancel_in_flight() {
    std::vector<uint64_t> ids;
    {
      std::lock_guard<std::mutex> lock(flights_->mutex);
      for (const auto& flight : flights_->in_flight)
        ids.push_back(flight.second);
    }
    for (uint64_t id : ids)
      engine_.cancel(id);
    std::unique_lock<std::mutex> lock(flights_->mutex);
    flights_->changed.wait(lock, [&] { return flights_->in_flight.empty(); });
  }

  /// ListParts, page by page: the parts the server holds, by number, or
  /// nullopt when it does not know the upload.
  result<std::optional<std::map<int, protocol::s3_part_entry>>> list_parts() {
    std::map<int, protocol::s3_part_entry> parts;
    const std::string what = what_ + ": listing the parts of the interrupted upload";
    auto known_or_gone = [](const http_response& answer) {
      return is_success(answer.status) ||
             (answer.status == 404 && error_code(answer) == "NoSuchUpload");
    };
    int marker = 0;
    while (true) {
      std::vector<name_value> query{{"uploadId", upload_id_}};
      if (marker > 0)
        query.emplace_back("part-number-marker", std::to_string(marker));
      auto response = s3_->call(what, "GET", key_, query, {}, {}, known_or_gone);
      if (!response)
        return response.error();
      if (!is_success(response->status))
        return std::optional<std::map<int, protocol::s3_part_entry>>{};
      auto page = protocol::decode_list_parts(response->body);
      if (!page)
        return page.error().with_context(what);
      for (auto& part : page->parts)
        parts[part.part_number] = std::move(part);
      if (!page->is_truncated)
        break;
      // A marker that does not advance would list the same page forever.
      if (*page->next_part_number_marker <= marker)
        return status{errc::unavailable, what + ": the server's part-number-marker does not "
                                                "advance"};
      marker = *page->next_part_number_marker;
    }
    return std::optional<std::map<int, protocol::s3_part_entry>>{std::move(parts)};
  }

  /// CompleteMultipartUpload, then a HEAD that confirms the object's size.
  status complete(const std::vector<protocol::s3_completed_part>& parts) {
    const std::string what = what_ + ": completing the multipart upload";
    auto body = protocol::encode_complete_multipart_upload(parts);
    if (!body)
      return body.error().with_context(what);
    auto response =
      s3_->call(what, "POST", key_, {{"uploadId", upload_id_}},
                {{"Content-Type", "application/xml"}}, std::move(*body), done_or_gone);
    if (!response)
      return response.error();
    // An answer to an earlier Complete may have been lost: the upload is
    // then gone and the object stored.
    if (error_code(*response) == "NoSuchUpload")
      return check_stored(what, parts.size());
    // S3 may put an <Error> inside a 200.
    if (auto completed = protocol::decode_complete_multipart_upload_result(response->body);
        !completed)
      return completed.error().with_context(what);
    return check_stored(what, std::nullopt);
  }

  /// HEAD: the object must be there with exactly size_ bytes; with
  /// `lost_complete` parts, also with the ETag of a multipart upload of that
  /// many parts (else the upload vanished without completing).
  status check_stored(const std::string& what, std::optional<size_t> lost_complete) {
    // After a lost Complete answer any answer tells; else only a 2xx will do.
    auto response = s3_->call(what + ": checking the stored object", "HEAD", key_, {}, {}, {},
                              lost_complete ? any_answer : successful);
    if (!response)
      return response.error();
    auto length = content_length(response->headers);
    const std::string* etag = response->header("etag");
    const bool sized = is_success(response->status) && length == size_;
    if (lost_complete) {
      std::string suffix = "-" + std::to_string(*lost_complete);
      std::string tag = etag != nullptr ? protocol::strip_etag_quotes(*etag) : "";
      if (sized && tag.size() > suffix.size() &&
          tag.compare(tag.size() - suffix.size(), suffix.size(), suffix) == 0)
        return status::success();
      return {errc::unavailable, what + ": the server no longer knows the upload (NoSuchUpload) "
                                        "and holds no object of its parts; starting over"};
    }
    if (!sized)
      return {errc::size_mismatch, what + ": the stored object has " +
                                     (length ? std::to_string(*length) : std::string{"no"}) +
                                     " bytes (Content-Length), expected " + std::to_string(size_)};
    return status::success();
  }

  std::shared_ptr<client> s3_;
  http_engine& engine_;
  std::string oid_;
  std::string what_;
  std::string key_;
  int64_t size_;
  int64_t part_bytes_;
  size_t concurrency_;
  std::string upload_id_;
  /// Everything shown by check_resumed() and written.
  object_digest digest_;
  std::shared_ptr<part_flights> flights_;
  /// The leading run of an interrupted upload's parts that are kept, and
  /// the bytes they hold.
  std::vector<part_record> kept_;
  int64_t offset_ = 0;
  /// check_resumed(): parts checked, and the hash of the one being checked.
  size_t checked_parts_ = 0;
  sha256 check_hash_;
  /// The part being filled, its bytes taken from part_buffers(), and its
  /// number.
  std::string part_;
  int64_t part_taken_ = 0;
  int next_number_ = 1;
  /// A part's failure once translated, so every later call reports the same.
  status failed_;
  bool finished_ = false;
  bool aborted_ = false;
};

} // namespace

result<std::unique_ptr<object_writer>> open_upload(std::shared_ptr<client> s3,
                                                   const std::string& oid, int64_t size,
                                                   const std::string& key,
                                                   const std::optional<std::string>& resume,
                                                   const s3_store_options& options) {
  auto engine = s3->engine();
  if (!engine)
    return engine.error();
  const bool multipart = size > 0 && size >= options.multipart_threshold;
  const int64_t part_bytes = part_size_for(size, options);
  std::optional<upload_state> earlier;
  if (resume && !resume->empty()) {
    upload_state state;
    status decoded = decode_state(*resume, state);
    if (decoded && multipart && state.key == key && state.part_bytes == part_bytes)
      earlier = std::move(state);
    else if (!state.key.empty() && !state.upload_id.empty())
      abort_upload_quietly(*s3, state.key, state.upload_id); // of no use to this writer
  }
  if (!multipart) {
    auto writer = std::make_unique<put_writer>(std::move(s3), oid, size);
    if (auto started = writer->start(**engine, key); !started)
      return started;
    return std::unique_ptr<object_writer>(std::move(writer));
  }
  auto writer = std::make_unique<multipart_writer>(std::move(s3), **engine, oid, size, key,
                                                   part_bytes, options.upload_concurrency);
  bool resumed = false;
  if (earlier) {
    auto kept = writer->resume(*earlier);
    if (!kept)
      return kept.error();
    resumed = *kept;
  }
  if (!resumed) {
    if (auto created = writer->create(); !created)
      return created;
  }
  return std::unique_ptr<object_writer>(std::move(writer));
}

result<size_t> abort_stale_uploads(
  client& s3, std::chrono::system_clock::time_point before, bool dry_run,
  const std::function<bool(const std::string& key)>& key_is_ours,
  const std::function<void(const std::string& key, const std::string& upload_id)>& visit) {
  const std::string what = "cleanup of stale multipart uploads in " + s3.describe();
  const std::string prefix = s3.url().prefix.empty() ? "" : s3.url().prefix + "/";
  size_t count = 0;
  std::optional<std::string> key_marker;
  std::optional<std::string> upload_id_marker;
  while (true) {
    std::vector<name_value> query{{"uploads", ""}};
    if (!prefix.empty())
      query.emplace_back("prefix", prefix);
    if (key_marker)
      query.emplace_back("key-marker", *key_marker);
    if (upload_id_marker)
      query.emplace_back("upload-id-marker", *upload_id_marker);
    auto response = s3.call(what, "GET", "", query);
    if (!response)
      return response.error();
    auto page = protocol::decode_list_multipart_uploads(response->body);
    if (!page)
      return page.error().with_context(what);
    for (const auto& upload : page->uploads) {
      if (upload.initiated >= before || !key_is_ours(upload.key))
        continue;
      if (visit)
        visit(upload.key, upload.upload_id);
      ++count;
      if (dry_run)
        continue;
      // Gone already: someone else cleaned up or completed it.
      auto aborted = s3.call(what + ": aborting the upload of " + upload.key, "DELETE", upload.key,
                             {{"uploadId", upload.upload_id}}, {}, {}, done_or_gone);
      if (!aborted)
        return aborted.error();
    }
    if (!page->is_truncated)
      break;
    // The same markers again would list the same page forever.
    if (page->next_key_marker == key_marker && page->next_upload_id_marker == upload_id_marker)
      return status{errc::unavailable, what + ": the server's listing markers do not advance"};
    key_marker = page->next_key_marker;
    upload_id_marker = page->next_upload_id_marker;
  }
  return count;
}

} // namespace ferry::s3
