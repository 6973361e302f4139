#include "store/file_io.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

namespace ferry {

void fd_guard::reset(int fd) {
  if (fd_ >= 0)
    ::close(fd_);
  fd_ = fd;
}

status hash_file_prefix(int fd, int64_t length, sha256& hash, const std::string& what,
                        const std::function<status(const char*, size_t)>& also) {
  std::vector<char> buffer(1 << 20);
  int64_t done = 0;
  while (done < length) {
    auto want = static_cast<size_t>(
      std::min<int64_t>(static_cast<int64_t>(buffer.size()), length - done));
    ssize_t n = ::pread(fd, buffer.data(), want, done);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return from_errno(errno, "cannot read " + what);
    }
    if (n == 0)
      return {errc::io_error, "cannot resume: " + what + " has fewer than the " +
                                std::to_string(length) + " bytes already transferred"};
    hash.update(buffer.data(), static_cast<size_t>(n));
    if (also) {
      if (auto st = also(buffer.data(), static_cast<size_t>(n)); !st)
        return st;
    }
    done += n;
  }
  return status::success();
}

status make_pipe(fd_guard& read_end, fd_guard& write_end, const std::string& what) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return {errc::io_error, "cannot " + what + ": pipe: " + std::strerror(errno)};
  read_end.reset(fds[0]);
  write_end.reset(fds[1]);
  return status::success();
}

std::optional<int> reap_child(int pid) {
  int wait_status = 0;
  pid_t got;
  do {
    got = ::waitpid(pid, &wait_status, 0);
  } while (got < 0 && errno == EINTR);
  if (got < 0)
    return std::nullopt;
  return wait_status;
}

} // namespace ferry
