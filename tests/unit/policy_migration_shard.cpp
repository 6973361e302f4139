#include "actors/policy/migration_shard.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <map>
#include <optional>
#include <string>

using ferry::migration_shard;

TEST_CASE("a shard is parsed from I/N with 1 <= I <= N <= 4096", "[migration_shard]") {
  auto whole = migration_shard::parse("");
  REQUIRE(whole);
  CHECK(whole->count == 1);
  CHECK(whole->describe().empty());

  auto second = migration_shard::parse("2/4");
  REQUIRE(second);
  CHECK(second->index == 1);
  CHECK(second->count == 4);
  CHECK(second->describe() == "2/4");

  auto last = migration_shard::parse("4096/4096");
  REQUIRE(last);
  CHECK(last->index == 4095);

  for (auto text : {"0/4", "5/4", "4", "/4", "4/", "a/b", "1/4097", "-1/2", "1/0", " 1/2",
                    "000000000001/2", "1/2/3", "1//2"}) {
    INFO(text);
    CHECK_FALSE(migration_shard::parse(text));
  }
}

TEST_CASE("the shards of a split take every oid exactly once, by its first 32 bits",
          "[migration_shard]") {
  auto oid = [](uint32_t first_bits) {
    char hex[9];
    std::snprintf(hex, sizeof hex, "%08x", first_bits);
    return std::string{hex} + std::string(56, 'f');
  };
  CHECK(migration_shard::parse("2/4")->takes(oid(5)));
  CHECK_FALSE(migration_shard::parse("1/4")->takes(oid(5)));
  // The bits beyond the first 32 do not matter.
  CHECK(migration_shard::parse("1/3")->takes("00000003" + std::string(56, '1')));
  CHECK(migration_shard{}.takes(oid(12345)));

  for (uint32_t count : {1u, 2u, 3u, 7u, 4096u}) {
    for (uint32_t bits : {0u, 1u, 4095u, 4096u, 0x7fffffffu, 0xfffffffeu, 0xffffffffu}) {
      int takers = 0;
      for (uint32_t index = 0; index < count; ++index)
        takers += migration_shard{index, count}.takes(oid(bits)) ? 1 : 0;
      INFO(count << " shards, first bits " << bits);
      CHECK(takers == 1);
    }
  }
}

namespace {

using ferry::shard_choice;

/// An environment of exactly these variables.
ferry::environment_lookup environment(std::map<std::string, std::string> variables) {
  return [variables](const std::string& name) -> std::optional<std::string> {
    auto found = variables.find(name);
    if (found == variables.end())
      return std::nullopt;
    return found->second;
  };
}

/// The shard chosen, as "I/N" (1/1 for the whole source), or "error: ...".
std::string chosen(std::map<std::string, std::string> variables) {
  auto choice = shard_choice::from_environment(environment(std::move(variables)));
  if (!choice) {
    CHECK(choice.error().code() == ferry::errc::config_error);
    return "error: " + choice.error().message();
  }
  return std::to_string(choice->shard.index + 1) + "/" + std::to_string(choice->shard.count);
}

bool is_error(const std::string& text) { return text.rfind("error: ", 0) == 0; }

} // namespace

TEST_CASE("shard auto takes FERRY_SHARD as I/N", "[migration_shard]") {
  CHECK(chosen({{"FERRY_SHARD", "2/4"}}) == "2/4");
  CHECK(chosen({{"FERRY_SHARD", "1/1"}}) == "1/1");
  auto choice = shard_choice::from_environment(environment({{"FERRY_SHARD", "3/8"}}));
  REQUIRE(choice);
  CHECK(choice->origin == "FERRY_SHARD=3/8");
  for (auto text : {"", "0/4", "5/4", "4", "x", "1/4097"}) {
    INFO(text);
    auto result = chosen({{"FERRY_SHARD", text}});
    CHECK(is_error(result));
    CHECK(result.find("FERRY_SHARD=" + std::string{text}) != std::string::npos);
  }
}

