#pragma once

#include "protocol/status.hpp"
#include "store/http/host_pacer.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ferry {

/// What a body_sink does with a piece of a response body.
enum class sink_action {
  /// The bytes were taken.
  accept,
  /// The bytes were NOT taken: the transfer pauses and the same bytes are
  /// offered again after http_engine::resume(id).
  pause,
  /// Stop the transfer (see http_request::sink_error).
  abort,
};

/// One HTTP request for http_engine. At most one of `body` and
/// `upload_source` may be set; a HEAD or GET request with an
/// `upload_source` fails with errc::invalid_request.
struct http_request {
  /// "GET", "HEAD", "POST", "PUT", ...
  std::string method;
  /// Absolute http:// or https:// URL. Redirects are not followed: a 3xx is
  /// delivered as a response.
  std::string url;
  /// Sent as given. Without an explicit "Expect" header none is sent, so
  /// uploads never wait for a "100 Continue" a server may not send.
  std::vector<std::pair<std::string, std::string>> headers;
  /// Small in-memory body (batch JSON).
  std::optional<std::string> body;
  /// Streaming upload: called on the loop thread to fill `buf` with at most
  /// `cap` bytes; returns how many it wrote. It is never asked for more than
  /// `upload_size` bytes in total and must produce exactly that many; an
  /// error status fails the transfer with that status. Returning
  /// `pause_upload` means "nothing ready yet": the upload pauses until
  /// http_engine::resume(id), or until the server answers (a server that
  /// refuses the body early ends the transfer with its response).
  std::function<result<size_t>(char* buf, size_t cap)> upload_source;
  /// What an upload_source returns to pause the upload.
  static constexpr size_t pause_upload = static_cast<size_t>(-1);
  /// Size of the streamed upload, required with `upload_source`; sent as
  /// Content-Length (the body is never chunked: S3-style presigned PUTs
  /// reject chunked uploads).
  int64_t upload_size = -1;
  /// Optional: called on the loop thread once the final response head has
  /// arrived (1xx interim heads are skipped), before any body byte, with the
  /// status and the headers (names in lower case, values trimmed). Return
  /// false to abort the transfer (it fails with errc::cancelled, or with
  /// sink_error's status when that is set and not ok).
  std::function<bool(long status, const std::vector<std::pair<std::string, std::string>>& headers)>
    on_headers;
  /// Streaming download: called on the loop thread with each piece of a 2xx
  /// response body; sink_action::pause holds the transfer until resume(id).
  /// Bodies of other statuses do not reach the sink (they are no object
  /// data): their first 64 KiB are kept in http_response::body for error
  /// reporting. Without a sink, the body is collected into
  /// http_response::body, up to 8 MiB.
  std::function<sink_action(const char* data, size_t n)> body_sink;
  /// Optional: consulted after `body_sink` returned sink_action::abort or
  /// `on_headers` returned false. A non-ok status (say, a full disk the sink
  /// ran into) becomes the transfer's error; otherwise the transfer fails
  /// with errc::cancelled. If it throws, the transfer fails with
  /// errc::internal.
  std::function<status()> sink_error;
};

/// What the server answered. Any HTTP status, 4xx and 5xx included, is a
/// response; only transport failures are errors.
struct http_response {
  long status = 0;
  /// In arrival order, names in lower case, values trimmed.
  std::vector<std::pair<std::string, std::string>> headers;
  /// The collected body (see http_request::body_sink).
  std::string body;
  /// Body bytes accepted: collected, or taken by the sink.
  int64_t bytes_received = 0;
  /// Request body bytes sent.
  int64_t bytes_sent = 0;
  /// True when the request went over a connection opened earlier.
  bool connection_reused = false;
  /// Hex SHA-256 of exactly the bytes the sink accepted (streamed downloads
  /// only; empty otherwise).
  std::string sha256_received;
  /// Hex SHA-256 of exactly the bytes the upload_source produced (streamed
  /// uploads only; empty otherwise).
  std::string sha256_sent;

  /// The first header called `name` (lower case), if any.
  const std::string* header(const std::string& name) const;
};

/// True for 2xx statuses.
inline bool is_success(long status) { return status >= 200 && status <= 299; }

/// The first header called `name` (lower case) in `headers`, if any.
const std::string* find_header(const std::vector<std::pair<std::string, std::string>>& headers,
                               const std::string& name);

/// `url` without user info, query or fragment, for messages and logs:
/// presigned URLs carry their signature in the query.
std::string redact_url(const std::string& url);

/// A budget of requests that other processes share (say, a rate kept in
/// Redis): the http_engine takes one permit for each request it starts.
class request_permits {
public:
  virtual ~request_permits() = default;
  /// Called on the engine's loop thread, so it must not block: takes a
  /// permit if one is ready. When none is, it gets more away from the loop
  /// thread and calls `wake` (from any thread) once one is ready.
  virtual bool try_take(const std::function<void()>& wake) = 0;
};

