#pragma once

// Git LFS servers as object stores: the Batch API plus the `basic` transfer
// adapter, over the shared http_engine. Every call blocks its caller (the
// engine runs each transfer of a store with an endpoint on its own thread).

#include "store/http/git_credentials.hpp"
#include "store/http/http_engine.hpp"
#include "store/object_store.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ferry {

/// One action of a batch response (or of git-lfs's request in non-standalone
/// mode): where to send the bytes and the headers to send with them.
struct lfs_action {
  std::string href;
  std::map<std::string, std::string> headers;
  /// When the server stops accepting it; std::nullopt when it did not say.
  std::optional<std::chrono::system_clock::time_point> expires_at;
};

struct lfs_store_options {
  /// The LFS endpoint (what git-lfs calls lfs.url): requests go to
  /// `<endpoint>/objects/batch`.
  std::string endpoint;
  /// Longest Retry-After honoured; a server asking for more fails the
  /// object at once with a message naming the wait and this setting.
  std::chrono::seconds max_retry_wait{120};
  /// Downloads of at least `parallel_threshold` bytes are fetched as up to
  /// `parallel_streams` concurrent ranges of `range_bytes` each (assembled in
  /// order, memory bounded by streams x range_bytes). 1 stream disables it.
  int parallel_streams = 4;
  int64_t parallel_threshold = 32 << 20;
  int64_t range_bytes = 8 << 20;
  /// Actions that expire within this margin are requested again first.
  std::chrono::seconds expiry_margin{30};
};

/// Parses a store URL naming an LFS server: `lfs+https://host/path` (the LFS
/// endpoint itself, as in lfs.url) or `lfs+http://…`; a plain
/// `https://host/owner/repo(.git)` git remote URL is not accepted here (open_store
/// turns it into `<remote>.git/info/lfs` first, as git-lfs does).
/// Returns the endpoint (http(s)://…, no trailing slash) or errc::config_error.
result<std::string> lfs_endpoint_from_url(const std::string& url);

/// A Git LFS server as an object store.
///
/// Batch requests name each object with its size. For downloads the store
/// uses the size it learned from prepare(), holds(), open_write() or an
/// earlier batch answer, and 0 for an oid it has never seen (stat() and
/// open_read() have no size parameter); servers that check download sizes
/// refuse that, so callers announce downloads with expect_reads() first.
class lfs_store final : public object_store {
public:
  /// `http` may be null: the store then starts an engine of its own on its
  /// first request. `credentials` may be null: 401s are then final.
  lfs_store(std::shared_ptr<http_engine> http, lfs_store_options options,
            std::unique_ptr<credential_source> credentials);
  ~lfs_store() override;

  /// "lfs+https://host/path" without user info or query.
  std::string describe() const override;
  /// "host:port" of the endpoint.
  std::string endpoint() const override;

  /// A download batch for the object: present when the server hands out a
  /// download action; 404/410 per-object errors mean absent.
  result<std::optional<object_info>> stat(const std::string& oid) override;
  /// An upload batch: present when the server answers without an upload
  /// action (LFS servers verify uploads themselves). The action, when given,
  /// is kept for the open_write() that follows.
  result<bool> holds(const object_info& object) override;
  /// holds() for each object, with one upload batch request per 100 objects
  /// it has no cached answer for (several in flight); the actions handed out
  /// are kept for the open_write() calls that follow. The first object (in
  /// order) whose answer is an error (a per-object error such as 422, a
  /// failed batch request) gives the result, with the status holds() returns.
  result<std::vector<bool>> holds_each(const std::vector<object_info>& objects) override;
  /// holds_each(), answering the asked size for each object the server
  /// holds: the Batch API tells no stored size.
  result<std::vector<std::optional<int64_t>>>
  sizes_of(const std::vector<object_info>& objects) override;
  /// A download batch (or a cached action that does not expire soon), then
  /// a GET from `offset` with `Range`: 206 with the matching Content-Range is
  /// required for offset > 0; 200 means the server ignored the range and the
  /// reader skips the first `offset` bytes; 416 falls back to a full GET.
  /// Large objects are fetched as parallel ranges (see options).
  result<std::unique_ptr<object_reader>> open_read(const std::string& oid, int64_t offset) override;
  /// An upload batch (or a cached action), then a streamed PUT with
  /// Content-Length. Uploads never resume (offset() is 0). commit() checks
  /// size and SHA-256 of the bytes written before releasing the last byte,
  /// then requires a 2xx and, when the server gave one, a 2xx from the
  /// `verify` action.
  result<std::unique_ptr<object_writer>>
  open_write(const std::string& oid, int64_t size,
             const std::optional<std::string>& resume) override;
  /// prepare(false, objects): one batch request per 100 objects, leaving
  /// out those with a fresh download action of the same size cached.
  status expect_reads(const std::vector<object_info>& objects) override;
  /// LFS servers have no listing: errc::invalid_request explaining that.
  status list(const std::function<bool(const object_info&)>& visit) override;
  /// LFS servers have no delete in the Batch API: errc::invalid_request.
  status remove(const std::string& oid) override;

  /// Asks the server about many objects with few requests (batches of at
  /// most 100, several in flight) and caches the actions it hands out, so
  /// the open_read()/open_write()/holds() calls that follow need no batch
  /// request of their own. For uploads, returns the objects the server does
  /// NOT have; for downloads, those it has.
  result<std::vector<object_info>> prepare(bool upload, const std::vector<object_info>& objects);
  /// The object_store check before the first transfer stays callable too.
  using object_store::prepare;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// A store for exactly one object whose action git-lfs handed us
/// (non-standalone mode): open_read() GETs `action` (with Range when
/// resuming), open_write() PUTs to it, holds() is false, stat(), list() and
/// remove() are errc::invalid_request, and so is any other oid or size than
/// `object`'s (git-lfs's request names both; the reader checks every
/// response against that size). Same verification rules as lfs_store; no
/// Basic credentials (the action's headers carry what the server wants).
/// `http` may be null (an engine is started on first use).
std::shared_ptr<object_store> make_action_store(std::shared_ptr<http_engine> http,
                                                object_info object, lfs_action action,
                                                const lfs_store_options& options);

} // namespace ferry
