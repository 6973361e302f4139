#include "config/settings.hpp"
#include "protocol/parsing.hpp"

#include <array>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <optional>
#include <utility>

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
constexpr key_names max_retry_wait_key{"ferry.maxRetryWait", "FERRY_MAX_RETRY_WAIT", nullptr};
constexpr key_names max_retry_time_key{"ferry.maxRetryTime", "FERRY_MAX_RETRY_TIME", nullptr};
constexpr key_names max_requests_key{"ferry.maxRequestsPerSecond",
                                     "FERRY_MAX_REQUESTS_PER_SECOND", nullptr};
constexpr key_names max_bytes_key{"ferry.maxBytesPerSecond", "FERRY_MAX_BYTES_PER_SECOND",
                                  nullptr};
constexpr key_names parallel_streams_key{"ferry.parallelStreams", "FERRY_PARALLEL_STREAMS",
                                         nullptr};
constexpr key_names parallel_threshold_key{"ferry.parallelThreshold", "FERRY_PARALLEL_THRESHOLD",
                                           nullptr};
constexpr key_names stall_timeout_key{"ferry.stallTimeout", "FERRY_STALL_TIMEOUT", nullptr};
constexpr key_names s3_multipart_threshold_key{"ferry.s3.multipartThreshold",
                                               "FERRY_S3_MULTIPART_THRESHOLD", nullptr};
constexpr key_names s3_part_size_key{"ferry.s3.partSize", "FERRY_S3_PART_SIZE", nullptr};
constexpr key_names s3_upload_concurrency_key{"ferry.s3.uploadConcurrency",
                                              "FERRY_S3_UPLOAD_CONCURRENCY", nullptr};
constexpr key_names proton_command_key{"ferry.proton.command", "FERRY_PROTON_COMMAND", nullptr};
constexpr key_names proton_processes_key{"ferry.proton.processes", "FERRY_PROTON_PROCESSES",
                                         nullptr};
constexpr key_names proton_timeout_key{"ferry.proton.timeout", "FERRY_PROTON_TIMEOUT", nullptr};
constexpr key_names proton_min_rate_key{"ferry.proton.minRate", "FERRY_PROTON_MIN_RATE", nullptr};
constexpr key_names proton_provider_key{"ferry.proton.dataCredentialProvider",
                                        "FERRY_PROTON_DATA_CREDENTIAL_PROVIDER", nullptr};
constexpr key_names proton_host_key{"ferry.proton.dataCredentialHost",
                                    "FERRY_PROTON_DATA_CREDENTIAL_HOST", nullptr};
constexpr key_names history_key{"ferry.history", "FERRY_HISTORY", nullptr};
constexpr key_names log_level_key{"ferry.logLevel", "FERRY_LOG_LEVEL", "log-level"};
constexpr key_names log_file_key{"ferry.logFile", "FERRY_LOG_FILE", "log-file"};

constexpr std::array<const key_names*, 24> all_keys = {
  &store_key,         &journal_key,          &max_attempts_key,  &backoff_base_key,
  &backoff_max_key,   &max_retry_wait_key,   &max_retry_time_key,   &max_requests_key,  &max_bytes_key,
  &parallel_streams_key, &parallel_threshold_key, &stall_timeout_key,
  &s3_multipart_threshold_key, &s3_part_size_key, &s3_upload_concurrency_key,
  &proton_command_key, &proton_processes_key, &proton_timeout_key, &proton_min_rate_key,
  &proton_provider_key, &proton_host_key,     &history_key,
  &log_level_key,     &log_file_key,
};

constexpr milliseconds min_backoff{1};
constexpr milliseconds max_backoff_base{60'000};
constexpr milliseconds max_backoff_max{3'600'000};
constexpr milliseconds max_wait_setting{3'600'000};
constexpr uint64_t max_history = 1'000'000;
constexpr double max_requests_per_second = 10'000;
constexpr int64_t mebibyte = int64_t{1} << 20;
constexpr int64_t tebibyte = int64_t{1} << 40;

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
  if (auto it = input.git.find(protocol::lower_ascii(key.git)); it != input.git.end())
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
                  "expected a whole number followed by ms, s, m or h (e.g. 250ms, 10s, 2m)"};

  std::string unit = text.substr(digits);
  int64_t scale = 0;
  if (unit.empty() || unit == "ms")
    scale = 1;
  else if (unit == "s")
    scale = 1000;
  else if (unit == "m")
    scale = 60'000;
  else if (unit == "h")
    scale = 3'600'000;
  else if (unit[0] == '.' || unit[0] == ',')
    return status{errc::config_error,
                  "fractions are not supported; use a smaller unit (e.g. 1500ms)"};
  else
    return status{errc::config_error, "unknown unit '" + unit + "'; use ms, s, m or h"};

  auto count = parse_unsigned(text.substr(0, digits));
  constexpr auto limit = static_cast<uint64_t>(std::numeric_limits<milliseconds::rep>::max());
  if (!count || *count > limit / static_cast<uint64_t>(scale))
    return status{errc::config_error, "the duration is too large"};
  return milliseconds{static_cast<milliseconds::rep>(*count) * scale};
}