/// Runs HTTP transfers on one thread that owns a libcurl multi handle, so
/// every transfer shares one connection cache (keep-alive, HTTP/2
/// multiplexing where the server offers it).
///
/// Requests are paced per host (scheme, host and port), one token each,
/// whatever their kind (options::requests_per_second); a request whose turn
/// has not come waits in the engine, in submission order per host, and
/// starts when it comes. A 429 or 503 from a paced host cuts its rate
/// (rate_backoff: halved, back step by step).
///
/// A response with status 429 or 503 and a Retry-After puts its host
/// in a cooldown of that length, unless it is longer than
/// options::max_cooldown: requests to the host submitted before the cooldown
/// ends wait in the engine the same way and start when it ends (a later,
/// longer Retry-After extends it). Requests to other hosts are not held.
/// Requests already running are not interrupted.
///
/// submit() and cancel() may be called from any thread: they only queue a
/// command and wake the loop. Everything else - the request's callbacks and
/// the completions - runs on the loop thread, so callbacks must be quick and
/// must not block on other transfers of the same engine. Completions may call
/// submit() and cancel() but must not destroy the engine, and must not throw.
class http_engine {
public:
  struct options {
    /// Simultaneous connections per host:port; further transfers queue
    /// inside libcurl until a connection is free.
    long max_host_connections = 8;
    /// Simultaneous connections to all hosts together.
    long max_total_connections = 64;
    std::chrono::milliseconds connect_timeout{10000};
    /// A transfer moving fewer than `low_speed_limit_bytes` per second for
    /// `low_speed_time` counts as stalled and fails with errc::unavailable
    /// (time paused by a callback does not count, see resume()).
    /// There is deliberately no total timeout: big objects take long, and
    /// queueing for a connection would count against it.
    long low_speed_limit_bytes = 1024;
    std::chrono::seconds low_speed_time{30};
    bool verify_tls = true;
    std::string user_agent = "ferry";
    /// Longest cooldown a 429 or 503 with Retry-After puts on its host (see
    /// http_engine); a longer Retry-After puts none. Callers pass
    /// ferry.maxRetryWait: the retry policy fails the object of a longer
    /// one at once, and the rate limiter holds no cooldown for it, so
    /// holding every other request to the host would only turn "fail at
    /// once" into one failure per maxRetryWait.
    std::chrono::seconds max_cooldown{120};
    /// HTTP requests per second to one host; 0 means unlimited.
    double requests_per_second = 0;
    /// Requests that may start back to back after an idle spell.
    double request_burst = 1;
    /// When set, every request also waits for a permit from here (after its
    /// host's own pacing).
    std::shared_ptr<request_permits> permits;
    /// Told, on the loop thread, when a 429 or 503 cuts a host's rate and
    /// when the full rate is back (one line for the log); may be empty.
    std::function<void(const std::string&)> on_rate_change;

    /// Options for up to `transfers` transfers at once (at least 1): as
    /// many connections per host, so transfers to a slow server never wait
    /// for each other's round trips, and room for 8 hosts at that. The
    /// defaults are those of 8 transfers.
    static options for_transfers(long transfers);
  };

  struct stats {
    /// Transfers that were handed to libcurl and have finished (any outcome).
    uint64_t transfers = 0;
    /// TCP connections libcurl opened for them.
    uint64_t connections_opened = 0;
  };

  /// Called once per submitted request, on the loop thread.
  using completion = std::function<void(uint64_t id, result<http_response>)>;

  http_engine();
  /// Starts the loop thread. Throws std::runtime_error when libcurl cannot
  /// be initialised.
  explicit http_engine(options opts);
  /// Cancels every transfer still running or queued (their completions get
  /// errc::cancelled, on the loop thread) and joins the loop thread.
  ~http_engine();

  http_engine(const http_engine&) = delete;
  http_engine& operator=(const http_engine&) = delete;

  /// Queues a request; returns its id (never 0). Thread-safe.
  uint64_t submit(http_request request, completion done);

  /// Aborts a transfer; its completion gets errc::cancelled. Ids that are
  /// unknown or already completed are ignored. Thread-safe.
  void cancel(uint64_t id);

  /// Continues a transfer that its body_sink or upload_source paused; a
  /// callback that is still not ready simply pauses again. Ids that are
  /// unknown, completed or not paused are ignored. Thread-safe.
  /// Time spent paused does not count towards the stall detection (libcurl
  /// skips its low-speed check while a transfer is paused), so a slow
  /// consumer or producer is never taken for a stalled server.
  void resume(uint64_t id);

  /// Thread-safe snapshot of the counters.
  stats current_stats() const;

  /// The pace of every host requests went to (origin as host), from the
  /// loop thread; empty if it does not answer within `wait`. Thread-safe.
  std::vector<host_pace> host_paces(std::chrono::milliseconds wait = std::chrono::seconds{2}) const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace ferry
