#pragma once

// Runs ferry-bridge-sim (simulations/bridge_sim) the way Ferry runs the
// bridge: one process per command, the request on stdin (then closed),
// stdout and stderr collected, a deadline after which the process group is
// killed. bridge_sim_fixture adds a drive folder, a scenario and a log in a
// temp dir of its own.

#include "test_support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace ferry::testing {

/// How one simulator run ended and what it wrote.
struct bridge_sim_run {
  /// The exit status when it exited by itself, else -1.
  int exit_code = -1;
  /// The signal that ended it, else 0 (SIGKILL after the deadline).
  int signal = 0;
  /// It was still running at the deadline and was killed then.
  bool timed_out = false;
  std::string out;
  std::string err;
  std::chrono::milliseconds elapsed{0};

  /// stdout split into lines (without the "\n"s).
  std::vector<std::string> out_lines() const {
    std::vector<std::string> lines;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);)
      lines.push_back(line);
    return lines;
  }

  /// The last stdout line parsed as JSON; discarded when there is none or
  /// it is not JSON.
  nlohmann::json envelope() const {
    const auto lines = out_lines();
    if (lines.empty())
      return nlohmann::json(nlohmann::json::value_t::discarded);
    return nlohmann::json::parse(lines.back(), nullptr, false);
  }

  /// The failure envelope's details decoded again (they travel as a JSON
  /// string); null when empty.
  nlohmann::json details() const {
    const auto text = envelope().value("details", std::string());
    return text.empty() ? nlohmann::json(nullptr) : nlohmann::json::parse(text, nullptr, false);
  }
};

/// Where and how to run the simulator.
struct bridge_sim_options {
  std::string program = FERRY_BRIDGE_SIM_PATH;
  std::optional<std::filesystem::path> drive;
  std::optional<std::filesystem::path> scenario;
  std::optional<std::filesystem::path> log;
  /// Killed (the whole process group, SIGKILL) when still running then.
  std::chrono::milliseconds deadline{10000};
};

/// Runs `<program> [--drive D] [--scenario S] [--log L] bridge <command>`
/// with `input` on stdin. The caller never gets SIGPIPE from a simulator
/// that stops reading.
inline bridge_sim_run run_bridge_sim(const std::string& command, const std::string& input,
                                     const bridge_sim_options& options = {}) {
  ::signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> args{options.program};
  if (options.drive)
    args.insert(args.end(), {"--drive", options.drive->string()});
  if (options.scenario)
    args.insert(args.end(), {"--scenario", options.scenario->string()});
  if (options.log)
    args.insert(args.end(), {"--log", options.log->string()});
  args.insert(args.end(), {"bridge", command});
  std::vector<char*> argv;
  for (auto& arg : args)
    argv.push_back(arg.data());
  argv.push_back(nullptr);

  int in_pipe[2], out_pipe[2], err_pipe[2];
  REQUIRE(::pipe2(in_pipe, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(out_pipe, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(err_pipe, O_CLOEXEC) == 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_pipe[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  // A process group of its own, so the deadline kills everything it started;
  // SIGPIPE back to its default, as Ferry's children get it.
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setpgroup(&attributes, 0);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF);
  const auto started = std::chrono::steady_clock::now();
  pid_t pid = -1;
  const int spawned = ::posix_spawn(&pid, argv[0], &actions, &attributes, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  for (int fd : {in_pipe[0], out_pipe[1], err_pipe[1]})
    ::close(fd);
  if (spawned != 0) {
    for (int fd : {in_pipe[1], out_pipe[0], err_pipe[0]})
      ::close(fd);
    FAIL("cannot start " << options.program << ": " << std::strerror(spawned));
  }

  bridge_sim_run run;
  int to_child = in_pipe[1];
  ::fcntl(to_child, F_SETFL, O_NONBLOCK);
  size_t written = 0;
  if (input.empty()) {
    ::close(to_child);
    to_child = -1;
  }
  int from_child[2] = {out_pipe[0], err_pipe[0]};
  std::string* sinks[2] = {&run.out, &run.err};
  const auto deadline = started + options.deadline;
  while (from_child[0] >= 0 || from_child[1] >= 0 || to_child >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      break;
    pollfd fds[3] = {
      {from_child[0], POLLIN, 0}, {from_child[1], POLLIN, 0}, {to_child, POLLOUT, 0}};
    if (::poll(fds, 3, static_cast<int>(left.count())) < 0 && errno != EINTR)
      break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].revents == 0)
        continue;
      char buffer[65536];
      const ssize_t n = ::read(from_child[i], buffer, sizeof buffer);
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(from_child[i]);
        from_child[i] = -1;
      }
    }
    if (fds[2].revents != 0) {
      const ssize_t n = ::write(to_child, input.data() + written, input.size() - written);
      if (n > 0)
        written += static_cast<size_t>(n);
      if ((n < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) {
        ::close(to_child);
        to_child = -1;
      }
    }
  }
  for (int fd : {from_child[0], from_child[1], to_child})
    if (fd >= 0)
      ::close(fd);

  int wait_status = 0;
  pid_t waited = ::waitpid(pid, &wait_status, WNOHANG);
  // Output ends before the exit does; give a finishing process until the
  // deadline to be reaped.
  while (waited == 0 && std::chrono::steady_clock::now() < deadline) {
    ::usleep(1000);
    waited = ::waitpid(pid, &wait_status, WNOHANG);
  }
  if (waited == 0) {
    run.timed_out = true;
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, &wait_status, 0);
  }
  run.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::steady_clock::now() - started);
  if (WIFEXITED(wait_status))
    run.exit_code = WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status))
    run.signal = WTERMSIG(wait_status);
  return run;
}

