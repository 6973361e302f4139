#pragma once

// A ferry-sim scenario: the workload, the peer, the faults and the limits of
// one simulation. The file format is documented in simulations/README.md.

#include "protocol/status.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace ferry::harness {

/// One way of drawing object sizes.
struct size_distribution {
  enum class kind { fixed, uniform, lognormal, mix };
  kind shape = kind::fixed;
  /// fixed: the size; uniform: the smallest size.
  int64_t low = 0;
  /// uniform: the largest size (inclusive); lognormal: the largest size.
  int64_t high = 0;
  /// lognormal: the median size and the spread of its logarithm.
  double median = 0;
  double sigma = 0;
  /// mix: the parts, each with its share (the shares add up to 1).
  std::vector<size_distribution> parts;
  double share = 0;
};

enum class workload_mode { migrate, push, pull };
const char* to_string(workload_mode mode);

struct workload_spec {
  int64_t objects = 0;
  size_distribution sizes;
  workload_mode mode = workload_mode::migrate;
  /// push and pull: repositories moved at once (the objects are shared out).
  int repositories = 1;
  /// ferry migrate --transfers (migrate only).
  int transfers = 8;
  /// ferry migrate --tps, 0 for no limit (migrate only): slows a small run
  /// down so that kill points are seen.
  double tps = 0;
};

enum class peer_kind { folder, lfs_sim, bridge_sim, radosgw };
const char* to_string(peer_kind kind);

struct peer_spec {
  peer_kind kind = peer_kind::folder;
  /// lfs-sim and bridge-sim: the simulator's scenario "rules", passed on as
  /// they are (the simulator checks them before the simulation starts).
  nlohmann::json rules = nlohmann::json::array();
};

/// A window [start_ms, end_ms) measured from when the fault proxy starts.
struct time_window {
  int64_t start_ms = 0;
  int64_t end_ms = 0;
};

/// faults.network: what the fault proxy injects between ferry and an lfs-sim
/// peer (simulations/harness/fault_proxy.hpp says how each fault acts).
struct network_spec {
  /// faults.network was given: ferry reaches the peer through the proxy.
  bool enabled = false;
  int64_t latency_ms = 0;
  /// At most latency_ms.
  int64_t jitter_ms = 0;
  /// 0: unlimited.
  int64_t bandwidth_bytes_per_s = 0;
  double reset_probability = 0;
  int64_t reset_after_min_bytes = 0;
  int64_t reset_after_max_bytes = 0;
  /// Blackhole windows at fixed times.
  std::vector<time_window> blackholes;
  /// Blackhole windows drawn from the seed: `random_blackholes` windows of
  /// `random_blackhole_ms` each, inside the first `random_blackholes_within_ms`.
  int64_t random_blackholes = 0;
  int64_t random_blackhole_ms = 0;
  int64_t random_blackholes_within_ms = 0;
};

/// faults.disk: the destination folder on a tmpfs of its own, too small for
/// the workload until the harness grows it.
struct disk_spec {
  /// faults.disk was given.
  bool enabled = false;
  /// The tmpfs's size at first.
  int64_t capacity_bytes = 0;
  /// After this run (from 1) ends, the tmpfs grows to hold the workload.
  int freed_after_run = 1;
};

struct fault_spec {
  /// SIGKILLs of ferry, each followed by the same command again.
  int kills = 0;
  network_spec network;
  disk_spec disk;
};

struct expect_spec {
  /// The whole simulation (every run) may take this long; then it is stopped.
  double max_duration_s = 600;
  /// 0: no minimum.
  double min_throughput_bytes_per_s = 0;
};

struct scenario {
  std::string name;
  std::string comment;
  workload_spec workload;
  peer_spec peer;
  fault_spec faults;
  expect_spec expect;

  /// Parses scenario JSON; errors (errc::invalid_request) name the field,
  /// e.g. "workload.sizes.uniform[1]: ...". Unknown keys are errors.
  static result<scenario> parse(const std::string& text);
  /// Reads and parses a scenario file.
  static result<scenario> load(const std::string& path);

  /// The scenario with every default filled in (parse() of it gives it back).
  nlohmann::json to_json() const;
};

} // namespace ferry::harness
