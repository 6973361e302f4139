#include "store/http/http_engine.hpp"
#include "protocol/parsing.hpp"

#include "protocol/retry_after.hpp"
#include "store/http/host_pacer.hpp"
#include "store/http/http_url.hpp"
#include "store/os/sha256.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <deque>
#include <exception>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <variant>

namespace ferry {

namespace {

/// Cap for bodies collected in memory (batch responses are far smaller).
constexpr size_t max_collected_body = size_t{8} << 20;
/// Cap for the body of a non-2xx response to a streamed download: enough for
/// any error document, and nothing the caller would want to write to disk.
constexpr size_t max_error_body = size_t{64} << 10;
/// Socket buffer sizes for curl: larger than the defaults, so one loop thread
/// makes fewer callbacks per byte on fast links.
constexpr long receive_buffer_size = 128L << 10;
constexpr long upload_buffer_size = 128L << 10;
/// Upper bound of one curl_multi_poll; curl wakes earlier for its own timers
/// and on curl_multi_wakeup.
constexpr int poll_timeout_ms = 1000;

std::once_flag global_init_once;
CURLcode global_init_result = CURLE_OK;

void global_init() {
  // Once per process and never undone: other components may use curl too.
  std::call_once(global_init_once,
                 [] { global_init_result = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (global_init_result != CURLE_OK)
    throw std::runtime_error(std::string("curl_global_init failed: ") +
                             curl_easy_strerror(global_init_result));
}

/// The host a request's cooldown belongs to ("scheme://host:port"), or ""
/// for a URL that is not http(s) (curl refuses it anyway).
std::string host_key(const std::string& url) {
  auto parsed = parse_http_url(url);
  return parsed ? parsed->origin() : std::string();
}

/// "25 requests/s".
std::string describe_rate(double requests_per_second) {
  char number[32];
  std::snprintf(number, sizeof number, "%.3g", requests_per_second);
  return number + std::string{" requests/s"};
}

/// Wakes the loop from other threads (request_permits), also after the
/// engine is gone: the permits may outlive it.
class loop_waker {
public:
  explicit loop_waker(CURLM* multi) : multi_(multi) {}
  void wake() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (multi_ != nullptr)
      curl_multi_wakeup(multi_);
  }
  /// Before the multi handle is cleaned up.
  void close() {
    std::lock_guard<std::mutex> lock(mutex_);
    multi_ = nullptr;
  }

private:
  std::mutex mutex_;
  CURLM* multi_;
};

std::string_view trim(std::string_view text) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!text.empty() && space(text.front()))
    text.remove_prefix(1);
  while (!text.empty() && space(text.back()))
    text.remove_suffix(1);
  return text;
}

} // namespace

std::string redact_url(const std::string& url) {
  std::string out = url.substr(0, url.find_first_of("?#"));
  auto scheme_end = out.find("://");
  size_t authority = scheme_end == std::string::npos ? 0 : scheme_end + 3;
  auto path = out.find('/', authority);
  auto at = out.rfind('@', path == std::string::npos ? std::string::npos : path);
  if (at != std::string::npos && at >= authority)
    out.erase(authority, at + 1 - authority);
  return out;
}

const std::string* find_header(const std::vector<std::pair<std::string, std::string>>& headers,
                               const std::string& name) {
  for (const auto& [key, value] : headers)
    if (key == name)
      return &value;
  return nullptr;
}

const std::string* http_response::header(const std::string& name) const {
  return find_header(headers, name);
}

namespace {

/// One transfer handed to curl. Owned by the loop thread.
struct transfer {
  transfer(uint64_t id, http_request request, http_engine::completion done)
      : id(id), request(std::move(request)), done(std::move(done)) {}
  ~transfer() {
    if (easy != nullptr)
      curl_easy_cleanup(easy);
    curl_slist_free_all(header_list);
  }
  transfer(const transfer&) = delete;
  transfer& operator=(const transfer&) = delete;

