#include "actors/policy/migration_shard.hpp"

namespace ferry {

namespace {

constexpr uint32_t max_count = 4096;

/// A decimal number of at most 9 digits (no sign, no spaces).
std::optional<uint32_t> number(const std::string& text) {
  if (text.empty() || text.size() > 9 || text.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return static_cast<uint32_t>(std::stoul(text));
}

status bad_value(const std::string& origin, const std::string& why) {
  return {errc::config_error, "--shard auto: " + origin + " " + why};
}

/// Shard `position` (1-based) of `count`, when 1 <= position <= count <= 4096.
result<shard_choice> choice(std::optional<uint32_t> position, std::optional<uint32_t> count,
                            const std::string& origin) {
  if (!position || !count || *count < 1 || *count > max_count || *position < 1 ||
      *position > *count)
    return bad_value(origin, "is not shard I of N with 1 <= I <= N <= 4096");
  return shard_choice{migration_shard{*position - 1, *count}, origin};
}

std::string assignment(const std::string& name, const std::string& value) {
  return name + "=" + value;
}

} // namespace

std::optional<migration_shard> migration_shard::parse(const std::string& text) {
  if (text.empty())
    return migration_shard{};
  auto slash = text.find('/');
  // Exactly one slash between two numbers: "1/2/3" is not a shard.
  if (slash == std::string::npos || slash == 0 || slash + 1 == text.size() ||
      text.find('/', slash + 1) != std::string::npos ||
      text.find_first_not_of("0123456789/") != std::string::npos || text.size() > 11)
    return std::nullopt;
  auto index = std::stoul(text.substr(0, slash));
  auto count = std::stoul(text.substr(slash + 1));
  if (count < 1 || count > max_count || index < 1 || index > count)
    return std::nullopt;
  return migration_shard{static_cast<uint32_t>(index - 1), static_cast<uint32_t>(count)};
}

bool migration_shard::takes(const std::string& oid) const {
  return count == 1 || std::stoul(oid.substr(0, 8), nullptr, 16) % count == index;
}

std::string migration_shard::describe() const {
  return count == 1 ? std::string{} : std::to_string(index + 1) + "/" + std::to_string(count);
}

result<shard_choice> shard_choice::from_environment(const environment_lookup& lookup) {
  if (auto text = lookup("FERRY_SHARD")) {
    auto origin = assignment("FERRY_SHARD", *text);
    auto shard = text->empty() ? std::nullopt : migration_shard::parse(*text);
    if (!shard)
      return bad_value(origin, "is not I/N with 1 <= I <= N <= 4096 (e.g. FERRY_SHARD=2/4)");
    return shard_choice{*shard, origin};
  }
  if (auto index = lookup("JOB_COMPLETION_INDEX")) {
    auto count = lookup("FERRY_SHARD_COUNT");
    if (!count)
      return status{errc::config_error,
                    "--shard auto: JOB_COMPLETION_INDEX=" + *index +
                      " is set but FERRY_SHARD_COUNT is not; set it to the Job's completions"};
    auto origin =
      assignment("JOB_COMPLETION_INDEX", *index) + ", " + assignment("FERRY_SHARD_COUNT", *count);
    auto position = number(*index);
    // The index counts from 0, shards from 1.
    return choice(position ? std::optional<uint32_t>{*position + 1} : std::nullopt, number(*count),
                  origin);
  }
  if (auto id = lookup("SLURM_ARRAY_TASK_ID")) {
    // --array=1-16%4 runs tasks 1 to 16, 4 at a time; --array=0-7 tasks 0
    // to 7; --array=0-14:2 tasks 0, 2, ... 14. Task MIN is shard 1.
    auto origin = assignment("SLURM_ARRAY_TASK_ID", *id);
    std::optional<uint32_t> count;
    uint32_t first = 1;
    uint32_t step = 1;
    for (auto name : {"SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX",
                      "SLURM_ARRAY_TASK_STEP"}) {
      if (auto value = lookup(name))
        origin += ", " + assignment(name, *value);
    }
    auto min = lookup("SLURM_ARRAY_TASK_MIN");
    auto max = lookup("SLURM_ARRAY_TASK_MAX");
    if (auto text = lookup("SLURM_ARRAY_TASK_STEP")) {
      auto parsed = number(*text);
      if (!parsed || *parsed < 1)
        return bad_value(origin, "has a step that is not a positive number");
      step = *parsed;
    }
    if (min) {
      auto parsed = number(*min);
      if (!parsed)
        return bad_value(origin, "has a MIN that is not a number");
      first = *parsed;
    }
    if (auto text = lookup("SLURM_ARRAY_TASK_COUNT")) {
      count = number(*text);
      if (!count)
        return bad_value(origin, "has a COUNT that is not a number");
    } else if (min && max) {
      auto last = number(*max);
      if (!last || *last < first)
        return bad_value(origin, "has a MAX that is not a number from MIN up");
      count = (*last - first) / step + 1;
    } else {
      return status{errc::config_error,
                    "--shard auto: " + origin +
                      " is set but neither SLURM_ARRAY_TASK_COUNT nor SLURM_ARRAY_TASK_MIN and "
                      "SLURM_ARRAY_TASK_MAX"};
    }
    // A task resubmitted alone (sbatch --array=5) is an array of one: it
    // would take the whole migration as shard 1 of 1.
    if (count && *count == 1)
      return status{errc::config_error,
                    "--shard auto: " + origin +
                      " is an array of one task, as a resubmitted task is, which does not say "
                      "how many shards the migration has; give FERRY_SHARD=I/N (it comes "
                      "first), e.g. sbatch --array=5 --export=ALL,FERRY_SHARD=5/16"};
    auto task = number(*id);
    if (!task || *task < first || (*task - first) % step != 0)
      return bad_value(origin, "is not a task of the array");
    return choice((*task - first) / step + 1, count, origin);
  }
  return status{errc::config_error,
                "--shard auto: none of FERRY_SHARD, JOB_COMPLETION_INDEX (with "
                "FERRY_SHARD_COUNT) or SLURM_ARRAY_TASK_ID is set; give --shard I/N instead"};
}

std::string migration_identity(const std::string& source, const std::string& destination,
                               const migration_shard& shard) {
  auto identity = source + " -> " + destination;
  if (shard.count > 1)
    identity += " shard " + shard.describe();
  return identity;
}

std::optional<migration_shard> shard_in_identity(const std::string& identity,
                                                 const std::string& source,
                                                 const std::string& destination) {
  auto whole = migration_identity(source, destination, migration_shard{});
  if (identity == whole)
    return migration_shard{};
  auto prefix = whole + " shard ";
  if (identity.compare(0, prefix.size(), prefix) != 0)
    return std::nullopt;
  auto shard = migration_shard::parse(identity.substr(prefix.size()));
  if (!shard || shard->count == 1)
    return std::nullopt;
  return shard;
}

} // namespace ferry
