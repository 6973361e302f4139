#include "simulations/lfs_server/server.hpp"

#include "protocol/parsing.hpp"
#include "protocol/retry_after.hpp"
#include "protocol/transfer_protocol.hpp"
#include "store/os/sha256.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <sstream>

namespace ferry::sim {

namespace {

/// When the request being handled on this thread arrived (its head was read).
thread_local std::chrono::system_clock::time_point request_arrival;

/// cpp-httplib listens with a backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG, built
/// into Debian's library). 64 clients connecting at once overflow it; the
/// kernel then falls back to SYN cookies and some connections are reset, as
/// no real server (nginx: 511) would do. So the listening socket on `port`
/// is found among this process's descriptors and given the system's limit.
bool raise_listen_backlog(int port) {
  DIR* fds = ::opendir("/proc/self/fd");
  if (fds == nullptr)
    return false;
  bool raised = false;
  while (dirent* entry = ::readdir(fds)) {
    int fd = std::atoi(entry->d_name);
    int listening = 0;
    socklen_t length = sizeof listening;
    sockaddr_in address{};
    socklen_t address_length = sizeof address;
    if (fd <= 2 || ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) != 0 ||
        listening == 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &address_length) != 0 ||
        address.sin_family != AF_INET || ntohs(address.sin_port) != port)
      continue;
    raised = ::listen(fd, SOMAXCONN) == 0;
  }
  ::closedir(fds);
  return raised;
}

namespace fs = std::filesystem;
using nlohmann::json;
using steady = std::chrono::steady_clock;

constexpr const char* lfs_media_type = "application/vnd.git-lfs+json";
/// Batch and verify bodies are kept in memory; anything larger is refused.
constexpr size_t max_json_body = 16u << 20;
constexpr size_t max_batch_objects = 10000;
constexpr int64_t action_lifetime_s = 3600;
constexpr size_t io_chunk = 64 * 1024;
/// Sent in every action's "header"; storage requests without it are counted
/// in /stats (events.missing_action_header), which shows whether a client
/// forwards action headers.
constexpr const char* action_header = "X-Ferry-Sim-Action";

/// Serialises JSON without throwing on invalid UTF-8 (clients may send any
/// bytes, and some are echoed back in messages).
std::string dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

/// Hostile input may be long; the start is enough to recognise it.
std::string shown(const std::string& text) {
  return text.size() > 80 ? text.substr(0, 80) + "..." : text;
}

std::string format_utc(std::time_t when, const char* format) {
  std::tm parts{};
  gmtime_r(&when, &parts);
  char buffer[64];
  size_t n = std::strftime(buffer, sizeof buffer, format, &parts);
  return std::string(buffer, n);
}

/// RFC 7231 IMF-fixdate, as Retry-After dates use.
std::string http_date(std::time_t when) { return format_utc(when, "%a, %d %b %Y %H:%M:%S GMT"); }

/// RFC 3339, as the Batch API's expires_at uses.
std::string rfc3339(std::time_t when) { return format_utc(when, "%Y-%m-%dT%H:%M:%SZ"); }

/// "ok" for media types a JSON client may send; lenient on purpose (curl
/// users send application/json or nothing, git-lfs the LFS type with an
/// optional charset).
bool json_compatible(const std::string& media_type) {
  return media_type.empty() || media_type.find("json") != std::string::npos ||
         media_type.find("*/*") != std::string::npos;
}

/// Owns a file descriptor.
class file_handle {
public:
  explicit file_handle(int fd) : fd_(fd) {}
  ~file_handle() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  file_handle(const file_handle&) = delete;
  file_handle& operator=(const file_handle&) = delete;
  int get() const { return fd_; }

private:
  int fd_;
};

bool write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

/// Where a response body's bytes come from: a JSON text or an object file.
struct body_source {
  std::shared_ptr<const std::string> text;
  std::shared_ptr<file_handle> file;
  /// Offset of the body's first byte in the resource (a Range start).
  int64_t base = 0;
  int64_t length = 0;

  /// Copies body bytes [offset, offset + size); false on a read error or a
  /// file that shrank underneath.
  bool read(int64_t offset, char* out, size_t size) const {
    if (text) {
      std::memcpy(out, text->data() + base + offset, size);
      return true;
    }
    size_t done = 0;
    while (done < size) {
      ssize_t n = ::pread(file->get(), out + done, size - done,
                          static_cast<off_t>(base + offset + static_cast<int64_t>(done)));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }
};

/// A single "bytes=" range resolved against an object's size.
struct byte_range {
  /// False when there is no Range header or it is ignored (other units,
  /// several ranges, bad syntax): the whole object is sent with 200.
  bool present = false;
  bool satisfiable = true;
  int64_t first = 0;
  int64_t last = 0;
};

bool parse_decimal(const std::string& text, int64_t& out) {
  // 18 digits always fit an int64_t.
  if (text.empty() || text.size() > 18 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  out = std::stoll(text);
  return true;
}

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string::npos)
    return {};
  const auto last = text.find_last_not_of(" \t");
  return text.substr(first, last - first + 1);
}