/// Renders a duration the way a user would write it.
std::string format_duration(milliseconds value) {
  auto count = value.count();
  if (count == 0)
    return "0s";
  if (count % 60'000 == 0)
    return std::to_string(count / 60'000) + "m";
  if (count % 1000 == 0)
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

/// A duration setting the engine uses in whole seconds.
result<std::chrono::seconds> whole_seconds_in_range(const raw_value& value, milliseconds low,
                                                    milliseconds high) {
  auto allowed = "expected a duration in whole seconds from " + format_duration(low) + " to " +
                 format_duration(high);
  auto parsed = duration_of(value.text);
  if (!parsed)
    return invalid(value, parsed.error().message());
  if (*parsed < low || *parsed > high || parsed->count() % 1000 != 0)
    return invalid(value, allowed);
  return std::chrono::duration_cast<std::chrono::seconds>(*parsed);
}

/// Like parse_size, but the error message only says what is wrong.
result<int64_t> size_of(const std::string& text) {
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits])))
    ++digits;
  if (digits == 0)
    return status{errc::config_error,
                  "expected a whole number with an optional unit (e.g. 10MiB, 10MB, 10M)"};
  auto unit = protocol::lower_ascii(text.substr(digits));
  constexpr std::array<std::pair<const char*, int64_t>, 14> units = {{
    {"", 1},
    {"b", 1},
    {"k", int64_t{1} << 10},
    {"kib", int64_t{1} << 10},
    {"kb", 1000},
    {"m", mebibyte},
    {"mib", mebibyte},
    {"mb", 1'000'000},
    {"g", int64_t{1} << 30},
    {"gib", int64_t{1} << 30},
    {"gb", 1'000'000'000},
    {"t", tebibyte},
    {"tib", tebibyte},
    {"tb", 1'000'000'000'000},
  }};
  int64_t scale = 0;
  for (auto& [name, factor] : units)
    if (unit == name)
      scale = factor;
  if (scale == 0) {
    if (unit[0] == '.' || unit[0] == ',')
      return status{errc::config_error,
                    "fractions are not supported; use a smaller unit (e.g. 1536KiB)"};
    return status{errc::config_error, "unknown unit '" + text.substr(digits) +
                                        "'; use B, KiB, MiB, GiB, TiB (or K, M, G, T), KB, MB, "
                                        "GB or TB"};
  }
  auto count = parse_unsigned(text.substr(0, digits));
  constexpr auto limit = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (!count || *count > limit / static_cast<uint64_t>(scale))
    return status{errc::config_error, "the size is too large"};
  return static_cast<int64_t>(*count) * scale;
}

result<int64_t> size_in_range(const raw_value& value, int64_t low, const std::string& low_text,
                              int64_t high, const std::string& high_text,
                              const std::string& example) {
  auto allowed = "expected a size from " + low_text + " to " + high_text + ", such as " + example;
  auto parsed = size_of(value.text);
  if (!parsed)
    return invalid(value, parsed.error().message() + "; " + allowed);
  if (*parsed < low || *parsed > high)
    return invalid(value, allowed);
  return *parsed;
}

/// A non-negative decimal such as "10" or "0.5": digits, optionally a point
/// and more digits. No sign, exponent or spaces.
std::optional<double> parse_decimal(const std::string& text) {
  auto point = text.find('.');
  auto whole = text.substr(0, point);
  auto fraction = point == std::string::npos ? std::string{} : text.substr(point + 1);
  auto all_digits = [](const std::string& part) {
    for (char c : part)
      if (!std::isdigit(static_cast<unsigned char>(c)))
        return false;
    return true;
  };
  if (whole.empty() || !all_digits(whole) || !all_digits(fraction) ||
      (point != std::string::npos && fraction.empty()) || whole.size() > 15 ||
      fraction.size() > 15)
    return std::nullopt;
  // from_chars, unlike strtod, ignores the locale's decimal point.
  double value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

} // namespace

