#include "store/lfs/lfs_store.hpp"

#include "protocol/batch_api.hpp"
#include "protocol/transfer_protocol.hpp"
#include "store/http/http_classify.hpp"
#include "store/http/http_url.hpp"
#include "store/lfs/batch_gatherer.hpp"
#include "store/lfs/lfs_session.hpp"
#include "store/lfs/lfs_transfer.hpp"

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <utility>
#include <variant>

namespace ferry {

namespace {

using sys_clock = std::chrono::system_clock;

/// Batch requests one prepare() keeps in flight at once.
constexpr size_t max_batches_in_flight = 8;

/// A per-object error of a batch response as a status naming `what`.
status object_failure(const std::string& what, const protocol::batch_object_error& error) {
  errc code = errc::invalid_request;
  switch (error.code) {
    case 404:
    case 410:
      code = errc::not_found;
      break;
    case 401:
    case 403:
      code = errc::permission_denied;
      break;
    case 507:
      code = errc::no_space;
      break;
    case 408:
    case 429:
      code = errc::unavailable;
      break;
    default:
      if (error.code >= 500 && error.code <= 599)
        code = errc::unavailable;
      break;
  }
  return {code, what + ": " + protocol::batch_object_error_message(error)};
}

lfs_action to_action(const protocol::batch_action& action) {
  return {action.href, action.headers, action.expires_at};
}

bool expires_within(const lfs_action& action, sys_clock::time_point now,
                    std::chrono::seconds margin) {
  return action.expires_at && *action.expires_at - now < margin;
}

status invalid_oid(const std::string& oid) {
  std::string shown = oid.size() > 80 ? oid.substr(0, 80) + "..." : oid;
  return {errc::invalid_request,
          "invalid object id '" + shown + "': expected 64 lower-case hex characters"};
}

/// A freshly handed out action that has already expired cannot be used;
/// asking again is the caller's retry.
status check_fresh(const std::string& what, const lfs_action& action) {
  if (action.expires_at && *action.expires_at <= sys_clock::now())
    return {errc::unavailable, what + ": the server handed out an action that has already "
                                      "expired; asking again later"};
  return status::success();
}

lfs_store_options without_trailing_slashes(lfs_store_options options) {
  while (!options.endpoint.empty() && options.endpoint.back() == '/')
    options.endpoint.pop_back();
  return options;
}

/// `objects` as the objects of batch requests of at most
/// protocol::max_batch_objects each.
std::vector<std::vector<protocol::batch_object>>
in_batches(const std::vector<object_info>& objects) {
  std::vector<std::vector<protocol::batch_object>> chunks;
  for (size_t i = 0; i < objects.size(); ++i) {
    if (i % protocol::max_batch_objects == 0)
      chunks.emplace_back();
    chunks.back().push_back({objects[i].oid, objects[i].size});
  }
  return chunks;
}

std::string batch_what(protocol::batch_operation op) {
  return op == protocol::batch_operation::upload ? "upload batch request"
                                                 : "download batch request";
}

} // namespace

result<std::string> lfs_endpoint_from_url(const std::string& url) {
  auto separator = url.find("://");
  std::string scheme = url.substr(0, std::min(separator, url.size()));
  for (char& c : scheme)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (separator == std::string::npos || (scheme != "lfs+http" && scheme != "lfs+https"))
    return status{errc::config_error, "not an LFS store URL (expected lfs+https://host/path or "
                                      "lfs+http://host/path)"};
  auto parsed = parse_endpoint_url(url.substr(4), scheme);
  if (!parsed)
    return parsed.error();
  return endpoint_text(*parsed);
}

// -- lfs_store -----------------------------------------------------------------

struct lfs_store::impl {
  /// What the server told us, shared with the writers handed out (which may
  /// outlive the store and record a finished upload here).
  struct cache {
    struct download_entry {
      lfs_action action;
      int64_t size = 0;
    };
    /// `upload` empty: the server has the object.
    struct upload_entry {
      std::optional<lfs_action> upload;
      std::optional<lfs_action> verify;
      int64_t size = 0;
    };

    std::mutex mutex;
    std::map<std::string, download_entry> downloads;
    std::map<std::string, upload_entry> uploads;
    /// Sizes learned from callers and the server, for download batches.
    std::map<std::string, int64_t> sizes;
  };

