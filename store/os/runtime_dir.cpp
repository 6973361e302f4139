#include "store/os/runtime_dir.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace ferry {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

namespace {

std::string env_or_empty(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

/// A directory owned by the effective user; `strict` also wants no group
/// or other bits.
bool owned_directory(const fs::path& dir, bool strict) {
  struct stat info {};
  if (::stat(dir.c_str(), &info) != 0 || !S_ISDIR(info.st_mode) || info.st_uid != ::geteuid())
    return false;
  return !strict || (info.st_mode & 077) == 0;
}

std::string octal_mode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

} // namespace

fs::path daemon_directory_path() {
  if (auto chosen = env_or_empty("FERRY_DAEMON_DIR"); !chosen.empty())
    return chosen;
  auto uid = std::to_string(::geteuid());
  fs::path xdg = env_or_empty("XDG_RUNTIME_DIR");
  if (xdg.is_absolute() && owned_directory(xdg, true))
    return xdg / "ferry";
  fs::path run_user = fs::path{"/run/user"} / uid;
  if (owned_directory(run_user, false))
    return run_user / "ferry";
  auto tmp = env_or_empty("TMPDIR");
  return fs::path{tmp.empty() ? "/tmp" : tmp} / ("ferry-" + uid);
}

status make_private_directory(const fs::path& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return from_errno(errno, "cannot create the daemon directory " + dir.string());
  struct stat info {};
  if (::lstat(dir.c_str(), &info) != 0)
    return from_errno(errno, "cannot inspect the daemon directory " + dir.string());
  auto refuse = [&](const std::string& why, const std::string& fix) {
    return status{errc::permission_denied,
                  "the daemon directory " + dir.string() + " " + why + "; " + fix};
  };
  if (S_ISLNK(info.st_mode))
    return refuse("is a symbolic link",
                  "remove it, or set FERRY_DAEMON_DIR to a private directory");
  if (!S_ISDIR(info.st_mode))
    return refuse("is not a directory",
                  "remove it, or set FERRY_DAEMON_DIR to a private directory");
  if (info.st_uid != ::geteuid())
    return refuse("is owned by uid " + std::to_string(info.st_uid) + ", not by uid " +
                    std::to_string(::geteuid()),
                  "remove it, or set FERRY_DAEMON_DIR to a directory of your own");
  if ((info.st_mode & 077) != 0)
    return refuse("has unsafe permissions " + octal_mode(info.st_mode) + " (others may enter it)",
                  "run 'chmod 0700 " + dir.string() + "'");
  return status::success();
}

result<fs::path> daemon_directory() {
  auto dir = daemon_directory_path();
  if (auto made = make_private_directory(dir); !made)
    return made;
  return dir;
}

result<file_lock> file_lock::try_take(const fs::path& file) {
  fd_guard fd{open_or_create(AT_FDCWD, file.c_str(), O_RDWR, 0600)};
  if (fd.get() < 0)
    return from_errno(errno, "cannot open " + file.string());
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      return status{errc::busy, file.string() + " is locked by another process"};
    return from_errno(errno, "cannot lock " + file.string());
  }
  return file_lock{std::move(fd)};
}

result<file_lock> file_lock::take_within(const fs::path& file, milliseconds timeout) {
  auto deadline = steady::now() + timeout;
  milliseconds pause{1};
  for (;;) {
    auto taken = try_take(file);
    if (taken || taken.error().code() != errc::busy || steady::now() >= deadline)
      return taken;
    // flock(2) cannot wait with a deadline: poll it, backing off to 100 ms.
    std::this_thread::sleep_for(
      std::min(pause, std::chrono::duration_cast<milliseconds>(deadline - steady::now())));
    pause = std::min(pause * 2, milliseconds{100});
  }
}

status file_lock::write(const std::string& text) {
  if (::ftruncate(fd_.get(), 0) != 0)
    return from_errno(errno, "cannot truncate a lock file");
  if (::pwrite(fd_.get(), text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()))
    return from_errno(errno, "cannot write a lock file");
  return status::success();
}

result<file_lock> take_daemon_lock(const fs::path& dir) {
  auto file = dir / "daemon.pid";
  auto lock = file_lock::try_take(file);
  if (!lock) {
    if (lock.error().code() != errc::busy)
      return lock;
    char pid[32] = {};
    fd_guard fd{::open(file.c_str(), O_RDONLY | O_CLOEXEC)};
    ssize_t got = fd.get() >= 0 ? ::read(fd.get(), pid, sizeof pid - 1) : -1;
    std::string holder = got > 0 ? std::string{pid, static_cast<size_t>(got)} : "unknown";
    while (!holder.empty() && holder.back() == '\n')
      holder.pop_back();
    return status{errc::busy, "another ferry daemon (pid " + holder + ") holds " + file.string()};
  }
  if (auto written = lock->write(std::to_string(::getpid()) + "\n"); !written)
    return written;
  return lock;
}

result<file_lock> take_spawn_lock(const fs::path& dir, milliseconds timeout) {
  auto lock = file_lock::take_within(dir / "spawn.lock", timeout);
  if (!lock && lock.error().code() == errc::busy)
    return status{errc::busy, "another ferry is starting the daemon and did not finish within " +
                                std::to_string(timeout.count()) + " ms (" +
                                (dir / "spawn.lock").string() + ")"};
  return lock;
}

status wait_for_process_end(pid_t pid, milliseconds timeout) {
  auto gone = status::success();
  auto still_there =
    status{errc::unavailable, "process " + std::to_string(pid) + " is still running after " +
                                std::to_string(timeout.count()) + " ms"};
  fd_guard watch{static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))};
  if (watch.get() < 0)
    return errno == ESRCH ? gone : from_errno(errno, "cannot watch process " + std::to_string(pid));
  pollfd ready{watch.get(), POLLIN, 0};
  int count = ::poll(&ready, 1, static_cast<int>(timeout.count()));
  return count > 0 ? gone : still_there;
}

} // namespace ferry