byte_range parse_range(const std::string& header, int64_t size) {
  byte_range range;
  const std::string unit = "bytes=";
  if (header.compare(0, unit.size(), unit) != 0)
    return range;
  const std::string spec = trim(header.substr(unit.size()));
  // Several ranges may be answered with the whole object (RFC 7233 4.1).
  if (spec.find(',') != std::string::npos)
    return range;
  const auto dash = spec.find('-');
  if (dash == std::string::npos)
    return range;
  const std::string from = trim(spec.substr(0, dash));
  const std::string to = trim(spec.substr(dash + 1));
  int64_t first = 0;
  int64_t last = 0;
  if (from.empty()) { // "-n": the last n bytes
    if (!parse_decimal(to, last))
      return range;
    range.present = true;
    if (last == 0 || size == 0) {
      range.satisfiable = false;
      return range;
    }
    range.first = std::max<int64_t>(0, size - last);
    range.last = size - 1;
    return range;
  }
  if (!parse_decimal(from, first))
    return range;
  if (!to.empty() && (!parse_decimal(to, last) || last < first))
    return range;
  range.present = true;
  if (first >= size) {
    range.satisfiable = false;
    return range;
  }
  range.first = first;
  range.last = to.empty() ? size - 1 : std::min(last, size - 1);
  return range;
}

int port_of(const sockaddr_storage& address) {
  if (address.ss_family == AF_INET)
    return ntohs(reinterpret_cast<const sockaddr_in&>(address).sin_port);
  if (address.ss_family == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6&>(address).sin6_port);
  return -1;
}

/// Resets the request's TCP connection so the client sees it drop instead
/// of getting an answer. cpp-httplib does not hand the socket to handlers,
/// so it is found among this process's descriptors by the connection's two
/// ports. Returns false when it cannot be found (then the caller's answer
/// is sent as usual).
bool reset_connection(const httplib::Request& req) {
  DIR* fds = ::opendir("/proc/self/fd");
  if (fds == nullptr)
    return false;
  bool found = false;
  while (dirent* entry = ::readdir(fds)) {
    char* end = nullptr;
    const long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || fd == ::dirfd(fds))
      continue;
    sockaddr_storage local{};
    sockaddr_storage peer{};
    socklen_t local_size = sizeof local;
    socklen_t peer_size = sizeof peer;
    const int sock = static_cast<int>(fd);
    if (::getsockname(sock, reinterpret_cast<sockaddr*>(&local), &local_size) != 0 ||
        ::getpeername(sock, reinterpret_cast<sockaddr*>(&peer), &peer_size) != 0)
      continue;
    if (port_of(local) != req.local_port || port_of(peer) != req.remote_port)
      continue;
    // Linger 0 turns the close that follows into an RST.
    linger hard{1, 0};
    ::setsockopt(sock, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    ::shutdown(sock, SHUT_RDWR);
    found = true;
    break;
  }
  ::closedir(fds);
  return found;
}

/// Lets long waits (stalls, throttling) end early when the server stops.
class stop_signal {
public:
  /// Waits until `deadline`; false when the server is stopping.
  bool wait_until(steady::time_point deadline) {
    std::unique_lock<std::mutex> lock(mutex_);
    return !changed_.wait_until(lock, deadline, [this] { return stopped_; });
  }
  bool wait_for(std::chrono::milliseconds duration) { return wait_until(steady::now() + duration); }
  void trigger() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopped_ = true;
    }
    changed_.notify_all();
  }

private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool stopped_ = false;
};

/// The numbers /stats reports.
class counters {
public:
  counters() {
    // Every known key is present from the start so tests can read counts
    // without guarding against missing keys.
    for (const char* key : {"batch", "download", "upload", "verify", "health", "stats", "other"})
      groups_["requests"][key] = 0;
    for (const char* key :
         {"status", "retry_after", "reset_after_bytes", "truncate_at", "corrupt_byte_at",
          "stall_ms", "bandwidth_bytes_per_s", "expired_actions", "object_error"})
      groups_["faults"][key] = 0;
    for (const char* key :
         {"stored", "hash_mismatch", "size_mismatch", "range_requests", "range_unsatisfiable",
          "missing_action_header", "verify_ok", "verify_missing", "malformed_requests"})
      groups_["events"][key] = 0;
    groups_["fault_statuses"];
    groups_["puts"];
    groups_["gets"];
  }

  void add(const std::string& group, const std::string& key, int64_t n = 1) {
    std::lock_guard<std::mutex> lock(mutex_);
    groups_[group][key] += n;
  }

  void add_bytes(bool sent, int64_t n) {
    std::lock_guard<std::mutex> lock(mutex_);
    (sent ? bytes_sent_ : bytes_received_) += n;
  }

  json to_json() const {
    std::lock_guard<std::mutex> lock(mutex_);
    json out = json::object();
    for (const auto& [group, values] : groups_) {
      json entries = json::object();
      for (const auto& [key, n] : values)
        entries[key] = n;
      out[group] = std::move(entries);
    }
    out["bytes_sent"] = bytes_sent_;
    out["bytes_received"] = bytes_received_;
    return out;
  }

private:
  mutable std::mutex mutex_;
  std::map<std::string, std::map<std::string, int64_t>> groups_;
  int64_t bytes_sent_ = 0;
  int64_t bytes_received_ = 0;
};

/// Progress of one streamed response body.
struct send_state {
  body_source source;
  fault inject;
  endpoint where = endpoint::download;
  std::string oid;
  /// Where the body is cut short, and which fault does it.
  std::optional<int64_t> cut;
  const char* cut_kind = "";
  bool started = false;
  bool stalled = false;
  steady::time_point start;
  std::vector<char> buffer;
};

} // namespace

struct lfs_server::impl {
  server_options options;
  scenario faults;
  std::mutex faults_mutex;
  int port = 0;
  std::atomic<bool> finished{false};
  std::atomic<bool> stop_requested{false};
  stop_signal stopping;
  counters stats;
  std::mutex log_mutex;
  std::ofstream log;
  std::mutex sizes_mutex;
  /// The size each oid was last announced with in an upload batch.
  std::map<std::string, int64_t> declared_sizes;
  std::atomic<uint64_t> serial{0};
  /// Last, so it is destroyed first: its handlers use the members above.
  httplib::Server http;

