#pragma once

// Downloads over HTTP for the network stores: one streamed GET from an
// offset, or a window of parallel range GETs consumed in order, every answer
// checked against the object's size and the bytes asked for. What differs
// from store to store (how a GET is built and signed, what a refusal means,
// credentials refreshed after a 401) is a download_source.

#include "protocol/status.hpp"
#include "store/http/http_engine.hpp"
#include "store/object_store.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ferry {

/// When a download is split into parallel ranges.
struct range_plan {
  /// Ranges in flight (or buffered) at once; 1 means one streamed GET.
  int parallel_streams = 1;
  /// Objects smaller than this are always one GET.
  int64_t parallel_threshold = 0;
  /// Bytes per range.
  int64_t range_bytes = 8 << 20;
};

/// Credentials one GET carried that the store can replace when the server
/// answers 401 (an LFS server's credentials from git credential).
class download_credentials {
public:
  virtual ~download_credentials() = default;

  /// After a 401 to the GET: success means "build the GET again and send
  /// it". `retried` is true when the GET already was that second try; the
  /// answer is then a refusal (errc::permission_denied) naming `what`.
  virtual status refused(const std::string& what, const http_response& response, bool retried) = 0;

  /// After a 2xx to the GET.
  virtual void accepted() = 0;
};

/// One GET of a download.
struct download_request {
  http_request request;
  /// Null unless a 401 to this GET can be answered with new credentials.
  std::shared_ptr<download_credentials> credentials;
};

/// Where the GETs of one object go and how their failures read. Used by one
/// reader at a time, from the reader's thread.
class download_source {
public:
  virtual ~download_source() = default;

  /// The engine the GETs run on.
  virtual result<http_engine*> engine() = 0;

  /// A GET of the object, with `range` as its Range header when given.
  /// Called for every GET just before it is sent (a resent range too), so
  /// each can carry a fresh signature.
  virtual result<download_request> request(const std::optional<std::string>& range) = 0;

  /// The status for a non-2xx answer to the GET `what` names.
  virtual status failure(const std::string& what, const http_response& response) const = 0;

  /// True when a 200's Content-Length is the stored object's size, so one
  /// that differs from the size the caller announced is errc::size_mismatch
  /// at once. Otherwise only the body's length is checked: one that ends
  /// early is a broken transfer (errc::unavailable), one that runs long
  /// errc::size_mismatch.
  virtual bool content_length_is_size() const { return false; }
};

/// Reads the object that `what` names ("download of <oid>") from `offset`.
///
/// With a `size`, offsets beyond it are errc::size_mismatch, nothing is
/// fetched when `offset` equals it, and objects of at least
/// plan.parallel_threshold bytes with more than plan.range_bytes left are
/// fetched as parallel ranges; any other case is one GET from `offset`.
///
/// Without a `size`, the first answer tells it (the total of a 206's
/// Content-Range, or a 200's Content-Length); when parallel ranges are
/// planned, that first GET asks for plan.range_bytes only and the rest of a
/// larger object follows as above.
///
/// Every answer is checked against the size and the range asked for:
/// misaligned bytes are never handed out (errc::unavailable), a server that
/// reports another size for the object gives errc::size_mismatch, a body
/// that ends early errc::unavailable and one that runs long
/// errc::size_mismatch. A 416 (an offset at or beyond the end, for servers
/// that refuse empty ranges) and a 200 to a ranged GET are answered by
/// reading the whole object and skipping to `offset`.
result<std::unique_ptr<object_reader>> open_download(std::shared_ptr<download_source> source,
                                                     const std::string& what,
                                                     std::optional<int64_t> size, int64_t offset,
                                                     const range_plan& plan);

/// errc::size_mismatch for the download `what` names: the server holds the
/// object with `reported` bytes where `announced` were expected.
status download_size_mismatch(const std::string& what, int64_t announced, int64_t reported);

/// A Content-Length header's value, when there is a well-formed one.
std::optional<int64_t>
content_length(const std::vector<std::pair<std::string, std::string>>& headers);

} // namespace ferry
