#include "actors/policy/report_merge.hpp"

#include "actors/policy/migration_report.hpp"

#include <algorithm>

namespace ferry {

namespace {

/// The counts each report has, in the order the summary names them.
const char* const count_names[] = {"copied",  "present", "verified",   "failed",
                                   "corrupt", "pending", "not_retried"};

status unmergeable(const std::string& name, const std::string& why) {
  return {errc::config_error, name + ": " + why};
}

bool is_count(const nlohmann::json& value) {
  return value.is_number_integer() && value.get<int64_t>() >= 0;
}

/// A decimal number of 1 to 4 digits, without leading zeros.
std::optional<uint32_t> small_number(const std::string& text) {
  if (text.empty() || text.size() > 4 || text[0] == '0' ||
      text.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return static_cast<uint32_t>(std::stoul(text));
}

/// What report_json would say of these counts: the merge trusts an
/// outcome only when it is the one its counts give.
std::string outcome_of(const nlohmann::json& report) {
  if (report["pending"]["objects"].get<int64_t>() > 0)
    return "incomplete";
  if (report["failed"]["objects"].get<int64_t>() > 0 ||
      report["corrupt"]["objects"].get<int64_t>() > 0)
    return "completed_with_failures";
  return "complete";
}

/// Why `report` is not a report as `ferry migrate` writes it; empty if it is.
std::string shape_problem(const nlohmann::json& report) {
  if (!report.is_object())
    return "is not a JSON object";
  for (auto key : {"source", "destination", "outcome"})
    if (!report.contains(key) || !report[key].is_string())
      return std::string{"has no text \""} + key + "\"";
  if (!report.contains("dry_run") || !report["dry_run"].is_boolean())
    return "has no \"dry_run\" true or false";
  for (auto key : count_names) {
    if (!report.contains(key) || !report[key].is_object() || !report[key].contains("objects") ||
        !report[key].contains("bytes") || !is_count(report[key]["objects"]) ||
        !is_count(report[key]["bytes"]))
      return std::string{"has no count \""} + key + "\" {objects, bytes}";
  }
  for (auto key : {"moved_bytes", "duration_ms", "failures_left_out"})
    if (!report.contains(key) || !is_count(report[key]))
      return std::string{"has no number \""} + key + "\"";
  if (!report.contains("shard") || !report["shard"].is_object() ||
      !report["shard"].contains("index") || !report["shard"].contains("count") ||
      !is_count(report["shard"]["index"]) || !is_count(report["shard"]["count"]))
    return "has no \"shard\" {index, count} (written by a ferry before --report-dir?)";
  if (!report.contains("failures") || !report["failures"].is_array())
    return "has no list \"failures\"";
  for (auto& failure : report["failures"])
    if (!failure.is_object() || !failure.contains("oid") || !failure["oid"].is_string() ||
        failure["oid"].get<std::string>().size() != 64 ||
        failure["oid"].get<std::string>().find_first_not_of("0123456789abcdef") !=
          std::string::npos)
      return "lists a failure without an oid";
  auto outcome = report["outcome"].get<std::string>();
  if (outcome != outcome_of(report))
    return "says \"" + outcome + "\" where its counts say \"" + outcome_of(report) + "\"";
  return {};
}

std::string count_text(const nlohmann::json& count) {
  return with_separators(count["objects"].get<int64_t>()) + " (" +
         format_bytes(count["bytes"].get<int64_t>()) + ")";
}

std::string duration_text(int64_t milliseconds) {
  return format_eta(std::chrono::seconds{(milliseconds + 500) / 1000});
}

/// "copied 1,000 (1.2 MiB), present 20 (...), ..." of one report or the totals.
std::string counts_line(const nlohmann::json& report) {
  std::string line;
  for (auto key : count_names) {
    if (std::string{key} == "not_retried")
      continue;
    line += (line.empty() ? "" : ", ") + std::string{key} + " " + count_text(report[key]);
  }
  return line;
}

} // namespace

std::string shard_report_name(const migration_shard& shard) {
  if (shard.count == 1)
    return "report.json";
  return "report-shard-" + std::to_string(shard.index + 1) + "-of-" + std::to_string(shard.count) +
         ".json";
}

namespace {

const std::string report_prefix = "report-shard-";
const std::string report_suffix = ".json";

} // namespace

bool looks_like_report_name(const std::string& name) {
  return name == "report.json" || (name.size() >= report_prefix.size() + report_suffix.size() &&
                                   name.compare(0, report_prefix.size(), report_prefix) == 0 &&
                                   name.compare(name.size() - report_suffix.size(),
                                                report_suffix.size(), report_suffix) == 0);
}

std::optional<migration_shard> shard_of_report_name(const std::string& name) {
  if (name == "report.json")
    return migration_shard{};
  if (!looks_like_report_name(name))
    return std::nullopt;
  auto middle =
    name.substr(report_prefix.size(), name.size() - report_prefix.size() - report_suffix.size());
  auto of = middle.find("-of-");
  if (of == std::string::npos)
    return std::nullopt;
  auto index = small_number(middle.substr(0, of));
  auto count = small_number(middle.substr(of + 4));
  if (!index || !count || *count < 2 || *count > 4096 || *index > *count)
    return std::nullopt;
  migration_shard shard{*index - 1, *count};
  // One spelling per shard: the name must be the one shard_report_name gives.
  if (shard_report_name(shard) != name)
    return std::nullopt;
  return shard;
}

status report_merge::add(const std::string& name, const std::string& text) {
  auto shard = shard_of_report_name(name);
  if (!shard)
    return unmergeable(name, "is not named report-shard-I-of-N.json or report.json");
  auto report = nlohmann::json::parse(text, nullptr, false);
  if (report.is_discarded())
    return unmergeable(name, "is not JSON");
  if (auto problem = shape_problem(report); !problem.empty())
    return unmergeable(name, problem);
  auto index = shard->index + 1;
  if (report["shard"]["index"] != index || report["shard"]["count"] != shard->count)
    return unmergeable(name, "holds the report of shard " + report["shard"]["index"].dump() +
                               " of " + report["shard"]["count"].dump() +
                               ", not the one its name says");
  if (!reports_.empty()) {
    auto& first = reports_.begin()->second;
    auto& first_name = names_.begin()->second;
    if (shard->count != count_)
      return unmergeable(name, "is one of " + std::to_string(shard->count) + " shards, but " +
                                 first_name + " one of " + std::to_string(count_) +
                                 "; keep one migration's reports in a directory");
    for (auto key : {"source", "destination", "dry_run"})
      if (report[key] != first[key])
        return unmergeable(name, std::string{"has "} + key + " " + report[key].dump() + ", but " +
                                   first_name + " " + first[key].dump());
  }
  if (reports_.count(index) > 0)
    return unmergeable(name, "reports shard " + std::to_string(index) + " again, after " +
                               names_.at(index));
  for (auto& failure : report["failures"]) {
    auto oid = failure["oid"].get<std::string>();
    if (!shard->takes(oid))
      return unmergeable(name, "lists " + oid + ", which shard " + std::to_string(index) + " of " +
                                 std::to_string(shard->count) +
                                 " does not take: the shards are not disjoint");
  }
  count_ = shard->count;
  reports_[index] = std::move(report);
  names_[index] = name;
  return status::success();
}

result<report_merge::merged> report_merge::merge() const {
  if (reports_.empty())
    return status{errc::config_error, "no report-shard-I-of-N.json or report.json to merge"};
  auto& first = reports_.begin()->second;
  merged result;
  for (uint32_t index = 1; index <= count_; ++index)
    if (reports_.count(index) == 0)
      result.missing.push_back(index);

  nlohmann::json totals;
  for (auto key : count_names)
    totals[key] = {{"objects", 0}, {"bytes", 0}};
  int64_t moved = 0;
  int64_t slowest = 0;
  int64_t left_out = 0;
  auto failures = nlohmann::json::array();
  auto shards = nlohmann::json::array();
  bool incomplete = !result.missing.empty();
  bool with_failures = false;
  std::string shard_lines;
  for (auto& [index, report] : reports_) {
    for (auto key : count_names)
      for (auto part : {"objects", "bytes"})
        totals[key][part] = totals[key][part].get<int64_t>() + report[key][part].get<int64_t>();
    moved += report["moved_bytes"].get<int64_t>();
    slowest = std::max(slowest, report["duration_ms"].get<int64_t>());
    left_out += report["failures_left_out"].get<int64_t>();
    for (auto& failure : report["failures"])
      failures.push_back(failure);
    auto outcome = report["outcome"].get<std::string>();
    incomplete = incomplete || outcome == "incomplete";
    with_failures = with_failures || outcome == "completed_with_failures";
    nlohmann::json shard = {{"index", index},
                            {"outcome", outcome},
                            {"duration_ms", report["duration_ms"]},
                            {"moved_bytes", report["moved_bytes"]}};
    for (auto key : count_names)
      shard[key] = report[key];
    shards.push_back(std::move(shard));
    shard_lines += "  shard " + std::to_string(index) + "/" + std::to_string(count_) + ": " +
                   outcome + ", " + counts_line(report) + "; " +
                   duration_text(report["duration_ms"].get<int64_t>()) + "\n";
  }
  for (auto index : result.missing)
    shard_lines += "  shard " + std::to_string(index) + "/" + std::to_string(count_) +
                   ": missing (no " + shard_report_name(migration_shard{index - 1, count_}) + ")\n";
  result.outcome = incomplete      ? "incomplete"
                   : with_failures ? "completed_with_failures"
                                   : "complete";

  auto missing = nlohmann::json::array();
  for (auto index : result.missing)
    missing.push_back(index);
  result.json = {{"source", first["source"]},
                 {"destination", first["destination"]},
                 {"dry_run", first["dry_run"]},
                 {"shard_count", count_},
                 {"missing_shards", std::move(missing)},
                 {"shards", std::move(shards)},
                 {"moved_bytes", moved},
                 {"duration_ms", slowest},
                 {"failures", std::move(failures)},
                 {"failures_left_out", left_out},
                 {"outcome", result.outcome}};
  for (auto key : count_names)
    result.json[key] = totals[key];

  result.text = first["source"].get<std::string>() + " -> " +
                first["destination"].get<std::string>() + ", " + std::to_string(count_) +
                (count_ == 1 ? " shard" : " shards") + " (" + std::to_string(reports_.size()) +
                " reported)" + (first["dry_run"].get<bool>() ? ", dry run" : "") + ":\n  " +
                counts_line(result.json) + "; moved " + format_bytes(moved) + "; slowest shard " +
                duration_text(slowest) + "\n" + shard_lines + "outcome: " + result.outcome;
  if (!result.missing.empty()) {
    result.text += " (missing shard";
    result.text += result.missing.size() == 1 ? " " : "s ";
    for (size_t i = 0; i < result.missing.size(); ++i)
      result.text += (i == 0 ? "" : ", ") + std::to_string(result.missing[i]);
    result.text += " of " + std::to_string(count_) + ")";
  }
  result.text += "\n";
  return result;
}

} // namespace ferry