  using Request = httplib::Request;
  using Response = httplib::Response;

  impl(server_options opts, scenario scripted)
      : options(std::move(opts)), faults(std::move(scripted)) {}

  // ---- bookkeeping ------------------------------------------------------------

  void log_line(const std::string& text) {
    if (!log.is_open())
      return;
    const auto now = std::chrono::system_clock::now();
    const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    char millis[8];
    std::snprintf(millis, sizeof millis, ".%03d", static_cast<int>(ms));
    // Paths come from clients: keep control characters out of the log.
    std::string line = text;
    for (char& c : line) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
        c = '?';
    }
    std::lock_guard<std::mutex> lock(log_mutex);
    log << format_utc(std::chrono::system_clock::to_time_t(now), "%Y-%m-%dT%H:%M:%S") << millis
        << "Z " << line << '\n';
    log.flush();
  }

  void note_fault(const char* kind, endpoint where, const std::string& oid,
                  const std::string& detail = {}) {
    stats.add("faults", kind);
    log_line(std::string("fault ") + kind + (detail.empty() ? "" : "=" + detail) + " on " +
             to_string(where) + (oid.empty() ? "" : " " + oid));
  }

  decision decide(const request_facts& facts) {
    std::lock_guard<std::mutex> lock(faults_mutex);
    return faults.decide(facts);
  }

  static bool authorized(const httplib::Request& req) { return req.has_header("Authorization"); }

  void check_action_header(const httplib::Request& req) {
    if (!req.has_header(action_header))
      stats.add("events", "missing_action_header");
  }

  /// Where actions' hrefs point: this server, or with hrefs_follow_host the
  /// port of the request's Host header (a client that came through a proxy
  /// keeps using it); a Host without a valid port falls back to this server.
  std::string base_url(const httplib::Request& req, const std::string& prefix) const {
    int href_port = port;
    if (options.hrefs_follow_host) {
      const std::string host = req.get_header_value("Host");
      const auto colon = host.rfind(':');
      const std::string digits = colon == std::string::npos ? "" : host.substr(colon + 1);
      if (!digits.empty() && digits.size() <= 5 &&
          std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        const int value = std::stoi(digits);
        if (value > 0 && value <= 65535)
          href_port = value;
      }
    }
    return "http://127.0.0.1:" + std::to_string(href_port) + prefix;
  }

  fs::path object_path(const std::string& oid) const {
    return options.root / oid.substr(0, 2) / oid.substr(2, 2) / oid;
  }

  /// The stored size of an object, or nullopt when it is not stored.
  std::optional<int64_t> stored_size(const std::string& oid) const {
    struct ::stat info {};
    if (::stat(object_path(oid).c_str(), &info) != 0 || !S_ISREG(info.st_mode))
      return std::nullopt;
    return static_cast<int64_t>(info.st_size);
  }

  // ---- answers ----------------------------------------------------------------

  void json_error(httplib::Response& res, int code, const std::string& message) {
    res.status = code;
    json body = {{"message", message}, {"request_id", "sim-" + std::to_string(++serial)}};
    res.set_content(dump(body), lfs_media_type);
  }

  /// Reads and discards a request body so the connection stays usable.
  static void drain(const httplib::ContentReader& reader) {
    reader([](const char*, size_t) { return true; });
  }

  /// Reads a JSON request body of at most max_json_body bytes. On failure
  /// the error answer is already set and nullopt is returned.
  std::optional<json> read_json(const httplib::ContentReader& reader, httplib::Response& res) {
    std::string body;
    bool too_big = false;
    const bool complete = reader([&](const char* data, size_t size) {
      if (body.size() + size > max_json_body)
        too_big = true; // keep reading so the connection stays in step
      else
        body.append(data, size);
      return true;
    });
    if (too_big) {
      json_error(res, 413,
                 "request body is larger than " + std::to_string(max_json_body) + " bytes");
      return std::nullopt;
    }
    if (!complete) {
      json_error(res, 400, "request body ended early");
      return std::nullopt;
    }
    json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) {
      stats.add("events", "malformed_requests");
      json_error(res, 400, "request body is not valid JSON");
      return std::nullopt;
    }
    return doc;
  }

  /// Waits out a stall that happens before the answer.
  void stall_up_front(const fault& f, endpoint where, const std::string& oid) {
    if (!f.stall_ms || f.stall_after_bytes)
      return;
    note_fault("stall_ms", where, oid, std::to_string(*f.stall_ms));
    (void)stopping.wait_for(std::chrono::milliseconds(*f.stall_ms));
  }

  /// Answers with the fault's status if it has one; true when it did.
  bool answer_status(httplib::Response& res, const fault& f, endpoint where,
                     const std::string& oid) {
    if (!f.status)
      return false;
    const int code = *f.status;
    stall_up_front(f, where, oid);
    note_fault("status", where, oid, std::to_string(code));
    stats.add("fault_statuses", std::to_string(code));
    if (f.retry_after) {
      res.set_header("Retry-After", *f.retry_after);
      note_fault("retry_after", where, oid, *f.retry_after);
    } else if (f.retry_after_date_in) {
      const std::string when = http_date(std::time(nullptr) + *f.retry_after_date_in);
      res.set_header("Retry-After", when);
      note_fault("retry_after", where, oid, when);
    }
    if (code == 401) {
      // git-lfs reads LFS-Authenticate; other clients look at WWW-Authenticate.
      res.set_header("LFS-Authenticate", "Basic realm=\"ferry-lfs-sim\"");
      res.set_header("WWW-Authenticate", "Basic realm=\"ferry-lfs-sim\"");
    }
    json_error(res, code, "injected fault: HTTP " + std::to_string(code));
    return true;
  }

  /// Sends `source` as the body, shaped by the body faults (truncation,
  /// reset, corruption, mid-body stall, throttling).
  void stream_body(httplib::Response& res, int code, const std::string& content_type,
                   body_source source, const fault& f, endpoint where, const std::string& oid) {
    res.status = code;
    const int64_t length = source.length;
    if (length == 0) {
      res.set_content(std::string(), content_type);
      return;
    }
    auto state = std::make_shared<send_state>();
    state->source = std::move(source);
    state->inject = f;
    state->where = where;
    state->oid = oid;
    if (f.truncate_at && *f.truncate_at < length) {
      state->cut = *f.truncate_at;
      state->cut_kind = "truncate_at";
    }
    if (f.reset_after_bytes && *f.reset_after_bytes < length &&
        (!state->cut || *f.reset_after_bytes < *state->cut)) {
      state->cut = *f.reset_after_bytes;
      state->cut_kind = "reset_after_bytes";
    }
    res.set_content_provider(
      static_cast<size_t>(length), content_type,
      [this, state](size_t offset, size_t remaining, httplib::DataSink& sink) {
        return send_step(*state, static_cast<int64_t>(offset), remaining, sink);
      });
  }

  /// Writes the next piece of a streamed body. Returning false makes
  /// cpp-httplib drop the connection, which is how cuts are injected.
  bool send_step(send_state& st, int64_t offset, size_t remaining, httplib::DataSink& sink) {
    const fault& f = st.inject;
    if (!st.started) {
      st.started = true;
      st.start = steady::now();
      if (f.bandwidth_bytes_per_s)
        note_fault("bandwidth_bytes_per_s", st.where, st.oid,
                   std::to_string(*f.bandwidth_bytes_per_s));
    }
    const bool stall_pending = f.stall_ms && f.stall_after_bytes && !st.stalled;
    if (stall_pending && offset >= *f.stall_after_bytes) {
      st.stalled = true;
      note_fault("stall_ms", st.where, st.oid,
                 std::to_string(*f.stall_ms) + "@" + std::to_string(offset));
      if (!stopping.wait_for(std::chrono::milliseconds(*f.stall_ms)))
        return false;
    }
    if (st.cut && offset >= *st.cut) {
      note_fault(st.cut_kind, st.where, st.oid, std::to_string(offset));
      return false;
    }
    int64_t size = static_cast<int64_t>(std::min(remaining, io_chunk));
    if (st.cut)
      size = std::min(size, *st.cut - offset);
    if (stall_pending && *f.stall_after_bytes > offset)
      size = std::min(size, *f.stall_after_bytes - offset);
    if (f.bandwidth_bytes_per_s) {
      // Pieces of ~50 ms keep the rate smooth; pacing is against the start
      // so rounding errors do not add up.
      const int64_t rate = *f.bandwidth_bytes_per_s;
      size = std::max<int64_t>(1, std::min(size, rate / 20));
      const auto due =
        st.start + std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(
                     static_cast<double>(offset + size) / static_cast<double>(rate)));
      if (!stopping.wait_until(due))
        return false;
    }
    st.buffer.resize(static_cast<size_t>(size));
    if (!st.source.read(offset, st.buffer.data(), st.buffer.size()))
      return false;
    if (f.corrupt_byte_at) {
      const int64_t at = *f.corrupt_byte_at - st.source.base;
      if (at >= offset && at < offset + size) {
        st.buffer[static_cast<size_t>(at - offset)] ^= static_cast<char>(0xff);
        note_fault("corrupt_byte_at", st.where, st.oid, std::to_string(*f.corrupt_byte_at));
      }
    }
    if (!sink.write(st.buffer.data(), st.buffer.size()))
      return false;
    if (st.where == endpoint::download)
      stats.add_bytes(true, size);
    return true;
  }

  // ---- endpoints --------------------------------------------------------------

  /// Keeps a client-supplied path prefix in generated hrefs only when it is
  /// plainly safe to paste into a URL.
  static std::string safe_prefix(const std::string& prefix) {
    const bool safe = prefix.size() < 512 &&
                      std::all_of(prefix.begin(), prefix.end(),
                                  [](char c) {
                                    return std::isalnum(static_cast<unsigned char>(c)) ||
                                           c == '/' || c == '.' || c == '-' || c == '_' || c == '~';
                                  }) &&
                      prefix.find("..") == std::string::npos;
    return safe ? prefix : std::string();
  }

  json action(const std::string& href, const std::string& operation, bool expired) const {
    json a = {{"href", href}, {"header", {{action_header, operation}}}};
    if (expired) {
      // git-lfs treats expires_in 0 as unset and falls back to expires_at.
      a["expires_in"] = 0;
      a["expires_at"] = rfc3339(std::time(nullptr) - 3600);
    } else {
      a["expires_in"] = action_lifetime_s;
    }
    return a;
  }

  void handle_batch(const httplib::Request& req, httplib::Response& res,
                    const httplib::ContentReader& reader) {
    stats.add("requests", "batch");
    const std::string content_type = req.get_header_value("Content-Type");
    const std::string accept = req.get_header_value("Accept");
    if (!json_compatible(content_type)) {
      drain(reader);
      json_error(res, 415, "Content-Type must be " + std::string(lfs_media_type));
      return;
    }
    if (!json_compatible(accept)) {
      drain(reader);
      json_error(res, 406, "Accept must allow " + std::string(lfs_media_type));
      return;
    }
    auto doc = read_json(reader, res);
    if (!doc)
      return;
    auto reject = [&](const std::string& message) {
      stats.add("events", "malformed_requests");
      json_error(res, 422, message);
    };
    if (!doc->is_object())
      return reject("batch request must be a JSON object");
    const auto op = doc->find("operation");
    if (op == doc->end() || !op->is_string() || (*op != "upload" && *op != "download"))
      return reject("\"operation\" must be \"upload\" or \"download\"");
    const std::string operation = op->get<std::string>();
    const auto objects = doc->find("objects");
    if (objects == doc->end() || !objects->is_array())
      return reject("\"objects\" must be an array");
    if (objects->size() > max_batch_objects) {
      json_error(res, 413, "at most " + std::to_string(max_batch_objects) + " objects per batch");
      return;
    }

    std::string transfer = "basic";
    if (auto it = doc->find("transfers"); it != doc->end() && !it->is_null()) {
      if (!it->is_array())
        return reject("\"transfers\" must be an array of names");
      bool basic = it->empty(); // an empty list means the default
      bool offered = false;
      for (const auto& name : *it) {
        if (!name.is_string())
          return reject("\"transfers\" must be an array of names");
        basic = basic || name == "basic";
        offered = offered || (!options.offer_transfer.empty() && name == options.offer_transfer);
      }
      if (offered)
        transfer = options.offer_transfer;
      else if (!basic)
        return reject("no common transfer adapter: the server speaks basic" +
                      (options.offer_transfer.empty() ? "" : " and " + options.offer_transfer));
    }
    bool hash_ok = true;
    if (auto it = doc->find("hash_algo"); it != doc->end() && !it->is_null())
      hash_ok = it->is_string() && *it == "sha256";

    request_facts facts;
    facts.where = endpoint::batch;
    facts.operation = operation;
    facts.authorized = authorized(req);
    for (const auto& object : *objects) {
      if (!object.is_object())
        continue;
      auto oid = object.find("oid");
      if (oid != object.end() && oid->is_string() &&
          protocol::is_valid_oid(oid->get<std::string>()))
        facts.oids.push_back(oid->get<std::string>());
    }
    const decision chosen = decide(facts);
    if (answer_status(res, chosen.request, endpoint::batch, ""))
      return;

    const std::string base =
      base_url(req, safe_prefix(req.matches.size() > 1 ? req.matches[1].str() : ""));
    json answers = json::array();
    for (const auto& object : *objects) {
      answers.push_back(batch_object(object, operation, hash_ok, chosen, base));
    }
    json reply = {{"transfer", transfer}, {"objects", std::move(answers)}, {"hash_algo", "sha256"}};
    stall_up_front(chosen.request, endpoint::batch, "");
    body_source source;
    auto text = std::make_shared<const std::string>(dump(reply));
    source.length = static_cast<int64_t>(text->size());
    source.text = std::move(text);
    stream_body(res, 200, lfs_media_type, std::move(source), chosen.request, endpoint::batch, "");
  }

  json batch_object(const json& object, const std::string& operation, bool hash_ok,
                    const decision& chosen, const std::string& base) {
    auto failed = [](json answer, int code, const std::string& message) {
      answer["error"] = {{"code", code}, {"message", message}};
      return answer;
    };
    json answer = {{"oid", ""}, {"size", 0}};
    if (!object.is_object())
      return failed(answer, 422, "each object must be a JSON object");
    std::string oid;
    if (auto it = object.find("oid"); it != object.end() && it->is_string()) {
      oid = it->get<std::string>();
      answer["oid"] = shown(oid);
    }
    std::optional<int64_t> size;
    if (auto it = object.find("size"); it != object.end())
      size = protocol::as_int64(*it);
    if (size && *size >= 0)
      answer["size"] = *size;
    if (!protocol::is_valid_oid(oid))
      return failed(answer, 422, "invalid oid: expected 64 lower-case hex characters");
    if (!size || *size < 0)
      return failed(answer, 422, "invalid size: expected a non-negative integer");
    if (!hash_ok)
      return failed(answer, 409, "unsupported hash_algo: this server uses sha256");

    const fault per_object = chosen.for_object(oid);
    if (per_object.object_error) {
      note_fault("object_error", endpoint::batch, oid, std::to_string(*per_object.object_error));
      return failed(answer, *per_object.object_error,
                    "injected fault: object error " + std::to_string(*per_object.object_error));
    }
    const auto stored = stored_size(oid);
    if (stored && *stored != *size)
      return failed(answer, 422,
                    "size " + std::to_string(*size) + " does not match the stored object's " +
                      std::to_string(*stored));
    const bool expired = per_object.expired_actions;
    const std::string storage = base + "/storage/" + oid;
    if (operation == "download") {
      if (!stored)
        return failed(answer, 404, "object not found");
      if (expired)
        note_fault("expired_actions", endpoint::batch, oid);
      answer["actions"] = {{"download", action(storage, "download", expired)}};
      return answer;
    }
    if (stored)
      return answer; // already there: no actions, the client skips it
    {
      std::lock_guard<std::mutex> lock(sizes_mutex);
      declared_sizes[oid] = *size;
    }
    if (expired)
      note_fault("expired_actions", endpoint::batch, oid);
    answer["actions"] = {{"upload", action(storage, "upload", expired)},
                         {"verify", action(base + "/verify", "verify", expired)}};
    return answer;
  }

  void handle_download(const httplib::Request& req, httplib::Response& res) {
    stats.add("requests", "download");
    const std::string oid = req.matches.size() > 2 ? req.matches[2].str() : "";
    if (!protocol::is_valid_oid(oid)) {
      stats.add("events", "malformed_requests");
      json_error(res, 400, "invalid oid '" + shown(oid) + "'");
      return;
    }
    stats.add("gets", oid);
    check_action_header(req);
    const decision chosen = decide({endpoint::download, "download", {oid}, authorized(req)});
    const fault& f = chosen.request;
    if (answer_status(res, f, endpoint::download, oid))
      return;
    const int fd = ::open(object_path(oid).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      json_error(res, errno == ENOENT ? 404 : 500,
                 errno == ENOENT ? "object not found"
                                 : std::string("cannot open object: ") + std::strerror(errno));
      return;
    }
    auto file = std::make_shared<file_handle>(fd);
    struct ::stat info {};
    if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
      json_error(res, 404, "object not found");
      return;
    }
    const int64_t size = static_cast<int64_t>(info.st_size);
    res.set_header("Accept-Ranges", "bytes");
    const byte_range range = parse_range(req.get_header_value("Range"), size);
    if (range.present && !range.satisfiable) {
      stats.add("events", "range_unsatisfiable");
      res.set_header("Content-Range", "bytes */" + std::to_string(size));
      json_error(res, 416,
                 "range not satisfiable for an object of " + std::to_string(size) + " bytes");
      return;
    }
    body_source source;
    source.file = std::move(file);
    source.base = range.present ? range.first : 0;
    source.length = range.present ? range.last - range.first + 1 : size;
    if (range.present) {
      stats.add("events", "range_requests");
      res.set_header("Content-Range", "bytes " + std::to_string(range.first) + "-" +
                                        std::to_string(range.last) + "/" + std::to_string(size));
    }
    stall_up_front(f, endpoint::download, oid);
    stream_body(res, range.present ? 206 : 200, "application/octet-stream", std::move(source), f,
                endpoint::download, oid);
  }

  void handle_upload(const httplib::Request& req, httplib::Response& res,
                     const httplib::ContentReader& reader) {
    stats.add("requests", "upload");
    const std::string oid = req.matches.size() > 2 ? req.matches[2].str() : "";
    if (!protocol::is_valid_oid(oid)) {
      stats.add("events", "malformed_requests");
      drain(reader);
      json_error(res, 400, "invalid oid '" + shown(oid) + "'");
      return;
    }
    stats.add("puts", oid);
    check_action_header(req);
    const decision chosen = decide({endpoint::upload, "upload", {oid}, authorized(req)});
    const fault& f = chosen.request;
    if (f.status) {
      drain(reader);
      answer_status(res, f, endpoint::upload, oid);
      return;
    }

    const fs::path final_path = object_path(oid);
    std::error_code ec;
    fs::create_directories(final_path.parent_path(), ec);
    // A private temp name per request: concurrent or retried PUTs of one
    // oid never write into each other's file.
    const fs::path temp_path =
      final_path.parent_path() / ("." + oid + ".sim-" + std::to_string(::getpid()) + "-" +
                                  std::to_string(++serial) + ".partial");
    const int fd =
      ec ? -1 : ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
      const int error = ec ? ec.value() : errno;
      drain(reader);
      json_error(res, error == ENOSPC ? 507 : 500,
                 "cannot store object: " + std::string(std::strerror(error)));
      return;
    }
    file_handle out(fd);
    bool keep = false;
    struct remove_unless_kept {
      const fs::path& path;
      const bool& keep;
      ~remove_unless_kept() {
        if (!keep)
          ::unlink(path.c_str());
      }
    } cleanup{temp_path, keep};

    ferry::sha256 hash;
    int64_t received = 0;
    int write_error = 0;
    bool reset = false;
    bool stalled = false;
    const auto start = steady::now();
    std::vector<char> copy;
    const bool complete = reader([&](const char* data, size_t size) {
      size_t done = 0;
      while (done < size) {
        int64_t piece = static_cast<int64_t>(size - done);
        if (f.reset_after_bytes) {
          if (received >= *f.reset_after_bytes) {
            reset = true;
            return false;
          }
          piece = std::min(piece, *f.reset_after_bytes - received);
        }
        if (f.stall_ms && f.stall_after_bytes && !stalled) {
          if (received >= *f.stall_after_bytes) {
            stalled = true;
            note_fault("stall_ms", endpoint::upload, oid,
                       std::to_string(*f.stall_ms) + "@" + std::to_string(received));
            if (!stopping.wait_for(std::chrono::milliseconds(*f.stall_ms)))
              return false;
          } else {
            piece = std::min(piece, *f.stall_after_bytes - received);
          }
        }
        const char* bytes = data + done;
        if (f.corrupt_byte_at && *f.corrupt_byte_at >= received &&
            *f.corrupt_byte_at < received + piece) {
          copy.assign(bytes, bytes + piece);
          copy[static_cast<size_t>(*f.corrupt_byte_at - received)] ^= static_cast<char>(0xff);
          bytes = copy.data();
          note_fault("corrupt_byte_at", endpoint::upload, oid, std::to_string(*f.corrupt_byte_at));
        }
        hash.update(bytes, static_cast<size_t>(piece));
        if (!write_all(fd, bytes, static_cast<size_t>(piece))) {
          write_error = errno;
          return false;
        }
        received += piece;
        done += static_cast<size_t>(piece);
        stats.add_bytes(false, piece);
        if (f.bandwidth_bytes_per_s) {
          const auto due =
            start +
            std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(
              static_cast<double>(received) / static_cast<double>(*f.bandwidth_bytes_per_s)));
          if (!stopping.wait_until(due))
            return false;
        }
      }
      return true;
    });
    if (f.bandwidth_bytes_per_s && received > 0)
      note_fault("bandwidth_bytes_per_s", endpoint::upload, oid,
                 std::to_string(*f.bandwidth_bytes_per_s));
    if (reset) {
      note_fault("reset_after_bytes", endpoint::upload, oid, std::to_string(received));
      if (!reset_connection(req))
        json_error(res, 500, "injected fault: connection reset");
      return;
    }
    if (!complete) {
      if (write_error != 0)
        json_error(res, write_error == ENOSPC ? 507 : 500,
                   "cannot store object: " + std::string(std::strerror(write_error)));
      else
        json_error(res, 400, "request body ended early");
      return;
    }
    std::optional<int64_t> declared;
    {
      std::lock_guard<std::mutex> lock(sizes_mutex);
      if (auto it = declared_sizes.find(oid); it != declared_sizes.end())
        declared = it->second;
    }
    stall_up_front(f, endpoint::upload, oid);
    if (declared && *declared != received) {
      stats.add("events", "size_mismatch");
      json_error(res, 422,
                 "received " + std::to_string(received) + " bytes, the batch declared " +
                   std::to_string(*declared));
      return;
    }
    const std::string digest = hash.hex_digest();
    if (digest != oid) {
      stats.add("events", "hash_mismatch");
      json_error(res, 422, "content hashes to " + digest + ", not to its oid");
      return;
    }
    if (::rename(temp_path.c_str(), final_path.c_str()) != 0) {
      json_error(res, 500, "cannot store object: " + std::string(std::strerror(errno)));
      return;
    }
    keep = true;
    stats.add("events", "stored");
    log_line("stored " + oid + " (" + std::to_string(received) + " bytes)");
    res.status = 200;
  }

  void handle_verify(const httplib::Request& req, httplib::Response& res,
                     const httplib::ContentReader& reader) {
    stats.add("requests", "verify");
    auto doc = read_json(reader, res);
    if (!doc)
      return;
    std::string oid;
    std::optional<int64_t> size;
    if (doc->is_object()) {
      if (auto it = doc->find("oid"); it != doc->end() && it->is_string())
        oid = it->get<std::string>();
      if (auto it = doc->find("size"); it != doc->end())
        size = protocol::as_int64(*it);
    }
    if (!protocol::is_valid_oid(oid) || !size || *size < 0) {
      stats.add("events", "malformed_requests");
      json_error(res, 422, "verify needs {\"oid\": <64 lower-case hex>, \"size\": <integer >= 0>}");
      return;
    }
    check_action_header(req);
    const decision chosen = decide({endpoint::verify, "upload", {oid}, authorized(req)});
    const fault& f = chosen.request;
    if (answer_status(res, f, endpoint::verify, oid))
      return;
    stall_up_front(f, endpoint::verify, oid);
    const auto stored = stored_size(oid);
    if (!stored || *stored != *size) {
      stats.add("events", "verify_missing");
      json_error(res, 404,
                 stored ? "stored object has " + std::to_string(*stored) + " bytes"
                        : "object not found");
      return;
    }
    stats.add("events", "verify_ok");
    body_source source;
    auto text = std::make_shared<const std::string>(dump({{"oid", oid}, {"size", *size}}));
    source.length = static_cast<int64_t>(text->size());
    source.text = std::move(text);
    stream_body(res, 200, lfs_media_type, std::move(source), f, endpoint::verify, oid);
  }

  void install_routes() {
    using httplib::ContentReader;
    using httplib::Request;
    using httplib::Response;

    http.Get("/health", [this](const Request&, Response& res) {
      stats.add("requests", "health");
      res.set_content(dump({{"status", "ok"}, {"port", port}}), "application/json");
    });
    http.Get("/stats", [this](const Request&, Response& res) {
      stats.add("requests", "stats");
      res.set_content(stats.to_json().dump(2) + "\n", "application/json");
    });
    // git-lfs asks the locking API on push; say plainly that there is none
    // (before the generic verify route below claims .../locks/verify).
    auto no_locks = [this](const Request&, Response& res, const ContentReader& reader) {
      stats.add("requests", "other");
      drain(reader);
      json_error(res, 404, "ferry-lfs-sim does not implement the locking API");
    };
    http.Post(R"((.*)/locks(/verify)?)", no_locks);
    http.Post(R"((.*)/objects/batch)",
              [this](const Request& req, Response& res, const ContentReader& reader) {
                handle_batch(req, res, reader);
              });
    http.Post(R"((.*)/verify)",
              [this](const Request& req, Response& res, const ContentReader& reader) {
                handle_verify(req, res, reader);
              });
    http.Get(R"((.*)/storage/([^/]*))",
             [this](const Request& req, Response& res) { handle_download(req, res); });
    http.Put(R"((.*)/storage/([^/]*))",
             [this](const Request& req, Response& res, const ContentReader& reader) {
               handle_upload(req, res, reader);
             });
    auto unknown = [this](const Request& req, Response& res) {
      stats.add("requests", "other");
      json_error(res, 404, "no such endpoint: " + req.method + " " + shown(req.path));
    };
    auto unknown_with_body = [this](const Request& req, Response& res,
                                    const ContentReader& reader) {
      stats.add("requests", "other");
      drain(reader);
      json_error(res, 404, "no such endpoint: " + req.method + " " + shown(req.path));
    };
    http.Get(".*", unknown);
    http.Post(".*", unknown_with_body);
    http.Put(".*", unknown_with_body);
    http.Patch(".*", unknown_with_body);
    http.Delete(".*", unknown_with_body);
  }

  void configure() {
    // Each connection holds a worker for its whole keep-alive life, and git-lfs
    // opens up to lfs.concurrenttransfers (8) at once, plus stalled ones.
    http.new_task_queue = [] { return new httplib::ThreadPool(64); };
    http.set_read_timeout(30, 0);
    http.set_write_timeout(30, 0);
    // Short, so that stop() (which waits for idle keep-alive connections)
    // returns quickly.
    http.set_keep_alive_timeout(2);
    http.set_keep_alive_max_count(1000);
    // Small answers on a kept-alive connection would otherwise wait for the
    // client's delayed ACK (Nagle), adding ~40 ms to every request.
    http.set_tcp_nodelay(true);
    http.set_pre_routing_handler([](const Request& req, Response&) {
      // The head has been read: the request has arrived. The logger runs on
      // the same thread once it is answered.
      request_arrival = std::chrono::system_clock::now();
      // The handlers answer Range themselves (with 416 where due); clearing
      // the library's parsed ranges stops it from slicing those answers a
      // second time. The Request object itself is not const, only the view.
      const_cast<Request&>(req).ranges.clear();
      return httplib::Server::HandlerResponse::Unhandled;
    });
    http.set_exception_handler([this](const Request&, Response& res, std::exception_ptr error) {
      std::string what = "unknown error";
      try {
        if (error)
          std::rethrow_exception(error);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      json_error(res, 500, "internal error: " + what);
    });
    http.set_logger([this](const Request& req, const Response& res) {
      // After an injected reset cpp-httplib still "reads" a few empty
      // requests from the dead socket; they are noise in the log.
      if (req.method.empty())
        return;
      const auto arrived =
        std::chrono::duration_cast<std::chrono::milliseconds>(request_arrival.time_since_epoch())
          .count();
      std::string line = req.method + " " + shown(req.path) + " -> " + std::to_string(res.status) +
                         " arrived_ms=" + std::to_string(arrived);
      // In seconds from now even when it was sent as a date, so a reader of
      // the log needs no date parser (the fault line has the header as sent).
      if (res.has_header("Retry-After")) {
        const std::string value = res.get_header_value("Retry-After");
        auto wait = parse_retry_after(value, std::chrono::system_clock::now());
        // A date's wait comes rounded up; a client may come back at the date
        // itself, so the logged wait must end before it.
        const bool date = value.find_first_not_of("0123456789") != std::string::npos;
        if (wait && date && wait->count() > 0)
          *wait -= std::chrono::seconds(1);
        if (wait)
          line += " retry_after=" + std::to_string(wait->count());
      }
      log_line(line);
    });
    install_routes();
  }
};

