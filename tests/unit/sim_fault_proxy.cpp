// The simulation harness's fault-injecting TCP proxy, between a loopback
// client and a loopback echo server.

#include "simulations/harness/fault_proxy.hpp"
#include "store/os/sha256.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace ferry;
using namespace ferry::sim;
using namespace std::chrono_literals;

namespace {

using steady = std::chrono::steady_clock;

/// Upper bound for anything a test waits for; reaching it fails the test.
constexpr std::chrono::milliseconds patience = 10s;

/// A file descriptor closed with its owner.
class owned_fd {
public:
  explicit owned_fd(int fd) : fd_(fd) {}
  ~owned_fd() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  owned_fd(owned_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  owned_fd(const owned_fd&) = delete;
  owned_fd& operator=(const owned_fd&) = delete;
  int get() const { return fd_; }

private:
  int fd_;
};

sockaddr_in loopback(int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

owned_fd connect_to(int port) {
  owned_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd.get() >= 0);
  int on = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  auto address = loopback(port);
  REQUIRE(::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
  return fd;
}

/// Sends everything; the errno of a failure, 0 on success.
int send_all(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t sent = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (sent < 0)
      return errno;
    done += static_cast<size_t>(sent);
  }
  return 0;
}

/// What a read got, and how it stopped.
struct read_result {
  std::string bytes;
  /// The other side ended the stream.
  bool ended = false;
  /// errno of a failed read (0 if none).
  int error = 0;
  bool timed_out = false;
};

/// Reads until `size` bytes, the end of the stream, an error or `timeout`.
read_result read_up_to(int fd, size_t size, std::chrono::milliseconds timeout = patience) {
  read_result out;
  auto deadline = steady::now() + timeout;
  std::vector<char> buffer(64 * 1024);
  while (out.bytes.size() < size) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
    pollfd entry{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&entry, 1, static_cast<int>(left.count())) == 0) {
      out.timed_out = true;
      break;
    }
    ssize_t got = ::recv(fd, buffer.data(), std::min(buffer.size(), size - out.bytes.size()), 0);
    if (got < 0) {
      out.error = errno;
      break;
    }
    if (got == 0) {
      out.ended = true;
      break;
    }
    out.bytes.append(buffer.data(), static_cast<size_t>(got));
  }
  return out;
}

std::string random_bytes(size_t size, uint64_t seed) {
  std::mt19937_64 generator(seed);
  std::string out(size, '\0');
  for (auto& c : out)
    c = static_cast<char>(generator());
  return out;
}

/// A loopback echo server: every connection gets back what it sends, on a
/// thread of its own, and is closed once the client ends its side. It records
/// how each connection ended.
class echo_server {
public:
  echo_server() : listener_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    auto address = loopback(0);
    REQUIRE(::bind(listener_.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) ==
            0);
    REQUIRE(::listen(listener_.get(), 128) == 0);
    socklen_t size = sizeof address;
    REQUIRE(::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&address), &size) == 0);
    port_ = ntohs(address.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~echo_server() {
    // Wakes accept() and every recv() so the threads end.
    ::shutdown(listener_.get(), SHUT_RDWR);
    acceptor_.join();
    std::vector<std::thread> workers;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (const auto& fd : connections_)
        ::shutdown(fd.get(), SHUT_RDWR);
      workers.swap(workers_);
    }
    for (auto& worker : workers)
      worker.join();
  }

  int port() const { return port_; }

  /// How the first `count` connections ended (0: the client ended its side,
  /// otherwise errno), once that many have; fails the test after patience.
  std::vector<int> wait_for_ends(size_t count) {
    std::unique_lock<std::mutex> lock(mutex_);
    REQUIRE(ended_.wait_for(lock, patience, [&] { return endings_.size() >= count; }));
    return endings_;
  }

  size_t connections() {
    std::lock_guard<std::mutex> lock(mutex_);
    return connections_.size();
  }

private:
  void accept_loop() {
    for (;;) {
      int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0)
        return;
      std::lock_guard<std::mutex> lock(mutex_);
      connections_.emplace_back(fd);
      workers_.emplace_back([this, fd] { serve(fd); });
    }
  }

  void serve(int fd) {
    std::vector<char> buffer(64 * 1024);
    int ending = 0;
    for (;;) {
      ssize_t got = ::recv(fd, buffer.data(), buffer.size(), 0);
      if (got <= 0) {
        ending = got == 0 ? 0 : errno;
        break;
      }
      if (int error = send_all(fd, std::string(buffer.data(), static_cast<size_t>(got)));
          error != 0) {
        ending = error;
        break;
      }
    }
    ::shutdown(fd, SHUT_WR);
    std::lock_guard<std::mutex> lock(mutex_);
    endings_.push_back(ending);
    ended_.notify_all();
  }

  owned_fd listener_;
  int port_ = 0;
  std::thread acceptor_;
  std::mutex mutex_;
  std::condition_variable ended_;
  std::vector<owned_fd> connections_;
  std::vector<std::thread> workers_;
  std::vector<int> endings_;
};

