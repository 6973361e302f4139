#include "store/s3/s3_store.hpp"

#include "protocol/batch_api.hpp"
#include "protocol/s3_xml.hpp"
#include "protocol/transfer_protocol.hpp"
#include "store/http/http_download.hpp"
#include "store/http/http_url.hpp"
#include "store/s3/s3_client.hpp"
#include "store/s3/s3_upload.hpp"

#include <algorithm>
#include <map>
#include <mutex>
#include <utility>

namespace ferry {

namespace {

/// HEADs one sizes_of() call keeps in flight at once: enough to hide the
/// round trips, few enough to leave the host's connections to transfers.
constexpr size_t max_heads_in_flight = 16;

status invalid_oid(const std::string& oid) {
  std::string shown = oid.size() > 80 ? oid.substr(0, 80) + "..." : oid;
  return {errc::invalid_request, "invalid object id '" + shown +
                                   "' for an S3 store: expected 64 lower-case hex "
                                   "characters (a SHA-256)"};
}

/// GETs of one object, each signed when it is sent.
class object_source final : public download_source {
public:
  object_source(std::shared_ptr<s3::client> s3, std::string key)
      : s3_(std::move(s3)), key_(std::move(key)) {}

  result<http_engine*> engine() override { return s3_->engine(); }

  result<download_request> request(const std::optional<std::string>& range) override {
    std::vector<s3::name_value> headers;
    if (range)
      headers.emplace_back("Range", *range);
    uint64_t generation = 0;
    auto signed_get =
      s3_->request("GET", key_, {}, std::move(headers), s3::empty_payload_hash, &generation);
    if (!signed_get)
      return signed_get.error();
    if (!first_generation_)
      first_generation_ = generation;
    return download_request{std::move(*signed_get), nullptr};
  }

  /// A GET refused for keys that have changed since the first GET was
  /// signed fails retryably: the transfer's retry resumes the download with
  /// the new keys (the reader's ranges in flight cannot be resent one by one).
  status failure(const std::string& what, const http_response& response) const override {
    return s3_->streamed_failure(what, response, first_generation_.value_or(0));
  }

  /// S3 answers every GET from the stored object itself.
  bool content_length_is_size() const override { return true; }

private:
  std::shared_ptr<s3::client> s3_;
  std::string key_;
  std::optional<uint64_t> first_generation_;
};

} // namespace

struct s3_store::impl {
  impl(std::shared_ptr<http_engine> http, s3::s3_url url, std::shared_ptr<s3::key_holder> keys,
       s3_store_options opts)
      : options(opts), s3(std::make_shared<s3::client>(std::move(http), std::move(url),
                                                       std::move(keys), opts.max_retry_wait)) {
    plan.parallel_streams = std::max(options.parallel_streams, 1);
    plan.parallel_threshold = options.parallel_threshold;
    plan.range_bytes = options.range_bytes > 0 ? options.range_bytes : int64_t{8} << 20;
    // Requests go to this host; a default port is left out of the URL.
    if (auto parsed = parse_http_url(s3->url().request_url("")))
      host_port = parsed->host_port();
  }

  const s3::s3_url& url() const { return s3->url(); }

  /// The oid whose object key `key` is in this store's layout, if any: a
  /// nested key must sit in the directories its oid names.
  std::optional<std::string> oid_of_key(const std::string& key) const {
    std::string oid = key.substr(key.rfind('/') + 1);
    if (!protocol::is_valid_oid(oid) || url().object_key(oid) != key)
      return std::nullopt;
    return oid;
  }

  /// The status for a HEAD the server refused. A HEAD answer has no body,
  /// so it cannot say why (a wrong secret, a missing bucket); a one-byte GET
  /// of the same object gets the S3 error code that tells the user what to fix.
  status refusal(const std::string& oid, const std::string& what, const http_response& head) {
    auto got = s3->call(what, "GET", url().object_key(oid), {}, {{"Range", "bytes=0-0"}}, {},
                        s3::any_answer);
    if (got && !is_success(got->status) && !got->body.empty())
      return s3->failure(what, *got);
    return s3->failure(what, head);
  }

