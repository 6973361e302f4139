#include "config/settings.hpp"

#include <array>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <optional>

namespace ferry::config {

namespace {

using std::chrono::milliseconds;

/// How one setting is spelled in each source.
struct key_names {
  const char* git;  // documented spelling; git itself lower-cases it
  const char* env;
  const char* flag; // nullptr when there is no flag
};

constexpr key_names store_key{"ferry.store", "FERRY_STORE", "store"};
constexpr key_names journal_key{"ferry.journal", "FERRY_JOURNAL", "journal"};
constexpr key_names max_attempts_key{"ferry.maxAttempts", "FERRY_MAX_ATTEMPTS", "max-attempts"};
constexpr key_names backoff_base_key{"ferry.backoffBase", "FERRY_BACKOFF_BASE", nullptr};
constexpr key_names backoff_max_key{"ferry.backoffMax", "FERRY_BACKOFF_MAX", nullptr};
constexpr key_names history_key{"ferry.history", "FERRY_HISTORY", nullptr};
constexpr key_names log_level_key{"ferry.logLevel", "FERRY_LOG_LEVEL", "log-level"};
constexpr key_names log_file_key{"ferry.logFile", "FERRY_LOG_FILE", "log-file"};

constexpr std::array<const key_names*, 8> all_keys = {
  &store_key,       &journal_key, &max_attempts_key, &backoff_base_key,
  &backoff_max_key, &history_key, &log_level_key,    &log_file_key,
};

constexpr milliseconds min_backoff{1};
constexpr milliseconds max_backoff_base{60'000};
constexpr milliseconds max_backoff_max{3'600'000};
constexpr uint64_t max_history = 1'000'000;

std::string lower(std::string text) {
  for (auto& c : text)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

/// A value found in one source, with enough context to explain an error.
struct raw_value {
  std::string text;
  std::string name;   // the key as the user wrote it in that source
  std::string source; // "command line", "environment", "git config"
};

std::optional<raw_value> lookup(const sources& input, const key_names& key) {
  if (key.flag != nullptr) {
    if (auto it = input.flags.find(key.flag); it != input.flags.end())
      return raw_value{it->second, std::string{"--"} + key.flag, "command line"};
  }
  if (auto it = input.env.find(key.env); it != input.env.end())
    return raw_value{it->second, key.env, "environment"};
  if (auto it = input.git.find(lower(key.git)); it != input.git.end())
    return raw_value{it->second, key.git, "git config"};
  return std::nullopt;
}

status invalid(const raw_value& value, const std::string& allowed) {
  return {errc::config_error,
          value.name + " (" + value.source + ") = '" + value.text + "': " + allowed};
}

/// Digits only: no sign, no spaces, no trailing text, no overflow.
std::optional<uint64_t> parse_unsigned(const std::string& text) {
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc{} || ptr != end)
    return std::nullopt;
  return value;
}

/// Like parse_duration, but the error message only says what is wrong, so
/// callers can put their own context in front.
result<milliseconds> duration_of(const std::string& text) {
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits])))
    ++digits;
  if (digits == 0)
    return status{errc::config_error,
                  "expected a whole number followed by ms, s or m (e.g. 250ms, 10s, 2m)"};

  std::string unit = text.substr(digits);
  int64_t scale = 0;
  if (unit.empty() || unit == "ms")
    scale = 1;
  else if (unit == "s")
    scale = 1000;
  else if (unit == "m")
    scale = 60'000;
  else if (unit[0] == '.' || unit[0] == ',')
    return status{errc::config_error,
                  "fractions are not supported; use a smaller unit (e.g. 1500ms)"};
  else
    return status{errc::config_error, "unknown unit '" + unit + "'; use ms, s or m"};

  auto count = parse_unsigned(text.substr(0, digits));
  constexpr auto limit = static_cast<uint64_t>(std::numeric_limits<milliseconds::rep>::max());
  if (!count || *count > limit / static_cast<uint64_t>(scale))
    return status{errc::config_error, "the duration is too large"};
  return milliseconds{static_cast<milliseconds::rep>(*count) * scale};
}

