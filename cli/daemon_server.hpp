#pragma once

// The per-user daemon's lifecycle: its lock, its socket, the hello on each
// connection, and when it exits. An agent's connection, once its session
// line has come, is handed to daemon_options::serve_agent on a thread of
// its own.

#include "actors/policy/metrics.hpp"
#include "protocol/daemon_messages.hpp"
#include "protocol/line_splitter.hpp"
#include "protocol/status.hpp"
#include "store/os/file_io.hpp"
#include "store/os/runtime_dir.hpp"
#include "store/os/unix_socket.hpp"

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ferry::cli {

/// What serving one agent may tell the daemon.
class agent_hooks {
public:
  virtual ~agent_hooks() = default;
  /// Answers the session: an empty reply.error accepts it (frames follow),
  /// an error refuses it (the connection then ends).
  virtual void answer(protocol::daemon_reply reply) = 0;
  /// The repository the agent is in, for `ferry daemon status`.
  virtual void serving(const std::string& repository) = 0;
};

/// Serves one agent on the blocking connection `fd` until either side ends
/// it; runs on a thread of its own and answers the session through `hooks`
/// first.
using agent_server =
  std::function<void(int fd, const protocol::daemon_session& session, agent_hooks& hooks)>;

struct daemon_options {
  /// The private directory (daemon_directory()).
  std::filesystem::path directory;
  /// This binary's version; a client of another build makes the daemon
  /// drain and exit, so that the next client starts one of its own build.
  std::string build;
  /// Exit after this long without a connected client.
  std::chrono::milliseconds idle_timeout{std::chrono::minutes{5}};
  /// How often the daemon checks that its socket file is still its own.
  std::chrono::milliseconds socket_check_interval{std::chrono::seconds{1}};
  /// Serves "agent" connections; empty: they are refused.
  agent_server serve_agent;
  /// Every host the agents' transfers went to (ferry daemon status); may
  /// be empty.
  std::function<std::vector<protocol::daemon_host>()> describe_hosts;
  /// What `ferry metrics` shows (docs/metrics.md), fed by the engines the
  /// agents run on; start() describes the metrics.
  std::shared_ptr<metrics_registry> metrics = std::make_shared<metrics_registry>();
};

/// One daemon. start() takes the lifetime lock (<dir>/daemon.pid) and
/// publishes <dir>/daemon.sock; run() serves until a reason to exit.
/// SIGTERM, SIGINT and SIGHUP are blocked in the process and read by run(),
/// which then exits cleanly.
class daemon_server {
public:
  /// errc::busy when another daemon holds the lock.
  static result<std::unique_ptr<daemon_server>> start(daemon_options options);

  /// Serves connections until `ferry daemon stop`, a signal, the idle
  /// timeout, a drain after a client of another build or protocol, or the
  /// loss of the socket file; removes the socket (if still its own) and
  /// returns the reason, for the log.
  std::string run();

  const std::filesystem::path& socket_path() const { return listener_.path(); }

private:
  struct connection {
    fd_guard fd;
    protocol::line_splitter lines{protocol::daemon_max_line};
    bool greeted = false;
    bool done = false;
    pid_t pid = -1;
    /// An agent's hello came; its session line is next.
    bool agent = false;
    /// Handed to an agent thread: no longer read here.
    bool handed_over = false;
  };

  /// An agent served on a thread of its own.
  struct agent_thread final : agent_hooks {
    daemon_server* server = nullptr;
    fd_guard fd;
    pid_t pid = -1;
    std::thread thread;
    std::atomic<bool> finished{false};
    std::mutex mutex;
    std::string repository;

    void answer(protocol::daemon_reply reply) override;
    void serving(const std::string& repository) override;
  };

  explicit daemon_server(daemon_options options) : options_(std::move(options)) {}

  void accept_waiting();
  /// Reads what `client` sent and answers it; sets client.done when the
  /// connection is to be closed.
  void serve(connection& client);
  void answer(connection& client, const std::string& line);
  void reply(connection& client, protocol::daemon_reply message);
  void send_reply(int fd, protocol::daemon_reply message);
  void drain(const std::string& why);
  /// Starts serving `client`, whose session is `line`, on a thread.
  void hand_over(connection& client, const std::string& line);
  /// Joins the agent threads that have finished; returns how many run.
  size_t reap_agents();
  /// The distinct repositories the running agents are in.
  int64_t repositories();
  /// Ends every agent's connection and waits for its thread.
  void stop_agents();

  daemon_options options_;
  file_lock lock_;
  unix_listener listener_;
  fd_guard signals_;
  std::vector<std::unique_ptr<connection>> connections_;
  std::vector<std::unique_ptr<agent_thread>> agents_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::string exit_reason_;
  bool draining_ = false;
};

/// A line for the daemon's log (stderr, which is <dir>/daemon.log when it
/// runs detached), with the time and the daemon's pid.
void daemon_log(const std::string& text);

} // namespace ferry::cli
