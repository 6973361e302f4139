#include "store/os/runtime_dir.hpp"

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

using ferry::daemon_directory_path;
using ferry::errc;
using ferry::file_lock;
using ferry::make_private_directory;
using ferry::take_daemon_lock;
using ferry::testing::env_var;
using ferry::testing::temp_dir;

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

/// Runs `body` in a forked child and returns its exit code (its return
/// value), or -1 when it did not exit normally.
int in_child(const std::function<int()>& body) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0)
    ::_exit(body());
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

mode_t mode_of(const fs::path& path) {
  struct stat info {};
  REQUIRE(::lstat(path.c_str(), &info) == 0);
  return info.st_mode & 07777;
}

std::string read_file(const fs::path& path) {
  std::ifstream in{path};
  return {std::istreambuf_iterator<char>{in}, {}};
}

} // namespace

TEST_CASE("the daemon directory comes from FERRY_DAEMON_DIR first", "[store][daemon]") {
  env_var chosen{"FERRY_DAEMON_DIR", "/somewhere/ferry"};
  env_var xdg{"XDG_RUNTIME_DIR", "/tmp"};
  CHECK(daemon_directory_path() == "/somewhere/ferry");
}

TEST_CASE("the daemon directory is under XDG_RUNTIME_DIR only when that is private",
          "[store][daemon]") {
  temp_dir base;
  env_var chosen{"FERRY_DAEMON_DIR", nullptr};
  env_var tmp{"TMPDIR", "/var/tmp"};
  auto uid = std::to_string(::geteuid());
  fs::path run_user = "/run/user/" + uid;
  // Without a usable XDG_RUNTIME_DIR: /run/user/<uid> when it is there, else TMPDIR.
  std::error_code ignored;
  fs::path fallback =
    fs::is_directory(run_user, ignored) ? run_user / "ferry" : fs::path{"/var/tmp/ferry-" + uid};

  REQUIRE(::chmod(base.path.c_str(), 0700) == 0);
  {
    env_var xdg{"XDG_RUNTIME_DIR", base.path.c_str()};
    CHECK(daemon_directory_path() == base.path / "ferry");
  }
  REQUIRE(::chmod(base.path.c_str(), 0755) == 0);
  {
    env_var xdg{"XDG_RUNTIME_DIR", base.path.c_str()};
    CHECK(daemon_directory_path() == fallback);
  }
  {
    env_var xdg{"XDG_RUNTIME_DIR", "relative/dir"};
    CHECK(daemon_directory_path() == fallback);
  }
  if (!fs::is_directory(run_user, ignored)) {
    env_var xdg{"XDG_RUNTIME_DIR", nullptr};
    env_var no_tmp{"TMPDIR", nullptr};
    CHECK(daemon_directory_path() == "/tmp/ferry-" + uid);
  }
}

TEST_CASE("make_private_directory creates a 0700 directory and accepts it again",
          "[store][daemon]") {
  temp_dir base;
  auto dir = base.path / "ferry";
  auto old_mask = ::umask(0);
  auto made = make_private_directory(dir);
  ::umask(old_mask);
  REQUIRE(made.ok());
  CHECK(mode_of(dir) == 0700);
  CHECK(make_private_directory(dir).ok());
}

TEST_CASE("make_private_directory refuses what is not private", "[store][daemon]") {
  temp_dir base;
  auto dir = base.path / "ferry";

  SECTION("a symbolic link to a private directory") {
    auto target = base.path / "target";
    REQUIRE(::mkdir(target.c_str(), 0700) == 0);
    fs::create_directory_symlink(target, dir);
    auto made = make_private_directory(dir);
    CHECK(made.code() == errc::permission_denied);
    CHECK_THAT(made.message(), Catch::Contains(dir.string()) &&
                                 Catch::Contains("is a symbolic link") &&
                                 Catch::Contains("FERRY_DAEMON_DIR"));
  }
  SECTION("a directory others may enter") {
    REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
    REQUIRE(::chmod(dir.c_str(), 0755) == 0);
    auto made = make_private_directory(dir);
    CHECK(made.code() == errc::permission_denied);
    CHECK_THAT(made.message(), Catch::Contains(dir.string()) &&
                                 Catch::Contains("unsafe permissions 0755") &&
                                 Catch::Contains("chmod 0700 " + dir.string()));
  }
  SECTION("a file") {
    std::ofstream{dir} << "x";
    auto made = make_private_directory(dir);
    CHECK(made.code() == errc::permission_denied);
    CHECK_THAT(made.message(), Catch::Contains("is not a directory"));
  }
  SECTION("a directory of another user") {
    if (::geteuid() != 0) {
      WARN("skipped: only root can give a directory to another user");
      return;
    }
    REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
    REQUIRE(::chown(dir.c_str(), 65534, 65534) == 0);
    auto made = make_private_directory(dir);
    CHECK(made.code() == errc::permission_denied);
    CHECK_THAT(made.message(),
               Catch::Contains(dir.string()) && Catch::Contains("owned by uid 65534"));
  }
  SECTION("a missing parent") {
    auto made = make_private_directory(base.path / "missing" / "ferry");
    CHECK(made.code() == errc::not_found);
  }
}

TEST_CASE("a file lock is held against other processes until released", "[store][daemon]") {
  temp_dir dir;
  auto file = dir.path / "spawn.lock";
  auto try_in_child = [&] {
    return in_child([&] {
      auto lock = file_lock::try_take(file);
      return lock.ok() ? 0 : lock.error().code() == errc::busy ? 1 : 2;
    });
  };
  {
    auto lock = file_lock::try_take(file);
    REQUIRE(lock.ok());
    CHECK((::fcntl(lock->fd(), F_GETFD) & FD_CLOEXEC) != 0);
    CHECK(mode_of(file) == 0600);
    CHECK(try_in_child() == 1);
    // A bounded wait gives up with busy.
    CHECK(in_child([&] {
            auto started = std::chrono::steady_clock::now();
            auto lock = file_lock::take_within(file, 50ms);
            auto waited = std::chrono::steady_clock::now() - started;
            return !lock.ok() && lock.error().code() == errc::busy && waited >= 50ms ? 0 : 1;
          }) == 0);
  }
  CHECK(try_in_child() == 0);
}

TEST_CASE("the daemon lock holds the daemon's pid and names it to the next one",
          "[store][daemon]") {
  temp_dir dir;
  auto lock = take_daemon_lock(dir.path);
  REQUIRE(lock.ok());
  auto pid = std::to_string(::getpid());
  CHECK(read_file(dir.path / "daemon.pid") == pid + "\n");
  CHECK(in_child([&] {
          auto second = take_daemon_lock(dir.path);
          bool named = !second.ok() && second.error().code() == errc::busy &&
                       second.error().message().find("(pid " + pid + ")") != std::string::npos;
          return named ? 0 : 1;
        }) == 0);
}

TEST_CASE("wait_for_process_end waits for a process, bounded", "[store][daemon]") {
  int gate[2];
  REQUIRE(::pipe(gate) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    char byte;
    ::close(gate[1]);
    (void)!::read(gate[0], &byte, 1);
    ::_exit(0);
  }
  ::close(gate[0]);
  CHECK(ferry::wait_for_process_end(pid, 20ms).code() == errc::unavailable);
  ::close(gate[1]);
  CHECK(ferry::wait_for_process_end(pid, 10000ms).ok());
  int status = 0;
  CHECK(::waitpid(pid, &status, 0) == pid);
}
