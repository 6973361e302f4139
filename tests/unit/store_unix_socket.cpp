#include "store/os/unix_socket.hpp"

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

using ferry::check_socket_path;
using ferry::connect_unix;
using ferry::errc;
using ferry::unix_listener;
using ferry::testing::temp_dir;

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

/// Waits (bounded) until `fd` is readable.
bool readable_within(int fd, int milliseconds) {
  pollfd ready{fd, POLLIN, 0};
  return ::poll(&ready, 1, milliseconds) == 1;
}

/// A Unix stream socket bound to `path`, not yet listening.
int bound_socket(const fs::path& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strcpy(address.sun_path, path.c_str());
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  return fd;
}

/// A socket file nobody listens on, as a killed daemon leaves behind.
void make_stale_socket(const fs::path& path) { ::close(bound_socket(path)); }

} // namespace

TEST_CASE("socket paths longer than sun_path are refused clearly", "[store][daemon]") {
  std::string fits = "/" + std::string(106, 'a');
  CHECK(check_socket_path(fits).ok());
  auto refused = check_socket_path(fits + "a");
  CHECK(refused.code() == errc::config_error);
  CHECK_THAT(refused.message(),
             Catch::Contains("108 bytes long") && Catch::Contains("FERRY_DAEMON_DIR"));

  temp_dir base;
  auto deep = base.path / std::string(120, 'd');
  fs::create_directory(deep);
  auto listener = unix_listener::publish(deep, "daemon.sock");
  REQUIRE_FALSE(listener.ok());
  CHECK(listener.error().code() == errc::config_error);
  CHECK(connect_unix(deep / "daemon.sock", 100ms).error().code() == errc::config_error);
}

TEST_CASE("a published listener is private, accepts its own user and tells who connected",
          "[store][daemon]") {
  temp_dir dir;
  auto old_mask = ::umask(0);
  auto listener = unix_listener::publish(dir.path, "daemon.sock");
  ::umask(old_mask);
  REQUIRE(listener.ok());
  auto path = dir.path / "daemon.sock";
  CHECK(listener->path() == path);
  struct stat info {};
  REQUIRE(::lstat(path.c_str(), &info) == 0);
  CHECK(S_ISSOCK(info.st_mode));
  CHECK((info.st_mode & 077) == 0);
  // Only the published name is left.
  CHECK(std::distance(fs::directory_iterator{dir.path}, fs::directory_iterator{}) == 1);

  auto client = connect_unix(path, 1000ms);
  REQUIRE(client.ok());
  REQUIRE(readable_within(listener->fd(), 10000));
  auto peer = listener->accept_peer();
  REQUIRE(peer.ok());
  CHECK(peer->uid == ::geteuid());
  CHECK(peer->pid == ::getpid());
  CHECK((::fcntl(peer->connection.get(), F_GETFD) & FD_CLOEXEC) != 0);
  CHECK(listener->accept_peer().error().code() == errc::unavailable);
}

TEST_CASE("a stale socket is refused to clients and replaced by the next listener",
          "[store][daemon]") {
  temp_dir dir;
  auto path = dir.path / "daemon.sock";
  CHECK(connect_unix(path, 100ms).error().code() == errc::not_found);
  make_stale_socket(path);
  CHECK(connect_unix(path, 100ms).error().code() == errc::unavailable);
  auto listener = unix_listener::publish(dir.path, "daemon.sock");
  REQUIRE(listener.ok());
  CHECK(connect_unix(path, 1000ms).ok());
}

TEST_CASE("a listener notices its socket removed or replaced, and removes only its own",
          "[store][daemon]") {
  temp_dir dir;
  auto path = dir.path / "daemon.sock";
  {
    auto listener = unix_listener::publish(dir.path, "daemon.sock");
    REQUIRE(listener.ok());
    CHECK(listener->still_published());
  }
  CHECK_FALSE(fs::exists(fs::symlink_status(path))); // removed with its listener

  auto listener = unix_listener::publish(dir.path, "daemon.sock");
  REQUIRE(listener.ok());
  SECTION("removed") {
    fs::remove(path);
    CHECK_FALSE(listener->still_published());
  }
  SECTION("replaced") {
    fs::remove(path);
    make_stale_socket(path);
    CHECK_FALSE(listener->still_published());
    listener->unpublish();
    CHECK(fs::exists(fs::symlink_status(path))); // not ours: left alone
  }
}

