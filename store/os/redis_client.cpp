#include "store/os/redis_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

namespace ferry {

namespace {

using clock = std::chrono::steady_clock;

status unreachable(const std::string& message) { return {errc::unavailable, message}; }

/// Waits until `fd` is ready for `events` or `deadline` passes.
bool wait_for(int fd, short events, clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    if (left.count() < 0)
      return false;
    pollfd entry{fd, events, 0};
    int ready = ::poll(&entry, 1, static_cast<int>(left.count()));
    if (ready > 0)
      return true;
    if (ready == 0)
      return false;
    if (errno != EINTR)
      return false;
  }
}

} // namespace

result<redis_address> redis_address::parse(const std::string& url) {
  const std::string scheme = "redis://";
  auto bad = [&](const std::string& why) -> result<redis_address> {
    return status{errc::config_error,
                  "--rate-limiter '" + url + "' " + why + " (expected redis://host:port/key)"};
  };
  if (url.compare(0, scheme.size(), scheme) != 0)
    return bad("does not start with redis://");
  auto rest = url.substr(scheme.size());
  auto slash = rest.find('/');
  if (slash == std::string::npos || slash + 1 == rest.size())
    return bad("names no key");
  redis_address address;
  address.key = rest.substr(slash + 1);
  auto authority = rest.substr(0, slash);
  if (authority.find('@') != std::string::npos)
    return bad("holds credentials, which are not supported");
  auto colon = authority.rfind(':');
  address.host = authority.substr(0, colon);
  if (colon != std::string::npos) {
    auto port = authority.substr(colon + 1);
    if (port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string::npos || std::stoul(port) < 1 ||
        std::stoul(port) > 65535)
      return bad("has no valid port");
    address.port = static_cast<uint16_t>(std::stoul(port));
  }
  if (address.host.empty())
    return bad("names no host");
  return address;
}

std::string redis_address::describe() const {
  return host + ":" + std::to_string(port) + "/" + key;
}

