#pragma once

// A ferry-sim run directory made up for the report's tests: events.jsonl and
// result.json as the contract describes them, from a small deterministic
// model of a transfer (no ferry, no network).

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ferry::sim_report::testing {

/// What the made-up run holds, for the checks.
struct synthetic_run {
  int uploads = 0;
  int downloads = 0;
  std::vector<std::int64_t> kills;
  std::vector<std::string> fault_kinds;
  std::vector<std::string> retry_classes;
  std::vector<std::string> failure_classes;
  std::string scenario_name;
  std::string evidence;
};

/// Writes `dir`/events.jsonl and `dir`/result.json (`dir` must exist): 300
/// uploads and 100 downloads over 8 connections at 1 MB/s each, two kills, a
/// blackhole window in which attempts are retried as `unavailable`, some
/// `io_error` retries, and two `not_found` failures. The scenario name and
/// an invariant's evidence hold HTML-special characters.
synthetic_run write_synthetic_run(const std::filesystem::path& dir);

} // namespace ferry::sim_report::testing
