// ferry-lfs-sim: a loopback Git LFS server (Batch API plus basic transfers)
// that injects scripted faults, for tests and simulations.
// Usage and the scenario format: simulations/lfs_server/README.md.

#include "simulations/lfs_server/scenario.hpp"
#include "simulations/lfs_server/server.hpp"

#include <CLI/CLI.hpp>

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

namespace {

/// Writes the port under a temporary name and renames it into place, so a
/// reader polling for the file never sees it half-written.
ferry::status write_port_file(const std::string& path, int port) {
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temp, std::ios::trunc);
    out << port << '\n';
    out.flush();
    if (!out) {
      std::remove(temp.c_str());
      return {ferry::errc::io_error, "cannot write " + temp};
    }
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    std::remove(temp.c_str());
    return {ferry::errc::io_error, "cannot rename " + temp + " to " + path};
  }
  return ferry::status::success();
}

int fail(const std::string& message) {
  std::cerr << "ferry-lfs-sim: " << message << '\n';
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"ferry-lfs-sim: a loopback Git LFS server (Batch API, basic transfers) that "
               "injects scripted faults"};
  ferry::sim::server_options options;
  std::string root;
  std::string scenario_path;
  std::string port_file;
  uint64_t seed = 0;
  bool check = false;
  app.add_option("--root", root,
                 "Directory holding the objects (<root>/<oid[0:2]>/<oid[2:4]>/<oid>)");
  app.add_option("--port", options.port, "TCP port; 0 picks a free one")
    ->check(CLI::Range(0, 65535));
  app.add_option("--host", options.host,
                 "Address to bind; only 127.0.0.1 (or localhost) is accepted");
  app.add_option("--scenario", scenario_path, "Fault scenario (JSON file)");
  auto* seed_option =
    app.add_option("--seed", seed, "Seed for probabilistic rules (overrides the scenario's)");
  app.add_option("--offer-transfer", options.offer_transfer,
                 "Transfer adapter to choose when the client lists it (default: basic only)");
  app.add_option("--port-file", port_file, "Write the chosen port to this file (atomically)");
  app.add_option("--log", options.log_path, "Append a log of requests and injected faults here");
  app.add_flag("--hrefs-follow-host", options.hrefs_follow_host,
               "Point actions' hrefs at the port of the request's Host header (for clients "
               "that come through a proxy)");
  app.add_flag("--check", check, "Validate the scenario, print its rules and exit");
  CLI11_PARSE(app, argc, argv);

  ferry::sim::scenario faults;
  if (!scenario_path.empty()) {
    auto loaded = ferry::sim::scenario::load(scenario_path);
    if (!loaded.ok())
      return fail(loaded.error().message());
    faults = std::move(*loaded);
  }
  if (seed_option->count() > 0)
    faults.set_seed(seed);
  if (check) {
    std::cout << faults.describe();
    return 0;
  }
  if (root.empty())
    return fail("--root is required (run with --help for usage)");
  options.root = root;

  // One thread takes SIGINT/SIGTERM with sigwait(); every other thread
  // (including cpp-httplib's workers, which inherit this mask) has them blocked.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // A client vanishing mid-response must not kill the server.
  signal(SIGPIPE, SIG_IGN);

  ferry::sim::lfs_server server(options, std::move(faults));
  if (auto bound = server.bind(); !bound.ok())
    return fail(bound.message());
  if (!port_file.empty()) {
    if (auto written = write_port_file(port_file, server.port()); !written.ok())
      return fail(written.message());
  }
  std::cout << "listening on http://127.0.0.1:" << server.port() << std::endl;

  std::atomic<bool> finished{false};
  std::thread signal_waiter([&] {
    int received = 0;
    sigwait(&stop_signals, &received);
    if (finished)
      return; // woken by main() below, not by a signal
    // stop() has no effect until run() is listening; a signal may come first.
    while (!server.finished()) {
      server.stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });

  const ferry::status ran = server.run();
  finished = true;
  pthread_kill(signal_waiter.native_handle(), SIGTERM);
  signal_waiter.join();
  if (!port_file.empty())
    std::remove(port_file.c_str());
  if (!ran.ok())
    return fail(ran.message());
  std::cout << "stopped" << std::endl;
  return 0;
}
