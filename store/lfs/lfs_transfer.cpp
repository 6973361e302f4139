#include "store/lfs/lfs_transfer.hpp"

#include "protocol/batch_api.hpp"
#include "store/http/http_classify.hpp"
#include "store/http/verified_put.hpp"
#include "store/os/sha256.hpp"

#include <nlohmann/json.hpp>

#include <utility>

namespace ferry {

namespace lfs {

namespace {

/// Adds a header unless the action's headers already set it.
void add_default_header(http_request& request, const std::string& name, std::string value) {
  if (!has_header(request, name))
    request.headers.emplace_back(name, std::move(value));
}

/// The credentials one GET carried, refreshed through the session after a 401.
class session_credentials final : public download_credentials {
public:
  session_credentials(std::shared_ptr<session> http, std::optional<sent_credential> sent)
      : http_(std::move(http)), sent_(std::move(sent)) {}

  status refused(const std::string& what, const http_response& response, bool retried) override {
    if (retried)
      return http_->denied(sent_, what, response);
    return http_->refresh(sent_, what);
  }

  void accepted() override { http_->succeeded(sent_); }

private:
  std::shared_ptr<session> http_;
  std::optional<sent_credential> sent_;
};

/// GETs of a download action's href, with its headers and the session's
/// credentials.
class action_source final : public download_source {
public:
  action_source(std::shared_ptr<session> http, lfs_action action)
      : http_(std::move(http)), action_(std::move(action)) {}

  result<http_engine*> engine() override { return http_->engine(); }

  result<download_request> request(const std::optional<std::string>& range) override {
    download_request out;
    out.request.method = "GET";
    out.request.url = action_.href;
    add_action_headers(out.request, action_);
    if (range)
      out.request.headers.emplace_back("Range", *range);
    if (http_->may_authenticate(action_.href))
      out.credentials = std::make_shared<session_credentials>(http_, http_->authorize(out.request));
    return out;
  }

  status failure(const std::string& what, const http_response& response) const override {
    return http_failure(what, response, http_->max_retry_wait());
  }

private:
  std::shared_ptr<session> http_;
  lfs_action action_;
};

class skipping_writer final : public object_writer {
public:
  skipping_writer(const std::string& oid, int64_t size) : written_(oid, size) {}
  int64_t offset() const override { return 0; }
  status write(const char* data, size_t size) override { return written_.add(data, size); }
  result<int64_t> sync() override { return int64_t{0}; }
  status commit() override { return written_.verify(); }
  void abort() override {}

private:
  object_digest written_;
};

class put_writer final : public object_writer {
public:
  put_writer(std::shared_ptr<session> http, const std::string& oid, int64_t size,
             std::optional<lfs_action> verify, std::function<void()> stored)
      : http_(std::move(http)), oid_(oid), size_(size), what_("upload of " + oid),
        verify_(std::move(verify)), stored_(std::move(stored)),
        put_(oid, size, what_, [this](const http_response& response) { return judge(response); }) {}

  status start(http_engine& engine, const lfs_action& upload) {
    http_request request;
    request.method = "PUT";
    request.url = upload.href;
    add_action_headers(request, upload);
    add_default_header(request, "Content-Type", "application/octet-stream");
    url_ = request.url;
    sent_ = http_->authorize(request);
    return put_.start(engine, std::move(request));
  }

  int64_t offset() const override { return 0; }

  status write(const char* data, size_t size) override { return put_.write(data, size); }

  // Basic uploads cannot resume, so nothing is ever durable before commit().
  result<int64_t> sync() override { return int64_t{0}; }

  status commit() override {
    if (auto accepted = put_.finish(); !accepted)
      return accepted;
    http_->succeeded(sent_);
    if (verify_) {
      if (auto verified = run_verify(); !verified)
        return verified;
    }
    if (stored_)
      stored_();
    return status::success();
  }

  void abort() override { put_.abort(); }

private:
  /// The PUT's answer as a status.
  status judge(const http_response& response) {
    if (response.status == 401 && http_->may_authenticate(url_)) {
      // The body is gone, so the retry of the whole transfer sends the credentials.
      if (sent_)
        return http_->denied(sent_, what_, response);
      if (auto refreshed = http_->refresh(sent_, what_); !refreshed)
        return refreshed;
      return {errc::unavailable,
              what_ + ": the server asked for credentials (HTTP 401); retrying with them"};
    }
    if (!is_success(response.status))
      return http_failure(what_, response, http_->max_retry_wait());
    return status::success();
  }

  status run_verify() {
    http_request request;
    request.method = "POST";
    request.url = verify_->href;
    add_action_headers(request, *verify_);
    add_default_header(request, "Accept", std::string(protocol::batch_media_type));
    add_default_header(request, "Content-Type", std::string(protocol::batch_media_type));
    request.body = nlohmann::json{{"oid", oid_}, {"size", size_}}.dump();
    const std::string what = "verify of " + oid_;
    auto response = http_->send(std::move(request), what);
    if (!response)
      return response.error().with_context(what);
    if (!is_success(response->status))
      return http_failure(what, *response, http_->max_retry_wait());
    return status::success();
  }

  std::shared_ptr<session> http_;
  std::string oid_;
  int64_t size_;
  std::string what_;
  std::string url_;
  std::optional<lfs_action> verify_;
  std::function<void()> stored_;
  verified_put put_;
  std::optional<sent_credential> sent_;
};

} // namespace

void add_action_headers(http_request& request, const lfs_action& action) {
  for (const auto& [name, value] : action.headers)
    request.headers.emplace_back(name, value);
}

result<std::unique_ptr<object_reader>> open_download(std::shared_ptr<session> http,
                                                     const std::string& oid, int64_t size,
                                                     const lfs_action& download, int64_t offset,
                                                     const range_plan& plan) {
  return ferry::open_download(std::make_shared<action_source>(std::move(http), download),
                              "download of " + oid, size, offset, plan);
}

result<std::unique_ptr<object_writer>> open_upload(std::shared_ptr<session> http,
                                                   const std::string& oid, int64_t size,
                                                   const lfs_action& upload,
                                                   std::optional<lfs_action> verify,
                                                   std::function<void()> stored) {
  auto engine = http->engine();
  if (!engine)
    return engine.error();
  auto writer =
    std::make_unique<put_writer>(std::move(http), oid, size, std::move(verify), std::move(stored));
  if (auto started = writer->start(**engine, upload); !started)
    return started;
  return std::unique_ptr<object_writer>(std::move(writer));
}

std::unique_ptr<object_writer> skipped_upload(const std::string& oid, int64_t size) {
  return std::make_unique<skipping_writer>(oid, size);
}

} // namespace lfs

} // namespace ferry
