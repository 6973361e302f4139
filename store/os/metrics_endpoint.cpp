#include "store/os/metrics_endpoint.hpp"

#include "protocol/prometheus_text.hpp"
#include "store/os/unix_socket.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ferry {

namespace {

namespace fs = std::filesystem;
using namespace std::chrono;

/// Longest request head read; a scrape sends a few hundred bytes.
constexpr size_t max_request = 8 << 10;
constexpr milliseconds request_timeout{2000};
/// Longest answer scrape_metrics() takes.
constexpr size_t max_answer = 64 << 20;

/// A socket address for `address`, and its length.
struct socket_address {
  sockaddr_storage storage{};
  socklen_t length = 0;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

result<socket_address> to_socket_address(const metrics_address& address) {
  socket_address out;
  if (address.unix_socket) {
    if (auto fits = check_socket_path(address.path); !fits)
      return fits;
    auto* un = reinterpret_cast<sockaddr_un*>(&out.storage);
    un->sun_family = AF_UNIX;
    std::strncpy(un->sun_path, address.path.c_str(), sizeof un->sun_path - 1);
    out.length = sizeof(sockaddr_un);
    return out;
  }
  if (address.ip.find(':') != std::string::npos) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<uint16_t>(address.port));
    ::inet_pton(AF_INET6, address.ip.c_str(), &in6->sin6_addr);
    out.length = sizeof(sockaddr_in6);
  } else {
    auto* in = reinterpret_cast<sockaddr_in*>(&out.storage);
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<uint16_t>(address.port));
    ::inet_pton(AF_INET, address.ip.c_str(), &in->sin_addr);
    out.length = sizeof(sockaddr_in);
  }
  return out;
}

/// Sends all of `data`, waiting at most until `deadline`.
bool send_all(int fd, const std::string& data, steady_clock::time_point deadline) {
  size_t sent = 0;
  while (sent < data.size()) {
    auto left = duration_cast<milliseconds>(deadline - steady_clock::now()).count();
    pollfd ready{fd, POLLOUT, 0};
    int count = left > 0 ? ::poll(&ready, 1, static_cast<int>(left)) : 0;
    if (count < 0 && errno == EINTR)
      continue;
    if (count <= 0)
      return false;
    auto n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n <= 0)
      return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

/// Reads until `done` says the text is complete, the peer closes, `limit`
/// bytes or `deadline`. False on a timeout or error.
bool read_until(int fd, std::string& text, size_t limit, steady_clock::time_point deadline,
                const std::function<bool(const std::string&)>& done) {
  char buffer[4096];
  while (!done(text) && text.size() < limit) {
    auto left = duration_cast<milliseconds>(deadline - steady_clock::now()).count();
    pollfd ready{fd, POLLIN, 0};
    int count = left > 0 ? ::poll(&ready, 1, static_cast<int>(left)) : 0;
    if (count < 0 && errno == EINTR)
      continue;
    if (count <= 0)
      return false;
    auto n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n < 0)
      return false;
    if (n == 0)
      return true;
    text.append(buffer, static_cast<size_t>(n));
  }
  return true;
}

bool has_head(const std::string& text) { return text.find("\r\n\r\n") != std::string::npos; }

std::string response(const std::string& status, const std::string& type, const std::string& body) {
  return "HTTP/1.0 " + status + "\r\nContent-Type: " + type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
         body;
}

} // namespace

result<metrics_address> metrics_address::parse(const std::string& text) {
  metrics_address address;
  auto bad = [&](const std::string& why) {
    return status{errc::invalid_request,
                  "metrics address '" + text + "' " + why +
                    " (use 127.0.0.1:PORT, [::1]:PORT, localhost:PORT or unix:/path)"};
  };
  if (text.rfind("unix:", 0) == 0) {
    address.unix_socket = true;
    address.loopback = true;
    address.path = text.substr(5);
    if (!address.path.is_absolute())
      return bad("needs an absolute socket path");
    return address;
  }
  auto colon = text.rfind(':');
  if (colon == std::string::npos)
    return bad("has no port");
  auto host = text.substr(0, colon);
  auto port = text.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535)
    return bad("has no port from 0 to 65535");
  address.port = std::stoi(port);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    address.ip = host.substr(1, host.size() - 2);
    in6_addr ip6{};
    if (::inet_pton(AF_INET6, address.ip.c_str(), &ip6) != 1)
      return bad("has no IPv6 address in its brackets");
    address.loopback = IN6_IS_ADDR_LOOPBACK(&ip6);
    return address;
  }
  address.ip = host == "localhost" ? "127.0.0.1" : host;
  in_addr ip4{};
  if (::inet_pton(AF_INET, address.ip.c_str(), &ip4) != 1)
    return bad("names no numeric IPv4 address, [IPv6] address or localhost");
  address.loopback = (ntohl(ip4.s_addr) >> 24) == 127;
  return address;
}

std::string metrics_address::to_string() const {
  if (unix_socket)
    return "unix:" + path.string();
  if (ip.find(':') != std::string::npos)
    return "[" + ip + "]:" + std::to_string(port);
  return ip + ":" + std::to_string(port);
}

status metrics_address::permitted(bool allow_remote) const {
  if (loopback || allow_remote)
    return status::success();
  return status{errc::permission_denied,
                "metrics address " + to_string() +
                  " is reachable from other machines; serve on loopback or a Unix socket, or "
                  "allow it explicitly (--metrics-allow-remote)"};
}