/// The events a proxy reported, in order.
class event_log {
public:
  void add(const proxy_event& event) {
    std::lock_guard<std::mutex> lock(mutex_);
    events_.push_back(event);
  }
  std::vector<proxy_event> events() {
    std::lock_guard<std::mutex> lock(mutex_);
    return events_;
  }

private:
  std::mutex mutex_;
  std::vector<proxy_event> events_;
};

proxy_config config_for(const echo_server& server, proxy_faults faults = {}, uint64_t seed = 1) {
  proxy_config config;
  config.target_port = server.port();
  config.seed = seed;
  config.faults = std::move(faults);
  return config;
}

/// Sends `bytes` on `fd` from another thread, then ends the sending side,
/// while the caller reads the echo.
std::string echo_through(int fd, const std::string& bytes) {
  // Catch's assertions are for the test's thread only.
  int send_error = 0;
  std::thread writer([&] {
    send_error = send_all(fd, bytes);
    ::shutdown(fd, SHUT_WR);
  });
  auto echoed = read_up_to(fd, bytes.size() + 1);
  writer.join();
  CHECK(send_error == 0);
  CHECK(echoed.ended);
  CHECK(echoed.error == 0);
  return echoed.bytes;
}

std::chrono::milliseconds round_trip(int fd, const std::string& message) {
  auto begin = steady::now();
  REQUIRE(send_all(fd, message) == 0);
  auto echoed = read_up_to(fd, message.size());
  REQUIRE(echoed.bytes == message);
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - begin);
}

} // namespace

TEST_CASE("fault proxy: without faults, bytes pass through unchanged both ways") {
  echo_server server;
  fault_proxy proxy(config_for(server));
  REQUIRE(proxy.start().ok());
  REQUIRE(proxy.port() > 0);

  auto client = connect_to(proxy.port());
  std::string sent = random_bytes(4 << 20, 7);
  std::string echoed = echo_through(client.get(), sent);
  CHECK(echoed.size() == sent.size());
  CHECK(sha256::of(echoed.data(), echoed.size()) == sha256::of(sent.data(), sent.size()));

  auto stats = proxy.stats();
  CHECK(stats.connections_accepted == 1);
  CHECK(stats.bytes_to_target == static_cast<int64_t>(sent.size()));
  CHECK(stats.bytes_to_client == static_cast<int64_t>(sent.size()));
  CHECK(stats.resets_injected == 0);
  CHECK(server.wait_for_ends(1) == std::vector<int>{0});
}

TEST_CASE("fault proxy: carries hundreds of connections at once") {
  echo_server server;
  proxy_faults faults;
  faults.latency_ms = 5;
  fault_proxy proxy(config_for(server, faults));
  REQUIRE(proxy.start().ok());

  std::vector<owned_fd> clients;
  for (int i = 0; i < 200; ++i)
    clients.push_back(connect_to(proxy.port()));
  for (size_t i = 0; i < clients.size(); ++i)
    REQUIRE(send_all(clients[i].get(), "message " + std::to_string(i)) == 0);
  for (size_t i = 0; i < clients.size(); ++i) {
    std::string message = "message " + std::to_string(i);
    REQUIRE(read_up_to(clients[i].get(), message.size()).bytes == message);
  }
  CHECK(proxy.stats().connections_accepted == 200);
}

TEST_CASE("fault proxy: jittered chunks of one direction keep their order") {
  echo_server server;
  // The cap makes the proxy read chunks of about 20 ms of the link each; a
  // jitter of +-30 ms would let many of them overtake each other.
  proxy_faults faults;
  faults.latency_ms = 30;
  faults.jitter_ms = 30;
  faults.bandwidth_bytes_per_s = 500 * 1000;
  fault_proxy proxy(config_for(server, faults));
  REQUIRE(proxy.start().ok());

  auto client = connect_to(proxy.port());
  std::string sent = random_bytes(100 * 1000, 11);
  CHECK(echo_through(client.get(), sent) == sent);
}

TEST_CASE("fault proxy: latency delays every chunk each way, and can change at run time") {
  echo_server server;
  proxy_faults faults;
  faults.latency_ms = 40;
  faults.jitter_ms = 10;
  fault_proxy proxy(config_for(server, faults));
  REQUIRE(proxy.start().ok());
  auto client = connect_to(proxy.port());

  // At least (latency - jitter) each way.
  for (int i = 0; i < 3; ++i)
    CHECK(round_trip(client.get(), "ping " + std::to_string(i)) >= 60ms);

  proxy_faults slower;
  slower.latency_ms = 120;
  REQUIRE(proxy.set_faults(slower).ok());
  CHECK(round_trip(client.get(), "ping slower") >= 240ms);
}

