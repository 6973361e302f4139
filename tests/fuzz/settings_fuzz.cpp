// Fuzzes the settings value parsers (config/settings.hpp, in ferry_config):
// parse_size, parse_duration and resolve(), which reads every value from
// git config, the environment and flags.
// Input: lines; each line's first byte picks the source ('g' git config,
// 'e' environment, 'f' flag), its second the setting ('a' + index into the
// table below); the rest of the line is the value. The first line also goes
// to parse_size and parse_duration as it is.
// Promises checked, besides "never throws":
// - parse_size / parse_duration accept exactly digits followed by a known
//   unit and give digits x unit without overflow (an exact reference
//   computes it), and a size or duration written back in bytes or
//   milliseconds parses to the same value;
// - resolve() either fails with config_error or gives settings inside every
//   documented range, taken from the source of highest precedence (flag,
//   environment, git config) for each setting.

#include "fuzz_check.hpp"

#include "config/settings.hpp"

#include <map>
#include <string>
#include <vector>

namespace {

using ferry::fuzz::int128;

using namespace ferry;
using namespace std::chrono;

struct key {
  const char* git; // lower-cased, as git config --list gives it
  const char* env;
  const char* flag; // nullptr: none
};

constexpr key keys[] = {
  {"ferry.store", "FERRY_STORE", "store"},
  {"ferry.journal", "FERRY_JOURNAL", "journal"},
  {"ferry.maxattempts", "FERRY_MAX_ATTEMPTS", "max-attempts"},
  {"ferry.backoffbase", "FERRY_BACKOFF_BASE", nullptr},
  {"ferry.backoffmax", "FERRY_BACKOFF_MAX", nullptr},
  {"ferry.maxretrywait", "FERRY_MAX_RETRY_WAIT", nullptr},
  {"ferry.maxrequestspersecond", "FERRY_MAX_REQUESTS_PER_SECOND", nullptr},
  {"ferry.maxbytespersecond", "FERRY_MAX_BYTES_PER_SECOND", nullptr},
  {"ferry.parallelstreams", "FERRY_PARALLEL_STREAMS", nullptr},
  {"ferry.parallelthreshold", "FERRY_PARALLEL_THRESHOLD", nullptr},
  {"ferry.stalltimeout", "FERRY_STALL_TIMEOUT", nullptr},
  {"ferry.s3.multipartthreshold", "FERRY_S3_MULTIPART_THRESHOLD", nullptr},
  {"ferry.s3.partsize", "FERRY_S3_PART_SIZE", nullptr},
  {"ferry.s3.uploadconcurrency", "FERRY_S3_UPLOAD_CONCURRENCY", nullptr},
  {"ferry.proton.command", "FERRY_PROTON_COMMAND", nullptr},
  {"ferry.proton.processes", "FERRY_PROTON_PROCESSES", nullptr},
  {"ferry.proton.timeout", "FERRY_PROTON_TIMEOUT", nullptr},
  {"ferry.proton.minrate", "FERRY_PROTON_MIN_RATE", nullptr},
  {"ferry.proton.datacredentialprovider", "FERRY_PROTON_DATA_CREDENTIAL_PROVIDER", nullptr},
  {"ferry.proton.datacredentialhost", "FERRY_PROTON_DATA_CREDENTIAL_HOST", nullptr},
  {"ferry.history", "FERRY_HISTORY", nullptr},
  {"ferry.loglevel", "FERRY_LOG_LEVEL", "log-level"},
  {"ferry.logfile", "FERRY_LOG_FILE", "log-file"},
};
constexpr size_t key_count = sizeof keys / sizeof keys[0];
enum index : size_t {
  store,
  journal,
  max_attempts,
  backoff_base,
  backoff_max,
  max_retry_wait,
  max_requests,
  max_bytes,
  parallel_streams,
  parallel_threshold,
  stall_timeout,
  s3_multipart_threshold,
  s3_part_size,
  s3_upload_concurrency,
  proton_command,
  proton_processes,
  proton_timeout,
  proton_min_rate,
  proton_provider,
  proton_host,
  history,
  log_level,
  log_file,
};

constexpr int64_t KiB = int64_t{1} << 10, MiB = KiB << 10, GiB = MiB << 10, TiB = GiB << 10;

// digits x unit, exactly; nullopt when malformed or past int64_t.
std::optional<int64_t> reference_scaled(std::string_view text, bool size) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')
    ++digits;
  if (digits == 0)
    return std::nullopt;
  std::string unit{text.substr(digits)};
  if (size)
    for (char& c : unit)
      c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  static const std::map<std::string, int64_t> size_units = {{"", 1},
                                                            {"b", 1},
                                                            {"k", KiB},
                                                            {"kib", KiB},
                                                            {"kb", 1000},
                                                            {"m", MiB},
                                                            {"mib", MiB},
                                                            {"mb", 1000000},
                                                            {"g", GiB},
                                                            {"gib", GiB},
                                                            {"gb", 1000000000},
                                                            {"t", TiB},
                                                            {"tib", TiB},
                                                            {"tb", 1000000000000}};
  static const std::map<std::string, int64_t> duration_units = {
    {"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
  const auto& units = size ? size_units : duration_units;
  const auto unit_it = units.find(unit);
  if (unit_it == units.end())
    return std::nullopt;
  int128 value = 0;
  for (size_t i = 0; i < digits; ++i) {
    value = value * 10 + (text[i] - '0');
    if (value > INT64_MAX)
      return std::nullopt;
  }
  value *= unit_it->second;
  if (value > INT64_MAX)
    return std::nullopt;
  return static_cast<int64_t>(value);
}

void check_value_parsers(const std::string& text) {
  const auto size = config::parse_size(text);
  const auto expected_size = reference_scaled(text, true);
  FUZZ_CHECK(size.ok() == expected_size.has_value());
  if (size) {
    FUZZ_CHECK(*size == *expected_size);
    const auto again = config::parse_size(std::to_string(*size));
    FUZZ_CHECK(again.ok() && *again == *size);
  } else {
    FUZZ_CHECK(size.error().code() == errc::config_error);
  }

  const auto duration = config::parse_duration(text);
  const auto expected_duration = reference_scaled(text, false);
  FUZZ_CHECK(duration.ok() == expected_duration.has_value());
  if (duration) {
    FUZZ_CHECK(duration->count() == *expected_duration);
    const auto again = config::parse_duration(std::to_string(duration->count()) + "ms");
    FUZZ_CHECK(again.ok() && *again == *duration);
  } else {
    FUZZ_CHECK(duration.error().code() == errc::config_error);
  }
}

// Each setting's text from the source that wins: flag, environment, git.
std::vector<std::optional<std::string>> winners(const config::sources& input) {
  std::vector<std::optional<std::string>> out(key_count);
  for (size_t i = 0; i < key_count; ++i) {
    if (keys[i].flag != nullptr && input.flags.count(keys[i].flag))
      out[i] = input.flags.at(keys[i].flag);
    else if (input.env.count(keys[i].env))
      out[i] = input.env.at(keys[i].env);
    else if (input.git.count(keys[i].git))
      out[i] = input.git.at(keys[i].git);
  }
  return out;
}

void check_resolved(const config::settings& s, const config::sources& input) {
  const auto given = winners(input);
  auto size_of = [&](size_t i) { return *config::parse_size(*given[i]); };
  auto ms_of = [&](size_t i) { return *config::parse_duration(*given[i]); };

  FUZZ_CHECK(s.journal_dir.is_absolute());
  FUZZ_CHECK(s.log_file.is_absolute());
  if (given[store])
    FUZZ_CHECK(s.store_url == *given[store] && !s.store_url.empty());
  FUZZ_CHECK(s.max_attempts >= 1 && s.max_attempts <= 100);
  FUZZ_CHECK(s.backoff_base >= 1ms && s.backoff_base <= 60s);
  if (given[backoff_base])
    FUZZ_CHECK(s.backoff_base == ms_of(backoff_base));
  FUZZ_CHECK(s.backoff_max >= s.backoff_base && s.backoff_max <= 60min);
  if (given[backoff_max])
    FUZZ_CHECK(s.backoff_max == ms_of(backoff_max));
  FUZZ_CHECK(s.max_retry_wait >= 0s && s.max_retry_wait <= 1h);
  FUZZ_CHECK(s.max_requests_per_second >= 0 && s.max_requests_per_second <= 10000);
  FUZZ_CHECK(s.max_bytes_per_second >= 0 && s.max_bytes_per_second <= TiB);
  if (given[max_bytes])
    FUZZ_CHECK(s.max_bytes_per_second == size_of(max_bytes));
  FUZZ_CHECK(s.parallel_streams >= 1 && s.parallel_streams <= 16);
  FUZZ_CHECK(s.parallel_threshold >= MiB && s.parallel_threshold <= TiB);
  if (given[parallel_threshold])
    FUZZ_CHECK(s.parallel_threshold == size_of(parallel_threshold));
  FUZZ_CHECK(s.stall_timeout >= 1s && s.stall_timeout <= 1h);
  FUZZ_CHECK(s.s3_multipart_threshold >= 5 * MiB && s.s3_multipart_threshold <= 5 * GiB);
  if (given[s3_multipart_threshold])
    FUZZ_CHECK(s.s3_multipart_threshold == size_of(s3_multipart_threshold));
  FUZZ_CHECK(s.s3_part_size >= 5 * MiB && s.s3_part_size <= 5 * GiB);
  if (given[s3_part_size])
    FUZZ_CHECK(s.s3_part_size == size_of(s3_part_size));
  FUZZ_CHECK(s.s3_upload_concurrency >= 1 && s.s3_upload_concurrency <= 64);
  if (given[proton_command])
    FUZZ_CHECK(s.proton_command.find_first_not_of(" \t") != std::string::npos);
  FUZZ_CHECK(s.proton_processes >= 1 && s.proton_processes <= 16);
  FUZZ_CHECK(s.proton_timeout >= 1s && s.proton_timeout <= 60min);
  if (given[proton_timeout])
    FUZZ_CHECK(s.proton_timeout == ms_of(proton_timeout));
  FUZZ_CHECK(s.proton_min_rate >= KiB && s.proton_min_rate <= TiB);
  if (given[proton_min_rate])
    FUZZ_CHECK(s.proton_min_rate == size_of(proton_min_rate));
  FUZZ_CHECK(s.proton_data_credential_provider.empty() ||
             s.proton_data_credential_provider == "git-credential" ||
             s.proton_data_credential_provider == "pass-cli");
  if (given[proton_host])
    FUZZ_CHECK(!s.proton_data_credential_host.empty());
  FUZZ_CHECK(s.history_limit <= 1000000);
  FUZZ_CHECK(s.log_level == "trace" || s.log_level == "debug" || s.log_level == "info" ||
             s.log_level == "warn" || s.log_level == "error" || s.log_level == "off");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input = ferry::fuzz::as_text(data, size);
  check_value_parsers(std::string{input.substr(0, input.find('\n'))});

  config::sources sources;
  while (!input.empty()) {
    const std::string_view line = input.substr(0, input.find('\n'));
    input.remove_prefix(std::min(input.size(), line.size() + 1));
    if (line.size() < 2)
      continue;
    const size_t which = static_cast<unsigned char>(line[1] - 'a') % key_count;
    const std::string value{line.substr(2)};
    switch (line[0]) {
      case 'g':
        sources.git[keys[which].git] = value;
        break;
      case 'e':
        sources.env[keys[which].env] = value;
        break;
      case 'f':
        sources.flags[keys[which].flag ? keys[which].flag : keys[which].git] = value;
        break;
      default:
        break;
    }
  }
  // Outside a repository half the time: then the journal must be given.
  const auto resolved =
    config::resolve(sources, size % 2 == 0 ? "/repo/.git/lfs" : std::filesystem::path{});
  if (resolved)
    check_resolved(*resolved, sources);
  else
    FUZZ_CHECK(resolved.error().code() == errc::config_error);
  return 0;
}