TEST_CASE("shard auto takes a Kubernetes Indexed Job's 0-based JOB_COMPLETION_INDEX",
          "[migration_shard]") {
  CHECK(chosen({{"JOB_COMPLETION_INDEX", "0"}, {"FERRY_SHARD_COUNT", "4"}}) == "1/4");
  CHECK(chosen({{"JOB_COMPLETION_INDEX", "3"}, {"FERRY_SHARD_COUNT", "4"}}) == "4/4");
  CHECK(is_error(chosen({{"JOB_COMPLETION_INDEX", "4"}, {"FERRY_SHARD_COUNT", "4"}})));
  CHECK(is_error(chosen({{"JOB_COMPLETION_INDEX", "-1"}, {"FERRY_SHARD_COUNT", "4"}})));
  CHECK(is_error(chosen({{"JOB_COMPLETION_INDEX", "1"}, {"FERRY_SHARD_COUNT", "0"}})));
  CHECK(is_error(chosen({{"JOB_COMPLETION_INDEX", "1"}, {"FERRY_SHARD_COUNT", "4097"}})));
  CHECK(is_error(chosen({{"JOB_COMPLETION_INDEX", " 1"}, {"FERRY_SHARD_COUNT", "4"}})));
  auto origin = shard_choice::from_environment(
    environment({{"JOB_COMPLETION_INDEX", "2"}, {"FERRY_SHARD_COUNT", "4"}}));
  REQUIRE(origin);
  CHECK(origin->origin == "JOB_COMPLETION_INDEX=2, FERRY_SHARD_COUNT=4");

  auto no_count = chosen({{"JOB_COMPLETION_INDEX", "2"}});
  CHECK(is_error(no_count));
  CHECK(no_count.find("FERRY_SHARD_COUNT") != std::string::npos);
}

TEST_CASE("shard auto takes a Slurm array task, counted from the array's first task",
          "[migration_shard]") {
  // sbatch --array=1-16%4
  std::map<std::string, std::string> array = {{"SLURM_ARRAY_TASK_MIN", "1"},
                                              {"SLURM_ARRAY_TASK_MAX", "16"}};
  array["SLURM_ARRAY_TASK_ID"] = "1";
  CHECK(chosen(array) == "1/16");
  array["SLURM_ARRAY_TASK_ID"] = "16";
  CHECK(chosen(array) == "16/16");
  array["SLURM_ARRAY_TASK_ID"] = "17";
  CHECK(is_error(chosen(array)));
  array["SLURM_ARRAY_TASK_ID"] = "0";
  CHECK(is_error(chosen(array)));

  // sbatch --array=0-7: task 0 is shard 1.
  CHECK(chosen({{"SLURM_ARRAY_TASK_ID", "0"},
                {"SLURM_ARRAY_TASK_MIN", "0"},
                {"SLURM_ARRAY_TASK_MAX", "7"}}) == "1/8");
  CHECK(chosen({{"SLURM_ARRAY_TASK_ID", "7"},
                {"SLURM_ARRAY_TASK_MIN", "0"},
                {"SLURM_ARRAY_TASK_MAX", "7"},
                {"SLURM_ARRAY_TASK_COUNT", "8"}}) == "8/8");
  // sbatch --array=0-14:2: 8 tasks.
  CHECK(chosen({{"SLURM_ARRAY_TASK_ID", "14"},
                {"SLURM_ARRAY_TASK_MIN", "0"},
                {"SLURM_ARRAY_TASK_MAX", "14"},
                {"SLURM_ARRAY_TASK_STEP", "2"}}) == "8/8");
  CHECK(is_error(chosen({{"SLURM_ARRAY_TASK_ID", "3"},
                         {"SLURM_ARRAY_TASK_MIN", "0"},
                         {"SLURM_ARRAY_TASK_MAX", "14"},
                         {"SLURM_ARRAY_TASK_STEP", "2"}})));
  // The count wins over MIN and MAX; without MIN, tasks count from 1.
  CHECK(chosen({{"SLURM_ARRAY_TASK_ID", "3"}, {"SLURM_ARRAY_TASK_COUNT", "4"}}) == "3/4");
  CHECK(chosen({{"SLURM_ARRAY_TASK_ID", "5"},
                {"SLURM_ARRAY_TASK_MIN", "5"},
                {"SLURM_ARRAY_TASK_MAX", "100"},
                {"SLURM_ARRAY_TASK_COUNT", "2"}}) == "1/2");
  CHECK(is_error(chosen({{"SLURM_ARRAY_TASK_ID", "5"}, {"SLURM_ARRAY_TASK_COUNT", "4"}})));
  CHECK(is_error(chosen({{"SLURM_ARRAY_TASK_ID", "x"}, {"SLURM_ARRAY_TASK_COUNT", "4"}})));
  CHECK(is_error(chosen(
    {{"SLURM_ARRAY_TASK_ID", "2"}, {"SLURM_ARRAY_TASK_MIN", "3"}, {"SLURM_ARRAY_TASK_MAX", "1"}})));
  // A task resubmitted alone (sbatch --array=2) is an array of one task:
  // taken as shard 1 of 1, it would copy the whole migration.
  for (std::string id : {"1", "2"}) {
    auto resubmitted = chosen({{"SLURM_ARRAY_TASK_ID", id},
                               {"SLURM_ARRAY_TASK_MIN", id},
                               {"SLURM_ARRAY_TASK_MAX", id},
                               {"SLURM_ARRAY_TASK_COUNT", "1"}});
    CHECK(is_error(resubmitted));
    CHECK(resubmitted.find("FERRY_SHARD=I/N") != std::string::npos);
  }
  // A task id alone says nothing about the count.
  auto alone = chosen({{"SLURM_ARRAY_TASK_ID", "2"}});
  CHECK(is_error(alone));
  CHECK(alone.find("SLURM_ARRAY_TASK_COUNT") != std::string::npos);
}