  uint64_t id;
  http_request request;
  http_engine::completion done;
  CURL* easy = nullptr;
  curl_slist* header_list = nullptr;
  char error_buffer[CURL_ERROR_SIZE] = {};
  http_response response;
  std::optional<sha256> received_hash;
  std::optional<sha256> sent_hash;
  int64_t upload_produced = 0;
  /// Status of the head being received; the final one once `head_done`.
  long head_status = 0;
  /// The final (non-1xx) head has ended; later header lines are trailers.
  bool head_done = false;
  /// Whether body bytes go to the sink; decided on the first body bytes,
  /// when the status is known.
  std::optional<bool> to_sink;
  /// A callback returned pause; curl holds the transfer until resume().
  bool paused = false;
  /// The upload source was the one that paused.
  bool upload_paused = false;
  /// Where the header callback lists transfers the loop must unpause: curl
  /// does not finish a paused upload whose answer has arrived.
  std::vector<uint64_t>* answered_while_paused = nullptr;
  bool sink_refused = false;
  bool head_refused = false;
  bool body_too_large = false;
  /// Set by a callback that failed for a reason of its own (the upload
  /// source's status, a callback that threw, a short upload).
  std::optional<status> callback_error;

  std::string where() const { return request.method + " " + redact_url(request.url); }
};

status exception_status(const char* callback) {
  try {
    throw;
  } catch (const std::exception& e) {
    return {errc::internal, std::string(callback) + " threw: " + e.what()};
  } catch (...) {
    return {errc::internal, std::string(callback) + " threw"};
  }
}

/// The code of a status line ("HTTP/1.1 200 OK", "HTTP/2 404"), or 0.
long status_code(std::string_view status_line) {
  auto space = status_line.find(' ');
  if (space == std::string_view::npos)
    return 0;
  std::string_view rest = trim(status_line.substr(space + 1));
  if (rest.size() < 3 || (rest.size() > 3 && rest[3] != ' '))
    return 0;
  long code = 0;
  for (char c : rest.substr(0, 3)) {
    if (!std::isdigit(static_cast<unsigned char>(c)))
      return 0;
    code = code * 10 + (c - '0');
  }
  return code;
}

/// Hands the final head to on_headers; false aborts the transfer.
bool deliver_head(transfer& t) {
  if (!t.request.on_headers)
    return true;
  try {
    if (t.request.on_headers(t.head_status, t.response.headers))
      return true;
  } catch (...) {
    t.callback_error = exception_status("on_headers");
    return false;
  }
  t.head_refused = true;
  return false;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto& t = *static_cast<transfer*>(user);
  size_t n = size * count;
  std::string_view line = trim(std::string_view(data, n));
  if (!t.head_done && line.substr(0, 5) == "HTTP/") {
    // A new head (after a 100 Continue, say): headers start over.
    t.response.headers.clear();
    t.head_status = status_code(line);
    return n;
  }
  if (line.empty()) {
    // The end of a head, or of the trailers after a chunked body. Interim
    // 1xx heads are followed by the real one.
    bool interim = t.head_status >= 100 && t.head_status < 200;
    if (t.head_done || interim)
      return n;
    t.head_done = true;
    if (t.upload_paused)
      t.answered_while_paused->push_back(t.id);
    // Anything but n fails the transfer with CURLE_WRITE_ERROR.
    return deliver_head(t) ? n : 0;
  }
  auto colon = line.find(':');
  if (colon == std::string_view::npos)
    return n;
  t.response.headers.emplace_back(protocol::lower_ascii(trim(line.substr(0, colon))),
                                  std::string(trim(line.substr(colon + 1))));
  return n;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto& t = *static_cast<transfer*>(user);
  size_t n = size * count;
  if (n == 0)
    return 0;
  if (t.request.body_sink) {
    if (!t.to_sink) {
      long code = 0;
      curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &code);
      t.to_sink = is_success(code);
    }
    if (*t.to_sink) {
      sink_action action = sink_action::abort;
      try {
        action = t.request.body_sink(data, n);
      } catch (...) {
        t.callback_error = exception_status("body sink");
        return 0;
      }
      switch (action) {
        case sink_action::accept:
          t.received_hash->update(data, n);
          t.response.bytes_received += static_cast<int64_t>(n);
          return n;
        case sink_action::pause:
          // curl keeps these bytes and offers them again once unpaused.
          t.paused = true;
          return CURL_WRITEFUNC_PAUSE;
        case sink_action::abort:
          break;
      }
      t.sink_refused = true;
      return 0; // anything but n fails the transfer with CURLE_WRITE_ERROR
    }
    // An error document: keep its start, drain the rest so the connection
    // stays reusable.
    size_t keep = std::min(n, max_error_body - std::min(max_error_body, t.response.body.size()));
    t.response.body.append(data, keep);
    t.response.bytes_received += static_cast<int64_t>(n);
    return n;
  }
  if (t.response.body.size() + n > max_collected_body) {
    t.body_too_large = true;
    return 0;
  }
  t.response.body.append(data, n);
  t.response.bytes_received += static_cast<int64_t>(n);
  return n;
}

