#pragma once

// The per-user daemon's private directory and the file locks in it.

#include "protocol/status.hpp"
#include "store/os/file_io.hpp"

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>

namespace ferry {

/// Where the daemon's directory should be, from the environment, first
/// that applies: $FERRY_DAEMON_DIR; $XDG_RUNTIME_DIR/ferry when that base
/// is an absolute directory owned by the effective user with no group or
/// other bits; /run/user/<uid>/ferry when that base exists and is owned by
/// the user; ${TMPDIR:-/tmp}/ferry-<uid>. Nothing is created or checked
/// here beyond the bases.
std::filesystem::path daemon_directory_path();

/// Creates `dir` (mode 0700; one that exists is fine, its parent must
/// exist) and checks it is private: a directory, not a symbolic link, owned
/// by the effective user, no group or other permission bits. Anything else
/// is errc::permission_denied naming the path and the fix, so that a
/// directory someone else made (in /tmp) or opened up is never used.
status make_private_directory(const std::filesystem::path& dir);

/// daemon_directory_path(), made and checked by make_private_directory().
result<std::filesystem::path> daemon_directory();

/// An exclusive flock(2) on a file, held until the object is destroyed or
/// the process ends (even by SIGKILL, so it never goes stale). The file is
/// opened close-on-exec, so no child keeps the lock alive.
class file_lock {
public:
  /// Takes the lock on `file` (created 0600 when missing) without waiting:
  /// errc::busy when another open file description holds it.
  static result<file_lock> try_take(const std::filesystem::path& file);

  /// As try_take(), trying again with a growing pause until `timeout` has
  /// passed; then errc::busy.
  static result<file_lock> take_within(const std::filesystem::path& file,
                                       std::chrono::milliseconds timeout);

  file_lock() = default;

  /// Replaces the file's content with `text` (the holder's pid, for people
  /// and for `ferry daemon status`).
  status write(const std::string& text);

  int fd() const { return fd_.get(); }

private:
  explicit file_lock(fd_guard fd) : fd_(std::move(fd)) {}
  fd_guard fd_;
};

/// The daemon's lifetime lock, <dir>/daemon.pid, with the caller's pid
/// written into it. errc::busy names the pid of the daemon that holds it.
result<file_lock> take_daemon_lock(const std::filesystem::path& dir);

/// The lock starters hold while they start a daemon, <dir>/spawn.lock.
result<file_lock> take_spawn_lock(const std::filesystem::path& dir,
                                  std::chrono::milliseconds timeout);

/// Waits until process `pid` (not necessarily a child) has ended, at most
/// `timeout`; errc::unavailable when it is still there.
status wait_for_process_end(pid_t pid, std::chrono::milliseconds timeout);

} // namespace ferry