TEST_CASE("a connection from another user is refused", "[store][daemon]") {
  if (::geteuid() != 0) {
    WARN("skipped: only root can connect as another user");
    return;
  }
  temp_dir dir;
  // This test opens the way for uid 65534; a daemon's directory never does.
  REQUIRE(::chmod(dir.path.c_str(), 0755) == 0);
  auto listener = unix_listener::publish(dir.path, "daemon.sock");
  REQUIRE(listener.ok());
  REQUIRE(::chmod(listener->path().c_str(), 0777) == 0);

  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0)
      ::_exit(3);
    auto client = connect_unix(listener->path(), 1000ms);
    if (!client.ok())
      ::_exit(4);
    // The daemon closes the connection without a word.
    char byte;
    pollfd ready{client->get(), POLLIN, 0};
    ::_exit(::poll(&ready, 1, 10000) == 1 && ::read(client->get(), &byte, 1) == 0 ? 0 : 5);
  }
  REQUIRE(readable_within(listener->fd(), 10000));
  auto peer = listener->accept_peer();
  REQUIRE_FALSE(peer.ok());
  CHECK(peer.error().code() == errc::permission_denied);
  CHECK_THAT(peer.error().message(), Catch::Contains("uid 65534"));
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

namespace {

/// Puts a socket listening at `path` on descriptor 3 and names this
/// process in LISTEN_PID/LISTEN_FDS, as systemd does for a socket unit;
/// gives descriptor 3 back (if it was open) when it goes.
class passed_socket {
public:
  explicit passed_socket(const fs::path& path) : saved_(::fcntl(3, F_DUPFD_CLOEXEC, 10)) {
    int fd = bound_socket(path);
    REQUIRE(::listen(fd, 8) == 0);
    // With descriptor 3 free, the socket got it already.
    if (fd != 3) {
      REQUIRE(::dup2(fd, 3) == 3);
      ::close(fd);
    }
    ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
    ::setenv("LISTEN_FDS", "1", 1);
  }
  ~passed_socket() {
    if (saved_ >= 0) {
      ::dup2(saved_, 3);
      ::close(saved_);
    }
  }
  passed_socket(const passed_socket&) = delete;
  passed_socket& operator=(const passed_socket&) = delete;

private:
  int saved_;
};

} // namespace

TEST_CASE("a socket the service manager passed is served and never removed", "[store][daemon]") {
  temp_dir dir;
  auto path = dir.path / "daemon.sock";
  passed_socket passed{path};
  {
    auto listener = unix_listener::activated(dir.path, "daemon.sock");
    INFO(listener.error().to_string());
    REQUIRE(listener.ok());
    REQUIRE(listener->has_value());
    auto& served = **listener;
    CHECK(served.from_manager());
    // Children of the daemon must not take the socket for theirs.
    CHECK(std::getenv("LISTEN_PID") == nullptr);
    CHECK(std::getenv("LISTEN_FDS") == nullptr);
    CHECK((::fcntl(served.fd(), F_GETFD) & FD_CLOEXEC) != 0);
    auto client = connect_unix(path, 1000ms);
    REQUIRE(client.ok());
    REQUIRE(readable_within(served.fd(), 5000));
    CHECK(served.accept_peer().ok());
    CHECK(served.still_published());
    served.unpublish();
  }
  struct stat info {};
  REQUIRE(::lstat(path.c_str(), &info) == 0);
  CHECK(S_ISSOCK(info.st_mode));
}

TEST_CASE("a passed socket bound elsewhere is refused, naming both paths", "[store][daemon]") {
  temp_dir dir;
  auto elsewhere = dir.path / "other.sock";
  passed_socket passed{elsewhere};
  auto listener = unix_listener::activated(dir.path, "daemon.sock");
  REQUIRE_FALSE(listener.ok());
  CHECK(listener.error().code() == errc::config_error);
  CHECK_THAT(listener.error().message(), Catch::Contains("bound to '" + elsewhere.string() + "'") &&
                                           Catch::Contains((dir.path / "daemon.sock").string()));
}

TEST_CASE("a socket passed to another process is not taken", "[store][daemon]") {
  temp_dir dir;
  ::setenv("LISTEN_PID", std::to_string(::getpid() + 1).c_str(), 1);
  ::setenv("LISTEN_FDS", "1", 1);
  auto listener = unix_listener::activated(dir.path, "daemon.sock");
  REQUIRE(listener.ok());
  CHECK_FALSE(listener->has_value());
  CHECK(std::getenv("LISTEN_FDS") == nullptr);
}
