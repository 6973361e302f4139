#include "actors/logging.hpp"
#include "cli/commands.hpp"
#include "cli/daemon_agents.hpp"
#include "cli/daemon_server.hpp"

#include "ferry/version.hpp"
#include "protocol/daemon_messages.hpp"
#include "protocol/line_splitter.hpp"
#include "store/os/file_io.hpp"
#include "store/os/runtime_dir.hpp"
#include "store/os/unix_socket.hpp"

#include <cstdio>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <iostream>
#include <string>

namespace ferry::cli {

namespace {

namespace fs = std::filesystem;
using namespace std::chrono;
using steady = steady_clock;
using protocol::daemon_reply;
using protocol::daemon_request;

/// How long a client waits for a daemon: to connect and answer, for the
/// spawn lock, for a new daemon to be ready, for a stopped one to exit.
constexpr milliseconds answer_timeout = seconds{10};
constexpr milliseconds spawn_lock_timeout = seconds{10};
constexpr milliseconds ready_timeout = seconds{10};
constexpr milliseconds exit_timeout = seconds{10};

fs::path socket_in(const fs::path& dir) { return dir / "daemon.sock"; }

} // namespace

result<std::string> read_daemon_line(int fd, steady::time_point deadline, const std::string& what,
                                     size_t max_line) {
  protocol::line_splitter lines{max_line};
  char buffer[4096];
  for (;;) {
    auto left = duration_cast<milliseconds>(deadline - steady::now()).count();
    pollfd ready{fd, POLLIN, 0};
    int count = ::poll(&ready, 1, static_cast<int>(std::max<milliseconds::rep>(left, 0)));
    if (count < 0 && errno == EINTR)
      continue;
    if (count <= 0)
      return status{errc::unavailable, what + " did not answer in time"};
    ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    std::vector<protocol::line_splitter::line> found;
    if (got > 0)
      found = lines.feed({buffer, static_cast<size_t>(got)});
    else
      found = lines.finish();
    if (!found.empty()) {
      if (found.front().too_long)
        return status{errc::invalid_request, what + " sent a line that is too long"};
      return found.front().text;
    }
    if (got <= 0)
      return status{errc::unavailable, what + " closed the connection without answering"};
  }
}

namespace {

/// Connects and sends a hello of `kind`. errc::not_found or
/// errc::unavailable when no daemon serves `dir`; a reply with an error
/// (another build or protocol) is a session whose reply.error says why.
result<daemon_connection> greet_daemon(const fs::path& dir, daemon_request kind) {
  auto deadline = steady::now() + answer_timeout;
  auto connected = connect_unix(socket_in(dir), answer_timeout);
  if (!connected)
    return connected.error();
  protocol::daemon_hello hello;
  hello.build = version;
  hello.pid = ::getpid();
  hello.kind = kind;
  auto line = protocol::encode(hello) + "\n";
  if (::send(connected->get(), line.data(), line.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(line.size()))
    return from_errno(errno, "cannot talk to the daemon at " + socket_in(dir).string());
  auto answer =
    read_daemon_line(connected->get(), deadline, "the daemon at " + socket_in(dir).string());
  if (!answer)
    return answer.error();
  auto reply = protocol::decode_daemon_reply(*answer);
  if (!reply)
    return reply.error();
  return daemon_connection{std::move(*connected), std::move(*reply)};
}

bool no_daemon(const status& failure) {
  return failure.code() == errc::not_found || failure.code() == errc::unavailable;
}

/// Puts `fd` at `target` without close-on-exec. `fd` is first moved above
/// the standard descriptors, so dup2 never meets its own source.
bool place_fd(int fd, int target) {
  int high = ::fcntl(fd, F_DUPFD_CLOEXEC, 10);
  return high >= 0 && ::dup2(high, target) == target;
}

/// Starts `ferry daemon run` detached from the caller (its own session,
/// reparented to init, stdio on /dev/null and <dir>/daemon.log, cwd /,
/// only descriptors 0-3) and waits for its readiness line.
status spawn_daemon(const fs::path& dir) {
  auto log_path = dir / "daemon.log";
  fd_guard log{open_or_create(AT_FDCWD, log_path.c_str(), O_WRONLY | O_APPEND, 0600)};
  if (log.get() < 0)
    return from_errno(errno, "cannot open " + log_path.string());
  fd_guard null{::open("/dev/null", O_RDONLY | O_CLOEXEC)};
  if (null.get() < 0)
    return from_errno(errno, "cannot open /dev/null");
  fd_guard ready_read, ready_write;
  if (auto made = make_pipe(ready_read, ready_write, "start the daemon"); !made)
    return made;

  pid_t middle = ::fork();
  if (middle < 0)
    return from_errno(errno, "cannot start the daemon: fork");
  if (middle == 0) {
    // The middle child gives the daemon a session of its own and exits, so
    // the daemon is reparented to init and no terminal signal reaches it.
    if (::setsid() < 0 || ::fork() != 0)
      ::_exit(0);
    bool placed = ::chdir("/") == 0 && place_fd(null.get(), 0) && place_fd(log.get(), 1) &&
                  place_fd(log.get(), 2) && place_fd(ready_write.get(), 3);
    if (placed) {
      ::close_range(4, ~0U, 0);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::execl("/proc/self/exe", "ferry", "daemon", "run", "--ready-fd", "3", nullptr);
    }
    const char failed[] = "error: cannot run /proc/self/exe\n";
    (void)!::write(placed ? 3 : ready_write.get(), failed, sizeof failed - 1);
    ::_exit(127);
  }
  ready_write.reset();
  int middle_status = 0;
  while (::waitpid(middle, &middle_status, 0) < 0 && errno == EINTR) {
  }

  auto line = read_daemon_line(ready_read.get(), steady::now() + ready_timeout, "the new daemon");
  if (!line)
    return status{errc::unavailable, line.error().message() + "; see " + log_path.string()};
  if (*line == "ready")
    return status::success();
  auto why = line->rfind("error: ", 0) == 0 ? line->substr(7) : *line;
  return status{errc::unavailable, "the daemon could not start: " + why};
}

} // namespace

result<daemon_connection> connect_daemon(const fs::path& dir, daemon_request kind, bool start) {
  auto session = greet_daemon(dir, kind);
  if (!start || session || !no_daemon(session.error()))
    return session;
  // Lock, then look again, then spawn: of many starters only the first
  // spawns, the others find its daemon once they hold the lock.
  auto lock = take_spawn_lock(dir, spawn_lock_timeout);
  if (!lock)
    return lock.error();
  session = greet_daemon(dir, kind);
  if (session || !no_daemon(session.error()))
    return session;
  if (auto spawned = spawn_daemon(dir); !spawned)
    return spawned;
  return greet_daemon(dir, kind);
}

namespace {

int report(const status& failure) {
  std::cerr << "ferry daemon: " << failure.message() << "\n";
  return 1;
}

void write_ready(int fd, const std::string& line) {
  if (fd < 0)
    return;
  auto text = line + "\n";
  (void)!::write(fd, text.data(), text.size());
  ::close(fd);
}

} // namespace

int run_daemon_foreground(int ready_fd) {
  auto failed = [&](const status& failure) {
    write_ready(ready_fd, "error: " + failure.message());
    return report(failure);
  };
  auto dir = daemon_directory();
  if (!dir)
    return failed(dir.error());
  auto settings = settings_outside_repository();
  if (!settings)
    return failed(settings.error());
  auto logging = logging_of(*settings);
  logging.file = *dir / "ferry.log";
  if (auto problem = configure_logging(logging); !problem.empty())
    daemon_log(problem);
  // Declared first so that it outlives the server, whose agent threads use it.
  std::unique_ptr<daemon_engine> engine;
  daemon_options options;
  options.directory = *dir;
  options.build = version;
  options.idle_timeout = settings->daemon_idle_timeout;
  options.serve_agent = [&engine](int fd, const protocol::daemon_session& session,
                                  agent_hooks& hooks) { engine->serve(fd, session, hooks); };
  options.describe_hosts = [&engine] {
    return engine ? engine->hosts() : std::vector<protocol::daemon_host>{};
  };
  auto server = daemon_server::start(options);
  if (!server)
    return failed(server.error());
  // Started once the server has blocked the stop signals, so that every
  // thread of the engine inherits the mask and run() reads them.
  auto started = daemon_engine::start(*settings, options.metrics);
  if (!started)
    return failed(started.error());
  engine = std::move(*started);
  write_ready(ready_fd, "ready");
  daemon_log("exiting: " + (*server)->run());
  return 0;
}

int run_daemon_start() {
  auto dir = daemon_directory();
  if (!dir)
    return report(dir.error());
  auto session = connect_daemon(*dir, daemon_request::ping, true);
  if (!session)
    return report(session.error());
  if (!session->reply.error.empty())
    return report({errc::unavailable, session->reply.error});
  std::cout << "ferry daemon: running, pid " << session->reply.pid << "\n";
  return 0;
}

namespace {

/// "127.0.0.1:8080: circuit closed; 8 of 10 requests/s (cut after a 429);
/// cooldown 12 s left; 3 waiting".
std::string describe_host(const protocol::daemon_host& host) {
  std::string out = host.host + ": circuit " + (host.circuit.empty() ? "unused" : host.circuit);
  char number[64];
  if (host.full_rate <= 0) {
    out += "; no rate limit";
  } else if (host.rate < host.full_rate) {
    std::snprintf(number, sizeof number, "; %.3g of %.3g requests/s (cut after a 429 or 503)",
                  host.rate, host.full_rate);
    out += number;
  } else {
    std::snprintf(number, sizeof number, "; %.3g requests/s", host.full_rate);
    out += number;
  }
  if (host.cooldown_seconds > 0) {
    std::snprintf(number, sizeof number, "; cooldown %.1f s left", host.cooldown_seconds);
    out += number;
  }
  if (host.waiting > 0)
    out += "; " + std::to_string(host.waiting) + " waiting";
  return out;
}

} // namespace

int run_daemon_status(bool json) {
  auto dir = daemon_directory();
  if (!dir)
    return report(dir.error());
  auto session = greet_daemon(*dir, daemon_request::status);
  if (!session) {
    if (!no_daemon(session.error()))
      return report(session.error());
    std::cerr << "ferry daemon: not running (directory " << dir->string() << ")\n";
    return 1;
  }
  const auto& reply = session->reply;
  if (json) {
    std::cout << protocol::encode(reply) << "\n";
    return reply.error.empty() ? 0 : 1;
  }
  if (!reply.error.empty())
    return report({errc::unavailable, reply.error});
  std::cout << "ferry daemon: running\n"
            << "  pid:       " << reply.pid << "\n"
            << "  build:     " << reply.build << "\n"
            << "  uptime:    " << reply.uptime_seconds << " s\n"
            << "  clients:   " << reply.clients << "\n"
            << "  agents:    " << reply.agents << " in " << reply.repositories << " repositories\n"
            << "  in flight: " << reply.in_flight << " transfers\n"
            << "  directory: " << reply.directory << "\n";
  if (reply.hosts.empty())
    return 0;
  std::cout << "  hosts:\n";
  for (const auto& host : reply.hosts)
    std::cout << "    " << describe_host(host) << "\n";
  return 0;
}

result<std::string> daemon_metrics() {
  auto dir = daemon_directory();
  if (!dir)
    return dir.error();
  auto session = greet_daemon(*dir, daemon_request::metrics);
  if (!session)
    return session.error();
  if (!session->reply.error.empty())
    return status{errc::unavailable, session->reply.error};
  return session->reply.metrics;
}

int run_daemon_stop() {
  auto dir = daemon_directory();
  if (!dir)
    return report(dir.error());
  auto session = greet_daemon(*dir, daemon_request::stop);
  if (!session) {
    if (!no_daemon(session.error()))
      return report(session.error());
    std::cout << "ferry daemon: not running\n";
    return 0;
  }
  // A daemon of another build does not take orders, but drains and exits
  // once its clients are gone: wait for that all the same.
  auto pid = static_cast<pid_t>(session->reply.pid);
  if (!session->reply.error.empty())
    std::cerr << "ferry daemon: " << session->reply.error << "\n";
  session->fd.reset();
  if (auto gone = wait_for_process_end(pid, exit_timeout); !gone)
    return report(gone.with_context("the daemon did not exit"));
  std::cout << "ferry daemon: stopped pid " << pid << "\n";
  return 0;
}

} // namespace ferry::cli
