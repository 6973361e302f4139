#pragma once

// ferry-lfs-sim's HTTP side: a loopback Git LFS server (Batch API plus basic
// transfers) that injects the faults a scenario asks for.

#include "protocol/status.hpp"
#include "simulations/lfs_server/scenario.hpp"

#include <filesystem>
#include <memory>
#include <string>

namespace ferry::sim {

/// How the server is set up (see main.cpp for the matching flags).
struct server_options {
  /// Objects live under <root>/<oid[0:2]>/<oid[2:4]>/<oid>.
  std::filesystem::path root;
  /// Loopback only: "127.0.0.1" or "localhost".
  std::string host = "127.0.0.1";
  /// 0 picks a free port.
  int port = 0;
  /// A transfer adapter name to choose when the client lists it (besides basic).
  std::string offer_transfer;
  /// Request log (appended); empty for none.
  std::string log_path;
  /// Actions' hrefs take the port of the request's Host header (the port a
  /// client reached through a proxy) instead of the server's own.
  bool hrefs_follow_host = false;
};

/// The simulated Git LFS server. Construct, bind(), then run() until stop().
class lfs_server {
public:
  lfs_server(server_options options, scenario faults);
  ~lfs_server();
  lfs_server(const lfs_server&) = delete;
  lfs_server& operator=(const lfs_server&) = delete;

  /// Creates the root, opens the log and binds the listening socket.
  status bind();

  /// The bound port (valid after a successful bind()).
  int port() const;

  /// Serves until stop(); returns once every connection has finished.
  status run();

  /// Asks run() to return. Safe to call from any thread, repeatedly.
  void stop();

  /// True once run() has returned.
  bool finished() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace ferry::sim
