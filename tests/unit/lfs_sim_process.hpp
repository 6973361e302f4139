#pragma once

// Runs ferry-lfs-sim (simulations/lfs_server) for a test: started on a free
// loopback port with its own root, stopped with SIGTERM when the test ends.

#include "test_support.hpp"

#include <catch2/catch.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace ferry::testing {

/// One ferry-lfs-sim process. The scenario (JSON text, may be empty) is
/// written to a file in the sim's own temp dir.
class lfs_sim_process {
public:
  explicit lfs_sim_process(const std::string& scenario = {}) {
    root_ = dir_.path / "root";
    port_file_ = dir_.path / "port";
    const auto output = dir_.path / "sim.out";
    std::vector<std::string> args{FERRY_LFS_SIM_PATH, "--root", root_.string(),
                                  "--port",           "0",      "--port-file",
                                  port_file_.string()};
    if (!scenario.empty()) {
      const auto scenario_file = dir_.path / "scenario.json";
      std::ofstream(scenario_file) << scenario;
      args.insert(args.end(), {"--scenario", scenario_file.string()});
    }
    std::vector<char*> argv;
    for (auto& arg : args)
      argv.push_back(arg.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, output.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    const int spawned =
      ::posix_spawn(&child_.pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    REQUIRE(spawned == 0);

    // The sim writes the port file atomically once it listens.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!std::filesystem::exists(port_file_)) {
      int wait_status = 0;
      if (::waitpid(child_.pid, &wait_status, WNOHANG) == child_.pid) {
        child_.pid = -1;
        FAIL("ferry-lfs-sim exited at start-up: " << read_file(output));
      }
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::ifstream(port_file_) >> port_;
    REQUIRE(port_ > 0);
    auto health = client().Get("/health");
    REQUIRE(health);
    REQUIRE(health->status == 200);
  }

  lfs_sim_process(const lfs_sim_process&) = delete;
  lfs_sim_process& operator=(const lfs_sim_process&) = delete;

  /// "http://127.0.0.1:PORT" + path.
  std::string url(const std::string& path = {}) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  /// Where the sim keeps objects.
  const std::filesystem::path& root() const { return root_; }

  /// The stored object's path under root().
  std::filesystem::path object_path(const std::string& oid) const {
    return root_ / oid.substr(0, 2) / oid.substr(2, 2) / oid;
  }

  /// GET /stats.
  nlohmann::json stats() {
    auto answer = client().Get("/stats");
    REQUIRE(answer);
    REQUIRE(answer->status == 200);
    return nlohmann::json::parse(answer->body);
  }

  /// stats()[group][key], 0 when absent.
  int64_t stat(const std::string& group, const std::string& key) {
    auto all = stats();
    if (!all.contains(group) || !all[group].contains(key))
      return 0;
    return all[group][key].get<int64_t>();
  }

private:
  httplib::Client client() const {
    httplib::Client http("127.0.0.1", port_);
    http.set_connection_timeout(5);
    http.set_read_timeout(10);
    return http;
  }

  static std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  /// Stops the sim: SIGTERM, then a bounded wait (SIGKILL if it hangs).
  /// A member, so that a failed start-up still stops it.
  struct child_process {
    pid_t pid = -1;
    ~child_process() {
      if (pid <= 0)
        return;
      ::kill(pid, SIGTERM);
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      int wait_status = 0;
      while (::waitpid(pid, &wait_status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() >= deadline) {
          ::kill(pid, SIGKILL);
          ::waitpid(pid, &wait_status, 0);
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
  };

  temp_dir dir_;
  std::filesystem::path root_;
  std::filesystem::path port_file_;
  child_process child_;
  int port_ = 0;
};

} // namespace ferry::testing
