#include "actors/policy/migration_report.hpp"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <limits>

namespace ferry {

namespace {

// The summary lists this many failures; the report has them all (up to
// what the caller collected).
constexpr size_t max_failures_listed = 20;

std::string one_decimal(double value) {
  char text[64];
  std::snprintf(text, sizeof text, "%.1f", value);
  return text;
}

std::string objects_text(int64_t count) {
  return with_separators(count) + (count == 1 ? " object" : " objects");
}

/// `bytes` over `elapsed`, whole bytes per second; 0 without elapsed time.
int64_t bytes_per_second(int64_t bytes, std::chrono::milliseconds elapsed) {
  if (elapsed.count() <= 0 || bytes <= 0)
    return 0;
  double rate = static_cast<double>(bytes) * 1000.0 / static_cast<double>(elapsed.count());
  // A huge count over a millisecond must not overflow the conversion.
  if (rate >= static_cast<double>(std::numeric_limits<int64_t>::max()))
    return std::numeric_limits<int64_t>::max();
  return static_cast<int64_t>(rate);
}

std::string rate_text(int64_t per_second) { return format_bytes(per_second) + "/s"; }

/// Error messages may span lines; the summary keeps one line per failure.
std::string single_line(std::string text) {
  std::replace_if(
    text.begin(), text.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  return text;
}

const char* outcome(const inventory_totals& totals) {
  if (totals.open().objects > 0)
    return "incomplete";
  if (totals.failed.objects > 0 || totals.corrupt.objects > 0)
    return "completed_with_failures";
  return "complete";
}

nlohmann::json count_json(const inventory_totals::count& count) {
  return {{"objects", count.objects}, {"bytes", count.bytes}};
}

nlohmann::json failure_json(const inventory_item& item) {
  auto errors = nlohmann::json::array();
  for (auto& error : item.errors)
    errors.push_back({{"at_ms", error.at_ms}, {"code", error.code}, {"message", error.message}});
  // "cid": the id ferry.log's lines about its latest copy carry ("" if none).
  return {
    {"oid", item.oid},           {"size", item.size},           {"state", to_string(item.state)},
    {"attempts", item.attempts}, {"errors", std::move(errors)}, {"cid", item.cid}};
}

/// "copied 3 objects (1.2 GiB), 1 already at the destination, ..." (or what
/// a dry run would do), without the time part.
std::string counts_text(const migration_summary& summary) {
  auto& totals = summary.totals;
  auto pending = totals.open();
  std::string text;
  if (summary.dry_run) {
    auto there = totals.present.objects + totals.verified.objects;
    text = "dry run: would copy " + objects_text(pending.objects) + " (" +
           format_bytes(pending.bytes) + "), skip " + with_separators(there) +
           " already at the destination";
  } else {
    text = "copied " + objects_text(totals.copied.objects) + " (" +
           format_bytes(totals.copied.bytes) + "), " + with_separators(totals.present.objects) +
           " already at the destination";
    if (totals.verified.objects > 0)
      text += ", " + with_separators(totals.verified.objects) + " verified there by reading back";
  }
  text += ", " + with_separators(totals.failed.objects) + " failed, " +
          with_separators(totals.corrupt.objects) + " corrupt at source";
  if (summary.not_retried.objects > 0)
    text += " (" + with_separators(summary.not_retried.objects) +
            " of them from an earlier run, not tried again)";
  if (!summary.dry_run && pending.objects > 0)
    text += ", " + with_separators(pending.objects) + " pending";
  return text;
}

std::string failure_line(const inventory_item& item) {
  auto line = std::string{"  "} + to_string(item.state) + " " + item.oid + " (" +
              format_bytes(item.size) + (item.cid.empty() ? "" : ", cid " + item.cid) + ")";
  if (!item.errors.empty()) {
    auto& last = item.errors.back();
    line += ": " + last.code + ": " + single_line(last.message);
  }
  return line;
}

} // namespace

std::string with_separators(int64_t value) {
  auto digits = std::to_string(value);
  size_t first = value < 0 ? 1 : 0; // after the sign
  for (auto at = digits.size(); at > first + 3; at -= 3)
    digits.insert(at - 3, 1, ',');
  return digits;
}

std::string format_bytes(int64_t bytes) {
  if (bytes > -1024 && bytes < 1024)
    return std::to_string(bytes) + " B";
  static const char* const units[] = {"KiB", "MiB", "GiB", "TiB"};
  constexpr size_t last_unit = sizeof units / sizeof units[0] - 1;
  double value = std::abs(static_cast<double>(bytes)) / 1024.0;
  size_t unit = 0;
  // 1023.95 would print as "1024.0": it reads better as "1.0" of the next unit.
  while (value >= 1023.95 && unit < last_unit) {
    value /= 1024.0;
    ++unit;
  }
  return (bytes < 0 ? "-" : "") + one_decimal(value) + " " + units[unit];
}

std::string format_eta(std::chrono::seconds eta) {
  auto total = eta.count();
  if (total < 0)
    return "?";
  auto hours = total / 3600;
  auto minutes = total % 3600 / 60;
  auto seconds = total % 60;
  char text[64];
  if (hours > 0)
    std::snprintf(text, sizeof text, "%" PRId64 "h%02" PRId64 "m", static_cast<int64_t>(hours),
                  static_cast<int64_t>(minutes));
  else if (minutes > 0)
    std::snprintf(text, sizeof text, "%" PRId64 "m%02" PRId64 "s", static_cast<int64_t>(minutes),
                  static_cast<int64_t>(seconds));
  else
    std::snprintf(text, sizeof text, "%" PRId64 "s", static_cast<int64_t>(seconds));
  return text;
}

std::string progress_line(const migration_progress& progress) {
  auto rate = bytes_per_second(progress.moved_bytes, progress.elapsed);
  auto tail = rate_text(rate);
  auto activity = std::to_string(progress.in_flight) + " in flight, " +
                  std::to_string(progress.failed_objects) + " failed";
  if (!progress.total_known)
    return std::to_string(progress.total_objects) + " objects listed so far, " +
           std::to_string(progress.done_objects) + " done (" + format_bytes(progress.done_bytes) +
           "), " + tail + ", " + activity;

  double percent = 100.0;
  if (progress.total_bytes > 0)
    percent =
      100.0 * static_cast<double>(progress.done_bytes) / static_cast<double>(progress.total_bytes);
  else if (progress.total_objects > 0)
    // Only empty objects: count them instead of their zero bytes.
    percent = 100.0 * static_cast<double>(progress.done_objects) /
              static_cast<double>(progress.total_objects);
  percent = std::clamp(percent, 0.0, 100.0);

  auto remaining = std::max<int64_t>(progress.total_bytes - progress.done_bytes, 0);
  std::chrono::seconds eta{-1}; // unknown until something moved
  if (remaining == 0)
    eta = std::chrono::seconds{0};
  else if (rate > 0)
    eta = std::chrono::seconds{remaining / rate + (remaining % rate != 0 ? 1 : 0)};

  return std::to_string(progress.done_objects) + "/" + std::to_string(progress.total_objects) +
         " objects, " + format_bytes(progress.done_bytes) + "/" +
         format_bytes(progress.total_bytes) + " (" + one_decimal(percent) + "%), " + tail +
         ", ETA " + format_eta(eta) + ", " + activity;
}

std::string summary_text(const migration_summary& summary) {
  auto rate = bytes_per_second(summary.moved_bytes, summary.duration);
  auto duration = std::chrono::round<std::chrono::seconds>(summary.duration);
  std::string text = counts_text(summary) + "; " + format_bytes(summary.moved_bytes) + " in " +
                     format_eta(duration) + " (" + rate_text(rate) + ")\n";

  auto listed = std::min(summary.failures.size(), max_failures_listed);
  for (size_t i = 0; i < listed; ++i)
    text += failure_line(summary.failures[i]) + "\n";
  auto more = static_cast<int64_t>(summary.failures.size() - listed) +
              std::max<int64_t>(summary.failures_left_out, 0);
  if (more > 0)
    text += "  ... and " + with_separators(more) + " more (see --report)\n";
  return text;
}

nlohmann::json report_json(const migration_summary& summary) {
  auto failures = nlohmann::json::array();
  for (auto& item : summary.failures)
    failures.push_back(failure_json(item));
  auto& totals = summary.totals;
  return {{"source", summary.source},
          {"destination", summary.destination},
          {"shard", {{"index", summary.shard.index + 1}, {"count", summary.shard.count}}},
          {"dry_run", summary.dry_run},
          {"copied", count_json(totals.copied)},
          {"present", count_json(totals.present)},
          {"verified", count_json(totals.verified)},
          {"failed", count_json(totals.failed)},
          {"corrupt", count_json(totals.corrupt)},
          {"pending", count_json(totals.open())},
          {"not_retried", count_json(summary.not_retried)},
          {"moved_bytes", summary.moved_bytes},
          {"duration_ms", static_cast<int64_t>(summary.duration.count())},
          {"bytes_per_second", bytes_per_second(summary.moved_bytes, summary.duration)},
          {"failures", std::move(failures)},
          {"failures_left_out", summary.failures_left_out},
          {"outcome", outcome(totals)}};
}

} // namespace ferry
