#include "config/settings.hpp"
#include "protocol/parsing.hpp"

#include <array>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <sstream>
#include <type_traits>
#include <utility>

namespace ferry::config {

namespace {

using std::chrono::milliseconds;

constexpr int64_t mebibyte = int64_t{1} << 20;
constexpr int64_t tebibyte = int64_t{1} << 40;

/// A value found in one source, with enough context to explain an error.
struct raw_value {
  std::string text;
  std::string name;   // the key as the user wrote it in that source
  std::string source; // "command line", "environment", "git config" or "default"
};

constexpr const char* default_source = "default";

std::optional<raw_value> lookup(const sources& input, const setting_spec& spec) {
  if (spec.flag != nullptr) {
    if (auto it = input.flags.find(spec.flag); it != input.flags.end())
      return raw_value{it->second, std::string{"--"} + spec.flag, "command line"};
  }
  if (auto it = input.env.find(spec.env); it != input.env.end())
    return raw_value{it->second, spec.env, "environment"};
  if (auto it = input.git.find(protocol::lower_ascii(spec.git)); it != input.git.end())
    return raw_value{it->second, spec.git, "git config"};
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
      (point != std::string::npos && fraction.empty()) || whole.size() > 15 || fraction.size() > 15)
    return std::nullopt;
  // from_chars, unlike strtod, ignores the locale's decimal point.
  double value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

/// A setting's value once read: text, a count (an integer, bytes or
/// milliseconds) or a decimal.
using value = std::variant<std::string, int64_t, double>;

/// Reads a count of the kind's unit; the error only says what is wrong.
result<int64_t> count_of(setting_kind kind, const std::string& text) {
  if (kind == setting_kind::size)
    return size_of(text);
  if (kind != setting_kind::integer) {
    auto duration = duration_of(text);
    if (!duration)
      return duration.error();
    return duration->count();
  }
  auto number = parse_unsigned(text);
  if (!number || *number > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return status{errc::config_error, "expected an integer"};
  return static_cast<int64_t>(*number);
}

std::string or_empty(const char* text) { return text != nullptr ? text : ""; }

/// A range end's value: the text before any remark ("0 (unlimited)").
std::string without_remark(const char* end) {
  auto text = or_empty(end);
  return text.substr(0, text.find(' '));
}

std::vector<std::string> choices_of(const setting_spec& spec) {
  std::vector<std::string> words;
  std::istringstream choices{or_empty(spec.choices)};
  for (std::string word; choices >> word;)
    words.push_back(word);
  return words;
}

/// What error messages call a valid value: "an integer", "git-credential or pass-cli".
std::string what_of(const setting_spec& spec) {
  if (spec.what != nullptr)
    return spec.what;
  switch (spec.kind) {
    case setting_kind::text:
    case setting_kind::command_line:
      return "a value";
    case setting_kind::absolute_path:
      return "an absolute path";
    case setting_kind::integer:
      return "an integer";
    case setting_kind::decimal:
      return "a number";
    case setting_kind::duration:
      return "a duration";
    case setting_kind::whole_seconds:
      return "a duration in whole seconds";
    case setting_kind::size:
      return "a size";
    case setting_kind::choice:
    case setting_kind::choice_any_case:
      break;
  }
  auto words = choices_of(spec);
  if (words.size() == 2)
    return words[0] + " or " + words[1];
  std::string list = "one of ";
  for (size_t i = 0; i < words.size(); ++i)
    list += (i == 0 ? "" : ", ") + words[i];
  return list;
}

/// What the error message says is allowed: "expected a size from 1MiB to
/// 1TiB, such as 32MiB". `low_text` shows the low end.
std::string allowed(const setting_spec& spec, const std::string& low_text) {
  auto text = "expected " + what_of(spec);
  if (spec.range.high != nullptr)
    text += " from " + low_text + " to " + spec.range.high;
  if (spec.example != nullptr)
    text += ", such as " + std::string{spec.example};
  return text;
}

std::string allowed(const setting_spec& spec) { return allowed(spec, or_empty(spec.range.low)); }

const setting_spec* find_setting(const char* git) {
  for (const auto& spec : setting_table())
    if (git != nullptr && std::strcmp(spec.git, git) == 0)
      return &spec;
  return nullptr;
}

/// Reads an integer, duration or size and checks it against the range.
result<value> read_count(const setting_spec& spec, const raw_value& given, const settings& out) {
  // A malformed end (a mistake in the table) admits no value.
  constexpr int64_t least = std::numeric_limits<int64_t>::min();
  constexpr int64_t most = std::numeric_limits<int64_t>::max();
  auto end_of = [&](const char* end, int64_t malformed) {
    auto count = count_of(spec.kind, without_remark(end));
    return count ? *count : malformed;
  };
  int64_t low = end_of(spec.range.low, most);
  int64_t high = end_of(spec.range.high, least);
  std::string low_text = or_empty(spec.range.low);
  // A low end that is another setting's value also shows that value.
  const setting_spec* bounding = find_setting(spec.range.low);
  if (bounding != nullptr) {
    auto other = out.*std::get<milliseconds settings::*>(bounding->target);
    low = other.count();
    low_text += " (" + format_duration(other) + ")";
  }
  auto expected = allowed(spec, low_text);

  auto count = count_of(spec.kind, given.text);
  if (!count) {
    // Integers have one message; a duration's says what is wrong; a size's says both.
    if (spec.kind == setting_kind::integer)
      return invalid(given, expected);
    if (spec.kind == setting_kind::size)
      return invalid(given, count.error().message() + "; " + expected);
    return invalid(given, count.error().message());
  }
  int64_t number = *count;
  if (number < low && bounding != nullptr && given.source == default_source)
    number = low;
  if (number < low || number > high ||
      (spec.kind == setting_kind::whole_seconds && number % 1000 != 0))
    return invalid(given, expected);
  return value{number};
}

/// Reads one setting's text as its kind says and checks it.
result<value> read_value(const setting_spec& spec, const raw_value& given, const settings& out) {
  const std::string& text = given.text;
  switch (spec.kind) {
    case setting_kind::text:
      if (text.empty())
        return invalid(given, allowed(spec));
      return value{text};
    case setting_kind::command_line:
      if (text.find_first_not_of(" \t") == std::string::npos)
        return invalid(given, allowed(spec));
      return value{text};
    case setting_kind::absolute_path:
      if (!std::filesystem::path{text}.is_absolute())
        return invalid(given, allowed(spec));
      return value{text};
    case setting_kind::choice:
    case setting_kind::choice_any_case: {
      auto word = spec.kind == setting_kind::choice ? text : protocol::lower_ascii(text);
      for (const auto& choice : choices_of(spec))
        if (word == choice)
          return value{word};
      return invalid(given, allowed(spec));
    }
    case setting_kind::decimal: {
      auto number = parse_decimal(text);
      auto low = parse_decimal(without_remark(spec.range.low));
      auto high = parse_decimal(without_remark(spec.range.high));
      if (!number || !low || !high || *number < *low || *number > *high)
        return invalid(given, allowed(spec));
      return value{*number};
    }
    case setting_kind::integer:
    case setting_kind::duration:
    case setting_kind::whole_seconds:
    case setting_kind::size:
      break;
  }
  return read_count(spec, given, out);
}

constexpr std::string_view lfs_dir_prefix = "<git-dir>/lfs/";
constexpr std::string_view journal_prefix = "<journal>/";

/// A setting's default, read like a value. A path default is the rest of
/// its text in the directory its prefix names.
result<value> read_default(const setting_spec& spec, const settings& out,
                           const std::filesystem::path& lfs_dir) {
  if (spec.kind != setting_kind::absolute_path)
    return read_value(spec, {spec.fallback, spec.git, default_source}, out);
  std::string_view text = spec.fallback;
  if (text.substr(0, lfs_dir_prefix.size()) == lfs_dir_prefix) {
    if (lfs_dir.empty())
      return status{errc::config_error, std::string{"not inside a git repository: set "} +
                                          spec.git + " or " + spec.env};
    return value{(lfs_dir / text.substr(lfs_dir_prefix.size())).string()};
  }
  if (text.substr(0, journal_prefix.size()) == journal_prefix)
    return value{(out.journal_dir / text.substr(journal_prefix.size())).string()};
  return value{std::string{text}};
}

/// Puts a value into the setting's field.
struct store_value {
  settings& out;
  const value& read;

  void operator()(std::string settings::*field) const { out.*field = std::get<std::string>(read); }
  void operator()(std::filesystem::path settings::*field) const {
    out.*field = std::get<std::string>(read);
  }
  void operator()(int settings::*field) const {
    out.*field = static_cast<int>(std::get<int64_t>(read));
  }
  void operator()(size_t settings::*field) const {
    out.*field = static_cast<size_t>(std::get<int64_t>(read));
  }
  void operator()(int64_t settings::*field) const { out.*field = std::get<int64_t>(read); }
  void operator()(double settings::*field) const { out.*field = std::get<double>(read); }
  void operator()(milliseconds settings::*field) const {
    out.*field = milliseconds{std::get<int64_t>(read)};
  }
  void operator()(std::chrono::seconds settings::*field) const {
    out.*field =
      std::chrono::duration_cast<std::chrono::seconds>(milliseconds{std::get<int64_t>(read)});
  }
};

} // namespace

const std::vector<setting_spec>& setting_table() {
  using kind = setting_kind;
  static const std::vector<setting_spec> table = {
    // An empty store would only fail later with a less helpful message.
    {"ferry.store",
     "FERRY_STORE",
     "store",
     kind::text,
     &settings::store_url,
     nullptr,
     "where objects are kept; without one, only transfers an LFS server offers are served",
     {},
     nullptr,
     "a store URL or path"},
    {"ferry.journal", "FERRY_JOURNAL", "journal", kind::absolute_path, &settings::journal_dir,
     "<git-dir>/lfs/ferry", "journal directory"},
    {"ferry.maxAttempts",
     "FERRY_MAX_ATTEMPTS",
     "max-attempts",
     kind::integer,
     &settings::max_attempts,
     "5",
     "attempts per object",
     {"1", "100"}},
    {"ferry.backoffBase",
     "FERRY_BACKOFF_BASE",
     nullptr,
     kind::duration,
     &settings::backoff_base,
     "250ms",
     "first retry delay ceiling",
     {"1ms", "60s"}},
    {"ferry.backoffMax",
     "FERRY_BACKOFF_MAX",
     nullptr,
     kind::duration,
     &settings::backoff_max,
     "10s",
     "largest retry delay ceiling",
     {"ferry.backoffBase", "60m"}},
    {"ferry.maxRetryTime",
     "FERRY_MAX_RETRY_TIME",
     nullptr,
     kind::duration,
     &settings::max_retry_time,
     "5m",
     "longest time one object is retried, from its first attempt",
     {"1s", "24h"}},
    {"ferry.maxRetryWait",
     "FERRY_MAX_RETRY_WAIT",
     nullptr,
     kind::whole_seconds,
     &settings::max_retry_wait,
     "2m",
     "longest Retry-After honoured; a longer one fails the object",
     {"0s", "60m"}},
    {"ferry.maxRequestsPerSecond",
     "FERRY_MAX_REQUESTS_PER_SECOND",
     nullptr,
     kind::decimal,
     &settings::max_requests_per_second,
     "0",
     "requests per second to one host",
     {"0 (unlimited)", "10000"},
     "10 or 0.5",
     "a number of requests per second"},
    {"ferry.maxBytesPerSecond",
     "FERRY_MAX_BYTES_PER_SECOND",
     nullptr,
     kind::size,
     &settings::max_bytes_per_second,
     "0",
     "bytes per second to one host",
     {"0 (unlimited)", "1TiB"},
     "10MiB, 10MB or 10M"},
    {"ferry.parallelStreams",
     "FERRY_PARALLEL_STREAMS",
     nullptr,
     kind::integer,
     &settings::parallel_streams,
     "4",
     "concurrent ranges for one large download",
     {"1", "16"}},
    {"ferry.parallelThreshold",
     "FERRY_PARALLEL_THRESHOLD",
     nullptr,
     kind::size,
     &settings::parallel_threshold,
     "32MiB",
     "downloads at least this large use parallel ranges",
     {"1MiB", "1TiB"},
     "32MiB"},
    {"ferry.stallTimeout",
     "FERRY_STALL_TIMEOUT",
     nullptr,
     kind::whole_seconds,
     &settings::stall_timeout,
     "30s",
     "an HTTP transfer that moves nothing this long has stalled",
     {"1s", "60m"}},
    // S3 refuses parts under 5 MiB (except the last) and more than 10,000,
    // and a single PUT over 5 GiB. Up to 200 MiB one PUT (one request,
    // checked whole against the oid by the server) beats parts; rclone's
    // upload cutoff is the same.
    {"ferry.s3.multipartThreshold",
     "FERRY_S3_MULTIPART_THRESHOLD",
     nullptr,
     kind::size,
     &settings::s3_multipart_threshold,
     "200MiB",
     "S3 uploads at least this large use multipart",
     {"5MiB", "5GiB"},
     "200MiB"},
    {"ferry.s3.partSize",
     "FERRY_S3_PART_SIZE",
     nullptr,
     kind::size,
     &settings::s3_part_size,
     "8MiB",
     "size of each multipart part",
     {"5MiB", "5GiB"},
     "8MiB"},
    {"ferry.s3.uploadConcurrency",
     "FERRY_S3_UPLOAD_CONCURRENCY",
     nullptr,
     kind::integer,
     &settings::s3_upload_concurrency,
     "4",
     "parts of one object uploaded at once",
     {"1", "64"}},
    {"ferry.proton.command",
     "FERRY_PROTON_COMMAND",
     nullptr,
     kind::command_line,
     &settings::proton_command,
     nullptr,
     "the proton-drive-cli command line",
     {},
     "'node /opt/proton-drive-cli/dist/index.js'",
     "the bridge's command line"},
    // Proton limits per session: a few processes share one.
    {"ferry.proton.processes",
     "FERRY_PROTON_PROCESSES",
     nullptr,
     kind::integer,
     &settings::proton_processes,
     "2",
     "bridge processes at once",
     {"1", "16"}},
    {"ferry.proton.timeout",
     "FERRY_PROTON_TIMEOUT",
     nullptr,
     kind::duration,
     &settings::proton_timeout,
     "2m",
     "time limit of one bridge call, before its size's share",
     {"1s", "60m"}},
    {"ferry.proton.minRate",
     "FERRY_PROTON_MIN_RATE",
     nullptr,
     kind::size,
     &settings::proton_min_rate,
     "256KiB",
     "slowest transfer rate a bridge call's limit allows",
     {"1KiB", "1TiB"},
     "256KiB"},
    {"ferry.proton.dataCredentialProvider",
     "FERRY_PROTON_DATA_CREDENTIAL_PROVIDER",
     nullptr,
     kind::choice,
     &settings::proton_data_credential_provider,
     nullptr,
     "where the bridge finds the data password",
     {},
     nullptr,
     nullptr,
     "git-credential pass-cli"},
    {"ferry.proton.dataCredentialHost",
     "FERRY_PROTON_DATA_CREDENTIAL_HOST",
     nullptr,
     kind::text,
     &settings::proton_data_credential_host,
     nullptr,
     "the credential host of that password",
     {},
     "proton-data.proton-lfs-cli.local",
     "a credential host"},
    {"ferry.history",
     "FERRY_HISTORY",
     nullptr,
     kind::integer,
     &settings::history_limit,
     "1000",
     "finished transfers kept in the journal",
     {"0", "1000000"}},
    {"ferry.daemon.idleTimeout",
     "FERRY_DAEMON_IDLE_TIMEOUT",
     nullptr,
     kind::whole_seconds,
     &settings::daemon_idle_timeout,
     "5m",
     "the daemon exits after this long without a client",
     {"1s", "24h"}},
    {"ferry.daemon",
     "FERRY_DAEMON",
     nullptr,
     kind::choice,
     &settings::daemon,
     "true",
     "whether agents run through the user's daemon (false: each runs the engine itself)",
     {},
     nullptr,
     nullptr,
     "true false"},
    {"ferry.logLevel",
     "FERRY_LOG_LEVEL",
     "log-level",
     kind::choice_any_case,
     &settings::log_level,
     "info",
     "how much is logged",
     {},
     nullptr,
     nullptr,
     "trace debug info warn error off"},
    {"ferry.logFormat",
     "FERRY_LOG_FORMAT",
     nullptr,
     kind::choice,
     &settings::log_format,
     "text",
     "the log's line format",
     {},
     nullptr,
     nullptr,
     "text json"},
    {"ferry.logFile", "FERRY_LOG_FILE", "log-file", kind::absolute_path, &settings::log_file,
     "<journal>/ferry.log", "log file"},
    {"ferry.eventsFile", "FERRY_EVENTS_FILE", nullptr, kind::absolute_path, &settings::events_file,
     nullptr, "events file"},
  };
  return table;
}

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
  for (const auto& spec : setting_table()) {
    auto given = lookup(input, spec);
    if (!given && spec.fallback == nullptr)
      continue;
    auto read = given ? read_value(spec, *given, out) : read_default(spec, out, lfs_dir);
    if (!read)
      return read.error();
    std::visit(store_value{out, *read}, spec.target);
  }
  return out;
}

std::string fingerprint(const settings& resolved) {
  std::string text;
  for (const auto& spec : setting_table()) {
    std::string value;
    std::visit(
      [&](auto field) {
        const auto& held = resolved.*field;
        using type = std::decay_t<decltype(held)>;
        if constexpr (std::is_same_v<type, std::string>)
          value = held;
        else if constexpr (std::is_same_v<type, std::filesystem::path>)
          value = held.string();
        else if constexpr (std::is_same_v<type, std::chrono::milliseconds> ||
                           std::is_same_v<type, std::chrono::seconds>)
          value = std::to_string(held.count());
        else
          value = std::to_string(held);
      },
      spec.target);
    // The length keeps values that hold a newline from reading as two.
    text += std::string{spec.git} + '=' + std::to_string(value.size()) + ':' + value + '\n';
  }
  return text;
}

std::map<std::string, std::string>
read_environment(const std::map<std::string, std::string>& environment) {
  std::map<std::string, std::string> values;
  for (const auto& spec : setting_table())
    if (auto found = environment.find(spec.env); found != environment.end())
      values[spec.env] = found->second;
  return values;
}

std::map<std::string, std::string> read_environment() {
  std::map<std::string, std::string> values;
  for (const auto& spec : setting_table()) {
    if (const char* value = std::getenv(spec.env))
      values[spec.env] = value;
  }
  return values;
}

} // namespace ferry::config