size_t on_upload(char* buffer, size_t size, size_t count, void* user) {
  auto& t = *static_cast<transfer*>(user);
  int64_t remaining = t.request.upload_size - t.upload_produced;
  if (remaining <= 0)
    return 0;
  // Never ask for more than was declared: extra bytes after Content-Length
  // would be read as the next request on a kept-alive connection.
  size_t cap = std::min(size * count, static_cast<size_t>(remaining));
  std::optional<result<size_t>> produced;
  try {
    produced.emplace(t.request.upload_source(buffer, cap));
  } catch (...) {
    t.callback_error = exception_status("upload source");
    return CURL_READFUNC_ABORT;
  }
  if (!produced->ok()) {
    t.callback_error = produced->error();
    return CURL_READFUNC_ABORT;
  }
  size_t n = produced->value();
  if (n == http_request::pause_upload) {
    t.paused = true;
    t.upload_paused = true;
    return CURL_READFUNC_PAUSE;
  }
  if (n > cap) {
    t.callback_error = status(errc::internal, "upload source produced " + std::to_string(n) +
                                                " bytes into a buffer of " + std::to_string(cap));
    return CURL_READFUNC_ABORT;
  }
  if (n == 0) {
    t.callback_error =
      status(errc::size_mismatch, "upload source ended after " + std::to_string(t.upload_produced) +
                                    " of " + std::to_string(t.request.upload_size) + " bytes");
    return CURL_READFUNC_ABORT;
  }
  t.sent_hash->update(buffer, n);
  t.upload_produced += static_cast<int64_t>(n);
  return n;
}

/// Maps a failed transfer to the status its submitter sees.
status failure_status(transfer& t, CURLcode code) {
  if (t.callback_error)
    return *t.callback_error;
  if (t.sink_refused || t.head_refused) {
    if (t.request.sink_error) {
      // Runs on the loop thread like every other callback: an exception
      // must fail this transfer, not terminate the process.
      std::optional<status> own;
      try {
        own.emplace(t.request.sink_error());
      } catch (...) {
        return exception_status("sink error");
      }
      if (!own->ok())
        return *own;
    }
    return {errc::cancelled, t.where() + (t.head_refused ? ": response refused by on_headers"
                                                         : ": download aborted by the body sink")};
  }
  if (t.body_too_large)
    return {errc::invalid_request, t.where() + ": response body exceeds " +
                                     std::to_string(max_collected_body >> 20) +
                                     " MiB (a streamed download needs a body sink)"};
  std::string detail =
    t.error_buffer[0] != '\0' ? std::string(t.error_buffer) : std::string(curl_easy_strerror(code));
  switch (code) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
      return {errc::config_error, "TLS verification failed for " + t.where() + ": " + detail +
                                    " (check http.sslCAInfo / the system CA certificates)"};
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_USE_SSL_FAILED:
      return {errc::config_error, "TLS failed for " + t.where() + ": " + detail};
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_FUNCTION_ARGUMENT:
      return {errc::invalid_request, t.where() + ": " + detail};
    case CURLE_OUT_OF_MEMORY:
      return {errc::internal, t.where() + ": " + detail};
    default:
      // Connection refused, resolution failures, stalls (OPERATION_TIMEDOUT),
      // resets, short bodies, empty replies, HTTP/2 stream errors and TLS
      // handshakes cut short (SSL_CONNECT_ERROR): all worth another attempt.
      return {errc::unavailable, t.where() + ": " + detail};
  }
}

} // namespace

