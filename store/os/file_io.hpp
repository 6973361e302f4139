#pragma once

// Small POSIX file helpers shared by the stores and the transfer tasks.

#include "protocol/status.hpp"

#include <poll.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>

namespace ferry {

/// Closes a file descriptor when it goes out of scope.
class fd_guard {
public:
  explicit fd_guard(int fd = -1) : fd_(fd) {}
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  fd_guard(fd_guard&& other) noexcept : fd_(other.release()) {}
  fd_guard& operator=(fd_guard&& other) noexcept {
    reset(other.release());
    return *this;
  }
  ~fd_guard() { reset(); }

  int get() const { return fd_; }
  void reset(int fd = -1);
  /// Hands the descriptor over to the caller, who closes it.
  int release() { return std::exchange(fd_, -1); }

private:
  int fd_;
};

/// The descriptors of one poll() call, up to `capacity` of them.
template <size_t capacity>
class poll_list {
public:
  /// Adds `fd` with the events wanted and returns where its answer is;
  /// a closed descriptor (-1) is left out and gives -1.
  int add(int fd, short events) {
    if (fd < 0)
      return -1;
    fds_[count_] = pollfd{fd, events, 0};
    return static_cast<int>(count_++);
  }
  /// Whether poll() reported anything for the descriptor added at `at`.
  bool ready(int at) const { return at >= 0 && fds_[at].revents != 0; }
  pollfd* data() { return fds_; }
  nfds_t size() const { return count_; }

private:
  pollfd fds_[capacity];
  nfds_t count_ = 0;
};

/// Opens a pipe whose ends close on exec, so that no child but the one
/// given an end (dup2'ed into place) holds it open, whichever thread starts
/// children. Failure is errc::io_error "cannot <what>: pipe: ...".
status make_pipe(fd_guard& read_end, fd_guard& write_end, const std::string& what);

/// The umask Ferry started with: the user's choice for files others use.
mode_t user_umask();

/// Sets the process umask to 077, so that every file and directory Ferry
/// creates for its own state or output (journals, logs, reports, scratch
/// space) is private however permissive the user's umask is. What is made
/// for others (a folder store's objects, downloads handed to git-lfs) asks
/// for shared_mode() explicitly. Call it once, before any thread starts.
void make_own_files_private();

/// `mode` less the user's umask: the mode a file or directory made for
/// others gets, as if Ferry had not changed its umask.
inline mode_t shared_mode(mode_t mode) { return mode & ~user_umask(); }

/// openat(dir_fd, name, flags | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode),
/// except that a file it creates gets exactly `mode`, whatever the process
/// umask, and a symbolic link at `name` is never followed (ELOOP). Returns
/// the descriptor, or -1 with errno set.
int open_or_create(int dir_fd, const char* name, int flags, mode_t mode);

/// Creates `dir` and its missing parents, like std::filesystem::
/// create_directories, giving each folder it creates exactly `mode` whatever
/// the process umask. A `dir` that exists as a folder (or a link to one) is
/// success. Failure is from_errno "cannot create directory <path>".
status make_directories(const std::filesystem::path& dir, mode_t mode);

/// Writes `text` to `file` through a temporary dot file beside it, synced,
/// then renamed over `file` (and the folder synced), so that a reader sees
/// the old content or all of the new, also after a crash. The temporary
/// name carries the pid, so two writers of one file never share it.
status write_file_atomically(const std::filesystem::path& file, const std::string& text);

} // namespace ferry