  /// A signed HEAD of the object, and the generation of its keys.
  result<http_request> head_request(const std::string& oid, const std::string& what,
                                    uint64_t& key_generation) const {
    auto request =
      s3->request("HEAD", url().object_key(oid), {}, {}, s3::empty_payload_hash, &key_generation);
    if (!request)
      return request.error().with_context(what);
    return request;
  }

  /// HEAD of the object: its size, or nullopt when it is absent.
  result<std::optional<int64_t>> head(const std::string& oid, const std::string& what) {
    return head_size(oid, what,
                     s3->call(what, "HEAD", url().object_key(oid), {}, {}, {}, s3::any_answer));
  }

  /// What the answer to a HEAD of the object (or call()'s failure to get
  /// one) says: its size, or nullopt when it is absent.
  result<std::optional<int64_t>> head_size(const std::string& oid, const std::string& what,
                                           const result<http_response>& response) {
    if (!response)
      return response.error();
    if (response->status == 404)
      return std::optional<int64_t>{};
    if (!is_success(response->status))
      return refusal(oid, what, *response);
    auto length = content_length(response->headers);
    if (!length)
      return status{errc::unavailable,
                    what + ": the server answered HEAD without a usable Content-Length"};
    return std::optional<int64_t>{*length};
  }

  std::optional<int64_t> expected_size(const std::string& oid) {
    std::lock_guard<std::mutex> lock(mutex);
    auto found = sizes.find(oid);
    if (found == sizes.end())
      return std::nullopt;
    return found->second;
  }

