#include "actors/policy/migration_report.hpp"

#include <catch2/catch.hpp>

#include <limits>
#include <set>

using namespace std::chrono_literals;
using ferry::format_bytes;
using ferry::format_eta;
using ferry::inventory_item;
using ferry::item_state;
using ferry::migration_progress;
using ferry::migration_summary;

namespace {

constexpr int64_t kib = int64_t{1} << 10;
constexpr int64_t mib = int64_t{1} << 20;
constexpr int64_t gib = int64_t{1} << 30;
constexpr int64_t tib = int64_t{1} << 40;
constexpr int64_t int64_max = std::numeric_limits<int64_t>::max();

inventory_item item(char digit, int64_t size, item_state state,
                    std::vector<ferry::attempt_error> errors = {}) {
  inventory_item result;
  result.oid = std::string(64, digit);
  result.size = size;
  result.state = state;
  result.attempts = static_cast<int>(errors.size());
  result.errors = std::move(errors);
  return result;
}

// The summary of the example: 1,234 copied, 1.2 GiB in 42 s.
migration_summary example_summary() {
  migration_summary summary;
  summary.source = "file:///srv/lfs";
  summary.destination = "s3://bucket/lfs";
  summary.totals.copied = {1234, 1288490189};
  summary.totals.present = {10, 5 * mib};
  summary.totals.failed = {2, 2 * mib};
  summary.totals.corrupt = {1, 700};
  summary.moved_bytes = 1288490189;
  summary.duration = 42s;
  return summary;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (auto end = text.find('\n'); end != std::string::npos; end = text.find('\n', start)) {
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  if (start < text.size())
    lines.push_back(text.substr(start));
  return lines;
}

std::set<std::string> keys_of(const nlohmann::json& object) {
  std::set<std::string> keys;
  for (auto& entry : object.items())
    keys.insert(entry.key());
  return keys;
}

} // namespace

TEST_CASE("format_bytes picks binary units with one decimal", "[report]") {
  CHECK(format_bytes(0) == "0 B");
  CHECK(format_bytes(512) == "512 B");
  CHECK(format_bytes(1023) == "1023 B");
  CHECK(format_bytes(kib) == "1.0 KiB");
  CHECK(format_bytes(1536) == "1.5 KiB");
  CHECK(format_bytes(3355443) == "3.2 MiB");
  CHECK(format_bytes(3 * gib / 2) == "1.5 GiB");
  CHECK(format_bytes(5 * tib) == "5.0 TiB");
  // Just below a unit reads as one of the next, never "1024.0 KiB".
  CHECK(format_bytes(mib - 1) == "1.0 MiB");
  // TiB is the largest unit, however large the number.
  CHECK(format_bytes(2048 * tib) == "2048.0 TiB");
  CHECK(format_bytes(int64_max) == "8388608.0 TiB");
  CHECK(format_bytes(-5) == "-5 B");
  CHECK(format_bytes(-2 * kib) == "-2.0 KiB");
}

TEST_CASE("format_eta shows hours and minutes, or minutes and seconds", "[report]") {
  CHECK(format_eta(0s) == "0s");
  CHECK(format_eta(42s) == "42s");
  CHECK(format_eta(60s) == "1m00s");
  CHECK(format_eta(185s) == "3m05s");
  CHECK(format_eta(3600s) == "1h00m");
  CHECK(format_eta(3720s) == "1h02m");
  CHECK(format_eta(100h + 59s) == "100h00m");
  CHECK(format_eta(-1s) == "?");
}

TEST_CASE("progress_line shows counts, percentage by bytes, rate and ETA", "[report]") {
  migration_progress progress;
  progress.total_objects = 5000;
  progress.total_bytes = 4 * gib;
  progress.done_objects = 1234;
  progress.done_bytes = 1288490189; // 30% of 4 GiB
  progress.moved_bytes = 452 * mib; // over 10 s: 45.2 MiB/s
  progress.elapsed = 10s;
  progress.in_flight = 8;
  progress.concurrency = 8;
  progress.failed_objects = 2;
  // 3,006,477,107 bytes left at 47,395,635 B/s: 63.4 s, rounded up.
  CHECK(ferry::progress_line(progress) ==
        "1234/5000 objects, 1.2 GiB/4.0 GiB (30.0%), 45.2 MiB/s, ETA 1m04s, 8 in flight, "
        "2 failed");
}

TEST_CASE("progress_line while the source is still being listed", "[report]") {
  migration_progress progress;
  progress.total_known = false;
  progress.total_objects = 1234;
  progress.total_bytes = 9 * gib;
  progress.done_objects = 100;
  progress.done_bytes = mib;
  progress.moved_bytes = mib;
  progress.elapsed = 2s;
  progress.in_flight = 4;
  CHECK(ferry::progress_line(progress) ==
        "1234 objects listed so far, 100 done (1.0 MiB), 512.0 KiB/s, 4 in flight, 0 failed");
}

TEST_CASE("progress_line edge cases", "[report]") {
  migration_progress progress;
  SECTION("nothing moved yet: no rate, unknown ETA") {
    progress.total_objects = 10;
    progress.total_bytes = 1000;
    CHECK(ferry::progress_line(progress) ==
          "0/10 objects, 0 B/1000 B (0.0%), 0 B/s, ETA ?, 0 in flight, 0 failed");
  }
  SECTION("bytes moved but no time elapsed: no division by zero") {
    progress.total_objects = 10;
    progress.total_bytes = 1000;
    progress.moved_bytes = 500;
    progress.done_bytes = 500;
    progress.done_objects = 5;
    CHECK(ferry::progress_line(progress) ==
          "5/10 objects, 500 B/1000 B (50.0%), 0 B/s, ETA ?, 0 in flight, 0 failed");
  }
  SECTION("everything done") {
    progress.total_objects = 3;
    progress.total_bytes = 3 * kib;
    progress.done_objects = 3;
    progress.done_bytes = 3 * kib;
    progress.moved_bytes = 3 * kib;
    progress.elapsed = 1s;
    CHECK(ferry::progress_line(progress) ==
          "3/3 objects, 3.0 KiB/3.0 KiB (100.0%), 3.0 KiB/s, ETA 0s, 0 in flight, 0 failed");
  }
  SECTION("only empty objects: the percentage counts objects") {
    progress.total_objects = 4;
    progress.done_objects = 1;
    CHECK(ferry::progress_line(progress) ==
          "1/4 objects, 0 B/0 B (25.0%), 0 B/s, ETA 0s, 0 in flight, 0 failed");
  }
  SECTION("an empty migration is complete") {
    CHECK(ferry::progress_line(progress) ==
          "0/0 objects, 0 B/0 B (100.0%), 0 B/s, ETA 0s, 0 in flight, 0 failed");
  }
  SECTION("huge numbers neither overflow nor go negative") {
    progress.total_objects = 1;
    progress.total_bytes = int64_max;
    progress.moved_bytes = int64_max;
    progress.elapsed = 1ms;
    progress.in_flight = 1;
    CHECK(ferry::progress_line(progress) ==
          "0/1 objects, 0 B/8388608.0 TiB (0.0%), 8388608.0 TiB/s, ETA 1s, 1 in flight, "
          "0 failed");
  }
  SECTION("an ETA of ages at one byte per second") {
    progress.total_objects = 1;
    progress.total_bytes = int64_t{1} << 62;
    progress.moved_bytes = 1;
    progress.elapsed = 1s;
    CHECK(ferry::progress_line(progress) ==
          "0/1 objects, 0 B/4194304.0 TiB (0.0%), 1 B/s, ETA 1281023894007607h45m, 0 in flight, "
          "0 failed");
  }
}

TEST_CASE("summary_text totals the migration on its first line", "[report]") {
  auto summary = example_summary();
  CHECK(
    ferry::summary_text(summary) ==
    "copied 1,234 objects (1.2 GiB), 10 already at the destination, 2 failed, 1 corrupt at source; "
    "1.2 GiB in 42s (29.3 MiB/s)\n");

  SECTION("pending objects are named") {
    summary.totals.pending = {3, 30};
    CHECK(lines_of(ferry::summary_text(summary)).at(0) ==
          "copied 1,234 objects (1.2 GiB), 10 already at the destination, 2 failed, 1 corrupt at "
          "source, "
          "3 pending; 1.2 GiB in 42s (29.3 MiB/s)");
  }
  SECTION("zero duration and one object") {
    summary.totals = {};
    summary.totals.copied = {1, 100};
    summary.moved_bytes = 100;
    summary.duration = 0ms;
    CHECK(ferry::summary_text(summary) ==
          "copied 1 object (100 B), 0 already at the destination, 0 failed, 0 corrupt at source; "
          "100 B in 0s (0 B/s)\n");
  }
  SECTION("huge counts get separators") {
    summary.totals.copied = {1234567890123, int64_max};
    summary.moved_bytes = int64_max;
    summary.duration = 3720s;
    CHECK(
      lines_of(ferry::summary_text(summary)).at(0) ==
      "copied 1,234,567,890,123 objects (8388608.0 TiB), 10 already at the destination, 2 failed, "
      "1 corrupt at source; 8388608.0 TiB in 1h02m (2255.0 TiB/s)");
  }
  SECTION("verified objects and failures left from an earlier run are told apart") {
    summary.totals.verified = {7, 70};
    summary.not_retried = {2, 2 * mib};
    CHECK(lines_of(ferry::summary_text(summary)).at(0) ==
          "copied 1,234 objects (1.2 GiB), 10 already at the destination, 7 verified there by "
          "reading back, 2 failed, 1 corrupt at source (2 of them from an earlier run, not tried "
          "again); 1.2 GiB in 42s (29.3 MiB/s)");
  }
  SECTION("objects found missing but not copied yet are pending") {
    summary.totals.missing = {4, 40};
    CHECK(lines_of(ferry::summary_text(summary)).at(0) ==
          "copied 1,234 objects (1.2 GiB), 10 already at the destination, 2 failed, 1 corrupt "
          "at source, 4 pending; 1.2 GiB in 42s (29.3 MiB/s)");
    CHECK(ferry::report_json(summary)["pending"]["objects"] == 4);
    CHECK(ferry::report_json(summary)["outcome"] == "incomplete");
  }
  SECTION("a dry run says what it would do") {
    summary.dry_run = true;
    // A dry run asks the destination and copies nothing.
    summary.totals.copied = {};
    summary.totals.pending = {5, 5 * mib};
    summary.moved_bytes = 0;
    summary.duration = 1500ms;
    CHECK(ferry::summary_text(summary) ==
          "dry run: would copy 5 objects (5.0 MiB), skip 10 already at the destination, "
          "2 failed, 1 corrupt at source; 0 B in 2s (0 B/s)\n");
  }
}

TEST_CASE("summary_text lists failures with their last error", "[report]") {
  auto summary = example_summary();
  summary.failures.push_back(
    item('a', mib, item_state::failed, {{1, "unavailable", "503"}, {2, "io_error", "disk full"}}));
  summary.failures.push_back(
    item('b', 700, item_state::corrupt, {{3, "hash_mismatch", "bytes do not\nmatch"}}));
  summary.failures.push_back(item('c', 5, item_state::failed));
  auto lines = lines_of(ferry::summary_text(summary));
  REQUIRE(lines.size() == 4);
  CHECK(lines[1] == "  failed " + std::string(64, 'a') + " (1.0 MiB): io_error: disk full");
  CHECK(lines[2] ==
        "  corrupt " + std::string(64, 'b') + " (700 B): hash_mismatch: bytes do not match");
  CHECK(lines[3] == "  failed " + std::string(64, 'c') + " (5 B)");

  // With the correlation id of the latest copy, to find its ferry.log lines.
  summary.failures[0].cid = "7f3a9c2e01b4";
  CHECK(lines_of(ferry::summary_text(summary))[1] ==
        "  failed " + std::string(64, 'a') + " (1.0 MiB, cid 7f3a9c2e01b4): io_error: disk full");
}

TEST_CASE("summary_text lists at most 20 failures", "[report]") {
  auto summary = example_summary();
  for (int i = 0; i < 25; ++i)
    summary.failures.push_back(item('d', i, item_state::failed, {{i, "not_found", "gone"}}));
  summary.failures_left_out = 100;
  auto lines = lines_of(ferry::summary_text(summary));
  REQUIRE(lines.size() == 1 + 20 + 1);
  CHECK(lines[20] == "  failed " + std::string(64, 'd') + " (19 B): not_found: gone");
  CHECK(lines[21] == "  ... and 105 more (see --report)");

  SECTION("left-out failures alone are mentioned too") {
    summary.failures.resize(1);
    summary.failures_left_out = 3;
    lines = lines_of(ferry::summary_text(summary));
    REQUIRE(lines.size() == 3);
    CHECK(lines[2] == "  ... and 3 more (see --report)");
  }
}

TEST_CASE("report_json has exactly the documented keys and types", "[report]") {
  auto summary = example_summary();
  summary.failures.push_back(
    item('a', mib, item_state::failed, {{1700000000000, "io_error", "disk full"}}));
  summary.failures_left_out = 7;
  auto report = ferry::report_json(summary);

  CHECK(keys_of(report) == std::set<std::string>{"source", "destination", "shard", "dry_run",
                                                 "copied", "present", "verified", "failed",
                                                 "corrupt", "pending", "not_retried", "moved_bytes",
                                                 "duration_ms", "bytes_per_second", "failures",
                                                 "failures_left_out", "outcome"});
  CHECK(report["source"] == "file:///srv/lfs");
  CHECK(report["destination"] == "s3://bucket/lfs");
  CHECK(report["dry_run"].is_boolean());
  CHECK(report["dry_run"] == false);
  CHECK(keys_of(report["shard"]) == std::set<std::string>{"index", "count"});
  CHECK(report["shard"]["index"] == 1);
  CHECK(report["shard"]["count"] == 1);
  summary.shard = ferry::migration_shard{2, 4};
  CHECK(ferry::report_json(summary)["shard"] == nlohmann::json{{"index", 3}, {"count", 4}});
  for (auto name :
       {"copied", "present", "verified", "failed", "corrupt", "pending", "not_retried"}) {
    CAPTURE(name);
    CHECK(keys_of(report[name]) == std::set<std::string>{"objects", "bytes"});
    CHECK(report[name]["objects"].is_number_integer());
    CHECK(report[name]["bytes"].is_number_integer());
  }
  CHECK(report["copied"]["objects"] == 1234);
  CHECK(report["copied"]["bytes"] == 1288490189);
  CHECK(report["corrupt"]["bytes"] == 700);
  CHECK(report["pending"]["objects"] == 0);
  CHECK(report["moved_bytes"] == 1288490189);
  CHECK(report["duration_ms"] == 42000);
  CHECK(report["bytes_per_second"].is_number_integer());
  CHECK(report["bytes_per_second"] == 30678337);
  CHECK(report["failures_left_out"] == 7);

  REQUIRE(report["failures"].size() == 1);
  auto& failure = report["failures"][0];
  CHECK(keys_of(failure) ==
        std::set<std::string>{"oid", "size", "state", "attempts", "errors", "cid"});
  CHECK(failure["cid"] == "");
  summary.failures[0].cid = "7f3a9c2e01b4";
  CHECK(ferry::report_json(summary)["failures"][0]["cid"] == "7f3a9c2e01b4");
  CHECK(failure["oid"] == std::string(64, 'a'));
  CHECK(failure["size"] == mib);
  CHECK(failure["state"] == "failed");
  CHECK(failure["attempts"] == 1);
  REQUIRE(failure["errors"].size() == 1);
  CHECK(keys_of(failure["errors"][0]) == std::set<std::string>{"at_ms", "code", "message"});
  CHECK(failure["errors"][0]["at_ms"] == 1700000000000);
  CHECK(failure["errors"][0]["code"] == "io_error");
  CHECK(failure["errors"][0]["message"] == "disk full");

  // Survives a round trip through text (what --report writes).
  CHECK(nlohmann::json::parse(report.dump()) == report);
}

TEST_CASE("report_json outcome", "[report]") {
  migration_summary summary;
  SECTION("complete when nothing is pending, failed or corrupt") {
    summary.totals.copied = {5, 50};
    summary.totals.present = {2, 20};
    CHECK(ferry::report_json(summary)["outcome"] == "complete");
  }
  SECTION("an empty migration is complete") {
    CHECK(ferry::report_json(summary)["outcome"] == "complete");
  }
  SECTION("failed objects") {
    summary.totals.copied = {5, 50};
    summary.totals.failed = {1, 10};
    CHECK(ferry::report_json(summary)["outcome"] == "completed_with_failures");
  }
  SECTION("corrupt objects") {
    summary.totals.corrupt = {1, 10};
    CHECK(ferry::report_json(summary)["outcome"] == "completed_with_failures");
  }
  SECTION("pending objects, even with failures") {
    summary.totals.pending = {1, 10};
    summary.totals.failed = {1, 10};
    CHECK(ferry::report_json(summary)["outcome"] == "incomplete");
  }
}

TEST_CASE("report_json edge cases", "[report]") {
  migration_summary summary;
  SECTION("zero duration: zero throughput") {
    summary.moved_bytes = 5 * gib;
    CHECK(ferry::report_json(summary)["bytes_per_second"] == 0);
    CHECK(ferry::report_json(summary)["failures"].is_array());
    CHECK(ferry::report_json(summary)["failures"].empty());
  }
  SECTION("huge numbers keep every digit") {
    summary.totals.copied = {int64_max, int64_max};
    summary.moved_bytes = int64_max;
    summary.duration = 1ms;
    auto report = nlohmann::json::parse(ferry::report_json(summary).dump());
    CHECK(report["copied"]["objects"].get<int64_t>() == int64_max);
    CHECK(report["moved_bytes"].get<int64_t>() == int64_max);
    CHECK(report["bytes_per_second"].get<int64_t>() == int64_max);
  }
  SECTION("a dry run says so") {
    summary.dry_run = true;
    CHECK(ferry::report_json(summary)["dry_run"] == true);
  }
}
