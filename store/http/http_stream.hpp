#pragma once

// Blocking front ends to http_engine for code that runs on a thread of its
// own (object stores, detached transfer workers). They never run on, and
// must never be called from, the engine's loop thread (a completion or
// callback of the same engine), and the engine must outlive them.

#include "protocol/status.hpp"
#include "store/http/http_engine.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace ferry {

/// The engine a store's requests run on: the one it was given, or one
/// started on first use. Thread-safe.
class engine_on_demand {
public:
  explicit engine_on_demand(std::shared_ptr<http_engine> given) : engine_(std::move(given)) {}

  /// The engine; a failure to start one is reported on every call.
  result<http_engine*> get();

private:
  std::shared_ptr<http_engine> engine_;
  std::once_flag once_;
  status failure_;
};

/// Runs one request and waits for its completion. The request's own
/// callbacks (if any) still run on the loop thread.
result<http_response> http_fetch(http_engine& engine, http_request request);

/// Runs all `requests` at once and waits until every one has completed;
/// the outcomes come back in request order.
std::vector<result<http_response>> http_fetch_all(http_engine& engine,
                                                  std::vector<http_request> requests);

/// A response body pulled by the caller, with bounded memory: at most
/// `buffer_bytes` are held; beyond that the transfer pauses until read()
/// makes room (sink_action::pause + http_engine::resume). A piece the engine
/// delivers is taken whole, so a buffer smaller than one piece (libcurl's
/// are at most 16 KiB) holds that one piece. Used from one thread at a time.
class http_body_reader {
public:
  /// Submits `request` (which must have no body_sink, on_headers or
  /// sink_error: the reader installs its own) and waits for the response
  /// head. Transport failures before the head are errors. A request with
  /// such callbacks, or a `buffer_bytes` of 0, is errc::invalid_request.
  static result<std::unique_ptr<http_body_reader>> open(http_engine& engine, http_request request,
                                                        size_t buffer_bytes = 4 << 20);

  /// Cancels the transfer if it is still running and waits for its
  /// completion, so no callback outlives the reader.
  ~http_body_reader();

  http_body_reader(const http_body_reader&) = delete;
  http_body_reader& operator=(const http_body_reader&) = delete;

  /// The response status (the final one, never 1xx).
  long status() const;

  /// The response headers, names in lower case, values trimmed.
  const std::vector<std::pair<std::string, std::string>>& headers() const;

  /// The first header called `name` (lower case), if any.
  const std::string* header(const std::string& name) const;

  /// For non-2xx statuses: waits for the end of the transfer and returns the
  /// collected body (its first 64 KiB), for error messages. Empty for 2xx.
  std::string error_body();

  /// Blocks until body bytes are available; copies up to `capacity` of them.
  /// 0 means the body ended normally. A transfer that failed (reset,
  /// stalled, cancelled) returns its error once the bytes that arrived
  /// before the failure are read. For non-2xx statuses there is no body to
  /// read: returns 0. A `capacity` of 0 is errc::invalid_request.
  result<size_t> read(char* buffer, size_t capacity);

private:
  struct shared;
  http_body_reader(http_engine& engine, std::shared_ptr<shared> state);
  http_engine& engine_;
  std::shared_ptr<shared> state_;
};

/// An http_response with the status, headers and collected error body of a
/// streamed response, for turning a non-2xx answer into a status.
http_response failed_response(http_body_reader& reader);

/// A request body pushed by the caller (an upload of known size), with
/// bounded memory: write() blocks while `buffer_bytes` are waiting to be
/// sent. The last byte is held back until finish(), so a transfer that is
/// abandoned before finish() never completes its body and the server never
/// sees a whole object. write() and finish() are used from one thread at a
/// time; abort() may be called from any thread.
class http_body_writer {
public:
  /// Submits `request`, which must have `upload_size` set (>= 0) and no
  /// body or upload_source (the writer installs its own); otherwise, or
  /// with a `buffer_bytes` of 0, errc::invalid_request. An empty upload has
  /// no last byte to hold back: it is submitted by finish() instead.
  static result<std::unique_ptr<http_body_writer>> start(http_engine& engine, http_request request,
                                                         size_t buffer_bytes = 4 << 20);

  /// Aborts the transfer if finish() was not called and waits for its
  /// completion.
  ~http_body_writer();

  http_body_writer(const http_body_writer&) = delete;
  http_body_writer& operator=(const http_body_writer&) = delete;

  /// Queues bytes; blocks while the buffer is full. Writing more than
  /// `upload_size` bytes in total is errc::invalid_request. If the transfer
  /// already ended (the server answered early, the connection broke), returns
  /// that failure; a server that answered early with a status is reported as
  /// errc::unavailable naming the status.
  status write(const char* data, size_t size);

  /// Releases the held-back last byte and waits for the response. Requires
  /// exactly `upload_size` bytes written (otherwise errc::size_mismatch and
  /// the transfer is aborted). The response may have any status. If the
  /// transfer already ended (the server answered early, the connection
  /// broke), returns that outcome: the early response, say a 413, or the
  /// error. Only the first call waits; later ones are errc::invalid_request.
  result<http_response> finish();

  /// Abandons the upload (the body never completes) unless it already
  /// ended; later write() and finish() calls fail with errc::cancelled.
  /// Idempotent.
  void abort();

private:
  struct shared;
  http_body_writer(http_engine& engine, std::shared_ptr<shared> state);
  /// Installs the upload source that feeds from `state` and submits.
  static void submit_upload(http_engine& engine, const std::shared_ptr<shared>& state,
                            http_request request);
  http_engine& engine_;
  std::shared_ptr<shared> state_;
};

} // namespace ferry
