#include "store/os/file_io.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

namespace ferry {

namespace {

mode_t read_umask() {
  mode_t mask = ::umask(0);
  ::umask(mask);
  return mask;
}

// Read during static initialisation, before main() changes it and before
// any thread could create a file in the moment umask(0) is in force.
const mode_t umask_at_start = read_umask();

} // namespace

mode_t user_umask() { return umask_at_start; }

void make_own_files_private() { ::umask(077); }

int open_or_create(int dir_fd, const char* name, int flags, mode_t mode) {
  flags |= O_NOFOLLOW | O_CLOEXEC;
  // Only a file this call creates gets `mode`; one already there keeps its
  // own. Another process may remove it between the two opens: try again.
  for (int attempt = 0; attempt < 3; ++attempt) {
    int fd = ::openat(dir_fd, name, flags | O_CREAT | O_EXCL, mode);
    if (fd >= 0) {
      // The umask took bits away. Best effort: a file system without modes
      // (vfat, some network mounts) refuses, and its mount options decide.
      (void)::fchmod(fd, mode);
      return fd;
    }
    if (errno != EEXIST)
      return -1;
    fd = ::openat(dir_fd, name, flags);
    if (fd >= 0 || errno != ENOENT)
      return fd;
  }
  return -1;
}

status make_directories(const std::filesystem::path& dir, mode_t mode) {
  std::filesystem::path prefix;
  for (auto& part : dir) {
    prefix /= part;
    if (part.empty() || part == prefix.root_path())
      continue;
    if (::mkdir(prefix.c_str(), mode) == 0)
      (void)::chmod(prefix.c_str(), mode); // as in open_or_create
    else if (errno != EEXIST)
      return from_errno(errno, "cannot create directory " + prefix.string());
  }
  struct ::stat info {};
  if (::stat(dir.c_str(), &info) != 0)
    return from_errno(errno, "cannot create directory " + dir.string());
  if (!S_ISDIR(info.st_mode))
    return from_errno(ENOTDIR, "cannot create directory " + dir.string());
  return status::success();
}

void fd_guard::reset(int fd) {
  if (fd_ >= 0)
    ::close(fd_);
  fd_ = fd;
}

status make_pipe(fd_guard& read_end, fd_guard& write_end, const std::string& what) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return {errc::io_error, "cannot " + what + ": pipe: " + std::strerror(errno)};
  read_end.reset(fds[0]);
  write_end.reset(fds[1]);
  return status::success();
}

status write_file_atomically(const std::filesystem::path& file, const std::string& text) {
  // In the same folder: rename() is atomic only within one file system.
  auto temporary = file.parent_path() /
                   ("." + file.filename().string() + "." + std::to_string(::getpid()) + ".tmp");
  auto failed = [&](const std::string& what) {
    auto problem = from_errno(errno, what);
    ::unlink(temporary.c_str());
    return problem;
  };
  fd_guard out{
    ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0666)};
  if (out.get() < 0)
    return from_errno(errno, "cannot write " + temporary.string());
  for (size_t done = 0; done < text.size();) {
    auto n = ::write(out.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return failed("cannot write " + temporary.string());
    done += static_cast<size_t>(n);
  }
  if (::fdatasync(out.get()) != 0 || ::close(out.release()) != 0)
    return failed("cannot write " + temporary.string());
  if (::rename(temporary.c_str(), file.c_str()) != 0)
    return failed("cannot rename " + temporary.string() + " to " + file.string());
  // The new name is durable once its folder is synced. Best effort: the
  // content is already whole under one name or the other.
  auto folder = file.parent_path().empty() ? std::filesystem::path{"."} : file.parent_path();
  fd_guard dir{::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (dir.get() >= 0)
    (void)::fsync(dir.get());
  return status::success();
}

} // namespace ferry
