#include "actors/policy/report_merge.hpp"

#include "actors/policy/migration_report.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <string>

using namespace std::chrono_literals;
using ferry::migration_shard;
using ferry::migration_summary;
using ferry::report_merge;

namespace {

/// An oid whose first 32 bits are `first_bits`.
std::string oid(uint32_t first_bits) {
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", first_bits);
  return std::string{hex} + std::string(56, 'a');
}

/// Shard `index` (from 1) of `count` as `ferry migrate` reports it: it
/// copied `index` * 10 objects of 100 bytes, found 5 present, and took
/// index seconds.
migration_summary shard_summary(uint32_t index, uint32_t count) {
  migration_summary summary;
  summary.source = "file:///srv/lfs";
  summary.destination = "file:///mnt/lfs";
  summary.shard = migration_shard{index - 1, count};
  summary.totals.copied = {index * 10, index * 1000};
  summary.totals.present = {5, 500};
  summary.moved_bytes = index * 1000;
  summary.duration = std::chrono::seconds{index};
  return summary;
}

/// One failed object the shard takes.
void add_failure(migration_summary& summary) {
  ferry::inventory_item item;
  item.oid = oid(summary.shard.index); // index < count: taken by this shard
  item.size = 100;
  item.state = ferry::item_state::failed;
  summary.failures.push_back(item);
  summary.totals.failed = {1, 100};
}

std::string text_of(const migration_summary& summary) {
  return ferry::report_json(summary).dump(2);
}

std::string name_of(const migration_summary& summary) {
  return ferry::shard_report_name(summary.shard);
}

/// Adds the reports of all `count` shards but those in `left_out`.
report_merge all_shards(uint32_t count, std::vector<uint32_t> left_out = {}) {
  report_merge merge;
  for (uint32_t index = 1; index <= count; ++index) {
    if (std::find(left_out.begin(), left_out.end(), index) != left_out.end())
      continue;
    auto summary = shard_summary(index, count);
    REQUIRE(merge.add(name_of(summary), text_of(summary)));
  }
  return merge;
}

} // namespace

TEST_CASE("a shard's report has one name, and the name gives the shard back", "[report_merge]") {
  CHECK(ferry::shard_report_name(migration_shard{}) == "report.json");
  CHECK(ferry::shard_report_name(migration_shard{1, 4}) == "report-shard-2-of-4.json");
  auto back = ferry::shard_of_report_name("report-shard-2-of-4.json");
  REQUIRE(back);
  CHECK(back->index == 1);
  CHECK(back->count == 4);
  auto whole = ferry::shard_of_report_name("report.json");
  REQUIRE(whole);
  CHECK(whole->count == 1);
  auto last = ferry::shard_of_report_name("report-shard-4096-of-4096.json");
  REQUIRE(last);
  CHECK(last->index == 4095);
  for (auto name :
       {"report-shard-0-of-4.json", "report-shard-5-of-4.json", "report-shard-02-of-4.json",
        "report-shard-1-of-1.json", "report-shard-1-of-4097.json", "report-shard-1-of-4.json.tmp",
        "report-shard-1-4.json", "report-shard--of-4.json", "report-shard-x-of-4.json",
        "Report.json", "report-shard-1-of-4", "notes.txt"}) {
    INFO(name);
    CHECK_FALSE(ferry::shard_of_report_name(name));
  }
}

TEST_CASE("all shards present and complete merge into sums and the slowest duration",
          "[report_merge]") {
  auto merged = all_shards(4).merge();
  REQUIRE(merged);
  CHECK(merged->outcome == "complete");
  CHECK(merged->missing.empty());
  auto& json = merged->json;
  CHECK(json["shard_count"] == 4);
  CHECK(json["copied"]["objects"] == 10 + 20 + 30 + 40);
  CHECK(json["copied"]["bytes"] == 10000);
  CHECK(json["present"]["objects"] == 20);
  CHECK(json["present"]["bytes"] == 2000);
  CHECK(json["failed"]["objects"] == 0);
  CHECK(json["pending"]["objects"] == 0);
  CHECK(json["moved_bytes"] == 10000);
  CHECK(json["duration_ms"] == 4000);
  CHECK(json["outcome"] == "complete");
  CHECK(json["source"] == "file:///srv/lfs");
  CHECK(json["missing_shards"].empty());
  REQUIRE(json["shards"].size() == 4);
  CHECK(json["shards"][2]["index"] == 3);
  CHECK(json["shards"][2]["copied"]["objects"] == 30);
  CHECK(json["shards"][2]["outcome"] == "complete");
  CHECK(merged->text.find("copied 100 (9.8 KiB)") != std::string::npos);
  CHECK(merged->text.find("slowest shard 4s") != std::string::npos);
  CHECK(merged->text.find("  shard 3/4: complete, copied 30") != std::string::npos);
  CHECK(merged->text.find("outcome: complete\n") != std::string::npos);

  // One report of the whole source merges as one shard of one.
  report_merge whole;
  auto summary = shard_summary(1, 1);
  REQUIRE(whole.add("report.json", text_of(summary)));
  auto one = whole.merge();
  REQUIRE(one);
  CHECK(one->outcome == "complete");
  CHECK(one->json["shard_count"] == 1);
}