  impl(std::shared_ptr<http_engine> engine, lfs_store_options opts,
       std::unique_ptr<credential_source> credentials)
      : options(without_trailing_slashes(std::move(opts))),
        batch_url(options.endpoint + "/objects/batch"),
        http(std::make_shared<lfs::session>(std::move(engine), options.endpoint,
                                            std::move(credentials), options.max_retry_wait)),
        known(std::make_shared<cache>()) {
    if (auto parsed = parse_http_url(options.endpoint)) {
      shown = "lfs+" + endpoint_text(*parsed);
      host_port = parsed->host_port();
    } else {
      shown = "lfs+(invalid endpoint)";
    }
    plan.parallel_streams = std::max(options.parallel_streams, 1);
    plan.parallel_threshold = options.parallel_threshold;
    plan.range_bytes = options.range_bytes > 0 ? options.range_bytes : int64_t{8} << 20;
  }

  /// The answers to batch requests for `chunks`, in order. One chunk (a
  /// transfer's own question, a small check) is gathered with the others
  /// asked meanwhile (lfs::batch_gatherer); more are sent as they are.
  std::vector<result<protocol::batch_response>>
  batches(protocol::batch_operation op,
          const std::vector<std::vector<protocol::batch_object>>& chunks) {
    if (chunks.size() != 1)
      return send_batches(op, chunks);
    auto& gatherer =
      op == protocol::batch_operation::upload ? upload_questions : download_questions;
    return {gatherer.ask(chunks.front(), [&](const std::vector<protocol::batch_object>& objects) {
      return std::move(send_batches(op, {objects}).front());
    })};
  }

  /// Sends the batch requests (concurrently, at most max_batches_in_flight
  /// at once) and decodes their answers.
  std::vector<result<protocol::batch_response>>
  send_batches(protocol::batch_operation op,
               const std::vector<std::vector<protocol::batch_object>>& chunks) {
    std::vector<result<protocol::batch_response>> out;
    for (size_t begin = 0; begin < chunks.size(); begin += max_batches_in_flight) {
      size_t end = std::min(chunks.size(), begin + max_batches_in_flight);
      std::vector<http_request> requests;
      std::vector<std::string> whats;
      for (size_t i = begin; i < end; ++i) {
        protocol::batch_request body;
        body.op = op;
        body.transfers = {"basic"};
        body.objects = chunks[i];
        http_request request;
        request.method = "POST";
        request.url = batch_url;
        request.headers = {{"Accept", std::string(protocol::batch_media_type)},
                           {"Content-Type", std::string(protocol::batch_media_type)}};
        request.body = protocol::encode_batch_request(body);
        requests.push_back(std::move(request));
        whats.push_back(batch_what(op));
      }
      auto responses = http->send_all(std::move(requests), whats);
      auto received_at = sys_clock::now();
      for (auto& response : responses)
        out.push_back(decode(op, response, received_at));
    }
    return out;
  }

  result<protocol::batch_response> decode(protocol::batch_operation op,
                                          const result<http_response>& response,
                                          sys_clock::time_point received_at) {
    const std::string what = batch_what(op);
    if (!response)
      return response.error().with_context(what);
    if (!is_success(response->status))
      return http_failure(what, *response, options.max_retry_wait);
    auto decoded = protocol::decode_batch_response(response->body, received_at);
    if (auto* problem = std::get_if<std::string>(&decoded))
      return status{errc::unavailable, what +
                                         ": the server's answer is not a valid batch "
                                         "response: " +
                                         *problem};
    auto& batch = std::get<protocol::batch_response>(decoded);
    if (batch.transfer != "basic")
      return status{errc::invalid_request, what + ": the server chose the transfer adapter '" +
                                             batch.transfer + "', Ferry offered only 'basic'"};
    return std::move(batch);
  }

  /// One object's batch answer.
  result<protocol::batch_object_result> ask(protocol::batch_operation op, const std::string& oid,
                                            int64_t size) {
    std::vector<std::vector<protocol::batch_object>> one(1);
    one.front().push_back({oid, size});
    auto answers = batches(op, one);
    auto& answer = answers.front();
    if (!answer)
      return answer.error();
    for (auto& object : answer->objects) {
      if (object.oid == oid) {
        remember(op, object);
        return std::move(object);
      }
    }
    return status{errc::unavailable,
                  batch_what(op) + ": the server's answer does not mention " + oid};
  }

  /// The server's answer about each of `objects` (each oid once), asked in
  /// batches, or the failure of the batch request that named it. The
  /// actions are cached.
  std::map<std::string, result<protocol::batch_object_result>>
  answers(protocol::batch_operation op, const std::vector<object_info>& objects) {
    auto responses = batches(op, in_batches(objects));
    std::map<std::string, result<protocol::batch_object_result>> found;
    for (size_t chunk = 0; chunk < responses.size(); ++chunk) {
      auto& response = responses[chunk];
      if (!response) {
        const size_t begin = chunk * protocol::max_batch_objects;
        const size_t end = std::min(objects.size(), begin + protocol::max_batch_objects);
        for (size_t i = begin; i < end; ++i)
          found.emplace(objects[i].oid, response.error());
        continue;
      }
      for (auto& object : response->objects) {
        remember(op, object);
        found.emplace(object.oid, std::move(object));
      }
    }
    return found;
  }