result<std::unique_ptr<metrics_endpoint>>
metrics_endpoint::start(const metrics_address& address, std::function<std::string()> render,
                        bool allow_remote) {
  if (auto allowed = address.permitted(allow_remote); !allowed)
    return allowed;
  auto where = to_socket_address(address);
  if (!where)
    return where.error();
  std::unique_ptr<metrics_endpoint> endpoint{new metrics_endpoint};
  endpoint->bound_ = address;
  endpoint->render_ = std::move(render);
  int family = address.unix_socket ? AF_UNIX : where->storage.ss_family;
  endpoint->listener_.reset(::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  int fd = endpoint->listener_.get();
  if (fd < 0)
    return from_errno(errno, "cannot open a socket for metrics");
  if (address.unix_socket) {
    std::error_code error;
    if (fs::is_socket(fs::symlink_status(address.path, error))) {
      // Replaced only if stale: nothing answers on it.
      fd_guard probe{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
      if (::connect(probe.get(), where->get(), where->length) == 0)
        return status{errc::io_error,
                      "something already serves metrics at " + address.path.string()};
      ::unlink(address.path.c_str());
    }
  } else {
    int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  }
  if (::bind(fd, where->get(), where->length) != 0)
    return from_errno(errno, "cannot serve metrics at " + address.to_string());
  endpoint->socket_file_ = address.unix_socket;
  if (address.unix_socket && ::chmod(address.path.c_str(), 0600) != 0)
    return from_errno(errno, "cannot make " + address.path.string() + " private");
  if (::listen(fd, 16) != 0)
    return from_errno(errno, "cannot listen for metrics at " + address.to_string());
  if (!address.unix_socket) {
    sockaddr_storage bound{};
    socklen_t length = sizeof bound;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length);
    endpoint->bound_.port =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                        : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  }
  int wake[2];
  if (::pipe2(wake, O_CLOEXEC) != 0)
    return from_errno(errno, "cannot make a pipe");
  endpoint->wake_read_.reset(wake[0]);
  endpoint->wake_write_.reset(wake[1]);
  endpoint->thread_ = std::thread{[raw = endpoint.get()] { raw->run(); }};
  return endpoint;
}

metrics_endpoint::~metrics_endpoint() {
  char byte = 0;
  [[maybe_unused]] auto n = ::write(wake_write_.get(), &byte, 1);
  if (thread_.joinable())
    thread_.join();
  if (socket_file_)
    ::unlink(bound_.path.c_str());
}

void metrics_endpoint::run() {
  for (;;) {
    pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {wake_read_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      return;
    }
    if (fds[1].revents != 0)
      return;
    fd_guard connection{::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK)};
    if (connection.get() >= 0)
      answer(connection.get());
  }
}

void metrics_endpoint::answer(int connection) {
  auto deadline = steady_clock::now() + request_timeout;
  std::string request;
  if (!read_until(connection, request, max_request, deadline, has_head) || !has_head(request))
    return;
  auto line = request.substr(0, request.find("\r\n"));
  auto method = line.substr(0, line.find(' '));
  auto target = line.size() > method.size() ? line.substr(method.size() + 1) : std::string{};
  target = target.substr(0, target.find(' '));
  std::string reply;
  if (target != "/metrics" && target.rfind("/metrics?", 0) != 0)
    reply = response("404 Not Found", "text/plain", "metrics are at /metrics\n");
  else if (method != "GET" && method != "HEAD")
    reply = response("405 Method Not Allowed", "text/plain", "only GET\n");
  else {
    reply = response("200 OK", protocol::prometheus_content_type, render_());
    if (method == "HEAD")
      reply = reply.substr(0, reply.find("\r\n\r\n") + 4);
  }
  send_all(connection, reply, deadline);
}

result<std::string> scrape_metrics(const metrics_address& address, milliseconds timeout) {
  auto deadline = steady_clock::now() + timeout;
  auto where = to_socket_address(address);
  if (!where)
    return where.error();
  auto unavailable = [&](const std::string& why) {
    return status{errc::unavailable, "no metrics at " + address.to_string() + ": " + why};
  };
  fd_guard fd{::socket(address.unix_socket ? AF_UNIX : where->storage.ss_family,
                       SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)};
  if (fd.get() < 0)
    return from_errno(errno, "cannot open a socket");
  if (::connect(fd.get(), where->get(), where->length) != 0) {
    if (errno != EINPROGRESS)
      return unavailable(std::strerror(errno));
    pollfd ready{fd.get(), POLLOUT, 0};
    auto left = duration_cast<milliseconds>(deadline - steady_clock::now()).count();
    if (::poll(&ready, 1, static_cast<int>(std::max<milliseconds::rep>(left, 0))) <= 0)
      return unavailable("no connection in time");
    int error = 0;
    socklen_t length = sizeof error;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length);
    if (error != 0)
      return unavailable(std::strerror(error));
  }
  std::string host = address.unix_socket ? "localhost" : address.to_string();
  if (!send_all(fd.get(), "GET /metrics HTTP/1.0\r\nHost: " + host + "\r\n\r\n", deadline))
    return unavailable("the request could not be sent");
  std::string answer;
  if (!read_until(fd.get(), answer, max_answer, deadline, [](const std::string&) { return false; }))
    return unavailable("no complete answer in time");
  if (answer.size() >= max_answer)
    return status{errc::io_error, address.to_string() + " answered with more than 64 MiB"};
  auto head_end = answer.find("\r\n\r\n");
  auto status_line = answer.substr(0, answer.find("\r\n"));
  if (head_end == std::string::npos || status_line.rfind("HTTP/1.", 0) != 0)
    return status{errc::io_error, address.to_string() + " did not answer with HTTP"};
  if (status_line.find(" 200 ") == std::string::npos)
    return status{errc::io_error, address.to_string() + "/metrics answered '" + status_line + "'"};
  return answer.substr(head_end + 4);
}

} // namespace ferry