TEST_CASE("a missing shard makes the merge incomplete and is named", "[report_merge]") {
  auto merged = all_shards(4, {2, 4}).merge();
  REQUIRE(merged);
  CHECK(merged->outcome == "incomplete");
  CHECK(merged->missing == std::vector<uint32_t>{2, 4});
  CHECK(merged->json["missing_shards"] == nlohmann::json::array({2, 4}));
  CHECK(merged->text.find("shard 2/4: missing (no report-shard-2-of-4.json)") != std::string::npos);
  CHECK(merged->text.find("missing shards 2, 4 of 4") != std::string::npos);
  CHECK(merged->json["copied"]["objects"] == 10 + 30);

  CHECK_FALSE(report_merge{}.merge());
}

TEST_CASE("the merged outcome: incomplete before failures before complete", "[report_merge]") {
  report_merge merge;
  auto failing = shard_summary(1, 3);
  add_failure(failing);
  auto pending = shard_summary(2, 3);
  pending.totals.pending = {7, 700};
  auto done = shard_summary(3, 3);
  REQUIRE(merge.add(name_of(failing), text_of(failing)));
  REQUIRE(merge.add(name_of(done), text_of(done)));
  auto with_failures = merge.merge();
  REQUIRE(with_failures);
  // Shard 2 is missing: incomplete whatever the others say.
  CHECK(with_failures->outcome == "incomplete");
  REQUIRE(merge.add(name_of(pending), text_of(pending)));
  CHECK(merge.merge()->outcome == "incomplete");
  CHECK(merge.merge()->json["pending"]["objects"] == 7);

  report_merge finished;
  pending.totals.pending = {};
  REQUIRE(finished.add(name_of(failing), text_of(failing)));
  REQUIRE(finished.add(name_of(pending), text_of(pending)));
  REQUIRE(finished.add(name_of(done), text_of(done)));
  auto merged = finished.merge();
  REQUIRE(merged);
  CHECK(merged->outcome == "completed_with_failures");
  CHECK(merged->json["failed"]["objects"] == 1);
  REQUIRE(merged->json["failures"].size() == 1);
  CHECK(merged->json["failures"][0]["oid"] == oid(0));
}

TEST_CASE("reports that cannot be merged are refused, saying why", "[report_merge]") {
  auto second = shard_summary(2, 4);
  auto refusal = [](const std::string& name, const std::string& text,
                    report_merge merge = report_merge{}) {
    auto added = merge.add(name, text);
    CHECK(added.code() == ferry::errc::config_error);
    return added.message();
  };
  CHECK(refusal("notes.json", text_of(second)).find("is not named") != std::string::npos);
  CHECK(refusal(name_of(second), "{\"source\":").find("is not JSON") != std::string::npos);
  CHECK(refusal(name_of(second), "[]").find("not a JSON object") != std::string::npos);
  // The name and the `shard` field must agree.
  CHECK(refusal("report-shard-3-of-4.json", text_of(second)).find("not the one its name says") !=
        std::string::npos);
  CHECK(refusal("report-shard-2-of-5.json", text_of(second)).find("not the one its name says") !=
        std::string::npos);

  auto report = ferry::report_json(second);
  for (auto key : {"source", "shard", "copied", "pending", "duration_ms", "failures", "outcome"}) {
    INFO(key);
    auto damaged = report;
    damaged.erase(key);
    CHECK(refusal(name_of(second), damaged.dump()).find(key) != std::string::npos);
  }
  auto negative = report;
  negative["copied"]["objects"] = -1;
  CHECK(refusal(name_of(second), negative.dump()).find("copied") != std::string::npos);
  auto claims_complete = report;
  claims_complete["pending"]["objects"] = 3;
  CHECK(refusal(name_of(second), claims_complete.dump()).find("says \"complete\"") !=
        std::string::npos);

  // Another count, another source, a dry run among real runs.
  auto first = shard_summary(1, 4);
  auto with_first = [&] {
    report_merge merge;
    REQUIRE(merge.add(name_of(first), text_of(first)));
    return merge;
  };
  auto of_three = shard_summary(2, 3);
  CHECK(refusal(name_of(of_three), text_of(of_three), with_first()).find("one of 3 shards") !=
        std::string::npos);
  auto elsewhere = second;
  elsewhere.destination = "file:///other";
  CHECK(refusal(name_of(elsewhere), text_of(elsewhere), with_first()).find("destination") !=
        std::string::npos);
  auto rehearsal = second;
  rehearsal.dry_run = true;
  CHECK(refusal(name_of(rehearsal), text_of(rehearsal), with_first()).find("dry_run") !=
        std::string::npos);

  // A failed object listed by a shard that does not take it.
  auto stray = second;
  add_failure(stray);
  stray.failures[0].oid = oid(0); // shard 1 of 4 takes it
  CHECK(refusal(name_of(stray), text_of(stray)).find("not disjoint") != std::string::npos);
}
