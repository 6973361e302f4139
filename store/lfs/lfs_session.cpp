#include "store/lfs/lfs_session.hpp"

#include "protocol/batch_api.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <exception>
#include <utility>

namespace ferry::lfs {

namespace {

std::string base64(const std::string& text) {
  std::string out(4 * ((text.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

} // namespace

bool has_header(const http_request& request, std::string_view name) {
  return std::any_of(request.headers.begin(), request.headers.end(), [&](const auto& header) {
    return header.first.size() == name.size() &&
           std::equal(name.begin(), name.end(), header.first.begin(), [](char a, char b) {
             return std::tolower(static_cast<unsigned char>(a)) ==
                    std::tolower(static_cast<unsigned char>(b));
           });
  });
}

session::session(std::shared_ptr<http_engine> http, std::string credential_url,
                 std::unique_ptr<credential_source> credentials,
                 std::chrono::seconds max_retry_wait)
    : http_(std::move(http)), credential_url_(std::move(credential_url)),
      credentials_(std::move(credentials)), max_retry_wait_(max_retry_wait) {
  if (auto url = parse_http_url(credential_url_)) {
    origin_ = url->origin();
    shown_url_ = url->without_secrets();
  }
  if (origin_.empty())
    credentials_.reset();
}

result<http_engine*> session::engine() { return http_.get(); }

bool session::may_authenticate(const std::string& url) const {
  if (!credentials_)
    return false;
  auto parsed = parse_http_url(url);
  return parsed && parsed->origin() == origin_;
}

std::optional<sent_credential> session::authorize(http_request& request) {
  if (!may_authenticate(request.url) || has_header(request, "authorization"))
    return std::nullopt;
  std::lock_guard<std::mutex> lock(mutex_);
  if (!auth_needed_ || !current_)
    return std::nullopt;
  request.headers.emplace_back("Authorization",
                               "Basic " + base64(current_->username + ":" + current_->password));
  return sent_credential{*current_, generation_};
}

status session::refresh(const std::optional<sent_credential>& sent, const std::string& what) {
  std::lock_guard<std::mutex> lock(mutex_);
  auth_needed_ = true;
  // Another request refreshed since this one was sent: use its credentials.
  if (current_ && (!sent || sent->generation != generation_))
    return status::success();
  if (sent && current_)
    credentials_->reject(credential_url_, *current_);
  current_.reset();
  ++generation_;
  approved_ = false;
  auto filled = credentials_->fill(credential_url_);
  if (!filled)
    return filled.error().with_context(what + ": the server asked for credentials (HTTP 401)");
  if (!*filled)
    return {errc::permission_denied,
            what + ": the server asked for credentials (HTTP 401) and git has none for " +
              shown_url_ +
              "; configure a credential helper (git config credential.helper ...) or store "
              "them with 'git credential approve'"};
  current_ = std::move(**filled);
  return status::success();
}

status session::denied(const std::optional<sent_credential>& sent, const std::string& what,
                       const http_response& response) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (sent && current_ && sent->generation == generation_) {
      credentials_->reject(credential_url_, *current_);
      current_.reset();
      ++generation_;
    }
  }
  std::string message = what +
                        ": the server refused the credentials git's credential helper "
                        "gave for " +
                        shown_url_ +
                        " (HTTP 401); update them (log in again, or fix credential.helper) "
                        "and check that this account may access the repository";
  if (!response.body.empty())
    message += "; server said: " + protocol::decode_error_message(response.body);
  return {errc::permission_denied, message};
}

void session::succeeded(const std::optional<sent_credential>& sent) {
  if (!sent)
    return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (approved_ || !current_ || sent->generation != generation_)
    return;
  approved_ = true;
  credentials_->approve(credential_url_, *current_);
}

std::vector<result<http_response>> session::send_all(std::vector<http_request> requests,
                                                     const std::vector<std::string>& whats) {
  auto http = engine();
  if (!http)
    return std::vector<result<http_response>>(requests.size(), http.error());

  std::vector<std::optional<sent_credential>> sent(requests.size());
  std::vector<http_request> attempt = requests;
  for (size_t i = 0; i < attempt.size(); ++i)
    sent[i] = authorize(attempt[i]);
  auto results = http_fetch_all(**http, std::move(attempt));

  std::vector<size_t> unauthorized;
  for (size_t i = 0; i < results.size(); ++i) {
    if (results[i] && results[i]->status == 401 && may_authenticate(requests[i].url))
      unauthorized.push_back(i);
  }
  if (!unauthorized.empty()) {
    // One refresh answers every request that was refused together.
    status refreshed = refresh(sent[unauthorized.front()], whats[unauthorized.front()]);
    std::vector<http_request> again;
    for (size_t i : unauthorized) {
      if (!refreshed) {
        results[i] = refreshed;
        continue;
      }
      again.push_back(requests[i]);
      sent[i] = authorize(again.back());
    }
    if (refreshed) {
      auto retried = http_fetch_all(**http, std::move(again));
      for (size_t k = 0; k < unauthorized.size(); ++k) {
        size_t i = unauthorized[k];
        results[i] = std::move(retried[k]);
        if (results[i] && results[i]->status == 401)
          results[i] = denied(sent[i], whats[i], *results[i]);
      }
    }
  }
  for (size_t i = 0; i < results.size(); ++i) {
    if (results[i] && is_success(results[i]->status))
      succeeded(sent[i]);
  }
  return results;
}

result<http_response> session::send(http_request request, const std::string& what) {
  std::vector<http_request> one;
  one.push_back(std::move(request));
  return std::move(send_all(std::move(one), {what}).front());
}

} // namespace ferry::lfs
