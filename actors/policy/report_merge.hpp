#pragma once

// `ferry report merge`: one account of a migration run as N shards (each
// `ferry migrate --shard I/N --report-dir DIR`), from the shards' reports.
// Plain logic on the reports' text; the caller reads the files.

#include "actors/policy/migration_shard.hpp"
#include "protocol/status.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ferry {

/// The name of a shard's report in a --report-dir: "report-shard-I-of-N.json",
/// or "report.json" for the whole source.
std::string shard_report_name(const migration_shard& shard);

/// Whether `name` is spelled like a report of a --report-dir
/// ("report.json", or "report-shard-" ... ".json"), well formed or not:
/// what `ferry report merge` picks up, for add() to accept or refuse.
bool looks_like_report_name(const std::string& name);

/// The shard a report's file name names (shard_report_name's inverse);
/// std::nullopt for any other name.
std::optional<migration_shard> shard_of_report_name(const std::string& name);

/// Collects the shards' reports and merges them.
class report_merge {
public:
  /// What the merge found, for the whole migration.
  struct merged {
    /// "complete", "completed_with_failures" or "incomplete" (a shard is
    /// missing or incomplete).
    std::string outcome;
    /// The shards of 1..N without a report (numbered from 1).
    std::vector<uint32_t> missing;
    /// The summary for a person: totals, then one line per shard.
    std::string text;
    /// The merged report (docs/migrate.md, "ferry report merge").
    nlohmann::json json;
  };

  /// Takes the report in the file `name` holding `text`. A report that
  /// cannot be merged is errc::config_error saying why: a name that is no
  /// shard's report, text that is not a report, a `shard` that is not the
  /// one its name says, a count or source or destination other than the
  /// reports before it, a shard reported twice, or a failed object the
  /// shard does not take (shards are disjoint).
  status add(const std::string& name, const std::string& text);

  /// The reports taken so far merged; errc::config_error when there are none.
  result<merged> merge() const;

private:
  std::map<uint32_t, nlohmann::json> reports_; // by index from 1
  std::map<uint32_t, std::string> names_;
  uint32_t count_ = 0;
};

} // namespace ferry