result<redis_connection> redis_connection::open(const redis_address& address,
                                                std::chrono::milliseconds timeout) {
  auto deadline = clock::now() + timeout;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  auto where = address.host + ":" + std::to_string(address.port);
  if (int error =
        ::getaddrinfo(address.host.c_str(), std::to_string(address.port).c_str(), &hints, &found);
      error != 0)
    return unreachable("cannot resolve " + where + ": " + ::gai_strerror(error));
  std::string last = "no address";
  for (auto* candidate = found; candidate; candidate = candidate->ai_next) {
    fd_guard socket{::socket(candidate->ai_family,
                             candidate->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                             candidate->ai_protocol)};
    if (socket.get() < 0) {
      last = std::strerror(errno);
      continue;
    }
    if (::connect(socket.get(), candidate->ai_addr, candidate->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        last = std::strerror(errno);
        continue;
      }
      if (!wait_for(socket.get(), POLLOUT, deadline)) {
        last = "no answer within " + std::to_string(timeout.count()) + " ms";
        continue;
      }
      int error = 0;
      socklen_t size = sizeof error;
      ::getsockopt(socket.get(), SOL_SOCKET, SO_ERROR, &error, &size);
      if (error != 0) {
        last = std::strerror(error);
        continue;
      }
    }
    int on = 1;
    ::setsockopt(socket.get(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    ::freeaddrinfo(found);
    return redis_connection{std::move(socket), timeout};
  }
  ::freeaddrinfo(found);
  return unreachable("cannot connect to " + where + ": " + last);
}

status redis_connection::fail(std::string message) {
  socket_.reset();
  buffer_.clear();
  return unreachable(std::move(message));
}

result<protocol::resp_value> redis_connection::call(const std::vector<std::string>& args) {
  if (socket_.get() < 0)
    return unreachable("the connection to Redis was closed after an earlier failure");
  auto deadline = clock::now() + timeout_;
  auto wire = protocol::resp_command(args);
  size_t sent = 0;
  while (sent < wire.size()) {
    auto n = ::send(socket_.get(), wire.data() + sent, wire.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
        wait_for(socket_.get(), POLLOUT, deadline))
      continue;
    return fail("cannot send to Redis: " +
                std::string{n < 0 ? std::strerror(errno) : "connection closed"});
  }
  for (;;) {
    auto decoded = protocol::resp_decode(buffer_);
    if (decoded.result == protocol::resp_decoded::outcome::complete) {
      buffer_.erase(0, decoded.consumed);
      return std::move(decoded.value);
    }
    if (decoded.result == protocol::resp_decoded::outcome::malformed)
      return fail("Redis sent a malformed reply: " + decoded.problem);
    if (!wait_for(socket_.get(), POLLIN, deadline))
      return fail("no reply from Redis within " + std::to_string(timeout_.count()) + " ms");
    char chunk[4096];
    auto n = ::recv(socket_.get(), chunk, sizeof chunk, 0);
    if (n > 0)
      buffer_.append(chunk, static_cast<size_t>(n));
    else if (n == 0)
      return fail("Redis closed the connection");
    else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
      return fail("cannot read from Redis: " + std::string{std::strerror(errno)});
  }
}

const char* redis_rate_limit::script() {
  // KEYS[1]: the limit. ARGV[1]: microseconds between two slots (1e6 /
  // rate); ARGV[2]: how far ahead of its slot a caller may go (the burst
  // beyond one, in microseconds). Keeps the theoretical arrival time (TAT)
  // of the next slot; returns the microseconds the caller waits for its
  // slot. '%.0f' keeps the 16 digits that tostring() would round.
  return "local t = redis.call('TIME')\n"
         "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
         "local interval = tonumber(ARGV[1])\n"
         "local tolerance = tonumber(ARGV[2])\n"
         "local tat = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
         "if tat < now then tat = now end\n"
         "local wait = tat - tolerance - now\n"
         "if wait < 0 then wait = 0 end\n"
         "tat = tat + interval\n"
         "redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX',\n"
         "           math.ceil((tat - now) / 1000) + 1000)\n"
         "return wait\n";
}

redis_rate_limit::redis_rate_limit(redis_address address, double rate, double burst)
    : address_(std::move(address)), interval_us_(static_cast<int64_t>(std::ceil(1e6 / rate))),
      tolerance_us_(static_cast<int64_t>(std::ceil(1e6 / rate)) *
                    static_cast<int64_t>(std::max(burst, 1.0) - 1.0)) {}

result<std::chrono::microseconds> redis_rate_limit::reserve(redis_connection& connection) {
  std::vector<std::string> args{"", "1", address_.key, std::to_string(interval_us_),
                                std::to_string(tolerance_us_)};
  if (sha1_.empty()) {
    auto loaded = connection.call({"SCRIPT", "LOAD", script()});
    if (!loaded)
      return loaded.error();
    if (loaded->type != protocol::resp_value::kind::bulk)
      return status{errc::unavailable, "Redis refused the rate script: " + loaded->text};
    sha1_ = loaded->text;
  }
  args[0] = sha1_;
  auto reply = connection.call([&] {
    auto command = args;
    command.insert(command.begin(), "EVALSHA");
    return command;
  }());
  if (reply && reply->type == protocol::resp_value::kind::error &&
      reply->text.compare(0, 8, "NOSCRIPT") == 0) {
    // Redis restarted or its scripts were flushed: EVAL sends the script
    // and caches it again.
    args[0] = script();
    args.insert(args.begin(), "EVAL");
    reply = connection.call(args);
  }
  if (!reply)
    return reply.error();
  if (reply->type != protocol::resp_value::kind::integer)
    return status{errc::unavailable,
                  "Redis answered the rate script with " +
                    (reply->text.empty() ? "a reply of another kind" : "'" + reply->text + "'")};
  return std::chrono::microseconds{std::max<int64_t>(reply->integer, 0)};
}

} // namespace ferry
