#pragma once

// What every request of one LFS store shares: the HTTP engine (created on
// first use), the credentials and the 401 handling. Readers and writers a
// store hands out keep the session alive, so they may outlive the store.

#include "store/http/http_engine.hpp"
#include "store/http/http_stream.hpp"
#include "store/http/http_url.hpp"
#include "store/lfs/lfs_store.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::lfs {

/// The credentials one request carried, and which fill they came from, so
/// that a 401 to an old credential does not throw away a newer one.
struct sent_credential {
  http_credential credential;
  uint64_t generation = 0;
};

class session {
public:
  /// `credential_url` is the LFS endpoint: `git credential` is asked about
  /// it, and Basic credentials are only ever sent to its origin. Without a
  /// credential source (or URL), requests carry only the headers they were
  /// given.
  session(std::shared_ptr<http_engine> http, std::string credential_url,
          std::unique_ptr<credential_source> credentials, std::chrono::seconds max_retry_wait);

  session(const session&) = delete;
  session& operator=(const session&) = delete;

  /// The shared engine; created on first use when none was given.
  result<http_engine*> engine();

  /// The longest Retry-After honoured (lfs_store_options::max_retry_wait).
  std::chrono::seconds max_retry_wait() const { return max_retry_wait_; }

  /// Runs all requests concurrently and waits for every one. Each gets one
  /// credential refresh after a 401 (one `git credential fill` for all of
  /// them); a 401 after that becomes errc::permission_denied naming
  /// `whats[i]`. Other statuses are returned as responses.
  std::vector<result<http_response>> send_all(std::vector<http_request> requests,
                                              const std::vector<std::string>& whats);

  /// send_all() for one request.
  result<http_response> send(http_request request, const std::string& what);

  /// Adds Basic credentials to a request for the endpoint's origin once the
  /// server has asked for them; returns what was sent.
  std::optional<sent_credential> authorize(http_request& request);

  /// True when a 401 to `url` can be answered with (new) credentials.
  bool may_authenticate(const std::string& url) const;

  /// After a 401 to a request that carried `sent`: rejects those
  /// credentials (if any) and fills new ones, unless another request already
  /// did. Success means "retry with authorize()"; otherwise a status naming
  /// `what` that tells the user how to provide credentials.
  status refresh(const std::optional<sent_credential>& sent, const std::string& what);

  /// After a 401 to a request that already carried refreshed credentials:
  /// rejects them and returns errc::permission_denied naming `what`.
  status denied(const std::optional<sent_credential>& sent, const std::string& what,
                const http_response& response);

  /// After a 2xx to a request that carried `sent`: approves the
  /// credentials, once per fill.
  void succeeded(const std::optional<sent_credential>& sent);

private:
  engine_on_demand http_;
  std::string credential_url_;
  std::string origin_;
  std::string shown_url_;
  std::unique_ptr<credential_source> credentials_;
  std::chrono::seconds max_retry_wait_;

  std::mutex mutex_;
  /// Set once the server answered 401: later requests carry credentials at once.
  bool auth_needed_ = false;
  std::optional<http_credential> current_;
  uint64_t generation_ = 0;
  bool approved_ = false;
};

/// True when the request already has a header called `name` (any case).
bool has_header(const http_request& request, std::string_view name);

} // namespace ferry::lfs
