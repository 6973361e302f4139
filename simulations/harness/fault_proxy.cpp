#include "simulations/harness/fault_proxy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

namespace ferry::sim {
namespace {

using clock = std::chrono::steady_clock;

/// Bytes a direction holds read but not yet delivered (see the header).
constexpr size_t max_in_flight = size_t{1} << 20;
/// The largest single read.
constexpr size_t max_chunk = 64 * 1024;

// splitmix64's finaliser: turns (seed, connection, purpose) into independent
// stream states.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// A splitmix64 sequence with the two distributions the proxy needs. Own code
/// (not <random>'s distributions) so the numbers are the same everywhere.
class random_stream {
public:
  random_stream(uint64_t seed, int64_t connection, uint64_t purpose)
      : state_(mix(mix(mix(seed) ^ static_cast<uint64_t>(connection)) ^ purpose)) {}

  uint64_t next() {
    state_ += 0x9e3779b97f4a7c15ULL;
    uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  /// Uniform in [0, 1).
  double unit() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }

  /// Uniform in [low, high], low <= high, without modulo bias.
  int64_t between(int64_t low, int64_t high) {
    uint64_t span = static_cast<uint64_t>(high) - static_cast<uint64_t>(low) + 1;
    if (span == 0) // the whole int64 range
      return static_cast<int64_t>(next());
    // Values below 2^64 mod span would make the low residues more likely.
    uint64_t threshold = (0 - span) % span;
    uint64_t r = next();
    while (r < threshold)
      r = next();
    return static_cast<int64_t>(static_cast<uint64_t>(low) + r % span);
  }

private:
  uint64_t state_;
};

// Stream purposes per connection.
constexpr uint64_t decision_stream = 0;
constexpr uint64_t upstream_jitter = 1;
constexpr uint64_t downstream_jitter = 2;

status invalid(const std::string& field, const std::string& why) {
  return {errc::config_error, "fault proxy: " + field + ": " + why};
}

void set_nodelay(int fd) {
  int on = 1;
  // A proxy that waits for more bytes would add delay nobody asked for.
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

/// Closes `fd` with an RST instead of a FIN.
void reset_socket(int fd) {
  if (fd < 0)
    return;
  linger abort_on_close{1, 0};
  (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
  ::close(fd);
}

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

std::string describe(const blackhole_window& window) {
  return "window " + std::to_string(window.start_ms) + "-" + std::to_string(window.end_ms) + " ms";
}

/// Bytes read from one side, waiting to be delivered to the other. No bytes
/// means the end of the stream.
struct chunk {
  clock::time_point due;
  std::vector<char> bytes;
  size_t offset = 0;
};

/// One direction of a connection.
struct direction {
  explicit direction(random_stream jitter_stream) : jitter(jitter_stream) {}

  std::deque<chunk> queue;
  /// Bytes in `queue` not yet delivered.
  size_t in_flight = 0;
  /// The source ended (or failed in a blackhole): read no more.
  bool read_closed = false;
  /// The end of the stream was delivered.
  bool write_closed = false;
  /// The destination's socket buffer is full: wait for POLLOUT.
  bool blocked = false;
  /// Due time of the last chunk queued, so chunks never overtake.
  clock::time_point last_due{};
  random_stream jitter;
};

struct connection {
  connection(int64_t number, uint64_t seed)
      : id(number), up(random_stream(seed, number, upstream_jitter)),
        down(random_stream(seed, number, downstream_jitter)) {}

  int64_t id;
  int client = -1;
  /// -1 until the proxy connects to the target.
  int target = -1;
  bool connecting = false;
  /// Had bytes in flight during the current blackhole.
  bool hit = false;
  bool done = false;
  reset_decision decision;
  /// Bytes delivered in both directions.
  int64_t delivered = 0;
  direction up;   // client -> target
  direction down; // target -> client
};

} // namespace

const char* to_string(proxy_event::kind what) {
  switch (what) {
    case proxy_event::kind::blackhole_start:
      return "blackhole_start";
    case proxy_event::kind::blackhole_end:
      return "blackhole_end";
    case proxy_event::kind::reset:
      return "reset";
    case proxy_event::kind::blackhole_reset:
      return "blackhole_reset";
  }
  return "unknown";
}

status check_faults(const proxy_faults& faults) {
  if (faults.latency_ms < 0)
    return invalid("latency_ms", "must not be negative, got " + std::to_string(faults.latency_ms));
  if (faults.jitter_ms < 0)
    return invalid("jitter_ms", "must not be negative, got " + std::to_string(faults.jitter_ms));
  if (faults.jitter_ms > faults.latency_ms)
    return invalid("jitter_ms", "must not exceed latency_ms (" + std::to_string(faults.latency_ms) +
                                  "), got " + std::to_string(faults.jitter_ms));
  if (faults.bandwidth_bytes_per_s < 0)
    return invalid("bandwidth_bytes_per_s", "must not be negative (0 is unlimited), got " +
                                              std::to_string(faults.bandwidth_bytes_per_s));
  if (!(faults.reset_probability >= 0.0 && faults.reset_probability <= 1.0))
    return invalid("reset_probability",
                   "must be in [0, 1], got " + std::to_string(faults.reset_probability));
  if (faults.reset_after_min_bytes < 0)
    return invalid("reset_after_min_bytes",
                   "must not be negative, got " + std::to_string(faults.reset_after_min_bytes));
  if (faults.reset_after_max_bytes < faults.reset_after_min_bytes)
    return invalid("reset_after_max_bytes", "must not be below reset_after_min_bytes (" +
                                              std::to_string(faults.reset_after_min_bytes) +
                                              "), got " +
                                              std::to_string(faults.reset_after_max_bytes));
  std::vector<blackhole_window> windows = faults.blackholes;
  for (const auto& window : windows) {
    if (window.start_ms < 0)
      return invalid("blackholes", describe(window) + ": start_ms must not be negative");
    if (window.end_ms <= window.start_ms)
      return invalid("blackholes", describe(window) + ": end_ms must be after start_ms");
  }
  std::sort(windows.begin(), windows.end(),
            [](const auto& a, const auto& b) { return a.start_ms < b.start_ms; });
  for (size_t i = 1; i < windows.size(); ++i)
    if (windows[i].start_ms < windows[i - 1].end_ms)
      return invalid("blackholes",
                     describe(windows[i - 1]) + " and " + describe(windows[i]) + " overlap");
  return status::success();
}

struct fault_proxy::impl {
  explicit impl(proxy_config settings) : config(std::move(settings)) {}

  proxy_config config;
  int listener = -1;
  /// An eventfd that wakes the loop for set_faults() and stop().
  int wake = -1;
  int port = 0;
  clock::time_point started{};
  std::thread thread;
  std::atomic<bool> stopping{false};

  mutable std::mutex mutex;
  // Guarded by mutex.
  proxy_faults next_faults;
  /// set_faults() calls so far, and how many of them the loop has taken.
  uint64_t faults_requested = 0;
  uint64_t faults_taken = 0;
  /// The loop runs (and will take new faults).
  bool looping = false;
  std::condition_variable faults_in_force;
  proxy_stats counters;
  std::vector<reset_decision> decision_log;

  // Owned by the loop thread.
  proxy_faults faults;
  std::vector<std::unique_ptr<connection>> connections;
  int64_t accepted = 0;
  std::optional<blackhole_window> active;
  /// When each direction's link is free again (bandwidth cap); 0 = up.
  clock::time_point link_free[2]{};

  void notify() {
    uint64_t one = 1;
    (void)!::write(wake, &one, sizeof one);
  }

  template <class Update>
  void count(Update update) {
    std::lock_guard<std::mutex> lock(mutex);
    update(counters);
  }

  void emit(proxy_event::kind what, int64_t connection_id, std::string detail) {
    if (!config.on_event)
      return;
    config.on_event(proxy_event{what, unix_ms_now(), connection_id, std::move(detail)});
  }

  void run() {
    std::vector<pollfd> fds;
    while (!stopping.load()) {
      take_new_faults();
      auto now = clock::now();
      update_blackhole(now);
      for (auto& c : connections)
        deliver(*c, now);
      connections.erase(std::remove_if(connections.begin(), connections.end(),
                                       [](const auto& c) { return c->done; }),
                        connections.end());

      fds.clear();
      fds.push_back({wake, POLLIN, 0});
      fds.push_back({listener, POLLIN, 0});
      for (auto& c : connections) {
        add_poll(fds, c->client, client_events(*c));
        add_poll(fds, c->target, target_events(*c));
      }
      int ready = ::poll(fds.data(), fds.size(), timeout_ms(now));
      if (ready < 0) {
        if (errno == EINTR)
          continue;
        break;
      }
      if (fds[0].revents != 0) {
        uint64_t value = 0;
        (void)!::read(wake, &value, sizeof value);
        // Before reading anything sent after set_faults() returned.
        take_new_faults();
      }
      now = clock::now();
      // Connections accepted below were not polled: only the first ones have entries.
      size_t polled = connections.size();
      for (size_t i = 0; i < polled; ++i) {
        connection& c = *connections[i];
        on_client_ready(c, fds[2 + 2 * i].revents, now);
        if (!c.done)
          on_target_ready(c, fds[3 + 2 * i].revents, now);
      }
      if (fds[1].revents != 0)
        accept_all();
    }
    for (auto& c : connections) {
      if (c->client >= 0)
        ::close(c->client);
      if (c->target >= 0)
        ::close(c->target);
    }
    connections.clear();
    std::lock_guard<std::mutex> lock(mutex);
    looping = false;
    faults_in_force.notify_all();
  }

  void take_new_faults() {
    std::lock_guard<std::mutex> lock(mutex);
    if (faults_taken == faults_requested)
      return;
    faults = next_faults;
    faults_taken = faults_requested;
    faults_in_force.notify_all();
  }

  // poll() reports errors and hang-ups even for no events: an fd the loop has
  // nothing to do with is left out (a negative fd is skipped).
  static void add_poll(std::vector<pollfd>& fds, int fd, short events) {
    fds.push_back({events != 0 ? fd : -1, events, 0});
  }

  static bool can_read(const direction& d) { return !d.read_closed && d.in_flight < max_in_flight; }

  short client_events(const connection& c) const {
    short events = 0;
    if (can_read(c.up))
      events |= POLLIN;
    if (c.down.blocked && !active) // a blackhole delivers nothing
      events |= POLLOUT;
    return events;
  }

  short target_events(const connection& c) const {
    if (c.target < 0)
      return 0;
    if (c.connecting)
      return POLLOUT;
    short events = 0;
    if (can_read(c.down))
      events |= POLLIN;
    if (c.up.blocked && !active)
      events |= POLLOUT;
    return events;
  }

  int timeout_ms(clock::time_point now) const {
    std::optional<clock::time_point> next;
    auto consider = [&](clock::time_point at) {
      if (!next || at < *next)
        next = at;
    };
    if (!active)
      for (const auto& c : connections) {
        if (c->target < 0 || c->connecting)
          continue;
        for (const direction* d : {&c->up, &c->down})
          if (!d->queue.empty() && !d->blocked)
            consider(d->queue.front().due);
      }
    for (const auto& window : faults.blackholes)
      for (int64_t edge : {window.start_ms, window.end_ms}) {
        auto at = started + std::chrono::milliseconds(edge);
        if (at > now)
          consider(at);
      }
    if (!next)
      return -1;
    if (*next <= now)
      return 0;
    // Rounded up, so the loop does not wake just before the time and spin.
    auto wait = std::chrono::ceil<std::chrono::milliseconds>(*next - now).count();
    return static_cast<int>(std::min<int64_t>(wait, 60'000));
  }

  void update_blackhole(clock::time_point now) {
    int64_t elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(now - started).count();
    std::optional<blackhole_window> current;
    for (const auto& window : faults.blackholes)
      if (window.start_ms <= elapsed && elapsed < window.end_ms)
        current = window;
    if (active &&
        (!current || current->start_ms != active->start_ms || current->end_ms != active->end_ms))
      end_blackhole();
    if (current && !active) {
      active = current;
      emit(proxy_event::kind::blackhole_start, -1, describe(*active));
      // Bytes already on their way are swallowed too.
      for (auto& c : connections)
        if (!c->up.queue.empty() || !c->down.queue.empty())
          c->hit = true;
    }
  }

  void end_blackhole() {
    emit(proxy_event::kind::blackhole_end, -1, describe(*active));
    active.reset();
    for (auto& c : connections) {
      if (c->done)
        continue;
      if (c->hit) {
        int64_t lost = static_cast<int64_t>(c->up.in_flight + c->down.in_flight);
        count([&](proxy_stats& s) {
          s.blackholed_connections += 1;
          s.blackholed_bytes += lost;
        });
        emit(proxy_event::kind::blackhole_reset, c->id,
             "connection " + std::to_string(c->id) + ": " + std::to_string(lost) +
               " bytes lost in a blackhole");
        abort(*c);
      } else if (c->target < 0) {
        connect_target(*c);
      }
    }
  }

  void accept_all() {
    for (;;) {
      int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0)
        return; // EAGAIN: all taken; anything else: try again on the next wake
      set_nodelay(fd);
      auto c = std::make_unique<connection>(accepted++, config.seed);
      c->client = fd;
      random_stream draws(config.seed, c->id, decision_stream);
      double roll = draws.unit();
      int64_t after = draws.between(faults.reset_after_min_bytes, faults.reset_after_max_bytes);
      c->decision.connection = c->id;
      c->decision.reset = roll < faults.reset_probability;
      c->decision.after_bytes = c->decision.reset ? after : 0;
      {
        std::lock_guard<std::mutex> lock(mutex);
        counters.connections_accepted += 1;
        decision_log.push_back(c->decision);
      }
      if (!active)
        connect_target(*c);
      connections.push_back(std::move(c));
    }
  }

  void connect_target(connection& c) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      abort(c);
      return;
    }
    set_nodelay(fd);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(config.target_port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c.target = fd;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0)
      return;
    if (errno == EINPROGRESS) {
      c.connecting = true;
      return;
    }
    // The target refuses: so does the proxy.
    abort(c);
  }

  /// Resets both sides and forgets the connection.
  void abort(connection& c) {
    reset_socket(c.client);
    reset_socket(c.target);
    c.client = c.target = -1;
    c.done = true;
  }

  void inject_reset(connection& c) {
    count([](proxy_stats& s) { s.resets_injected += 1; });
    emit(proxy_event::kind::reset, c.id,
         "connection " + std::to_string(c.id) + " reset after " + std::to_string(c.delivered) +
           " bytes");
    abort(c);
  }

  bool reset_due(const connection& c) const {
    return c.decision.reset && c.delivered >= c.decision.after_bytes;
  }

  void on_client_ready(connection& c, short revents, clock::time_point now) {
    if (revents & POLLERR)
      on_error(c, c.up);
    else if ((revents & (POLLIN | POLLHUP)) && can_read(c.up))
      read_into(c, c.up, c.client, now);
  }

  void on_target_ready(connection& c, short revents, clock::time_point now) {
    if (c.target < 0 || revents == 0)
      return;
    if (c.connecting) {
      int error = 0;
      socklen_t size = sizeof error;
      if (::getsockopt(c.target, SOL_SOCKET, SO_ERROR, &error, &size) != 0 || error != 0) {
        abort(c);
        return;
      }
      c.connecting = false;
      return;
    }
    if (revents & POLLERR)
      on_error(c, c.down);
    else if ((revents & (POLLIN | POLLHUP)) && can_read(c.down))
      read_into(c, c.down, c.target, now);
  }

  /// A side failed while reading from it (`from` is the direction it feeds).
  void on_error(connection& c, direction& from) {
    if (active) {
      // The other side must not learn of it through the blackhole.
      from.read_closed = true;
      c.hit = true;
      return;
    }
    abort(c);
  }

  size_t read_size(const direction& d) const {
    size_t size = std::min(max_chunk, max_in_flight - d.in_flight);
    if (faults.bandwidth_bytes_per_s > 0) {
      // About 20 ms of the link per chunk, so a slow link trickles.
      size_t paced = static_cast<size_t>(faults.bandwidth_bytes_per_s / 50);
      size = std::min(size, std::max<size_t>(paced, 1024));
    }
    return size;
  }

  void read_into(connection& c, direction& d, int fd, clock::time_point now) {
    std::vector<char> bytes(read_size(d));
    ssize_t got = ::recv(fd, bytes.data(), bytes.size(), 0);
    if (got < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        on_error(c, d);
      return;
    }
    if (got == 0)
      d.read_closed = true;
    bytes.resize(static_cast<size_t>(got));
    queue(c, d, std::move(bytes), now);
  }

  void queue(connection& c, direction& d, std::vector<char> bytes, clock::time_point now) {
    clock::time_point due = now;
    if (!bytes.empty() && faults.bandwidth_bytes_per_s > 0) {
      auto& link = link_free[&d == &c.up ? 0 : 1];
      auto transmit = std::chrono::nanoseconds(
        static_cast<int64_t>(static_cast<double>(bytes.size()) * 1e9 /
                             static_cast<double>(faults.bandwidth_bytes_per_s)));
      link = std::max(link, now) + transmit;
      due = link;
    }
    int64_t delay_us = faults.latency_ms * 1000;
    if (faults.jitter_ms > 0)
      delay_us += d.jitter.between(-faults.jitter_ms * 1000, faults.jitter_ms * 1000);
    due = std::max(due + std::chrono::microseconds(delay_us), d.last_due);
    d.last_due = due;
    d.in_flight += bytes.size();
    d.queue.push_back(chunk{due, std::move(bytes), 0});
    if (active)
      c.hit = true;
  }

  void deliver(connection& c, clock::time_point now) {
    if (c.done || active || c.target < 0 || c.connecting)
      return;
    if (reset_due(c)) {
      inject_reset(c);
      return;
    }
    if (!send_due(c, c.up, c.target, now, &proxy_stats::bytes_to_target))
      return;
    if (!send_due(c, c.down, c.client, now, &proxy_stats::bytes_to_client))
      return;
    if (c.up.write_closed && c.down.write_closed) {
      ::close(c.client);
      ::close(c.target);
      c.client = c.target = -1;
      c.done = true;
    }
  }

  /// Sends the chunks of `d` that are due; false when the connection ended.
  bool send_due(connection& c, direction& d, int to, clock::time_point now,
                int64_t proxy_stats::*delivered_counter) {
    d.blocked = false;
    while (!d.queue.empty() && d.queue.front().due <= now) {
      chunk& head = d.queue.front();
      if (head.bytes.empty()) {
        (void)::shutdown(to, SHUT_WR);
        d.write_closed = true;
        d.queue.pop_front();
        continue;
      }
      size_t size = head.bytes.size() - head.offset;
      if (c.decision.reset)
        size = std::min(size, static_cast<size_t>(c.decision.after_bytes - c.delivered));
      ssize_t sent = ::send(to, head.bytes.data() + head.offset, size, MSG_NOSIGNAL);
      if (sent < 0) {
        if (errno == EINTR)
          continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          d.blocked = true;
          return true;
        }
        abort(c);
        return false;
      }
      count([&](proxy_stats& s) { s.*delivered_counter += sent; });
      c.delivered += sent;
      head.offset += static_cast<size_t>(sent);
      d.in_flight -= static_cast<size_t>(sent);
      if (head.offset == head.bytes.size())
        d.queue.pop_front();
      if (reset_due(c)) {
        inject_reset(c);
        return false;
      }
    }
    return true;
  }
};

fault_proxy::fault_proxy(proxy_config config) : impl_(std::make_unique<impl>(std::move(config))) {}

fault_proxy::~fault_proxy() { stop(); }

status fault_proxy::start() {
  auto& self = *impl_;
  if (self.config.target_port < 1 || self.config.target_port > 65535)
    return invalid("target_port",
                   "must be in 1..65535, got " + std::to_string(self.config.target_port));
  if (self.config.listen_port < 0 || self.config.listen_port > 65535)
    return invalid("listen_port", "must be in 0..65535 (0 picks a free port), got " +
                                    std::to_string(self.config.listen_port));
  if (auto s = check_faults(self.config.faults); !s.ok())
    return s;
  if (self.thread.joinable() || self.listener >= 0 || self.stopping)
    return {errc::internal, "fault proxy: start() may be called once"};

  self.wake = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (self.wake < 0)
    return from_errno(errno, "fault proxy: eventfd");
  self.listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (self.listener < 0)
    return from_errno(errno, "fault proxy: socket");
  int on = 1;
  (void)setsockopt(self.listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(self.config.listen_port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(self.listener, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0)
    return from_errno(errno,
                      "fault proxy: bind 127.0.0.1:" + std::to_string(self.config.listen_port));
  if (::listen(self.listener, 512) != 0)
    return from_errno(errno, "fault proxy: listen");
  socklen_t size = sizeof address;
  if (::getsockname(self.listener, reinterpret_cast<sockaddr*>(&address), &size) != 0)
    return from_errno(errno, "fault proxy: getsockname");
  self.port = ntohs(address.sin_port);
  {
    std::lock_guard<std::mutex> lock(self.mutex);
    // Faults set before start() replace the configured ones.
    self.faults = self.faults_requested > 0 ? self.next_faults : self.config.faults;
    self.faults_taken = self.faults_requested;
    self.looping = true;
  }
  self.started = clock::now();
  self.thread = std::thread([&self] { self.run(); });
  return status::success();
}

int fault_proxy::port() const { return impl_->port; }

std::chrono::milliseconds fault_proxy::since_start() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - impl_->started);
}

status fault_proxy::set_faults(proxy_faults faults) {
  if (auto s = check_faults(faults); !s.ok())
    return s;
  auto& self = *impl_;
  std::unique_lock<std::mutex> lock(self.mutex);
  self.next_faults = std::move(faults);
  uint64_t request = ++self.faults_requested;
  if (!self.looping || std::this_thread::get_id() == self.thread.get_id())
    return status::success(); // taken when (or where) the loop next looks
  self.notify();
  // Whatever is sent through the proxy from now on meets the new faults.
  self.faults_in_force.wait(lock, [&] { return self.faults_taken >= request || !self.looping; });
  return status::success();
}

void fault_proxy::stop() {
  auto& self = *impl_;
  if (self.thread.joinable()) {
    self.stopping = true;
    self.notify();
    self.thread.join();
  }
  for (int* fd : {&self.listener, &self.wake})
    if (*fd >= 0) {
      ::close(*fd);
      *fd = -1;
    }
}

proxy_stats fault_proxy::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->counters;
}

std::vector<reset_decision> fault_proxy::decisions() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->decision_log;
}

} // namespace ferry::sim