result<int64_t> parse_size(const std::string& text) {
  auto parsed = size_of(text);
  if (!parsed)
    return parsed.error().with_context("invalid size '" + text + "'");
  return parsed;
}

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

  if (auto value = lookup(input, max_retry_time_key)) {
    auto limit = duration_in_range(*value, milliseconds{1000}, "1s", milliseconds{86'400'000},
                                   "24h");
    if (!limit)
      return limit.error();
    out.max_retry_time = *limit;
  }

  if (auto value = lookup(input, max_retry_wait_key)) {
    auto wait = whole_seconds_in_range(*value, milliseconds{0}, max_wait_setting);
    if (!wait)
      return wait.error();
    out.max_retry_wait = *wait;
  }

  if (auto value = lookup(input, max_requests_key)) {
    auto rate = parse_decimal(value->text);
    if (!rate || *rate > max_requests_per_second)
      return invalid(*value, "expected a number of requests per second from 0 (unlimited) to "
                             "10000, such as 10 or 0.5");
    out.max_requests_per_second = *rate;
  }

  if (auto value = lookup(input, max_bytes_key)) {
    auto rate = size_in_range(*value, 0, "0 (unlimited)", tebibyte, "1TiB", "10MiB, 10MB or 10M");
    if (!rate)
      return rate.error();
    out.max_bytes_per_second = *rate;
  }

  if (auto value = lookup(input, parallel_streams_key)) {
    auto number = parse_unsigned(value->text);
    if (!number || *number < 1 || *number > 16)
      return invalid(*value, "expected an integer from 1 to 16");
    out.parallel_streams = static_cast<int>(*number);
  }

  if (auto value = lookup(input, parallel_threshold_key)) {
    auto threshold = size_in_range(*value, mebibyte, "1MiB", tebibyte, "1TiB", "32MiB");
    if (!threshold)
      return threshold.error();
    out.parallel_threshold = *threshold;
  }

  if (auto value = lookup(input, stall_timeout_key)) {
    auto timeout = whole_seconds_in_range(*value, milliseconds{1000}, max_wait_setting);
    if (!timeout)
      return timeout.error();
    out.stall_timeout = *timeout;
  }

  // S3 refuses parts under 5 MiB (except the last) and more than 10,000.
  if (auto value = lookup(input, s3_multipart_threshold_key)) {
    auto threshold = size_in_range(*value, 5 * mebibyte, "5MiB", tebibyte, "1TiB", "32MiB");
    if (!threshold)
      return threshold.error();
    out.s3_multipart_threshold = *threshold;
  }

  if (auto value = lookup(input, s3_part_size_key)) {
    auto part = size_in_range(*value, 5 * mebibyte, "5MiB", 5 * (tebibyte >> 10), "5GiB", "8MiB");
    if (!part)
      return part.error();
    out.s3_part_size = *part;
  }

  if (auto value = lookup(input, s3_upload_concurrency_key)) {
    auto number = parse_unsigned(value->text);
    if (!number || *number < 1 || *number > 64)
      return invalid(*value, "expected an integer from 1 to 64");
    out.s3_upload_concurrency = static_cast<int>(*number);
  }

  if (auto value = lookup(input, proton_command_key)) {
    if (value->text.find_first_not_of(" \t") == std::string::npos)
      return invalid(*value, "expected the bridge's command line, such as "
                             "'node /opt/proton-drive-cli/dist/index.js'");
    out.proton_command = value->text;
  }

  // Proton limits per session: a few processes share one.
  if (auto value = lookup(input, proton_processes_key)) {
    auto number = parse_unsigned(value->text);
    if (!number || *number < 1 || *number > 16)
      return invalid(*value, "expected an integer from 1 to 16");
    out.proton_processes = static_cast<int>(*number);
  }

  if (auto value = lookup(input, proton_timeout_key)) {
    auto timeout = duration_in_range(*value, milliseconds{1000}, "1s", max_backoff_max, "60m");
    if (!timeout)
      return timeout.error();
    out.proton_timeout = *timeout;
  }

  if (auto value = lookup(input, proton_min_rate_key)) {
    auto rate = size_in_range(*value, 1024, "1KiB", tebibyte, "1TiB", "256KiB");
    if (!rate)
      return rate.error();
    out.proton_min_rate = *rate;
  }

  if (auto value = lookup(input, proton_provider_key)) {
    if (value->text != "git-credential" && value->text != "pass-cli")
      return invalid(*value, "expected git-credential or pass-cli");
    out.proton_data_credential_provider = value->text;
  }

  if (auto value = lookup(input, proton_host_key)) {
    if (value->text.empty())
      return invalid(*value, "expected a credential host, such as "
                             "proton-data.proton-lfs-cli.local");
    out.proton_data_credential_host = value->text;
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
    auto level = protocol::lower_ascii(value->text);
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
