#include "store/os/unix_socket.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <utility>

namespace ferry {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

namespace {

constexpr size_t max_socket_path = sizeof(sockaddr_un::sun_path) - 1;

sockaddr_un address_of(const fs::path& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.native().size() + 1);
  return address;
}

/// Restores the umask it replaced.
class umask_scope {
public:
  explicit umask_scope(mode_t mask) : old_(::umask(mask)) {}
  ~umask_scope() { ::umask(old_); }
  umask_scope(const umask_scope&) = delete;
  umask_scope& operator=(const umask_scope&) = delete;

private:
  mode_t old_;
};

} // namespace

status check_socket_path(const fs::path& path) {
  if (path.native().size() <= max_socket_path)
    return status::success();
  return status{errc::config_error,
                "the socket path " + path.string() + " is " + std::to_string(path.native().size()) +
                  " bytes long, more than the " + std::to_string(max_socket_path) +
                  " a Unix socket allows; set FERRY_DAEMON_DIR to a shorter directory"};
}

result<unix_listener> unix_listener::publish(const fs::path& dir, const std::string& name) {
  unix_listener listener;
  listener.path_ = dir / name;
  auto temporary = dir / (name + "." + std::to_string(::getpid()));
  for (const auto& path : {listener.path_, temporary})
    if (auto fits = check_socket_path(path); !fits)
      return fits;

  listener.fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (listener.fd_.get() < 0)
    return from_errno(errno, "cannot create a Unix socket");
  // Left by a daemon of this pid that died before its rename.
  (void)::unlink(temporary.c_str());
  auto address = address_of(temporary);
  {
    // The socket file is born private: a chmod after bind() leaves a window.
    umask_scope private_files{077};
    if (::bind(listener.fd_.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
      return from_errno(errno, "cannot bind " + temporary.string());
  }
  struct stat info {};
  if (::lstat(temporary.c_str(), &info) != 0 || ::listen(listener.fd_.get(), SOMAXCONN) != 0 ||
      ::rename(temporary.c_str(), listener.path_.c_str()) != 0) {
    auto failure = from_errno(errno, "cannot publish " + listener.path_.string());
    (void)::unlink(temporary.c_str());
    return failure;
  }
  listener.inode_ = info.st_ino;
  listener.device_ = info.st_dev;
  return listener;
}

result<std::optional<unix_listener>> unix_listener::activated(const fs::path& dir,
                                                              const std::string& name) {
  // sd_listen_fds(3): the variables are meant for the process they name.
  const char* for_pid = std::getenv("LISTEN_PID");
  const char* count = std::getenv("LISTEN_FDS");
  bool ours = for_pid != nullptr && count != nullptr && std::atol(count) >= 1 &&
              std::atol(for_pid) == static_cast<long>(::getpid());
  for (const char* variable : {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"})
    ::unsetenv(variable);
  if (!ours)
    return std::optional<unix_listener>{};

  constexpr int passed = 3; // SD_LISTEN_FDS_START
  unix_listener listener;
  listener.path_ = dir / name;
  listener.from_manager_ = true;
  auto refuse = [&](const std::string& why) {
    return status{errc::config_error, "the socket the service manager passed (LISTEN_FDS) " + why +
                                        "; the daemon's socket is " + listener.path_.string() +
                                        " (for systemd: ListenStream=%t/ferry/" + name +
                                        ", see README.md)"};
  };
  int type = 0;
  int listening = 0;
  socklen_t size = sizeof type;
  sockaddr_un address{};
  socklen_t address_size = sizeof address;
  if (::getsockopt(passed, SOL_SOCKET, SO_TYPE, &type, &size) != 0 || type != SOCK_STREAM)
    return refuse("is not a stream socket");
  size = sizeof listening;
  if (::getsockopt(passed, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) != 0 || listening == 0)
    return refuse("is not listening");
  if (::getsockname(passed, reinterpret_cast<sockaddr*>(&address), &address_size) != 0 ||
      address.sun_family != AF_UNIX)
    return refuse("is not a Unix socket");
  std::string bound(address.sun_path, ::strnlen(address.sun_path, sizeof address.sun_path));
  if (bound != listener.path_.native())
    return refuse("is bound to '" + bound + "'");
  int flags = ::fcntl(passed, F_GETFL);
  if (flags < 0 || ::fcntl(passed, F_SETFL, flags | O_NONBLOCK) != 0 ||
      ::fcntl(passed, F_SETFD, FD_CLOEXEC) != 0)
    return from_errno(errno, "cannot use the socket the service manager passed");
  struct stat info {};
  if (::lstat(listener.path_.c_str(), &info) != 0)
    return from_errno(errno, "cannot find " + listener.path_.string());
  listener.fd_.reset(passed);
  listener.inode_ = info.st_ino;
  listener.device_ = info.st_dev;
  return std::optional<unix_listener>{std::move(listener)};
}

unix_listener::unix_listener(unix_listener&& other) noexcept
    : fd_(std::move(other.fd_)), path_(std::move(other.path_)),
      inode_(std::exchange(other.inode_, 0)), device_(other.device_),
      from_manager_(other.from_manager_) {}

unix_listener& unix_listener::operator=(unix_listener&& other) noexcept {
  unpublish();
  fd_ = std::move(other.fd_);
  path_ = std::move(other.path_);
  inode_ = std::exchange(other.inode_, 0);
  device_ = other.device_;
  from_manager_ = other.from_manager_;
  return *this;
}

unix_listener::~unix_listener() { unpublish(); }

result<unix_peer> unix_listener::accept_peer() {
  unix_peer peer;
  peer.connection.reset(::accept4(fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  if (peer.connection.get() < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED)
      return status{errc::unavailable, "no connection is waiting"};
    return from_errno(errno, "cannot accept on " + path_.string());
  }
  ucred credentials{};
  socklen_t size = sizeof credentials;
  if (::getsockopt(peer.connection.get(), SOL_SOCKET, SO_PEERCRED, &credentials, &size) != 0)
    return from_errno(errno, "cannot tell who connected to " + path_.string());
  peer.pid = credentials.pid;
  peer.uid = credentials.uid;
  if (peer.uid != ::geteuid())
    return status{errc::permission_denied, "refused a connection from uid " +
                                             std::to_string(peer.uid) + " (pid " +
                                             std::to_string(peer.pid) + "): not this user"};
  return peer;
}

bool unix_listener::still_published() const {
  struct stat info {};
  return inode_ != 0 && ::lstat(path_.c_str(), &info) == 0 && info.st_ino == inode_ &&
         info.st_dev == device_;
}

void unix_listener::unpublish() {
  if (from_manager_)
    return;
  // A small race remains (replaced between lstat and unlink); only a
  // daemon holding the lock publishes, so the file is normally ours.
  if (still_published())
    (void)::unlink(path_.c_str());
  inode_ = 0;
}

result<fd_guard> connect_unix(const fs::path& path, milliseconds timeout) {
  if (auto fits = check_socket_path(path); !fits)
    return fits;
  auto deadline = steady::now() + timeout;
  auto address = address_of(path);
  milliseconds pause{1};
  for (;;) {
    fd_guard fd{::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
    if (fd.get() < 0)
      return from_errno(errno, "cannot create a Unix socket");
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
      // Callers read and write with their own deadlines through poll().
      return fd;
    }
    int error = errno;
    if (error == ENOENT)
      return status{errc::not_found, "no socket at " + path.string()};
    if (error == ECONNREFUSED)
      return status{errc::unavailable, "nothing listens on " + path.string()};
    // A Unix stream connect fails with EAGAIN while the backlog is full.
    if (error != EAGAIN && error != EINTR)
      return from_errno(error, "cannot connect to " + path.string());
    if (steady::now() >= deadline)
      return status{errc::unavailable, "the daemon at " + path.string() +
                                         " accepted no connection within " +
                                         std::to_string(timeout.count()) + " ms"};
    std::this_thread::sleep_for(pause); // the kernel offers no wait for backlog room
    pause = std::min(pause * 2, milliseconds{50});
  }
}

} // namespace ferry