lfs_server::lfs_server(server_options options, scenario faults)
    : impl_(std::make_unique<impl>(std::move(options), std::move(faults))) {}

lfs_server::~lfs_server() = default;

status lfs_server::bind() {
  impl& self = *impl_;
  if (self.options.host != "127.0.0.1" && self.options.host != "localhost")
    return {errc::config_error, "refusing to listen on '" + self.options.host +
                                  "': the simulator serves loopback only (127.0.0.1)"};
  if (self.options.port < 0 || self.options.port > 65535)
    return {errc::config_error, "port must be 0-65535"};
  std::error_code ec;
  fs::create_directories(self.options.root, ec);
  if (ec || !fs::is_directory(self.options.root, ec))
    return {errc::config_error, "cannot use " + self.options.root.string() + " as the root"};
  if (!self.options.log_path.empty()) {
    self.log.open(self.options.log_path, std::ios::app);
    if (!self.log)
      return {errc::config_error, "cannot open log file " + self.options.log_path};
  }
  self.configure();
  if (self.options.port == 0) {
    self.port = self.http.bind_to_any_port("127.0.0.1");
    if (self.port <= 0)
      return {errc::unavailable, "cannot bind 127.0.0.1 to a free port"};
  } else {
    if (!self.http.bind_to_port("127.0.0.1", self.options.port))
      return {errc::unavailable,
              "cannot bind 127.0.0.1:" + std::to_string(self.options.port) + " (in use?)"};
    self.port = self.options.port;
  }
  if (!raise_listen_backlog(self.port))
    return {errc::unavailable,
            "cannot raise the listen backlog of 127.0.0.1:" + std::to_string(self.port)};
  self.log_line("listening on http://127.0.0.1:" + std::to_string(self.port));
  std::istringstream rules(self.faults.describe());
  for (std::string line; std::getline(rules, line);)
    self.log_line("scenario: " + line);
  return status::success();
}

int lfs_server::port() const { return impl_->port; }

status lfs_server::run() {
  const bool clean = impl_->http.listen_after_bind();
  impl_->finished = true;
  impl_->log_line("stopped");
  if (!clean && !impl_->stop_requested)
    return {errc::io_error, "the server stopped unexpectedly"};
  return status::success();
}

void lfs_server::stop() {
  impl_->stop_requested = true;
  impl_->stopping.trigger();
  impl_->http.stop();
}

bool lfs_server::finished() const { return impl_->finished; }

} // namespace ferry::sim