  /// Caches the actions of one batch answer.
  void remember(protocol::batch_operation op, const protocol::batch_object_result& object) {
    std::lock_guard<std::mutex> lock(known->mutex);
    if (object.error) {
      known->downloads.erase(object.oid);
      known->uploads.erase(object.oid);
      return;
    }
    known->sizes[object.oid] = object.size;
    if (op == protocol::batch_operation::download) {
      if (object.download)
        known->downloads[object.oid] = {to_action(*object.download), object.size};
      return;
    }
    cache::upload_entry entry;
    if (object.upload)
      entry.upload = to_action(*object.upload);
    if (object.verify)
      entry.verify = to_action(*object.verify);
    entry.size = object.size;
    known->uploads[object.oid] = std::move(entry);
  }

  int64_t known_size(const std::string& oid) {
    std::lock_guard<std::mutex> lock(known->mutex);
    auto it = known->sizes.find(oid);
    return it == known->sizes.end() ? 0 : it->second;
  }

  /// A cached download action that does not expire soon, if any.
  std::optional<cache::download_entry> cached_download(const std::string& oid) {
    std::lock_guard<std::mutex> lock(known->mutex);
    auto it = known->downloads.find(oid);
    if (it == known->downloads.end() ||
        expires_within(it->second.action, sys_clock::now(), options.expiry_margin))
      return std::nullopt;
    return it->second;
  }

  std::optional<cache::upload_entry> cached_upload(const object_info& object) {
    std::lock_guard<std::mutex> lock(known->mutex);
    auto it = known->uploads.find(object.oid);
    if (it == known->uploads.end() || it->second.size != object.size)
      return std::nullopt;
    if (it->second.upload &&
        expires_within(*it->second.upload, sys_clock::now(), options.expiry_margin))
      return std::nullopt;
    return it->second;
  }

  /// The object's download action (cached or asked for), or its batch error.
  using download_answer = std::variant<cache::download_entry, protocol::batch_object_error>;

  result<download_answer> download_action(const std::string& oid) {
    if (auto cached = cached_download(oid))
      return download_answer{*cached};
    auto object = ask(protocol::batch_operation::download, oid, known_size(oid));
    if (!object)
      return object.error();
    if (object->error)
      return download_answer{*object->error};
    const std::string what = "download of " + oid;
    if (!object->download)
      return status{errc::unavailable,
                    what + ": the server's batch answer has neither a download action nor an "
                           "error"};
    cache::download_entry entry{to_action(*object->download), object->size};
    if (auto fresh = check_fresh(what, entry.action); !fresh)
      return fresh;
    return download_answer{entry};
  }

  result<cache::upload_entry> upload_action(const object_info& object) {
    if (auto cached = cached_upload(object))
      return *cached;
    auto answer = ask(protocol::batch_operation::upload, object.oid, object.size);
    if (!answer)
      return answer.error();
    return upload_entry_of(object, *answer);
  }

  /// The server's upload answer about `object`: a per-object error as a
  /// status, an upload action that has already expired refused.
  static result<cache::upload_entry> upload_entry_of(const object_info& object,
                                                     const protocol::batch_object_result& answer) {
    const std::string what = "upload of " + object.oid;
    if (answer.error)
      return object_failure(what, *answer.error);
    cache::upload_entry entry;
    entry.size = object.size;
    if (answer.upload) {
      entry.upload = to_action(*answer.upload);
      if (auto fresh = check_fresh(what, *entry.upload); !fresh)
        return fresh;
    }
    if (answer.verify)
      entry.verify = to_action(*answer.verify);
    return entry;
  }