TEST_CASE("fault proxy: the bandwidth cap is shared by all connections") {
  echo_server server;
  proxy_faults faults;
  faults.bandwidth_bytes_per_s = 256 * 1024;
  fault_proxy proxy(config_for(server, faults));
  REQUIRE(proxy.start().ok());

  auto first = connect_to(proxy.port());
  auto second = connect_to(proxy.port());
  std::string a = random_bytes(64 * 1024, 1);
  std::string b = random_bytes(64 * 1024, 2);
  auto begin = steady::now();
  REQUIRE(send_all(first.get(), a) == 0);
  REQUIRE(send_all(second.get(), b) == 0);
  CHECK(read_up_to(first.get(), a.size()).bytes == a);
  CHECK(read_up_to(second.get(), b.size()).bytes == b);
  // 128 KiB over one 256 KiB/s link: half a second at least.
  CHECK(steady::now() - begin >= 500ms);
  CHECK(proxy.stats().bytes_to_target == 128 * 1024);
}

TEST_CASE("fault proxy: a connection chosen for a reset gets an RST on both sides") {
  echo_server server;
  event_log log;
  proxy_faults faults;
  faults.reset_probability = 1.0;
  faults.reset_after_min_bytes = 1000;
  faults.reset_after_max_bytes = 1000;
  auto config = config_for(server, faults);
  config.on_event = [&](const proxy_event& event) { log.add(event); };
  fault_proxy proxy(std::move(config));
  REQUIRE(proxy.start().ok());

  auto client = connect_to(proxy.port());
  std::string sent = random_bytes(10 * 1000, 3);
  REQUIRE(send_all(client.get(), sent) == 0);
  auto echoed = read_up_to(client.get(), sent.size());
  CHECK(echoed.error == ECONNRESET);
  CHECK(echoed.bytes.size() < 1000);

  auto server_end = server.wait_for_ends(1);
  CHECK((server_end[0] == ECONNRESET || server_end[0] == EPIPE));

  auto stats = proxy.stats();
  CHECK(stats.resets_injected == 1);
  CHECK(stats.bytes_to_target + stats.bytes_to_client == 1000);
  REQUIRE(proxy.decisions().size() == 1);
  CHECK(proxy.decisions()[0] == reset_decision{0, true, 1000});
  auto events = log.events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].what == proxy_event::kind::reset);
  CHECK(events[0].connection == 0);
}

TEST_CASE("fault proxy: a blackhole swallows requests, then resets their connections") {
  echo_server server;
  event_log log;
  proxy_faults faults;
  faults.blackholes = {{0, 500}};
  auto config = config_for(server, faults);
  config.on_event = [&](const proxy_event& event) { log.add(event); };
  fault_proxy proxy(std::move(config));
  auto begin = steady::now();
  REQUIRE(proxy.start().ok());

  auto talker = connect_to(proxy.port());
  auto idle = connect_to(proxy.port());
  REQUIRE(send_all(talker.get(), "ping") == 0);
  // No answer until the window ends, then the connection is reset.
  auto answer = read_up_to(talker.get(), 4);
  CHECK(answer.bytes.empty());
  CHECK(answer.error == ECONNRESET);
  CHECK(steady::now() - begin >= 500ms);
  // The connection that sent nothing during the window carries on.
  round_trip(idle.get(), "pong");

  auto stats = proxy.stats();
  CHECK(stats.connections_accepted == 2);
  CHECK(stats.blackholed_connections == 1);
  CHECK(stats.blackholed_bytes == 4);
  CHECK(server.connections() == 1);
  auto events = log.events();
  REQUIRE(events.size() == 3);
  CHECK(events[0].what == proxy_event::kind::blackhole_start);
  CHECK(events[1].what == proxy_event::kind::blackhole_end);
  CHECK(events[2].what == proxy_event::kind::blackhole_reset);
  CHECK(events[2].connection == 0);
  CHECK(events[0].unix_ms <= events[1].unix_ms);
}