/// Renders a duration the way a user would write it.
std::string format_duration(milliseconds value) {
  auto count = value.count();
  if (count != 0 && count % 60'000 == 0)
    return std::to_string(count / 60'000) + "m";
  if (count != 0 && count % 1000 == 0)
    return std::to_string(count / 1000) + "s";
  return std::to_string(count) + "ms";
}

result<milliseconds> duration_in_range(const raw_value& value, milliseconds low,
                                       const std::string& low_text, milliseconds high,
                                       const std::string& high_text) {
  auto parsed = duration_of(value.text);
  if (!parsed)
    return invalid(value, parsed.error().message());
  if (*parsed < low || *parsed > high)
    return invalid(value, "expected a duration from " + low_text + " to " + high_text);
  return *parsed;
}

} // namespace

result<milliseconds> parse_duration(const std::string& text) {
  auto parsed = duration_of(text);
  if (!parsed)
    return parsed.error().with_context("invalid duration '" + text + "'");
  return parsed;
}

result<settings> resolve(const sources& input, const std::filesystem::path& lfs_dir) {
  settings out;

  // An empty store would only fail later with a less helpful message.
  if (auto value = lookup(input, store_key)) {
    if (value->text.empty())
      return invalid(*value, "expected a store URL or path");
    out.store_url = value->text;
  }

  if (auto value = lookup(input, journal_key)) {
    std::filesystem::path dir{value->text};
    if (!dir.is_absolute())
      return invalid(*value, "expected an absolute path");
    out.journal_dir = dir;
  } else if (lfs_dir.empty()) {
    return status{errc::config_error,
                  "not inside a git repository: set ferry.journal or FERRY_JOURNAL"};
  } else {
    out.journal_dir = lfs_dir / "ferry";
  }

  if (auto value = lookup(input, max_attempts_key)) {
    auto number = parse_unsigned(value->text);
    if (!number || *number < 1 || *number > 100)
      return invalid(*value, "expected an integer from 1 to 100");
    out.max_attempts = static_cast<int>(*number);
  }

  if (auto value = lookup(input, backoff_base_key)) {
    auto base = duration_in_range(*value, min_backoff, "1ms", max_backoff_base, "60s");
    if (!base)
      return base.error();
    out.backoff_base = *base;
  }

  if (auto value = lookup(input, backoff_max_key)) {
    auto low_text = std::string{backoff_base_key.git} + " (" + format_duration(out.backoff_base) + ")";
    auto max = duration_in_range(*value, out.backoff_base, low_text, max_backoff_max, "60m");
    if (!max)
      return max.error();
    out.backoff_max = *max;
  } else if (out.backoff_max < out.backoff_base) {
    // Only the base was raised; the default cap must not undercut it.
    out.backoff_max = out.backoff_base;
  }

  if (auto value = lookup(input, history_key)) {
    auto number = parse_unsigned(value->text);
    if (!number || *number > max_history)
      return invalid(*value, "expected an integer from 0 to " + std::to_string(max_history));
    out.history_limit = static_cast<size_t>(*number);
  }

  if (auto value = lookup(input, log_level_key)) {
    static constexpr std::array<const char*, 6> levels = {"trace", "debug", "info",
                                                           "warn",  "error", "off"};
    auto level = lower(value->text);
    bool known = false;
    for (const char* name : levels)
      known = known || level == name;
    if (!known)
      return invalid(*value, "expected one of trace, debug, info, warn, error, off");
    out.log_level = level;
  }

  if (auto value = lookup(input, log_file_key)) {
    std::filesystem::path file{value->text};
    if (!file.is_absolute())
      return invalid(*value, "expected an absolute path");
    out.log_file = file;
  } else {
    out.log_file = out.journal_dir / "ferry.log";
  }

  return out;
}

std::map<std::string, std::string> read_environment() {
  std::map<std::string, std::string> values;
  for (const auto* key : all_keys) {
    if (const char* value = std::getenv(key->env))
      values[key->env] = value;
  }
  return values;
}

} // namespace ferry::config
