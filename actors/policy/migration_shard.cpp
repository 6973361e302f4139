#include "actors/policy/migration_shard.hpp"

namespace ferry {

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
  if (count < 1 || count > 4096 || index < 1 || index > count)
    return std::nullopt;
  return migration_shard{static_cast<uint32_t>(index - 1), static_cast<uint32_t>(count)};
}

bool migration_shard::takes(const std::string& oid) const {
  return count == 1 || std::stoul(oid.substr(0, 8), nullptr, 16) % count == index;
}

std::string migration_shard::describe() const {
  return count == 1 ? std::string{} : std::to_string(index + 1) + "/" + std::to_string(count);
}

} // namespace ferry