TEST_CASE("fault proxy: a blackhole scheduled at run time holds established connections") {
  echo_server server;
  fault_proxy proxy(config_for(server));
  REQUIRE(proxy.start().ok());
  auto talker = connect_to(proxy.port());
  auto idle = connect_to(proxy.port());
  round_trip(talker.get(), "before");
  round_trip(idle.get(), "before");

  proxy_faults faults;
  auto begin = steady::now();
  auto now = proxy.since_start().count();
  faults.blackholes = {{now, now + 300}};
  REQUIRE(proxy.set_faults(faults).ok());
  REQUIRE(send_all(talker.get(), "during") == 0);
  auto answer = read_up_to(talker.get(), 6);
  CHECK(answer.bytes.empty());
  CHECK(answer.error == ECONNRESET);
  // (The window is given in whole milliseconds.)
  CHECK(steady::now() - begin >= 299ms);
  // The target saw its side reset too.
  auto endings = server.wait_for_ends(1);
  CHECK((endings[0] == ECONNRESET || endings[0] == EPIPE));
  round_trip(idle.get(), "after");
  CHECK(proxy.stats().blackholed_connections == 1);
}

TEST_CASE("fault proxy: the same seed makes the same reset decisions") {
  echo_server server;
  proxy_faults faults;
  faults.reset_probability = 0.5;
  faults.reset_after_min_bytes = 100;
  faults.reset_after_max_bytes = 100000;

  // 16 connections one after another; each echoes one byte (below any reset
  // count), so the proxy has accepted it before the next one opens.
  auto decisions_of = [&](uint64_t seed) {
    fault_proxy proxy(config_for(server, faults, seed));
    REQUIRE(proxy.start().ok());
    for (int i = 0; i < 16; ++i) {
      auto client = connect_to(proxy.port());
      round_trip(client.get(), "x");
    }
    return proxy.decisions();
  };
  auto first = decisions_of(42);
  auto again = decisions_of(42);
  auto other = decisions_of(43);
  REQUIRE(first.size() == 16);
  CHECK(first == again);
  CHECK(first != other);
  auto resets = std::count_if(first.begin(), first.end(), [](const auto& d) { return d.reset; });
  CHECK(resets > 0);
  CHECK(resets < 16);
  for (const auto& d : first)
    if (d.reset) {
      CHECK(d.after_bytes >= 100);
      CHECK(d.after_bytes <= 100000);
    }
}

TEST_CASE("fault proxy: stop() closes the connections it carries") {
  echo_server server;
  fault_proxy proxy(config_for(server));
  REQUIRE(proxy.start().ok());
  auto client = connect_to(proxy.port());
  round_trip(client.get(), "hello");
  proxy.stop();
  auto after = read_up_to(client.get(), 1);
  CHECK(!after.timed_out);
  CHECK(after.bytes.empty());
}

TEST_CASE("fault proxy: bad faults are rejected with the field named") {
  auto rejected = [](proxy_faults faults, const std::string& field) {
    auto s = check_faults(faults);
    CHECK(s.code() == errc::config_error);
    CHECK_THAT(s.message(), Catch::Contains(field));
  };
  proxy_faults f;
  f.latency_ms = -1;
  rejected(f, "latency_ms");
  f = {};
  f.latency_ms = 10;
  f.jitter_ms = 11;
  rejected(f, "jitter_ms");
  f = {};
  f.bandwidth_bytes_per_s = -5;
  rejected(f, "bandwidth_bytes_per_s");
  for (double p : {-0.1, 1.5, std::nan("")}) {
    f = {};
    f.reset_probability = p;
    rejected(f, "reset_probability");
  }
  f = {};
  f.reset_after_min_bytes = -1;
  rejected(f, "reset_after_min_bytes");
  f = {};
  f.reset_after_min_bytes = 10;
  f.reset_after_max_bytes = 9;
  rejected(f, "reset_after_max_bytes");
  f = {};
  f.blackholes = {{200, 100}};
  rejected(f, "end_ms must be after start_ms");
  f.blackholes = {{100, 100}};
  rejected(f, "end_ms must be after start_ms");
  f.blackholes = {{-1, 100}};
  rejected(f, "start_ms must not be negative");
  f.blackholes = {{500, 900}, {0, 600}};
  rejected(f, "overlap");

  // Windows that only touch are fine.
  f.blackholes = {{100, 200}, {0, 100}};
  CHECK(check_faults(f).ok());

  echo_server server;
  proxy_faults bad;
  bad.reset_probability = 2;
  fault_proxy refused(config_for(server, bad));
  auto s = refused.start();
  CHECK(s.code() == errc::config_error);
  CHECK_THAT(s.message(), Catch::Contains("reset_probability"));

  proxy_config no_target;
  fault_proxy aimless(no_target);
  CHECK_THAT(aimless.start().message(), Catch::Contains("target_port"));

  // A running proxy keeps its faults when new ones are rejected.
  proxy_faults slow;
  slow.latency_ms = 100;
  fault_proxy proxy(config_for(server, slow));
  REQUIRE(proxy.start().ok());
  CHECK(proxy.set_faults(bad).code() == errc::config_error);
  auto client = connect_to(proxy.port());
  CHECK(round_trip(client.get(), "still slow") >= 200ms);
}