struct http_engine::impl {
  struct submit_command {
    uint64_t id;
    http_request request;
    completion done;
  };
  struct cancel_command {
    uint64_t id;
  };
  struct resume_command {
    uint64_t id;
  };
  /// Asks the loop for every host's pace.
  struct pace_command {
    std::shared_ptr<std::promise<std::vector<host_pace>>> answer;
  };
  using command = std::variant<submit_command, cancel_command, resume_command, pace_command>;
  using clock = token_bucket::clock;
  /// Pacing and waiting requests of one host, in submission order.
  using host_state = host_pacer<submit_command>;

  explicit impl(options o) : opts(std::move(o)) {
    global_init();
    multi = curl_multi_init();
    if (multi == nullptr)
      throw std::runtime_error("curl_multi_init failed");
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, opts.max_host_connections);
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, opts.max_total_connections);
    waker = std::make_shared<loop_waker>(multi);
    wake_loop = [waker = waker] { waker->wake(); };
    loop = std::thread([this] { run(); });
  }

  ~impl() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stopping = true;
      curl_multi_wakeup(multi);
    }
    loop.join();
  }

  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;

  uint64_t submit(http_request request, completion done) {
    uint64_t id = next_id.fetch_add(1, std::memory_order_relaxed);
    if (!done)
      done = [](uint64_t, result<http_response>) {};
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (!closed) {
        queue.emplace_back(submit_command{id, std::move(request), std::move(done)});
        curl_multi_wakeup(multi);
        return id;
      }
    }
    // Only reachable while the engine is being destroyed; the loop thread is
    // gone, so the caller's thread reports it.
    done(id, status(errc::cancelled, "HTTP engine shut down"));
    return id;
  }

  /// Queues a command for a running transfer (cancel, resume).
  void post(command cmd) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!closed) {
      queue.emplace_back(std::move(cmd));
      curl_multi_wakeup(multi);
    }
  }

  // ---- loop thread ----

  void run() {
    for (;;) {
      std::deque<command> commands;
      bool stop = false;
      {
        std::lock_guard<std::mutex> lock(mutex);
        commands.swap(queue);
        stop = stopping;
      }
      // Several wakeups may merge into one poll return: handle everything.
      for (auto& cmd : commands) {
        if (auto* s = std::get_if<submit_command>(&cmd))
          start_or_hold(std::move(*s));
        else if (auto* c = std::get_if<cancel_command>(&cmd))
          cancel_transfer(c->id, status(errc::cancelled, "transfer cancelled"));
        else if (auto* r = std::get_if<resume_command>(&cmd))
          resume_transfer(r->id);
        else
          std::get<pace_command>(cmd).answer->set_value(paces());
      }
      if (stop)
        break;
      int running = 0;
      curl_multi_perform(multi, &running);
      // A server that answered before the body was complete ends the upload,
      // but curl finishes the transfer only once it is unpaused.
      for (uint64_t id : answered_while_paused)
        resume_transfer(id);
      answered_while_paused.clear();
      collect_finished();
      int timeout_ms = start_due();
      CURLMcode polled = curl_multi_poll(multi, nullptr, 0, timeout_ms, nullptr);
      if (polled != CURLM_OK)
        // Nothing in flight can make progress; failing it beats spinning.
        abort_all(status(errc::internal,
                         std::string("curl_multi_poll failed: ") + curl_multi_strerror(polled)));
    }
    shut_down();
  }

  void shut_down() {
    abort_all(status(errc::cancelled, "HTTP engine shut down"));
    // Completions may have submitted more work: refuse it until none is left.
    for (;;) {
      std::deque<command> commands;
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (queue.empty()) {
          closed = true;
          break;
        }
        commands.swap(queue);
      }
      for (auto& cmd : commands)
        if (auto* s = std::get_if<submit_command>(&cmd))
          s->done(s->id, status(errc::cancelled, "HTTP engine shut down"));
    }
    waker->close();
    curl_multi_cleanup(multi);
  }

  std::vector<host_pace> paces() const {
    std::vector<host_pace> out;
    auto now = clock::now();
    for (const auto& [name, h] : hosts)
      out.push_back(h.pace(name, now));
    return out;
  }

  host_state& host_named(const std::string& name) {
    auto found = hosts.find(name);
    if (found == hosts.end())
      found =
        hosts.emplace(name, host_state{{opts.requests_per_second, opts.request_burst, 0, 0}}).first;
    return found->second;
  }

  void tell(const std::string& text) {
    if (opts.on_rate_change)
      opts.on_rate_change(text);
  }

  /// Every request to a host waits behind the earlier ones to it, so the
  /// host sees them in order; requests to no http(s) host start at once
  /// (curl refuses them).
  void start_or_hold(submit_command cmd) {
    std::string name = host_key(cmd.request.url);
    if (name.empty())
      return start(cmd.id, std::move(cmd.request), std::move(cmd.done));
    auto& h = host_named(name);
    h.push(std::move(cmd), 0);
    auto next = clock::time_point::max();
    serve(name, h, clock::now(), next);
  }

  /// Starts the waiting requests of `name` whose turn has come; lowers
  /// `next` to when the next one is due. Returns whether any started.
  bool serve(const std::string& name, host_state& h, clock::time_point now,
             clock::time_point& next) {
    if (h.follow_backoff(now))
      tell("rate to " + name + " back to the full " + describe_rate(opts.requests_per_second));
    bool started = false;
    auto due = h.serve(now, [&](submit_command& cmd) {
      // Without a permit the source wakes the loop once it has one.
      if (opts.permits && !opts.permits->try_take(wake_loop))
        return false;
      start(cmd.id, std::move(cmd.request), std::move(cmd.done));
      started = true;
      return true;
    });
    if (due)
      next = std::min(next, *due);
    return started;
  }

  /// Starts the waiting requests whose turn has come; returns how long the
  /// loop may poll before the next one is due.
  int start_due() {
    auto now = clock::now();
    auto next = now + std::chrono::milliseconds(poll_timeout_ms);
    bool started = false;
    for (auto& [name, h] : hosts)
      if (!h.empty())
        started = serve(name, h, now, next) || started;
    if (started)
      return 0; // let curl_multi_perform send them at once
    auto wait = std::chrono::ceil<std::chrono::milliseconds>(next - now);
    return static_cast<int>(std::clamp<int64_t>(wait.count(), 0, poll_timeout_ms));
  }

  /// A 429 or 503 from a paced host cuts its rate (at most once per burst
  /// of such answers); one with a Retry-After also puts the host into its
  /// cooldown.
  void note_slow_down(const transfer& t) {
    const http_response& response = t.response;
    if (response.status != 429 && response.status != 503)
      return;
    std::string name = host_key(t.request.url);
    if (name.empty())
      return;
    auto& h = host_named(name);
    auto now = clock::now();
    if (h.slow_down(now))
      tell(name + " asked to slow down (HTTP 429 or 503): rate to it cut to " +
           describe_rate(opts.requests_per_second * h.factor()) + ", back to the full " +
           describe_rate(opts.requests_per_second) + " step by step");
    const std::string* header = response.header("retry-after");
    if (header == nullptr)
      return;
    auto wait = parse_retry_after(*header, std::chrono::system_clock::now());
    // Beyond max_cooldown the object fails at once (classify_http), and so
    // may every other request the host refuses that way.
    if (!wait || *wait <= std::chrono::seconds::zero() || *wait > opts.max_cooldown)
      return;
    h.pause_until(now + *wait, now);
  }

  void start(uint64_t id, http_request request, completion done) {
    auto reject = [&](errc code, const std::string& why) {
      done(id, status(code, request.method + " " + redact_url(request.url) + ": " + why));
    };
    if (request.method.empty())
      return reject(errc::invalid_request, "request has no method");
    if (request.body && request.upload_source)
      return reject(errc::invalid_request, "request has both a body and an upload source");
    if (request.upload_source && request.upload_size < 0)
      return reject(errc::invalid_request, "streamed upload needs its size");
    if (request.upload_source && (request.method == "HEAD" || request.method == "GET"))
      return reject(errc::invalid_request, "a " + request.method + " request cannot upload");
    auto t = std::make_unique<transfer>(id, std::move(request), std::move(done));
    t->answered_while_paused = &answered_while_paused;
    t->easy = curl_easy_init();
    if (t->easy == nullptr)
      return finish_early(*t, status(errc::internal, "curl_easy_init failed"));
    CURLcode code = configure(*t);
    if (code != CURLE_OK)
      return finish_early(
        *t, status(errc::invalid_request, t->where() + ": " + curl_easy_strerror(code)));
    CURLMcode added = curl_multi_add_handle(multi, t->easy);
    if (added != CURLM_OK)
      return finish_early(*t, status(errc::internal, t->where() + ": curl_multi_add_handle: " +
                                                       curl_multi_strerror(added)));
    active.emplace(id, std::move(t));
  }

  void finish_early(transfer& t, status why) { t.done(t.id, std::move(why)); }

  CURLcode configure(transfer& t) {
    CURL* e = t.easy;
    const http_request& r = t.request;
    CURLcode code = CURLE_OK;
    auto set = [&](CURLoption option, auto value) {
      if (code == CURLE_OK)
        code = curl_easy_setopt(e, option, value);
    };
    set(CURLOPT_URL, r.url.c_str());
    set(CURLOPT_PROTOCOLS_STR, "http,https");
    set(CURLOPT_PRIVATE, static_cast<void*>(&t));
    set(CURLOPT_ERRORBUFFER, t.error_buffer);
    set(CURLOPT_NOSIGNAL, 1L);
    // Waiting for a connection to reveal whether it multiplexes only pays
    // off where ALPN answers it during the TLS handshake. On plain http://
    // (always HTTP/1.1 here) curl 7.88 would park every further transfer to
    // the host until one finishes, serialising them.
    if (protocol::lower_ascii(std::string_view(r.url).substr(0, 8)) == "https://")
      set(CURLOPT_PIPEWAIT, 1L);
    set(CURLOPT_TCP_KEEPALIVE, 1L);
    set(CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
    set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(opts.connect_timeout.count()));
    set(CURLOPT_LOW_SPEED_LIMIT, opts.low_speed_limit_bytes);
    set(CURLOPT_LOW_SPEED_TIME, static_cast<long>(opts.low_speed_time.count()));
    set(CURLOPT_SSL_VERIFYPEER, opts.verify_tls ? 1L : 0L);
    set(CURLOPT_SSL_VERIFYHOST, opts.verify_tls ? 2L : 0L);
    set(CURLOPT_USERAGENT, opts.user_agent.c_str());
    set(CURLOPT_BUFFERSIZE, receive_buffer_size);
    set(CURLOPT_UPLOAD_BUFFERSIZE, upload_buffer_size);
    // A proxy's answer to CONNECT is no response head of this request.
    set(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    set(CURLOPT_HEADERFUNCTION, &on_header);
    set(CURLOPT_HEADERDATA, static_cast<void*>(&t));
    set(CURLOPT_WRITEFUNCTION, &on_body);
    set(CURLOPT_WRITEDATA, static_cast<void*>(&t));

    if (r.method == "HEAD") {
      set(CURLOPT_NOBODY, 1L);
    } else if (r.upload_source) {
      t.sent_hash.emplace();
      set(CURLOPT_UPLOAD, 1L);
      set(CURLOPT_READFUNCTION, &on_upload);
      set(CURLOPT_READDATA, static_cast<void*>(&t));
      set(CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(r.upload_size));
      if (r.method != "PUT")
        set(CURLOPT_CUSTOMREQUEST, r.method.c_str());
    } else if (r.body) {
      // The transfer owns the request, so the body outlives the transfer.
      set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body->size()));
      set(CURLOPT_POSTFIELDS, r.body->data());
      if (r.method != "POST")
        set(CURLOPT_CUSTOMREQUEST, r.method.c_str());
    } else if (r.method == "GET") {
      set(CURLOPT_HTTPGET, 1L);
    } else {
      set(CURLOPT_CUSTOMREQUEST, r.method.c_str());
    }
    if (r.body_sink)
      t.received_hash.emplace();

    bool has_expect = false;
    for (const auto& [name, value] : r.headers) {
      has_expect = has_expect || protocol::lower_ascii(name) == "expect";
      // "Name;" is curl's spelling of a header with an empty value ("Name:"
      // would remove the header).
      std::string line = value.empty() ? name + ";" : name + ": " + value;
      curl_slist* grown = curl_slist_append(t.header_list, line.c_str());
      if (grown == nullptr)
        return CURLE_OUT_OF_MEMORY;
      t.header_list = grown;
    }
    if (!has_expect) {
      curl_slist* grown = curl_slist_append(t.header_list, "Expect:");
      if (grown == nullptr)
        return CURLE_OUT_OF_MEMORY;
      t.header_list = grown;
    }
    set(CURLOPT_HTTPHEADER, t.header_list);
    return code;
  }

  void collect_finished() {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
      if (msg->msg != CURLMSG_DONE)
        continue;
      // The message dies with the handle: copy what is needed first.
      CURL* easy = msg->easy_handle;
      CURLcode code = msg->data.result;
      char* owner = nullptr;
      curl_easy_getinfo(easy, CURLINFO_PRIVATE, &owner);
      auto* t = reinterpret_cast<transfer*>(owner);
      if (t == nullptr)
        continue;
      complete(t->id, code);
    }
  }

  /// Takes a transfer out of curl, counts it, and hands back ownership.
  std::unique_ptr<transfer> detach(uint64_t id) {
    auto found = active.find(id);
    if (found == active.end())
      return nullptr;
    std::unique_ptr<transfer> t = std::move(found->second);
    active.erase(found);
    long connects = 0;
    curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &connects);
    t->response.connection_reused = connects == 0;
    curl_multi_remove_handle(multi, t->easy);
    transfers.fetch_add(1, std::memory_order_relaxed);
    connections.fetch_add(static_cast<uint64_t>(std::max(0L, connects)), std::memory_order_relaxed);
    return t;
  }

  void complete(uint64_t id, CURLcode code) {
    std::unique_ptr<transfer> t = detach(id);
    if (!t)
      return;
    if (code != CURLE_OK) {
      status why = failure_status(*t, code);
      t->done(id, std::move(why));
      return;
    }
    http_response& response = t->response;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &response.status);
    if (t->sent_hash) {
      response.bytes_sent = t->upload_produced;
      response.sha256_sent = t->sent_hash->hex_digest();
    } else {
      curl_off_t uploaded = 0;
      curl_easy_getinfo(t->easy, CURLINFO_SIZE_UPLOAD_T, &uploaded);
      response.bytes_sent = static_cast<int64_t>(uploaded);
    }
    if (t->received_hash)
      response.sha256_received = t->received_hash->hex_digest();
    note_slow_down(*t);
    t->done(id, std::move(response));
  }

  void cancel_transfer(uint64_t id, status why) {
    for (auto& [name, h] : hosts) {
      auto cmd = h.take_if([&](const submit_command& waiting) { return waiting.id == id; });
      if (!cmd)
        continue;
      cmd->done(id, std::move(why));
      return;
    }
    std::unique_ptr<transfer> t = detach(id);
    if (t)
      t->done(id, std::move(why));
  }

  void resume_transfer(uint64_t id) {
    auto found = active.find(id);
    if (found == active.end() || !found->second->paused)
      return;
    transfer& t = *found->second;
    // Cleared first: curl hands the held bytes to the sink again from inside
    // curl_easy_pause, and the sink may pause once more.
    t.paused = false;
    t.upload_paused = false;
    CURLcode code = curl_easy_pause(t.easy, CURLPAUSE_CONT);
    if (code != CURLE_OK)
      // The sink refused the held bytes (or threw): curl would carry on
      // reading, so the transfer ends here.
      complete(id, code);
  }

  void abort_all(const status& why) {
    for (auto& [name, h] : hosts)
      while (!h.empty())
        cancel_transfer(h.front().id, why);
    while (!active.empty())
      cancel_transfer(active.begin()->first, why);
  }

  options opts;
  CURLM* multi = nullptr;

  std::mutex mutex;
  std::deque<command> queue; // guarded by mutex
  bool stopping = false;     // guarded by mutex
  bool closed = false;       // guarded by mutex; set once the loop will read no more

  std::atomic<uint64_t> next_id{1};
  std::atomic<uint64_t> transfers{0};
  std::atomic<uint64_t> connections{0};

  std::unordered_map<uint64_t, std::unique_ptr<transfer>> active; // loop thread only
  std::vector<uint64_t> answered_while_paused;                    // loop thread only
  /// Hosts that requests went to, with their pacing and waiting requests.
  std::unordered_map<std::string, host_state> hosts; // loop thread only
  std::shared_ptr<loop_waker> waker;
  /// What request_permits call once a permit is ready.
  std::function<void()> wake_loop;
  std::thread loop;
};