TEST_CASE("shard auto takes FERRY_SHARD first, then Kubernetes, then Slurm", "[migration_shard]") {
  std::map<std::string, std::string> all = {
    {"FERRY_SHARD", "1/2"},       {"JOB_COMPLETION_INDEX", "1"}, {"FERRY_SHARD_COUNT", "3"},
    {"SLURM_ARRAY_TASK_ID", "4"}, {"SLURM_ARRAY_TASK_MIN", "1"}, {"SLURM_ARRAY_TASK_MAX", "4"}};
  CHECK(chosen(all) == "1/2");
  all.erase("FERRY_SHARD");
  CHECK(chosen(all) == "2/3");
  all.erase("JOB_COMPLETION_INDEX");
  CHECK(chosen(all) == "4/4");
  all.erase("SLURM_ARRAY_TASK_ID");
  auto none = chosen(all);
  REQUIRE(is_error(none));
  for (auto name : {"FERRY_SHARD", "JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID"}) {
    INFO(name);
    CHECK(none.find(name) != std::string::npos);
  }
}

TEST_CASE("a migration's identity names its shard, and gives it back", "[migration_shard]") {
  auto whole = ferry::migration_identity("folder a", "folder b", migration_shard{});
  CHECK(whole == "folder a -> folder b");
  auto second = ferry::migration_identity("folder a", "folder b", *migration_shard::parse("2/4"));
  CHECK(second == "folder a -> folder b shard 2/4");

  auto back = ferry::shard_in_identity(second, "folder a", "folder b");
  REQUIRE(back);
  CHECK(back->index == 1);
  CHECK(back->count == 4);
  auto back_whole = ferry::shard_in_identity(whole, "folder a", "folder b");
  REQUIRE(back_whole);
  CHECK(back_whole->count == 1);
  CHECK_FALSE(ferry::shard_in_identity(second, "folder a", "folder c"));
  CHECK_FALSE(ferry::shard_in_identity(second, "folder", "a -> folder b"));
  CHECK_FALSE(ferry::shard_in_identity("folder a -> folder b shard x", "folder a", "folder b"));
  CHECK_FALSE(ferry::shard_in_identity("folder a -> folder b shard 1/1", "folder a", "folder b"));
}
