// ferry-sim: runs a declared workload through the real ferry against a
// failing peer, kills ferry at seeded moments and checks what it left.
// Usage and the scenario format: simulations/README.md.

#include "simulations/harness/report.hpp"
#include "simulations/harness/runner.hpp"
#include "simulations/harness/scenario.hpp"

#include <CLI/CLI.hpp>

#include <filesystem>
#include <iostream>

namespace {

namespace fs = std::filesystem;

int fail(const std::string& message) {
  std::cerr << "ferry-sim: " << message << '\n';
  return 2;
}

/// A program installed next to ferry-sim itself.
fs::path beside_self(const std::string& name) {
  std::error_code ec;
  return fs::read_symlink("/proc/self/exe", ec).parent_path() / name;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"ferry-sim: stress simulations of ferry with fault injection"};
  app.require_subcommand(1);

  auto* run =
    app.add_subcommand("run", "Run a scenario, check the invariants, write the run directory");
  std::string scenario_path;
  uint64_t seed = 1;
  std::string out;
  std::string ferry = beside_self("ferry").string();
  std::string lfs_sim = beside_self("ferry-lfs-sim").string();
  std::string bridge_sim = beside_self("ferry-bridge-sim").string();
  int rgw_port = 0, rgw_mon_port = 0;
  std::string after_run;
  run->add_option("scenario", scenario_path, "Scenario file (JSON)")->required();
  run->add_option("--seed", seed,
                  "Seed of the workload, the kill points and the faults (default 1)");
  run->add_option("--out", out,
                  "Run directory (default ferry-sim-<scenario>-seed<N>); must be empty");
  run->add_option("--ferry", ferry, "The ferry binary (default: next to ferry-sim)");
  run->add_option("--lfs-sim", lfs_sim, "The ferry-lfs-sim binary (default: next to ferry-sim)");
  run->add_option("--bridge-sim", bridge_sim,
                  "The ferry-bridge-sim binary (default: next to ferry-sim)");
  run->add_option("--rgw-port", rgw_port, "peer radosgw: its loopback port (default: a free one)")
    ->check(CLI::Range(0, 65535));
  run
    ->add_option("--rgw-mon-port", rgw_mon_port,
                 "peer radosgw: its Ceph monitor's loopback port (default: a free one)")
    ->check(CLI::Range(0, 65535));
  run->add_option("--after-run", after_run,
                  "Test hook: a shell command run after each run of ferry, with "
                  "FERRY_SIM_DESTINATION, FERRY_SIM_RUN, FERRY_SIM_LAST (and, with a "
                  "ferry-lfs-sim peer, FERRY_SIM_LFS_URL) set");

  auto report = app.add_subcommand(
    "report", "(Re)write DIR/report.html from DIR/result.json and DIR/events.jsonl");
  std::string report_dir;
  report->add_option("dir", report_dir, "A run directory")->required();
  CLI11_PARSE(app, argc, argv);

  if (report->parsed()) {
    std::string error;
    const int rc = ferry::sim_report::write_report(report_dir, error);
    if (rc == ferry::sim_report::report_written)
      std::cout << "ferry-sim: wrote " << (fs::path(report_dir) / "report.html").string() << '\n';
    else
      std::cerr << "ferry-sim: " << error << '\n';
    return rc;
  }

  auto scene = ferry::harness::scenario::load(scenario_path);
  if (!scene.ok())
    return fail(scene.error().message());
  ferry::harness::run_options options;
  options.scene = std::move(*scene);
  options.seed = seed;
  options.out = out.empty() ? fs::path("ferry-sim-" + fs::path(scenario_path).stem().string() +
                                       "-seed" + std::to_string(seed))
                            : fs::path(out);
  std::error_code ec;
  options.ferry = fs::absolute(ferry, ec);
  options.lfs_sim = fs::absolute(lfs_sim, ec);
  options.bridge_sim = fs::absolute(bridge_sim, ec);
  options.radosgw_script = fs::path(FERRY_SIM_SOURCE_DIR) / "tests" / "s3" / "radosgw.sh";
  options.s3_client = fs::path(FERRY_SIM_SOURCE_DIR) / "simulations" / "harness" / "s3_mirror.py";
  options.rgw_port = rgw_port;
  options.rgw_mon_port = rgw_mon_port;
  options.after_run = after_run;
  // The report only shows the results: without it the verdict still stands
  // (and sets the exit code); `ferry-sim report DIR` can draw it later.
  options.after_results = [](const fs::path& run_dir) {
    std::string error;
    if (ferry::sim_report::write_report(run_dir, error) != ferry::sim_report::report_written)
      std::cerr << "ferry-sim: report.html not written: " << error << '\n';
    return ferry::status::success();
  };
  if (!fs::is_regular_file(options.ferry))
    return fail("no ferry binary at " + options.ferry.string() + " (use --ferry)");
  if (options.scene.peer.kind == ferry::harness::peer_kind::lfs_sim &&
      !fs::is_regular_file(options.lfs_sim))
    return fail("no ferry-lfs-sim binary at " + options.lfs_sim.string() + " (use --lfs-sim)");
  if (options.scene.peer.kind == ferry::harness::peer_kind::bridge_sim &&
      !fs::is_regular_file(options.bridge_sim))
    return fail("no ferry-bridge-sim binary at " + options.bridge_sim.string() +
                " (use --bridge-sim)");

  auto outcome = ferry::harness::run_simulation(options);
  if (!outcome.ok())
    return fail(outcome.error().message());
  std::cout << "ferry-sim: " << outcome->result["verdict"].get<std::string>() << " ("
            << options.out.string() << ")\n";
  for (const auto& check : outcome->result["invariants"]) {
    std::cout << "  " << (check["passed"].get<bool>() ? "ok    " : "FAILED") << ' '
              << check["name"].get<std::string>() << '\n';
    if (!check["passed"].get<bool>()) {
      for (const auto& line : check["evidence"])
        std::cout << "         " << line.get<std::string>() << '\n';
    }
  }
  return outcome->passed ? 0 : 1;
}
