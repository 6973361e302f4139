#pragma once

// Unix stream sockets for the per-user daemon: a listener published
// atomically in a private directory, peers checked by uid, a connector with
// a deadline.

#include "protocol/status.hpp"
#include "store/os/file_io.hpp"

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

namespace ferry {

/// Checks that `path` fits a Unix socket address (sun_path, 107 bytes and
/// a NUL); a longer one is errc::config_error naming the path, its length
/// and the fix.
status check_socket_path(const std::filesystem::path& path);

/// A connection the listener accepted, with who is on the other end as the
/// kernel saw it at connect() (SO_PEERCRED).
struct unix_peer {
  fd_guard connection;
  pid_t pid = -1;
  uid_t uid = static_cast<uid_t>(-1);
};

/// A listening socket at <dir>/<name>. It is bound as <name>.<pid> under
/// umask 077 and renamed over <name> only once it listens, so a client
/// never meets a half-made listener and a stale socket left by a dead
/// daemon is replaced in one step. Only the holder of the daemon's lock
/// may publish.
class unix_listener {
public:
  static result<unix_listener> publish(const std::filesystem::path& dir, const std::string& name);

  /// The listening socket a service manager passed to this process
  /// (systemd's socket activation: LISTEN_PID is this pid, LISTEN_FDS at
  /// least 1, the socket at descriptor 3), which must be bound to
  /// <dir>/<name>; nullopt when none was passed. The manager owns the
  /// socket file: this listener never removes it, and clients that connect
  /// after this process has gone wake the manager's next start. The
  /// variables are removed from the environment, so no child takes them
  /// for its own. errc::config_error when descriptor 3 is no listening Unix
  /// stream socket at that path.
  static result<std::optional<unix_listener>> activated(const std::filesystem::path& dir,
                                                        const std::string& name);

  unix_listener() = default;
  unix_listener(unix_listener&& other) noexcept;
  unix_listener& operator=(unix_listener&& other) noexcept;
  /// Removes the socket file, if it is still this listener's (and not a
  /// service manager's).
  ~unix_listener();

  /// The listening descriptor (non-blocking, close-on-exec), for poll().
  int fd() const { return fd_.get(); }
  const std::filesystem::path& path() const { return path_; }

  /// Accepts one waiting connection (non-blocking, close-on-exec).
  /// errc::unavailable when none is waiting; errc::permission_denied when
  /// the peer is another user (the connection is closed, the message names
  /// its uid and pid).
  result<unix_peer> accept_peer();

  /// Whether the socket file at path() is still this listener's: false once
  /// it was removed or replaced (the directory wiped at logout, a newer
  /// daemon, by hand).
  bool still_published() const;

  /// Removes the socket file if it is still this listener's, so that no
  /// client connects any more; the descriptor stays open. A service
  /// manager's socket stays: clients wait in its backlog for the manager to
  /// start the next process.
  void unpublish();

  /// The socket came from a service manager (activated()).
  bool from_manager() const { return from_manager_; }

private:
  fd_guard fd_;
  std::filesystem::path path_;
  ino_t inode_ = 0;
  dev_t device_ = 0;
  bool from_manager_ = false;
};

/// Connects to the socket at `path`, waiting at most `timeout` for a full
/// backlog to clear. errc::not_found when there is no socket file,
/// errc::unavailable when nothing listens there (a stale socket) or the
/// deadline passed. The descriptor is non-blocking and close-on-exec.
result<fd_guard> connect_unix(const std::filesystem::path& path, std::chrono::milliseconds timeout);

} // namespace ferry
