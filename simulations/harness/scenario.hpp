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

enum class peer_kind { folder, lfs_sim };
const char* to_string(peer_kind kind);

struct peer_spec {
  peer_kind kind = peer_kind::folder;
  /// lfs-sim: its scenario's "rules", passed on as they are (ferry-lfs-sim
  /// checks them when it starts).
  nlohmann::json rules = nlohmann::json::array();
};

struct fault_spec {
  /// SIGKILLs of ferry, each followed by the same command again.
  int kills = 0;
  /// Network faults (the fault proxy's schedule) and disk faults: kept as
  /// written, read by the code that injects them.
  nlohmann::json network = nlohmann::json::array();
  nlohmann::json disk = nlohmann::json::array();
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