  lfs_store_options options;
  std::string batch_url;
  std::string shown;
  std::string host_port;
  range_plan plan;
  std::shared_ptr<lfs::session> http;
  std::shared_ptr<cache> known;
  lfs::batch_gatherer upload_questions;
  lfs::batch_gatherer download_questions;
};

lfs_store::lfs_store(std::shared_ptr<http_engine> http, lfs_store_options options,
                     std::unique_ptr<credential_source> credentials)
    : impl_(std::make_unique<impl>(std::move(http), std::move(options), std::move(credentials))) {}

lfs_store::~lfs_store() = default;

std::string lfs_store::describe() const { return impl_->shown; }

std::string lfs_store::endpoint() const { return impl_->host_port; }

result<std::optional<object_info>> lfs_store::stat(const std::string& oid) {
  if (!protocol::is_valid_oid(oid))
    return invalid_oid(oid);
  auto found = impl_->download_action(oid);
  if (!found)
    return found.error();
  if (auto* error = std::get_if<protocol::batch_object_error>(&*found)) {
    if (error->code == 404 || error->code == 410)
      return std::optional<object_info>{};
    return object_failure("stat of " + oid, *error);
  }
  const auto& entry = std::get<impl::cache::download_entry>(*found);
  return std::optional<object_info>{object_info{oid, entry.size}};
}

result<bool> lfs_store::holds(const object_info& object) {
  if (!protocol::is_valid_oid(object.oid))
    return invalid_oid(object.oid);
  auto entry = impl_->upload_action(object);
  if (!entry)
    return entry.error();
  return !entry->upload.has_value();
}

result<std::vector<bool>> lfs_store::holds_each(const std::vector<object_info>& objects) {
  for (const auto& object : objects) {
    if (!protocol::is_valid_oid(object.oid))
      return invalid_oid(object.oid);
  }
  // Each oid without a usable cached answer is asked about once, with the
  // size it first comes with.
  std::vector<object_info> asked;
  std::map<std::string, int64_t> asked_sizes;
  for (const auto& object : objects) {
    if (!impl_->cached_upload(object) && asked_sizes.emplace(object.oid, object.size).second)
      asked.push_back(object);
  }
  const auto op = protocol::batch_operation::upload;
  auto found = impl_->answers(op, asked);

  std::vector<bool> held;
  held.reserve(objects.size());
  for (const auto& object : objects) {
    auto size = asked_sizes.find(object.oid);
    if (size == asked_sizes.end() || size->second != object.size) {
      // Cached, or the same oid again with another size: holds() decides.
      auto answer = holds(object);
      if (!answer)
        return answer.error();
      held.push_back(*answer);
      continue;
    }
    auto answer = found.find(object.oid);
    if (answer == found.end())
      return status{errc::unavailable,
                    batch_what(op) + ": the server's answer does not mention " + object.oid};
    if (!answer->second)
      return answer->second.error();
    auto entry = impl::upload_entry_of(object, *answer->second);
    if (!entry)
      return entry.error();
    held.push_back(!entry->upload.has_value());
  }
  return held;
}

result<std::vector<std::optional<int64_t>>>
lfs_store::sizes_of(const std::vector<object_info>& objects) {
  return sizes_from_holds(*this, objects);
}

result<std::unique_ptr<object_reader>> lfs_store::open_read(const std::string& oid,
                                                            int64_t offset) {
  if (!protocol::is_valid_oid(oid))
    return invalid_oid(oid);
  auto found = impl_->download_action(oid);
  if (!found)
    return found.error();
  if (auto* error = std::get_if<protocol::batch_object_error>(&*found))
    return object_failure("download of " + oid, *error);
  const auto& entry = std::get<impl::cache::download_entry>(*found);
  return lfs::open_download(impl_->http, oid, entry.size, entry.action, offset, impl_->plan);
}

result<std::unique_ptr<object_writer>> lfs_store::open_write(const std::string& oid, int64_t size,
                                                             const std::optional<std::string>&) {
  if (!protocol::is_valid_oid(oid))
    return invalid_oid(oid);
  if (size < 0)
    return status{errc::invalid_request, "upload of " + oid + ": negative size"};
  auto entry = impl_->upload_action({oid, size});
  if (!entry)
    return entry.error();
  if (!entry->upload)
    return lfs::skipped_upload(oid, size);
  std::weak_ptr<impl::cache> known = impl_->known;
  auto stored = [known, oid, size] {
    if (auto cache = known.lock()) {
      std::lock_guard<std::mutex> lock(cache->mutex);
      cache->uploads[oid] = {std::nullopt, std::nullopt, size};
      cache->sizes[oid] = size;
    }
  };
  return lfs::open_upload(impl_->http, oid, size, *entry->upload, entry->verify, std::move(stored));
}

status lfs_store::list(const std::function<bool(const object_info&)>& /*visit*/) {
  return {errc::invalid_request, "the LFS server " + impl_->shown +
                                   " cannot list its objects: the Batch API only answers about "
                                   "objects it is asked about"};
}

status lfs_store::remove(const std::string& oid) {
  return {errc::invalid_request, "cannot remove " + oid + " from the LFS server " + impl_->shown +
                                   ": the Batch API has no delete"};
}

status lfs_store::expect_reads(const std::vector<object_info>& objects) {
  auto present = prepare(false, objects);
  return present ? status::success() : present.error();
}

result<std::vector<object_info>> lfs_store::prepare(bool upload,
                                                    const std::vector<object_info>& objects) {
  const auto op = upload ? protocol::batch_operation::upload : protocol::batch_operation::download;
  std::vector<object_info> unique;
  std::set<std::string> seen;
  for (const auto& object : objects) {
    if (!protocol::is_valid_oid(object.oid))
      return invalid_oid(object.oid);
    if (seen.insert(object.oid).second)
      unique.push_back(object);
  }
  {
    std::lock_guard<std::mutex> lock(impl_->known->mutex);
    for (const auto& object : unique)
      impl_->known->sizes[object.oid] = object.size;
  }

  // A download announced before (a migration announces a page, then each
  // copy its object) is not asked about again while its action is fresh.
  std::set<std::string> present;
  std::vector<object_info> asked;
  for (const auto& object : unique) {
    auto cached = upload ? std::nullopt : impl_->cached_download(object.oid);
    if (cached && cached->size == object.size)
      present.insert(object.oid);
    else
      asked.push_back(object);
  }
  auto answers = impl_->batches(op, in_batches(asked));

  std::optional<status> first_failure;
  for (auto& answer : answers) {
    if (!answer) {
      if (!first_failure)
        first_failure = answer.error();
      continue;
    }
    for (const auto& object : answer->objects) {
      impl_->remember(op, object);
      bool has = upload ? !object.error && !object.upload : !object.error && object.download;
      if (has)
        present.insert(object.oid);
    }
  }
  if (first_failure)
    return *first_failure;

  std::vector<object_info> out;
  for (const auto& object : unique) {
    if ((present.count(object.oid) > 0) != upload)
      out.push_back(object);
  }
  return out;
}

// -- a store for one action ---------------------------------------------------

namespace {

class action_store final : public object_store {
public:
  action_store(std::shared_ptr<http_engine> http, object_info object, lfs_action action,
               const lfs_store_options& options)
      : http_(std::make_shared<lfs::session>(std::move(http), std::string{}, nullptr,
                                             options.max_retry_wait)),
        object_(std::move(object)), action_(std::move(action)) {
    if (auto url = parse_http_url(action_.href)) {
      shown_ = url->without_secrets();
      host_port_ = url->host_port();
    }
    plan_.parallel_streams = std::max(options.parallel_streams, 1);
    plan_.parallel_threshold = options.parallel_threshold;
    plan_.range_bytes = options.range_bytes;
  }

