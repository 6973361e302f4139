#pragma once

// What `ferry migrate` tells its user: the live progress line, the final
// summary and the JSON report. Plain functions of the numbers; no I/O.

#include "actors/policy/migration_shard.hpp"
#include "store/journal/migration_inventory.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace ferry {

/// Where a running migration stands.
struct migration_progress {
  /// Objects and bytes the migration has to handle in total (copy + skip);
  /// `total_known` is false while the source is still being listed.
  int64_t total_objects = 0;
  int64_t total_bytes = 0;
  bool total_known = true;
  /// Objects finished (copied, present, failed, corrupt) and their bytes.
  int64_t done_objects = 0;
  int64_t done_bytes = 0;
  /// Bytes moved so far in this run (for the rate), including partial ones.
  int64_t moved_bytes = 0;
  int64_t failed_objects = 0;
  int in_flight = 0;
  int concurrency = 0;
  std::chrono::milliseconds elapsed{0};
};

/// "1,234,567".
std::string with_separators(int64_t value);

/// "1.5 GiB", "512 B", "3.2 MiB".
std::string format_bytes(int64_t bytes);

/// "1h02m", "3m05s", "42s"; "?" when unknown.
std::string format_eta(std::chrono::seconds eta);

/// One line, for a terminal (rewritten in place) or a log:
/// "1234/5000 objects, 1.2 GiB/4.0 GiB (30.0%), 45.2 MiB/s, ETA 1m05s,
///  8 in flight, 2 failed". The percentage is by bytes; the rate is
/// moved_bytes over elapsed; the ETA is the remaining bytes at that rate.
std::string progress_line(const migration_progress& progress);

/// What the final summary and report are made of.
struct migration_summary {
  std::string source;
  std::string destination;
  /// The share of the source this run took (1/1: all of it).
  migration_shard shard;
  inventory_totals totals;
  /// Of the failed and corrupt objects, those an earlier run recorded and
  /// this run did not try again (--retry-failed would).
  inventory_totals::count not_retried;
  /// Bytes this run moved, and how long it took.
  int64_t moved_bytes = 0;
  std::chrono::milliseconds duration{0};
  bool dry_run = false;
  /// Failed and corrupt items with their error histories (the dead-letter
  /// list), at most a bounded number (the report says how many were left out).
  std::vector<inventory_item> failures;
  int64_t failures_left_out = 0;
};

/// The human summary of this run: copied, already present (asked now),
/// verified, failed, corrupt at source, bytes, duration, throughput, and
/// each failure with its last error.
std::string summary_text(const migration_summary& summary);

/// The JSON report (--report): {"source","destination","shard":{"index",
/// "count"} (index from 1; 1 of 1 for the whole source),"dry_run",
/// "copied":{"objects","bytes"},"present":{..},"verified":{..},"failed":{..},
/// "corrupt":{..},"pending":{..},"not_retried":{..},"moved_bytes",
/// "duration_ms","bytes_per_second","failures":[{"oid","size","state",
/// "attempts","errors":[{"at_ms","code","message"}],"cid"}],"failures_left_out",
/// "outcome":"complete"|"completed_with_failures"|"incomplete"}; a failure's
/// "cid" is the correlation id of its latest copy ("" if none). Each object
/// is in exactly one of copied, present, verified, failed, corrupt and
/// pending; not_retried is the part of failed and corrupt an earlier run left.
nlohmann::json report_json(const migration_summary& summary);

} // namespace ferry