http_engine::options http_engine::options::for_transfers(long transfers) {
  options opts;
  opts.max_host_connections = std::max(transfers, 1L);
  opts.max_total_connections = 8 * opts.max_host_connections;
  return opts;
}

http_engine::http_engine() : http_engine(options{}) {}

http_engine::http_engine(options opts) : impl_(std::make_unique<impl>(std::move(opts))) {}

http_engine::~http_engine() = default;

uint64_t http_engine::submit(http_request request, completion done) {
  return impl_->submit(std::move(request), std::move(done));
}

void http_engine::cancel(uint64_t id) { impl_->post(impl::cancel_command{id}); }

void http_engine::resume(uint64_t id) { impl_->post(impl::resume_command{id}); }

std::vector<host_pace> http_engine::host_paces(std::chrono::milliseconds wait) const {
  auto answer = std::make_shared<std::promise<std::vector<host_pace>>>();
  auto future = answer->get_future();
  impl_->post(impl::pace_command{answer});
  // A loop that has shut down drops the command, and with it the promise.
  if (future.wait_for(wait) != std::future_status::ready)
    return {};
  try {
    return future.get();
  } catch (const std::future_error&) {
    return {};
  }
}

http_engine::stats http_engine::current_stats() const {
  return {impl_->transfers.load(std::memory_order_relaxed),
          impl_->connections.load(std::memory_order_relaxed)};
}

} // namespace ferry
