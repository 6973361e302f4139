#pragma once

// Small POSIX file helpers shared by the stores and the transfer tasks.

#include "store/sha256.hpp"
#include "store/status.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>

namespace ferry {

/// Closes a file descriptor when it goes out of scope.
class fd_guard {
public:
  explicit fd_guard(int fd = -1) : fd_(fd) {}
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  ~fd_guard() { reset(); }

  int get() const { return fd_; }
  void reset(int fd = -1);
  /// Hands the descriptor over to the caller, who closes it.
  int release() { return std::exchange(fd_, -1); }

private:
  int fd_;
};

/// Opens a pipe whose ends close on exec, so that no child but the one
/// given an end (dup2'ed into place) holds it open, whichever thread starts
/// children. Failure is errc::io_error "cannot <what>: pipe: ...".
status make_pipe(fd_guard& read_end, fd_guard& write_end, const std::string& what);

/// Waits for the child `pid` to end and reaps it, retrying on EINTR;
/// returns its wait status, or std::nullopt when waitpid fails.
std::optional<int> reap_child(int pid);

/// Feeds the first `length` bytes of `fd` into `hash`: the prefix a resumed
/// transfer keeps. Reads with pread, so the file offset is not moved.
/// A file shorter than `length` is errc::io_error; `what` names the file in
/// messages ("partial file /x/.y", "local file /z"). `also`, when set, is
/// shown every piece after it is hashed; its failure ends the read.
status hash_file_prefix(int fd, int64_t length, sha256& hash, const std::string& what,
                        const std::function<status(const char*, size_t)>& also = nullptr);

} // namespace ferry