/// A temp dir with a drive folder, an optional scenario and a log, for tests
/// that run the simulator several times against the same drive.
class bridge_sim_fixture {
public:
  /// `scenario`: the scenario document, or null for none (healthy, ready).
  explicit bridge_sim_fixture(const nlohmann::json& scenario = nullptr) {
    std::filesystem::create_directories(drive());
    std::filesystem::create_directories(files());
    set_scenario(scenario);
  }

  /// The same, for a scenario written in place: sim({{"auth_state", "needs_login"}}).
  explicit bridge_sim_fixture(nlohmann::json::initializer_list_t scenario)
      : bridge_sim_fixture(nlohmann::json(scenario)) {}

  /// Replaces the scenario (null: none).
  void set_scenario(const nlohmann::json& scenario) {
    if (scenario.is_null()) {
      options_.scenario.reset();
      return;
    }
    options_.scenario = dir_.path / "scenario.json";
    std::ofstream(*options_.scenario) << scenario.dump(2);
  }

  /// Runs `command` with `request` (dumped as JSON) on stdin.
  bridge_sim_run run(const std::string& command, const nlohmann::json& request,
                     std::chrono::milliseconds deadline = std::chrono::milliseconds(10000)) const {
    return run_raw(command, request.dump(), deadline);
  }

  /// Runs `command` with `input` as is on stdin.
  bridge_sim_run
  run_raw(const std::string& command, const std::string& input,
          std::chrono::milliseconds deadline = std::chrono::milliseconds(10000)) const {
    auto options = options_;
    options.drive = drive();
    options.log = log_path();
    options.deadline = deadline;
    return run_bridge_sim(command, input, options);
  }

  /// The folder playing the Drive.
  std::filesystem::path drive() const { return dir_.path / "drive"; }

  /// A folder for local files to upload and download to.
  std::filesystem::path files() const { return dir_.path / "files"; }

  /// The simulator's --log file.
  std::filesystem::path log_path() const { return dir_.path / "sim.log"; }

  /// Where the drive keeps `oid` under storage base `base`.
  std::filesystem::path object_path(const std::string& oid, const std::string& base = "LFS") const {
    return drive() / base / oid.substr(0, 2) / oid.substr(2, 2) / oid;
  }

  /// Writes `content` to files()/name and returns its path.
  std::filesystem::path write_file(const std::string& name, const std::string& content) const {
    const auto path = files() / name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  /// The log's events, one JSON object per line, in order.
  std::vector<nlohmann::json> log_events() const {
    std::vector<nlohmann::json> events;
    std::ifstream in(log_path());
    for (std::string line; std::getline(in, line);)
      events.push_back(nlohmann::json::parse(line, nullptr, false));
    return events;
  }

private:
  temp_dir dir_;
  bridge_sim_options options_;
};

/// The whole content of a file ("" when it cannot be read).
inline std::string read_whole_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

} // namespace ferry::testing