  std::string describe() const override {
    return "lfs action for " + object_.oid + " at " + shown_;
  }
  std::string endpoint() const override { return host_port_; }

  result<std::optional<object_info>> stat(const std::string& /*oid*/) override {
    return unsupported("stat");
  }

  result<bool> holds(const object_info& /*object*/) override { return false; }

  result<std::unique_ptr<object_reader>> open_read(const std::string& oid,
                                                   int64_t offset) override {
    if (auto same = check_object(oid, object_.size); !same)
      return same;
    return lfs::open_download(http_, oid, object_.size, action_, offset, plan_);
  }

  result<std::unique_ptr<object_writer>> open_write(const std::string& oid, int64_t size,
                                                    const std::optional<std::string>&) override {
    if (auto same = check_object(oid, size); !same)
      return same;
    return lfs::open_upload(http_, oid, size, action_, std::nullopt, {});
  }

  status list(const std::function<bool(const object_info&)>& /*visit*/) override {
    return unsupported("list");
  }

  status remove(const std::string& /*oid*/) override { return unsupported("remove"); }

private:
  status unsupported(const std::string& operation) const {
    return {errc::invalid_request,
            "cannot " + operation + " through the action git-lfs handed over for " + object_.oid};
  }

  status check_object(const std::string& oid, int64_t size) const {
    if (oid == object_.oid && size == object_.size)
      return status::success();
    return {errc::invalid_request, "the action git-lfs handed over is for " + object_.oid + " (" +
                                     std::to_string(object_.size) + " bytes), not for " + oid +
                                     " (" + std::to_string(size) + " bytes)"};
  }

  std::shared_ptr<lfs::session> http_;
  object_info object_;
  lfs_action action_;
  range_plan plan_;
  std::string shown_;
  std::string host_port_;
};

} // namespace

std::shared_ptr<object_store> make_action_store(std::shared_ptr<http_engine> http,
                                                object_info object, lfs_action action,
                                                const lfs_store_options& options) {
  return std::make_shared<action_store>(std::move(http), std::move(object), std::move(action),
                                        options);
}

} // namespace ferry
