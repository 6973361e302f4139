#pragma once

// ferry-sim's runner: builds the run directory, generates the workload,
// starts the peer, runs the real ferry (or git + git-lfs with ferry as the
// agent) and kills it at the seeded points, then checks the invariants and
// writes result.json and events.jsonl (simulations/README.md).

#include "simulations/harness/event_log.hpp"
#include "simulations/harness/invariants.hpp"
#include "simulations/harness/scenario.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

namespace ferry::harness {

/// Something placed between ferry and the peer (the fault-injecting proxy):
/// started once the peer listens, stopped after the last run. Destroying a
/// started stage must stop it too (a simulation that fails to set up only
/// destroys it).
class network_stage {
public:
  virtual ~network_stage() = default;
  /// Starts forwarding to 127.0.0.1:`upstream_port`; returns the loopback
  /// port ferry is to use instead.
  virtual result<int> start(int upstream_port) = 0;
  virtual void stop() = 0;
  /// Connections it reset (each may have cut one request short).
  virtual int64_t connections_reset() const = 0;
  /// Its counters, for result.json's "timings".
  virtual nlohmann::json stats() const = 0;
};

/// Builds the network stage for a scenario's faults.network (called only
/// when it is given). It records its fault windows in `events`.
using network_stage_factory = std::function<result<std::unique_ptr<network_stage>>(
  const scenario& scene, uint64_t seed, event_log& events)>;

struct run_options {
  scenario scene;
  uint64_t seed = 0;
  /// The run directory; created, and must be empty if it exists.
  std::filesystem::path out;
  std::filesystem::path ferry;
  std::filesystem::path lfs_sim;
  std::filesystem::path bridge_sim;
  /// radosgw: the script that starts and stops it (tests/s3/radosgw.sh), the
  /// harness's own S3 client (s3_mirror.py), and its loopback ports (0: free
  /// ones are picked).
  std::filesystem::path radosgw_script;
  std::filesystem::path s3_client;
  int rgw_port = 0;
  int rgw_mon_port = 0;
  /// Test hook: a shell command run after each run of ferry ends (before the
  /// harness looks at the destination again), with FERRY_SIM_DESTINATION
  /// (the destination folder; for several, the first), FERRY_SIM_RUN (the
  /// run's number) and FERRY_SIM_LAST (1 after the last run, else 0) in its
  /// environment. It may damage the outcome behind
  /// Ferry's back; the invariants must notice.
  std::string after_run;
  /// Empty: the fault proxy (network_stage.hpp).
  network_stage_factory network;
  /// Called with the run directory once result.json and events.jsonl are
  /// written (the HTML report); an error stops the simulation (exit 2).
  std::function<status(const std::filesystem::path& run_dir)> after_results;
};

/// What run_simulation ended with.
struct run_outcome {
  /// Every invariant held.
  bool passed = false;
  /// result.json's content.
  nlohmann::json result;
};

/// Runs the whole simulation. An error status is for bad input or a harness
/// that could not set the simulation up (exit 2); a failed invariant is a
/// run_outcome with passed == false (exit 1).
result<run_outcome> run_simulation(const run_options& options);

/// result.json without its "timings": what the same seed must reproduce.
nlohmann::json without_timings(nlohmann::json result);

} // namespace ferry::harness
