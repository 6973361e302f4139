#include "cli/daemon_server.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <set>
#include <string>

namespace ferry::cli {

namespace fs = std::filesystem;
using namespace std::chrono;
using steady = steady_clock;

void daemon_log(const std::string& text) {
  char stamp[32];
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", ::gmtime_r(&now, &utc));
  // One write per line: agents' threads log at once, and the log is
  // opened for appending, so whole lines never interleave.
  auto line =
    std::string{stamp} + " ferry daemon " + std::to_string(::getpid()) + ": " + text + "\n";
  size_t done = 0;
  while (done < line.size()) {
    auto written = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
    if (written < 0 && errno == EINTR)
      continue;
    if (written <= 0)
      return;
    done += static_cast<size_t>(written);
  }
}

result<std::unique_ptr<daemon_server>> daemon_server::start(daemon_options options) {
  std::unique_ptr<daemon_server> server{new daemon_server{std::move(options)}};
  const auto& dir = server->options_.directory;
  auto lock = take_daemon_lock(dir);
  if (!lock)
    return lock.error();
  server->lock_ = std::move(*lock);
  // Signals are read in run(), so that every way out removes the socket.
  sigset_t stops;
  sigemptyset(&stops);
  for (int signal : {SIGTERM, SIGINT, SIGHUP})
    sigaddset(&stops, signal);
  if (::sigprocmask(SIG_BLOCK, &stops, nullptr) != 0)
    return from_errno(errno, "cannot block signals");
  server->signals_.reset(::signalfd(-1, &stops, SFD_NONBLOCK | SFD_CLOEXEC));
  if (server->signals_.get() < 0)
    return from_errno(errno, "cannot read signals");
  // A socket systemd listens on for us (README.md: "Started by systemd"),
  // else our own; a stale socket of a dead daemon is replaced by the rename.
  auto activated = unix_listener::activated(dir, "daemon.sock");
  if (!activated)
    return activated.error();
  if (*activated) {
    server->listener_ = std::move(**activated);
  } else {
    auto listener = unix_listener::publish(dir, "daemon.sock");
    if (!listener)
      return listener.error();
    server->listener_ = std::move(*listener);
  }
  if (!server->options_.metrics)
    server->options_.metrics = std::make_shared<metrics_registry>();
  auto& metrics = *server->options_.metrics;
  describe_transfer_metrics(metrics, server->options_.build);
  metrics.describe(metric::uptime, "Seconds since the process started.",
                   protocol::prometheus_type::gauge);
  metrics.describe(metric::daemon_clients, "Clients connected to the daemon.",
                   protocol::prometheus_type::gauge);
  return server;
}

void daemon_server::drain(const std::string& why) {
  if (draining_)
    return;
  draining_ = true;
  // New clients find no daemon and start one of their own build once this
  // one has exited (it still holds the lock until then); on systemd's
  // socket they wait for systemd to start the next daemon.
  listener_.unpublish();
  daemon_log("draining: " + why);
}

void daemon_server::send_reply(int fd, protocol::daemon_reply message) {
  message.build = options_.build;
  message.pid = ::getpid();
  auto line = protocol::encode(message) + "\n";
  (void)!::send(fd, line.data(), line.size(), MSG_NOSIGNAL);
}

void daemon_server::reply(connection& client, protocol::daemon_reply message) {
  message.build = options_.build;
  message.pid = ::getpid();
  auto line = protocol::encode(message) + "\n";
  // Replies are small; a client that does not take one whole is dropped.
  ssize_t sent = ::send(client.fd.get(), line.data(), line.size(), MSG_NOSIGNAL);
  if (sent != static_cast<ssize_t>(line.size()))
    client.done = true;
}

void daemon_server::agent_thread::answer(protocol::daemon_reply reply) {
  std::lock_guard lock{mutex};
  if (fd.get() >= 0)
    server->send_reply(fd.get(), std::move(reply));
}

void daemon_server::agent_thread::serving(const std::string& path) {
  std::lock_guard lock{mutex};
  repository = path;
}

void daemon_server::hand_over(connection& client, const std::string& line) {
  auto session = protocol::decode_daemon_session(line);
  if (!session) {
    protocol::daemon_reply message;
    message.error = session.error().message();
    reply(client, message);
    client.done = true;
    return;
  }
  auto agent = std::make_unique<agent_thread>();
  agent->server = this;
  agent->pid = client.pid;
  agent->fd = std::move(client.fd);
  client.handed_over = true;
  client.done = true;
  // The engine reads and writes it from threads of its own, blocking.
  int fd = agent->fd.get();
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  daemon_log("agent (pid " + std::to_string(agent->pid) + ") in " + session->cwd);
  auto* served = agent.get();
  agent->thread = std::thread{[this, served, fd, session = std::move(*session)] {
    options_.serve_agent(fd, session, *served);
    {
      std::lock_guard lock{served->mutex};
      served->fd.reset();
    }
    daemon_log("agent (pid " + std::to_string(served->pid) + ") done");
    served->finished = true;
  }};
  agents_.push_back(std::move(agent));
}

size_t daemon_server::reap_agents() {
  for (auto& agent : agents_)
    if (agent->finished && agent->thread.joinable())
      agent->thread.join();
  agents_.erase(std::remove_if(agents_.begin(), agents_.end(),
                               [](const auto& agent) { return !agent->thread.joinable(); }),
                agents_.end());
  return agents_.size();
}

int64_t daemon_server::repositories() {
  std::set<std::string> paths;
  for (auto& agent : agents_) {
    std::lock_guard lock{agent->mutex};
    if (!agent->repository.empty())
      paths.insert(agent->repository);
  }
  return static_cast<int64_t>(paths.size());
}

void daemon_server::stop_agents() {
  // Each engine then sees the end of its input, finishes what is in
  // flight, and returns.
  for (auto& agent : agents_) {
    std::lock_guard lock{agent->mutex};
    if (agent->fd.get() >= 0)
      ::shutdown(agent->fd.get(), SHUT_RDWR);
  }
  for (auto& agent : agents_)
    if (agent->thread.joinable())
      agent->thread.join();
  agents_.clear();
}

void daemon_server::answer(connection& client, const std::string& line) {
  protocol::daemon_reply message;
  if (client.agent) {
    hand_over(client, line);
    return;
  }
  if (client.greeted) {
    message.error = "unexpected message after the hello";
    reply(client, message);
    client.done = true;
    return;
  }
  auto hello = protocol::decode_daemon_hello(line);
  if (!hello) {
    message.error = hello.error().message();
    reply(client, message);
    client.done = true;
    return;
  }
  if (hello->proto != protocol::daemon_proto || hello->build != options_.build) {
    message.error =
      "this ferry daemon (pid " + std::to_string(::getpid()) + ", build " + options_.build +
      ", protocol " + std::to_string(protocol::daemon_proto) + ") cannot serve a client of build " +
      hello->build + ", protocol " + std::to_string(hello->proto) +
      "; it exits once its clients are gone, and the next start runs the client's own build";
    reply(client, message);
    client.done = true;
    drain("a client (pid " + std::to_string(hello->pid) + ") of build " + hello->build +
          ", protocol " + std::to_string(hello->proto) + " connected");
    return;
  }
  if (hello->kind == protocol::daemon_request::agent && !options_.serve_agent) {
    message.error = "this ferry daemon serves no agents";
    reply(client, message);
    client.done = true;
    return;
  }
  client.greeted = true;
  client.agent = hello->kind == protocol::daemon_request::agent;
  message.uptime_seconds = duration_cast<seconds>(steady::now() - started_).count();
  message.agents = static_cast<int64_t>(reap_agents());
  message.clients = static_cast<int64_t>(connections_.size()) - 1 + message.agents;
  message.repositories = repositories();
  message.directory = options_.directory.string();
  auto& metrics = *options_.metrics;
  if (hello->kind == protocol::daemon_request::metrics) {
    metrics.set(metric::uptime, {},
                duration_cast<duration<double>>(steady::now() - started_).count());
    metrics.set(metric::daemon_clients, {}, static_cast<double>(message.clients));
    message.metrics = metrics.render();
  }
  if (hello->kind == protocol::daemon_request::status) {
    message.in_flight = static_cast<int64_t>(metrics.value(metric::in_flight, {}));
    if (options_.describe_hosts)
      message.hosts = options_.describe_hosts();
    if (message.hosts.size() > protocol::max_status_hosts)
      message.hosts.resize(protocol::max_status_hosts);
  }
  reply(client, message);
  if (hello->kind == protocol::daemon_request::stop && exit_reason_.empty()) {
    auto why = "stopped by 'ferry daemon stop' (pid " + std::to_string(hello->pid) + ")";
    // Agents at work finish first: their git-lfs gets every answer.
    if (message.agents > 0)
      drain(why);
    else
      exit_reason_ = why;
  }
}

void daemon_server::serve(connection& client) {
  char buffer[4096];
  for (;;) {
    ssize_t got = ::recv(client.fd.get(), buffer, sizeof buffer, 0);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    if (got <= 0) {
      client.done = true;
      return;
    }
    for (auto& line : client.lines.feed({buffer, static_cast<size_t>(got)})) {
      if (client.done)
        return;
      if (line.too_long) {
        protocol::daemon_reply message;
        message.error =
          "a line longer than " + std::to_string(protocol::daemon_max_line) + " bytes";
        reply(client, message);
        client.done = true;
        return;
      }
      answer(client, line.text);
      if (client.handed_over)
        return;
    }
  }
}

void daemon_server::accept_waiting() {
  for (;;) {
    auto peer = listener_.accept_peer();
    if (!peer) {
      if (peer.error().code() == errc::unavailable)
        return;
      daemon_log(peer.error().message());
      if (peer.error().code() != errc::permission_denied)
        return;
      continue;
    }
    auto client = std::make_unique<connection>();
    client->fd = std::move(peer->connection);
    client->pid = peer->pid;
    connections_.push_back(std::move(client));
  }
}

std::string daemon_server::run() {
  daemon_log("serving " + listener_.path().string() +
             (listener_.from_manager() ? " (socket activation)" : "") + " (build " +
             options_.build + ", idle exit after " +
             std::to_string(duration_cast<seconds>(options_.idle_timeout).count()) + " s)");
  auto idle_since = steady::now();
  auto next_socket_check = steady::now() + options_.socket_check_interval;
  bool agents_were_running = false;
  while (exit_reason_.empty()) {
    auto now = steady::now();
    bool agents_running = reap_agents() > 0;
    if (agents_were_running && !agents_running)
      idle_since = now;
    agents_were_running = agents_running;
    bool idle = connections_.empty() && !agents_running;
    if (idle && draining_) {
      exit_reason_ = "drained";
      break;
    }
    if (idle && now - idle_since >= options_.idle_timeout) {
      exit_reason_ =
        "idle for " + std::to_string(duration_cast<seconds>(options_.idle_timeout).count()) + " s";
      break;
    }
    if (!draining_ && now >= next_socket_check) {
      if (!listener_.still_published()) {
        exit_reason_ = "its socket " + listener_.path().string() + " was removed or replaced";
        break;
      }
      next_socket_check = now + options_.socket_check_interval;
    }

    // While draining, only finished agents are waited for.
    auto wake = draining_ ? now + options_.socket_check_interval : next_socket_check;
    if (idle)
      wake = std::min(wake, idle_since + options_.idle_timeout);
    auto wait =
      std::max(duration_cast<milliseconds>(wake - now) + milliseconds{1}, milliseconds{0});

    std::vector<pollfd> fds;
    fds.push_back({signals_.get(), POLLIN, 0});
    fds.push_back({listener_.fd(), POLLIN, 0});
    for (auto& client : connections_)
      fds.push_back({client->fd.get(), POLLIN, 0});
    int count = ::poll(fds.data(), fds.size(),
                       static_cast<int>(std::min<milliseconds::rep>(wait.count(), 60000)));
    if (count < 0 && errno != EINTR)
      return "poll failed: " + std::string{std::strerror(errno)};
    if (count <= 0)
      continue;

    if (fds[0].revents != 0) {
      signalfd_siginfo info{};
      if (::read(signals_.get(), &info, sizeof info) == sizeof info)
        exit_reason_ = std::string{"signal "} + ::strsignal(static_cast<int>(info.ssi_signo));
    }
    for (size_t at = 0; at < connections_.size(); ++at)
      if (fds[at + 2].revents != 0)
        serve(*connections_[at]);
    size_t before = connections_.size();
    connections_.erase(std::remove_if(connections_.begin(), connections_.end(),
                                      [](const auto& client) { return client->done; }),
                       connections_.end());
    if (connections_.empty() && before > 0)
      idle_since = steady::now();
    // Accepted last, so a connection counts from its first poll.
    if (fds[1].revents != 0 && !draining_)
      accept_waiting();
  }
  listener_.unpublish();
  connections_.clear();
  stop_agents();
  return exit_reason_;
}

} // namespace ferry::cli