  s3_store_options options;
  range_plan plan;
  std::string host_port;
  std::shared_ptr<s3::client> s3;
  std::mutex mutex;
  /// Sizes announced by expect_reads.
  std::map<std::string, int64_t> sizes;
};

s3_store::s3_store(std::shared_ptr<http_engine> http, s3::s3_url url,
                   std::shared_ptr<s3::key_holder> keys, s3_store_options options)
    : impl_(std::make_unique<impl>(std::move(http), std::move(url), std::move(keys), options)) {}

s3_store::~s3_store() = default;

std::string s3_store::describe() const { return impl_->url().describe(); }

std::string s3_store::endpoint() const { return impl_->host_port; }

status s3_store::prepare() {
  const s3::s3_url& url = impl_->url();
  std::vector<s3::name_value> query{{"list-type", "2"}, {"max-keys", "1"}};
  if (!url.prefix.empty())
    query.emplace_back("prefix", url.prefix + "/");
  auto response = impl_->s3->call(url.describe(), "GET", "", query, {}, {}, s3::any_answer);
  if (!response)
    return response.error();
  return s3_check_verdict(url, *response);
}

result<std::optional<object_info>> s3_store::stat(const std::string& oid) {
  if (!protocol::is_valid_oid(oid))
    return invalid_oid(oid);
  auto size = impl_->head(oid, "stat of " + oid);
  if (!size)
    return size.error();
  if (!*size)
    return std::optional<object_info>{};
  return std::optional<object_info>{object_info{oid, **size}};
}

result<bool> s3_store::holds(const object_info& object) {
  if (!protocol::is_valid_oid(object.oid))
    return invalid_oid(object.oid);
  auto size = impl_->head(object.oid, "check for " + object.oid);
  if (!size)
    return size.error();
  return size->has_value() && **size == object.size;
}

result<std::vector<bool>> s3_store::holds_each(const std::vector<object_info>& objects) {
  auto sizes = sizes_of(objects);
  if (!sizes)
    return sizes.error();
  std::vector<bool> held;
  held.reserve(objects.size());
  for (size_t i = 0; i < objects.size(); ++i)
    held.push_back((*sizes)[i] == objects[i].size);
  return held;
}

result<std::vector<std::optional<int64_t>>>
s3_store::sizes_of(const std::vector<object_info>& objects) {
  for (const auto& object : objects) {
    if (!protocol::is_valid_oid(object.oid))
      return invalid_oid(object.oid);
  }
  std::vector<std::optional<int64_t>> sizes;
  sizes.reserve(objects.size());
  for (size_t begin = 0; begin < objects.size(); begin += max_heads_in_flight) {
    const size_t end = std::min(objects.size(), begin + max_heads_in_flight);
    std::vector<http_request> requests;
    std::vector<uint64_t> generations(end - begin);
    for (size_t i = begin; i < end; ++i) {
      auto request =
        impl_->head_request(objects[i].oid, "check for " + objects[i].oid, generations[i - begin]);
      if (!request)
        return request.error();
      requests.push_back(std::move(*request));
    }
    auto responses = impl_->s3->send_all(std::move(requests));
    // In order, so the error returned is the one holds() would meet first.
    for (size_t i = begin; i < end; ++i) {
      const std::string& oid = objects[i].oid;
      const std::string what = "check for " + oid;
      auto& response = responses[i - begin];
      // Refused for keys that have changed since: once more, as call() does.
      if (response && impl_->s3->reread_refused_keys(*response, generations[i - begin])) {
        auto size = impl_->head(oid, what);
        if (!size)
          return size.error();
        sizes.push_back(*size);
        continue;
      }
      auto size =
        impl_->head_size(oid, what, impl_->s3->checked(what, std::move(response), s3::any_answer));
      if (!size)
        return size.error();
      sizes.push_back(*size);
    }
  }
  return sizes;
}

result<std::unique_ptr<object_reader>> s3_store::open_read(const std::string& oid, int64_t offset) {
  if (!protocol::is_valid_oid(oid))
    return invalid_oid(oid);
  const std::string what = "download of " + oid;
  std::optional<int64_t> size = impl_->expected_size(oid);
  if (size && offset == *size) {
    // Nothing to fetch, but the object must still be there with that size.
    auto stored = impl_->head(oid, what);
    if (!stored)
      return stored.error();
    if (!*stored)
      return status{errc::not_found, what + ": " + impl_->url().describe() + " has no object " +
                                       impl_->url().object_key(oid)};
    if (**stored != *size)
      return download_size_mismatch(what, *size, **stored);
  }
  auto source = std::make_shared<object_source>(impl_->s3, impl_->url().object_key(oid));
  return open_download(std::move(source), what, size, offset, impl_->plan);
}

result<std::unique_ptr<object_writer>>
s3_store::open_write(const std::string& oid, int64_t size,
                     const std::optional<std::string>& resume) {
  if (!protocol::is_valid_oid(oid))
    return invalid_oid(oid);
  if (size < 0)
    return status{errc::invalid_request, "upload of " + oid + ": negative size"};
  return s3::open_upload(impl_->s3, oid, size, impl_->url().object_key(oid), resume,
                         impl_->options);
}

status s3_store::expect_reads(const std::vector<object_info>& objects) {
  for (const auto& object : objects) {
    if (!protocol::is_valid_oid(object.oid))
      return invalid_oid(object.oid);
    if (object.size < 0)
      return {errc::invalid_request, "download of " + object.oid + ": negative size"};
  }
  std::lock_guard<std::mutex> lock(impl_->mutex);
  for (const auto& object : objects)
    impl_->sizes[object.oid] = object.size;
  return status::success();
}

status s3_store::list(const std::function<bool(const object_info&)>& visit) {
  const s3::s3_url& url = impl_->url();
  const std::string what = "listing of " + url.describe();
  std::optional<std::string> token;
  while (true) {
    std::vector<s3::name_value> query{{"list-type", "2"}};
    if (!url.prefix.empty())
      query.emplace_back("prefix", url.prefix + "/");
    if (token)
      query.emplace_back("continuation-token", *token);
    auto response = impl_->s3->call(what, "GET", "", query);
    if (!response)
      return response.error();
    auto page = protocol::decode_list_objects_v2(response->body);
    if (!page)
      return page.error().with_context(what);
    for (const auto& entry : page->contents) {
      auto oid = impl_->oid_of_key(entry.key);
      if (oid && !visit(object_info{*oid, entry.size}))
        return status::success();
    }
    if (!page->is_truncated)
      return status::success();
    // A server that hands out the same token again would list forever.
    if (token == page->next_continuation_token)
      return {errc::unavailable, what + ": the server answered the same NextContinuationToken "
                                        "as for the page before; the listing would never end"};
    token = page->next_continuation_token;
  }
}

status s3_store::remove(const std::string& oid) {
  if (!protocol::is_valid_oid(oid))
    return invalid_oid(oid);
  const std::string what = "removal of " + oid;
  // Absent already is removed.
  auto removed = [](const http_response& answer) {
    return is_success(answer.status) || answer.status == 404;
  };
  auto response =
    impl_->s3->call(what, "DELETE", impl_->url().object_key(oid), {}, {}, {}, removed);
  if (!response)
    return response.error();
  return status::success();
}

result<size_t> s3_store::abort_stale_uploads(
  std::chrono::system_clock::time_point before, bool dry_run,
  const std::function<void(const std::string& key, const std::string& upload_id)>& visit) {
  const impl& self = *impl_;
  auto key_is_ours = [&self](const std::string& key) { return self.oid_of_key(key).has_value(); };
  return s3::abort_stale_uploads(*impl_->s3, before, dry_run, key_is_ours, visit);
}

status s3_check_verdict(const s3::s3_url& url, const http_response& answer) {
  const std::string store = url.describe();
  const std::string code = std::to_string(answer.status);
  const bool redirect = answer.status >= 300 && answer.status < 400;
  if (is_success(answer.status) && protocol::decode_list_objects_v2(answer.body))
    return status::success();
  if (auto error = protocol::decode_s3_error(answer.body)) {
    if (error->code == "AccessDenied")
      return status::success();
    status failed = protocol::s3_error_status(*error, answer.status);
    if (redirect)
      return {errc::config_error, store + ": " + failed.message() +
                                    "; the bucket is served elsewhere: correct endpoint= and "
                                    "region= in the store URL"};
    if (failed.code() == errc::unavailable)
      return failed.with_context(store);
    if (error->code == "NoSuchBucket")
      return {errc::config_error, store + ": there is no bucket '" + url.bucket + "' at " +
                                    url.endpoint + " (" + failed.message() +
                                    "); create it, or correct the bucket, endpoint= or region= "
                                    "in the store URL"};
    return {errc::config_error, store + ": " + failed.message()};
  }
  // Without an S3 answer: a proxy in front of S3 says 502/503 during an
  // outage, so those may pass; anything else came from a server that is
  // not S3 (a web server, an LFS server, a login page).
  if (answer.status >= 500 || answer.status == 408 || answer.status == 429)
    return {errc::unavailable, store + ": the S3 listing of the bucket was answered with HTTP " +
                                 code + " and no S3 error; retrying may help"};
  std::string what = "HTTP " + code;
  if (const std::string* type = answer.header("content-type"))
    what += " (" + *type + ")";
  if (redirect)
    if (const std::string* location = answer.header("location"))
      what += " redirecting to " + redact_url(*location);
  if (!answer.body.empty())
    what += ": " + protocol::decode_error_message(answer.body);
  return {errc::config_error,
          store + ": " + url.endpoint + " is not an S3 endpoint: asked for a listing of bucket '" +
            url.bucket + "', it answered " + what +
            "; set endpoint= in the store URL to the S3 server's http(s)://host:port "
            "(docs/s3.md)"};
}

} // namespace ferry
