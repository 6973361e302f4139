#include "config/settings.hpp"
#include "protocol/parsing.hpp"

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using ferry::errc;
using ferry::config::parse_duration;
using ferry::config::parse_size;
using ferry::config::read_environment;
using ferry::config::resolve;
using ferry::config::setting_kind;
using ferry::config::setting_table;
using ferry::config::sources;
using ferry::protocol::lower_ascii;

using ferry::testing::env_var;

namespace {

const std::filesystem::path lfs_dir{"/repo/.git/lfs"};

/// Resolves and returns the error message, failing the test if resolve succeeds.
std::string resolve_error(const sources& input, const std::filesystem::path& lfs = lfs_dir) {
  auto resolved = resolve(input, lfs);
  REQUIRE_FALSE(resolved.ok());
  CHECK(resolved.error().code() == errc::config_error);
  return resolved.error().message();
}

/// A malformed value and what the error message must say about it.
struct bad_case {
  std::string text;
  std::string reason;
};

/// Checks that parsing `bad` failed as a config error that quotes the
/// value as an invalid `what` ("size", "duration") and gives the reason.
template <class T>
void check_rejected(const ferry::result<T>& parsed, const std::string& what, const bad_case& bad) {
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.error().code() == errc::config_error);
  CHECK_THAT(parsed.error().message(),
             Catch::StartsWith("invalid " + what + " '" + bad.text + "'"));
  CHECK_THAT(parsed.error().message(), Catch::Contains(bad.reason));
}

/// Markdown code: `text`.
std::string code(const std::string& text) { return "`" + text + "`"; }

/// The rows of README.md's settings table (under "### Configuration"), each
/// split into its trimmed cells: git config, environment, flag, default, meaning.
std::vector<std::vector<std::string>> readme_setting_rows() {
  std::ifstream readme{FERRY_README_PATH};
  REQUIRE(readme);
  std::vector<std::vector<std::string>> rows;
  bool in_section = false;
  for (std::string line; std::getline(readme, line);) {
    if (line.rfind("### ", 0) == 0)
      in_section = line == "### Configuration";
    if (!in_section || line.rfind("| `", 0) != 0)
      continue;
    std::vector<std::string> cells;
    for (size_t start = 1; start < line.size();) {
      auto end = std::min(line.find('|', start), line.size());
      auto cell = line.substr(start, end - start);
      auto first = cell.find_first_not_of(' ');
      cells.push_back(first == std::string::npos
                        ? std::string{}
                        : cell.substr(first, cell.find_last_not_of(' ') - first + 1));
      start = end + 1;
    }
    rows.push_back(cells);
  }
  return rows;
}

} // namespace

TEST_CASE("the README's settings table matches setting_table()", "[config][settings]") {
  std::map<std::string, std::vector<std::string>> readme;
  for (const auto& row : readme_setting_rows()) {
    REQUIRE(row.size() >= 5);
    INFO(row[0]);
    CHECK(readme.emplace(row[0], row).second); // each setting once
  }
  REQUIRE_FALSE(readme.empty());

  std::set<std::string> declared;
  for (const auto& spec : setting_table()) {
    INFO(spec.git);
    declared.insert(code(spec.git));
    auto row = readme.find(code(spec.git));
    CHECK(row != readme.end());
    if (row == readme.end())
      continue;
    CHECK(row->second[1] == code(spec.env));
    CHECK(row->second[2] == (spec.flag != nullptr ? code(std::string{"--"} + spec.flag) : ""));
    CHECK(row->second[3] == (spec.fallback != nullptr ? code(spec.fallback) : "(none)"));
  }
  for (const auto& [key, row] : readme) {
    INFO(key);
    CHECK(declared.count(key) == 1);
  }
}

TEST_CASE("setting_table() names each setting once in every source", "[config][settings]") {
  std::set<std::string> keys, variables, flags;
  for (const auto& spec : setting_table()) {
    INFO(spec.git);
    CHECK(keys.insert(lower_ascii(spec.git)).second);
    CHECK(variables.insert(spec.env).second);
    if (spec.flag != nullptr)
      CHECK(flags.insert(spec.flag).second);
    CHECK(std::string{spec.doc}.size() > 0);
  }
}

TEST_CASE("setting_table() gives ranges to numbers and choices to choices", "[config][settings]") {
  for (const auto& spec : setting_table()) {
    INFO(spec.git);
    bool number = spec.kind == setting_kind::integer || spec.kind == setting_kind::decimal ||
                  spec.kind == setting_kind::duration || spec.kind == setting_kind::whole_seconds ||
                  spec.kind == setting_kind::size;
    bool choice = spec.kind == setting_kind::choice || spec.kind == setting_kind::choice_any_case;
    CHECK((spec.range.low != nullptr) == number);
    CHECK((spec.range.high != nullptr) == number);
    CHECK((spec.choices != nullptr) == choice);
  }
}

TEST_CASE("every setting takes its flag over its variable over its git key", "[config][settings]") {
  for (const auto& spec : setting_table()) {
    INFO(spec.git);
    // An empty value is invalid for every setting, so the error names the source that won.
    sources input;
    input.git[lower_ascii(spec.git)] = "";
    input.env[spec.env] = "";
    if (spec.flag != nullptr) {
      input.flags[spec.flag] = "";
      CHECK_THAT(resolve_error(input),
                 Catch::StartsWith(std::string{"--"} + spec.flag + " (command line) = '': "));
      input.flags.clear();
    }
    CHECK_THAT(resolve_error(input),
               Catch::StartsWith(std::string{spec.env} + " (environment) = '': "));
    input.env.clear();
    CHECK_THAT(resolve_error(input),
               Catch::StartsWith(std::string{spec.git} + " (git config) = '': "));
  }
}

TEST_CASE("every setting accepts its default and the values its range and choices name",
          "[config][settings]") {
  for (const auto& spec : setting_table()) {
    INFO(spec.git);
    std::vector<std::string> values;
    if (spec.fallback != nullptr && spec.kind != setting_kind::absolute_path)
      values.push_back(spec.fallback);
    // A range end's value is its first word ("0 (unlimited)"); an end that is
    // another setting's key is that setting's value.
    for (const char* end : {spec.range.low, spec.range.high}) {
      std::string text = end != nullptr ? end : "";
      if (!text.empty() && text.rfind("ferry.", 0) != 0)
        values.push_back(text.substr(0, text.find(' ')));
    }
    std::istringstream choices{spec.choices != nullptr ? spec.choices : ""};
    for (std::string choice; choices >> choice;)
      values.push_back(choice);
    for (const auto& value : values) {
      INFO(value);
      sources input;
      input.git[lower_ascii(spec.git)] = value;
      auto resolved = resolve(input, lfs_dir);
      CHECK((resolved.ok() ? std::string{} : resolved.error().message()) == "");
    }
  }
}

TEST_CASE("read_environment reads every setting's variable", "[config][settings]") {
  std::vector<std::unique_ptr<env_var>> set;
  for (const auto& spec : setting_table())
    set.push_back(std::make_unique<env_var>(spec.env, "value"));
  auto env = read_environment();
  CHECK(env.size() == setting_table().size());
  for (const auto& spec : setting_table())
    CHECK(env.count(spec.env) == 1);
}

TEST_CASE("resolve fills in defaults", "[config][settings]") {
  auto resolved = resolve({}, lfs_dir);
  REQUIRE(resolved.ok());
  CHECK(resolved->store_url.empty());
  CHECK(resolved->journal_dir == lfs_dir / "ferry");
  CHECK(resolved->max_attempts == 5);
  CHECK(resolved->backoff_base == 250ms);
  CHECK(resolved->backoff_max == 10s);
  CHECK(resolved->history_limit == 1000);
  CHECK(resolved->log_level == "info");
  CHECK(resolved->log_file == lfs_dir / "ferry" / "ferry.log");
  CHECK(resolved->max_retry_wait == 2min);
  CHECK(resolved->max_requests_per_second == 0);
  CHECK(resolved->max_bytes_per_second == 0);
  CHECK(resolved->parallel_streams == 4);
  CHECK(resolved->parallel_threshold == 32 << 20);
  CHECK(resolved->stall_timeout == 30s);
}

TEST_CASE("resolve takes flag over environment over git config", "[config][settings]") {
  sources input;
  input.git["ferry.store"] = "/from/git";
  input.env["FERRY_STORE"] = "/from/env";
  input.flags["store"] = "/from/flag";
  input.git["ferry.journal"] = "/journal/git";
  input.env["FERRY_JOURNAL"] = "/journal/env";
  input.flags["journal"] = "/journal/flag";
  input.git["ferry.maxattempts"] = "3";
  input.env["FERRY_MAX_ATTEMPTS"] = "4";
  input.flags["max-attempts"] = "7";
  input.git["ferry.loglevel"] = "warn";
  input.env["FERRY_LOG_LEVEL"] = "error";
  input.flags["log-level"] = "trace";
  input.git["ferry.logfile"] = "/log/git";
  input.env["FERRY_LOG_FILE"] = "/log/env";
  input.flags["log-file"] = "/log/flag";

  auto flags = resolve(input, lfs_dir);
  REQUIRE(flags.ok());
  CHECK(flags->store_url == "/from/flag");
  CHECK(flags->journal_dir == "/journal/flag");
  CHECK(flags->max_attempts == 7);
  CHECK(flags->log_level == "trace");
  CHECK(flags->log_file == "/log/flag");

  input.flags.clear();
  auto env = resolve(input, lfs_dir);
  REQUIRE(env.ok());
  CHECK(env->store_url == "/from/env");
  CHECK(env->journal_dir == "/journal/env");
  CHECK(env->max_attempts == 4);
  CHECK(env->log_level == "error");
  CHECK(env->log_file == "/log/env");

  input.env.clear();
  auto git = resolve(input, lfs_dir);
  REQUIRE(git.ok());
  CHECK(git->store_url == "/from/git");
  CHECK(git->journal_dir == "/journal/git");
  CHECK(git->max_attempts == 3);
  CHECK(git->log_level == "warn");
  CHECK(git->log_file == "/log/git");

  input.git.clear();
  auto defaults = resolve(input, lfs_dir);
  REQUIRE(defaults.ok());
  CHECK(defaults->store_url.empty());
  CHECK(defaults->journal_dir == lfs_dir / "ferry");
  CHECK(defaults->max_attempts == 5);
  CHECK(defaults->log_level == "info");
  CHECK(defaults->log_file == lfs_dir / "ferry" / "ferry.log");
}

TEST_CASE("resolve takes environment over git config for settings without flags",
          "[config][settings]") {
  sources input;
  input.git["ferry.backoffbase"] = "100ms";
  input.env["FERRY_BACKOFF_BASE"] = "2s";
  input.git["ferry.backoffmax"] = "30s";
  input.env["FERRY_BACKOFF_MAX"] = "1m";
  input.git["ferry.history"] = "10";
  input.env["FERRY_HISTORY"] = "20";
  input.git["ferry.maxretrywait"] = "30s";
  input.env["FERRY_MAX_RETRY_WAIT"] = "5m";
  input.git["ferry.maxrequestspersecond"] = "2";
  input.env["FERRY_MAX_REQUESTS_PER_SECOND"] = "0.5";
  input.git["ferry.maxbytespersecond"] = "1MB";
  input.env["FERRY_MAX_BYTES_PER_SECOND"] = "10MiB";
  input.git["ferry.parallelstreams"] = "2";
  input.env["FERRY_PARALLEL_STREAMS"] = "16";
  input.git["ferry.parallelthreshold"] = "8M";
  input.env["FERRY_PARALLEL_THRESHOLD"] = "1GiB";
  input.git["ferry.stalltimeout"] = "10s";
  input.env["FERRY_STALL_TIMEOUT"] = "1m";

  auto env = resolve(input, lfs_dir);
  REQUIRE(env.ok());
  CHECK(env->backoff_base == 2s);
  CHECK(env->backoff_max == 1min);
  CHECK(env->history_limit == 20);
  CHECK(env->max_retry_wait == 5min);
  CHECK(env->max_requests_per_second == 0.5);
  CHECK(env->max_bytes_per_second == 10 << 20);
  CHECK(env->parallel_streams == 16);
  CHECK(env->parallel_threshold == 1 << 30);
  CHECK(env->stall_timeout == 1min);

  input.env.clear();
  auto git = resolve(input, lfs_dir);
  REQUIRE(git.ok());
  CHECK(git->backoff_base == 100ms);
  CHECK(git->backoff_max == 30s);
  CHECK(git->history_limit == 10);
  CHECK(git->max_retry_wait == 30s);
  CHECK(git->max_requests_per_second == 2);
  CHECK(git->max_bytes_per_second == 1'000'000);
  CHECK(git->parallel_streams == 2);
  CHECK(git->parallel_threshold == 8 << 20);
  CHECK(git->stall_timeout == 10s);

  input.git.clear();
  auto defaults = resolve(input, lfs_dir);
  REQUIRE(defaults.ok());
  CHECK(defaults->backoff_base == 250ms);
  CHECK(defaults->backoff_max == 10s);
  CHECK(defaults->history_limit == 1000);
  CHECK(defaults->max_retry_wait == 2min);
  CHECK(defaults->parallel_streams == 4);
}

TEST_CASE("resolve checks the longest Retry-After honoured", "[config][settings]") {
  sources input;
  SECTION("the ends of the range") {
    input.git["ferry.maxretrywait"] = "0";
    auto zero = resolve(input, lfs_dir);
    REQUIRE(zero.ok());
    CHECK(zero->max_retry_wait == 0s);
    input.git["ferry.maxretrywait"] = "60m";
    auto hour = resolve(input, lfs_dir);
    REQUIRE(hour.ok());
    CHECK(hour->max_retry_wait == 1h);
  }
  SECTION("out of range or not whole seconds") {
    auto bad = GENERATE(as<std::string>{}, "61m", "1500ms", "999");
    input.env["FERRY_MAX_RETRY_WAIT"] = bad;
    CHECK(resolve_error(input) == "FERRY_MAX_RETRY_WAIT (environment) = '" + bad +
                                    "': expected a duration in whole seconds from 0s to 60m");
  }
  SECTION("not a duration") {
    input.git["ferry.maxretrywait"] = "2d";
    CHECK(resolve_error(input) ==
          "ferry.maxRetryWait (git config) = '2d': unknown unit 'd'; use ms, s, m or h");
  }
}

TEST_CASE("resolve checks the stall timeout", "[config][settings]") {
  sources input;
  input.git["ferry.stalltimeout"] = "1s";
  auto low = resolve(input, lfs_dir);
  REQUIRE(low.ok());
  CHECK(low->stall_timeout == 1s);

  auto bad = GENERATE(as<std::string>{}, "0s", "500ms", "61m", "2500ms");
  input.git["ferry.stalltimeout"] = bad;
  CHECK(resolve_error(input) == "ferry.stallTimeout (git config) = '" + bad +
                                  "': expected a duration in whole seconds from 1s to 60m");
}

TEST_CASE("resolve checks the request rate", "[config][settings]") {
  sources input;
  SECTION("whole and decimal numbers up to 10000") {
    input.git["ferry.maxrequestspersecond"] = "0.25";
    auto slow = resolve(input, lfs_dir);
    REQUIRE(slow.ok());
    CHECK(slow->max_requests_per_second == 0.25);
    input.git["ferry.maxrequestspersecond"] = "10000";
    auto fast = resolve(input, lfs_dir);
    REQUIRE(fast.ok());
    CHECK(fast->max_requests_per_second == 10000);
  }
  SECTION("anything else") {
    auto bad =
      GENERATE(as<std::string>{}, "", "-1", "+1", "1e3", ".5", "5.", "1,5", "ten", "10000.5", " 1");
    input.git["ferry.maxrequestspersecond"] = bad;
    CHECK(resolve_error(input) == "ferry.maxRequestsPerSecond (git config) = '" + bad +
                                    "': expected a number of requests per second from 0 "
                                    "(unlimited) to 10000, such as 10 or 0.5");
  }
}

TEST_CASE("resolve checks the byte rate", "[config][settings]") {
  sources input;
  SECTION("sizes with binary, decimal and short units") {
    struct good_case {
      std::string text;
      int64_t bytes;
    };
    auto good = GENERATE(values<good_case>({
      {"0", 0},
      {"512", 512},
      {"512B", 512},
      {"10MiB", 10 << 20},
      {"10MB", 10'000'000},
      {"10M", 10 << 20},
      {"10mib", 10 << 20},
      {"64k", 64 << 10},
      {"2GB", 2'000'000'000},
      {"1TiB", int64_t{1} << 40},
    }));
    input.env["FERRY_MAX_BYTES_PER_SECOND"] = good.text;
    auto resolved = resolve(input, lfs_dir);
    REQUIRE(resolved.ok());
    CHECK(resolved->max_bytes_per_second == good.bytes);
  }
  SECTION("above the range") {
    input.env["FERRY_MAX_BYTES_PER_SECOND"] = "2TiB";
    CHECK(resolve_error(input) == "FERRY_MAX_BYTES_PER_SECOND (environment) = '2TiB': expected a "
                                  "size from 0 (unlimited) to 1TiB, such as 10MiB, 10MB or 10M");
  }
  SECTION("not a size") {
    input.env["FERRY_MAX_BYTES_PER_SECOND"] = "10 MiB";
    auto message = resolve_error(input);
    CHECK_THAT(message, Catch::StartsWith("FERRY_MAX_BYTES_PER_SECOND (environment) = '10 MiB': "
                                          "unknown unit ' MiB'"));
    CHECK_THAT(message, Catch::EndsWith("expected a size from 0 (unlimited) to 1TiB, such as "
                                        "10MiB, 10MB or 10M"));
  }
}

TEST_CASE("resolve checks the parallel download settings", "[config][settings]") {
  sources input;
  SECTION("streams from 1 to 16") {
    input.git["ferry.parallelstreams"] = "1";
    auto one = resolve(input, lfs_dir);
    REQUIRE(one.ok());
    CHECK(one->parallel_streams == 1);
    auto bad = GENERATE(as<std::string>{}, "0", "17", "-4", "four", "");
    input.git["ferry.parallelstreams"] = bad;
    CHECK(resolve_error(input) ==
          "ferry.parallelStreams (git config) = '" + bad + "': expected an integer from 1 to 16");
  }
  SECTION("threshold from 1MiB to 1TiB") {
    input.git["ferry.parallelthreshold"] = "1MiB";
    auto low = resolve(input, lfs_dir);
    REQUIRE(low.ok());
    CHECK(low->parallel_threshold == 1 << 20);
    auto bad = GENERATE(as<std::string>{}, "1000KB", "0", "2TiB");
    input.git["ferry.parallelthreshold"] = bad;
    CHECK(resolve_error(input) == "ferry.parallelThreshold (git config) = '" + bad +
                                    "': expected a size from 1MiB to 1TiB, such as 32MiB");
  }
}

TEST_CASE("resolve checks the S3 multipart settings", "[config][settings]") {
  sources input;
  auto defaults = resolve(input, lfs_dir);
  REQUIRE(defaults.ok());
  CHECK(defaults->s3_multipart_threshold == 200 << 20);
  CHECK(defaults->s3_part_size == 8 << 20);
  CHECK(defaults->s3_upload_concurrency == 4);
  SECTION("threshold and part size at least S3's 5MiB minimum part") {
    input.env["FERRY_S3_MULTIPART_THRESHOLD"] = "5MiB";
    input.git["ferry.s3.partsize"] = "5GiB";
    auto ends = resolve(input, lfs_dir);
    REQUIRE(ends.ok());
    CHECK(ends->s3_multipart_threshold == 5 << 20);
    CHECK(ends->s3_part_size == int64_t{5} << 30);
    input.git["ferry.s3.partsize"] = "4MiB";
    CHECK(resolve_error(input) == "ferry.s3.partSize (git config) = '4MiB': expected a size "
                                  "from 5MiB to 5GiB, such as 8MiB");
    input.git.erase("ferry.s3.partsize");
    input.env["FERRY_S3_MULTIPART_THRESHOLD"] = "1MiB";
    CHECK(resolve_error(input) == "FERRY_S3_MULTIPART_THRESHOLD (environment) = '1MiB': "
                                  "expected a size from 5MiB to 5GiB, such as 200MiB");
    input.env["FERRY_S3_MULTIPART_THRESHOLD"] = "5GiB";
    REQUIRE(resolve(input, lfs_dir).ok());
    input.env["FERRY_S3_MULTIPART_THRESHOLD"] = "6GiB";
    CHECK(resolve_error(input) == "FERRY_S3_MULTIPART_THRESHOLD (environment) = '6GiB': "
                                  "expected a size from 5MiB to 5GiB, such as 200MiB");
  }
  SECTION("concurrency from 1 to 64") {
    input.git["ferry.s3.uploadconcurrency"] = "64";
    auto top = resolve(input, lfs_dir);
    REQUIRE(top.ok());
    CHECK(top->s3_upload_concurrency == 64);
    auto bad = GENERATE(as<std::string>{}, "0", "65", "x");
    input.git["ferry.s3.uploadconcurrency"] = bad;
    CHECK(resolve_error(input) == "ferry.s3.uploadConcurrency (git config) = '" + bad +
                                    "': expected an integer from 1 to 64");
  }
}

TEST_CASE("resolve checks the Proton bridge settings", "[config][settings]") {
  sources input;
  auto defaults = resolve(input, lfs_dir);
  REQUIRE(defaults.ok());
  CHECK(defaults->proton_command.empty());
  CHECK(defaults->proton_processes == 2);
  CHECK(defaults->proton_timeout == std::chrono::minutes{2});
  CHECK(defaults->proton_min_rate == 256 << 10);
  CHECK(defaults->proton_data_credential_provider.empty());

  input.git["ferry.proton.command"] = "node /opt/proton-drive-cli/dist/index.js";
  input.env["FERRY_PROTON_COMMAND"] = "proton-drive-cli";
  input.git["ferry.proton.processes"] = "16";
  input.git["ferry.proton.timeout"] = "90s";
  input.git["ferry.proton.minrate"] = "1MiB";
  input.git["ferry.proton.datacredentialprovider"] = "pass-cli";
  input.git["ferry.proton.datacredentialhost"] = "proton-data.example";
  auto set = resolve(input, lfs_dir);
  REQUIRE(set.ok());
  CHECK(set->proton_command == "proton-drive-cli");
  CHECK(set->proton_processes == 16);
  CHECK(set->proton_timeout == std::chrono::seconds{90});
  CHECK(set->proton_min_rate == 1 << 20);
  CHECK(set->proton_data_credential_provider == "pass-cli");
  CHECK(set->proton_data_credential_host == "proton-data.example");

  SECTION("an empty command") {
    input.env["FERRY_PROTON_COMMAND"] = "  ";
    CHECK_THAT(resolve_error(input),
               Catch::StartsWith("FERRY_PROTON_COMMAND (environment) = '  ': expected the "
                                 "bridge's command line"));
  }
  SECTION("processes from 1 to 16") {
    auto bad = GENERATE(as<std::string>{}, "0", "17", "x");
    input.git["ferry.proton.processes"] = bad;
    CHECK(resolve_error(input) ==
          "ferry.proton.processes (git config) = '" + bad + "': expected an integer from 1 to 16");
  }
  SECTION("a timeout of at least a second") {
    input.git["ferry.proton.timeout"] = "500ms";
    CHECK(resolve_error(input) == "ferry.proton.timeout (git config) = '500ms': expected a "
                                  "duration from 1s to 60m");
  }
  SECTION("a rate of at least 1KiB") {
    input.git["ferry.proton.minrate"] = "100";
    CHECK(resolve_error(input) == "ferry.proton.minRate (git config) = '100': expected a size "
                                  "from 1KiB to 1TiB, such as 256KiB");
  }
  SECTION("a known credential provider") {
    input.git["ferry.proton.datacredentialprovider"] = "stdin";
    CHECK(resolve_error(input) == "ferry.proton.dataCredentialProvider (git config) = 'stdin': "
                                  "expected git-credential or pass-cli");
  }
}

TEST_CASE("parse_size rejects malformed sizes", "[config][settings]") {
  auto bad = GENERATE(values<bad_case>({
    {"", "expected a whole number with an optional unit"},
    {"MiB", "expected a whole number with an optional unit"},
    {"-1M", "expected a whole number with an optional unit"},
    {"1.5MiB", "fractions are not supported"},
    {"10XB", "unknown unit 'XB'"},
    {"10 M", "unknown unit ' M'"},
    {"9223372036854775808", "too large"},
    {"8388608TiB", "too large"},
  }));
  check_rejected(parse_size(bad.text), "size", bad);
}

TEST_CASE("parse_size accepts the largest representable size", "[config][settings]") {
  CHECK(parse_size("9223372036854775807").value() == 9223372036854775807LL);
  CHECK(parse_size("8388607TiB").value() == int64_t{8388607} << 40);
}

TEST_CASE("resolve ignores flags that are not in the table", "[config][settings]") {
  sources input;
  input.flags["history"] = "not a number";
  input.flags["backoff-base"] = "nonsense";
  auto resolved = resolve(input, lfs_dir);
  REQUIRE(resolved.ok());
  CHECK(resolved->history_limit == 1000);
  CHECK(resolved->backoff_base == 250ms);
}

TEST_CASE("resolve names the key, source, value and what is allowed", "[config][settings]") {
  SECTION("the documented example") {
    sources input;
    input.git["ferry.maxattempts"] = "x";
    CHECK(resolve_error(input) ==
          "ferry.maxAttempts (git config) = 'x': expected an integer from 1 to 100");
  }
  SECTION("environment") {
    sources input;
    input.env["FERRY_MAX_ATTEMPTS"] = "0";
    CHECK(resolve_error(input) ==
          "FERRY_MAX_ATTEMPTS (environment) = '0': expected an integer from 1 to 100");
  }
  SECTION("command line") {
    sources input;
    input.flags["max-attempts"] = "101";
    CHECK(resolve_error(input) ==
          "--max-attempts (command line) = '101': expected an integer from 1 to 100");
  }
}

TEST_CASE("resolve parses integers strictly", "[config][settings]") {
  auto bad = GENERATE(as<std::string>{}, "", " 5", "5 ", "+5", "-1", "5x", "0x10", "1e2", "2.0",
                      "99999999999999999999999");
  sources input;
  input.env["FERRY_MAX_ATTEMPTS"] = bad;
  auto message = resolve_error(input);
  CHECK(message ==
        "FERRY_MAX_ATTEMPTS (environment) = '" + bad + "': expected an integer from 1 to 100");
}

TEST_CASE("resolve accepts the ends of the integer ranges", "[config][settings]") {
  sources input;
  input.git["ferry.maxattempts"] = "1";
  input.git["ferry.history"] = "0";
  auto low = resolve(input, lfs_dir);
  REQUIRE(low.ok());
  CHECK(low->max_attempts == 1);
  CHECK(low->history_limit == 0);

  input.git["ferry.maxattempts"] = "100";
  input.git["ferry.history"] = "1000000";
  auto high = resolve(input, lfs_dir);
  REQUIRE(high.ok());
  CHECK(high->max_attempts == 100);
  CHECK(high->history_limit == 1000000);
}

TEST_CASE("resolve rejects history limits out of range", "[config][settings]") {
  auto bad = GENERATE(as<std::string>{}, "-1", "1000001", "18446744073709551616", "lots");
  sources input;
  input.git["ferry.history"] = bad;
  CHECK(resolve_error(input) ==
        "ferry.history (git config) = '" + bad + "': expected an integer from 0 to 1000000");
}

TEST_CASE("resolve checks backoff durations", "[config][settings]") {
  SECTION("base below range") {
    sources input;
    input.env["FERRY_BACKOFF_BASE"] = "0ms";
    CHECK(resolve_error(input) ==
          "FERRY_BACKOFF_BASE (environment) = '0ms': expected a duration from 1ms to 60s");
  }
  SECTION("base above range") {
    sources input;
    input.git["ferry.backoffbase"] = "61s";
    CHECK(resolve_error(input) ==
          "ferry.backoffBase (git config) = '61s': expected a duration from 1ms to 60s");
  }
  SECTION("base with a bad unit") {
    sources input;
    input.git["ferry.backoffbase"] = "10d";
    auto message = resolve_error(input);
    CHECK(message.rfind("ferry.backoffBase (git config) = '10d': ", 0) == 0);
    CHECK_THAT(message, Catch::Contains("use ms, s, m or h"));
  }
  SECTION("max below base") {
    sources input;
    input.git["ferry.backoffbase"] = "2s";
    input.env["FERRY_BACKOFF_MAX"] = "1s";
    CHECK(resolve_error(input) == "FERRY_BACKOFF_MAX (environment) = '1s': expected a duration "
                                  "from ferry.backoffBase (2s) to 60m");
  }
  SECTION("max above an hour") {
    sources input;
    input.git["ferry.backoffmax"] = "61m";
    CHECK(resolve_error(input) == "ferry.backoffMax (git config) = '61m': expected a duration "
                                  "from ferry.backoffBase (250ms) to 60m");
  }
  SECTION("max equal to base and at the upper end are allowed") {
    sources input;
    input.git["ferry.backoffbase"] = "60s";
    input.git["ferry.backoffmax"] = "1m";
    auto equal = resolve(input, lfs_dir);
    REQUIRE(equal.ok());
    CHECK(equal->backoff_max == equal->backoff_base);

    input.git["ferry.backoffmax"] = "60m";
    auto hour = resolve(input, lfs_dir);
    REQUIRE(hour.ok());
    CHECK(hour->backoff_max == 1h);
  }
  SECTION("a base above the default max raises the default max") {
    sources input;
    input.git["ferry.backoffbase"] = "30s";
    auto resolved = resolve(input, lfs_dir);
    REQUIRE(resolved.ok());
    CHECK(resolved->backoff_base == 30s);
    CHECK(resolved->backoff_max == 30s);
  }
}

TEST_CASE("resolve checks the log level", "[config][settings]") {
  auto level = GENERATE(as<std::string>{}, "trace", "debug", "info", "warn", "error", "off");
  sources input;
  input.flags["log-level"] = level;
  auto resolved = resolve(input, lfs_dir);
  REQUIRE(resolved.ok());
  CHECK(resolved->log_level == level);

  input.flags["log-level"] = "verbose";
  CHECK(resolve_error(input) == "--log-level (command line) = 'verbose': expected one of trace, "
                                "debug, info, warn, error, off");
}

TEST_CASE("resolve accepts log levels in any case", "[config][settings]") {
  sources input;
  input.git["ferry.loglevel"] = "DEBUG";
  auto resolved = resolve(input, lfs_dir);
  REQUIRE(resolved.ok());
  CHECK(resolved->log_level == "debug");
}

TEST_CASE("resolve passes the store through unchanged", "[config][settings]") {
  sources input;
  input.git["ferry.store"] = "s3://bucket/with space/?x=1";
  auto resolved = resolve(input, lfs_dir);
  REQUIRE(resolved.ok());
  CHECK(resolved->store_url == "s3://bucket/with space/?x=1");

  input.env["FERRY_STORE"] = "";
  CHECK(resolve_error(input) == "FERRY_STORE (environment) = '': expected a store URL or path");
}

TEST_CASE("resolve checks the journal and log paths", "[config][settings]") {
  SECTION("outside a repository the journal must be given") {
    CHECK(resolve_error({}, {}) ==
          "not inside a git repository: set ferry.journal or FERRY_JOURNAL");

    sources input;
    input.env["FERRY_JOURNAL"] = "/var/ferry";
    auto resolved = resolve(input, {});
    REQUIRE(resolved.ok());
    CHECK(resolved->journal_dir == "/var/ferry");
    CHECK(resolved->log_file == "/var/ferry/ferry.log");
  }
  SECTION("a relative journal is rejected") {
    sources input;
    input.flags["journal"] = "journal";
    CHECK(resolve_error(input) ==
          "--journal (command line) = 'journal': expected an absolute path");
    input.flags["journal"] = "";
    CHECK(resolve_error(input) == "--journal (command line) = '': expected an absolute path");
  }
  SECTION("a relative log file is rejected") {
    sources input;
    input.git["ferry.logfile"] = "logs/ferry.log";
    CHECK(resolve_error(input) ==
          "ferry.logFile (git config) = 'logs/ferry.log': expected an absolute path");
  }
  SECTION("the log file follows a configured journal") {
    sources input;
    input.git["ferry.journal"] = "/data/journal";
    auto resolved = resolve(input, lfs_dir);
    REQUIRE(resolved.ok());
    CHECK(resolved->log_file == "/data/journal/ferry.log");
  }
}

TEST_CASE("parse_duration accepts ms, s, m, h and bare milliseconds", "[config][settings]") {
  CHECK(parse_duration("250ms").value() == 250ms);
  CHECK(parse_duration("10s").value() == 10s);
  CHECK(parse_duration("2m").value() == 2min);
  CHECK(parse_duration("24h").value() == 24h);
  CHECK(parse_duration("1500").value() == 1500ms);
  CHECK(parse_duration("0").value() == 0ms);
  CHECK(parse_duration("007s").value() == 7s);
}

TEST_CASE("parse_duration rejects malformed durations", "[config][settings]") {
  auto bad = GENERATE(values<bad_case>({
    {"", "expected a whole number followed by ms, s, m or h"},
    {"-1s", "expected a whole number followed by ms, s, m or h"},
    {"s", "expected a whole number followed by ms, s, m or h"},
    {" 5s", "expected a whole number followed by ms, s, m or h"},
    {"1.5s", "fractions are not supported"},
    {"10d", "unknown unit 'd'; use ms, s, m or h"},
    {"10 s", "unknown unit ' s'; use ms, s, m or h"},
    {"10S", "unknown unit 'S'; use ms, s, m or h"},
    {"5sec", "unknown unit 'sec'; use ms, s, m or h"},
    {"99999999999999999999", "too large"},
    {"9223372036854775807s", "too large"},
    {"153722867280913m", "too large"},
    {"2562047788016h", "too large"},
    {"9223372036854776s", "too large"},
  }));
  check_rejected(parse_duration(bad.text), "duration", bad);
}

TEST_CASE("parse_duration accepts the largest representable value", "[config][settings]") {
  CHECK(parse_duration("9223372036854775807").value().count() == 9223372036854775807LL);
  CHECK(parse_duration("153722867280912m").value() == std::chrono::minutes{153722867280912LL});
  CHECK(parse_duration("9223372036854775s").value() == std::chrono::seconds{9223372036854775LL});
}

TEST_CASE("read_environment returns only the FERRY variables that are set", "[config][settings]") {
  std::vector<std::string> names = {"FERRY_STORE",
                                    "FERRY_JOURNAL",
                                    "FERRY_MAX_ATTEMPTS",
                                    "FERRY_BACKOFF_BASE",
                                    "FERRY_BACKOFF_MAX",
                                    "FERRY_MAX_RETRY_WAIT",
                                    "FERRY_MAX_REQUESTS_PER_SECOND",
                                    "FERRY_MAX_BYTES_PER_SECOND",
                                    "FERRY_PARALLEL_STREAMS",
                                    "FERRY_PARALLEL_THRESHOLD",
                                    "FERRY_STALL_TIMEOUT",
                                    "FERRY_HISTORY",
                                    "FERRY_LOG_LEVEL",
                                    "FERRY_LOG_FILE"};
  std::vector<std::unique_ptr<env_var>> saved;
  for (const auto& name : names)
    saved.push_back(std::make_unique<env_var>(name, nullptr));
  env_var unrelated{"FERRY_UNKNOWN", "ignored"};

  CHECK(read_environment().empty());

  env_var attempts{"FERRY_MAX_ATTEMPTS", "9"};
  env_var store{"FERRY_STORE", "/some store"};
  env_var empty{"FERRY_LOG_FILE", ""};
  env_var streams{"FERRY_PARALLEL_STREAMS", "2"};
  auto env = read_environment();
  CHECK(env == std::map<std::string, std::string>{{"FERRY_MAX_ATTEMPTS", "9"},
                                                  {"FERRY_STORE", "/some store"},
                                                  {"FERRY_LOG_FILE", ""},
                                                  {"FERRY_PARALLEL_STREAMS", "2"}});

  sources input;
  input.env = env;
  input.env.erase("FERRY_LOG_FILE");
  auto resolved = resolve(input, lfs_dir);
  REQUIRE(resolved.ok());
  CHECK(resolved->max_attempts == 9);
  CHECK(resolved->store_url == "/some store");
  CHECK(resolved->parallel_streams == 2);
}

TEST_CASE("ferry.maxRetryTime bounds the retries of one object", "[config][settings]") {
  sources input;
  auto defaults = resolve(input, lfs_dir);
  REQUIRE(defaults.ok());
  CHECK(defaults->max_retry_time == std::chrono::minutes{5});
  input.git["ferry.maxretrytime"] = "20s";
  CHECK(resolve(input, lfs_dir)->max_retry_time == std::chrono::seconds{20});
  input.env["FERRY_MAX_RETRY_TIME"] = "1h";
  CHECK(resolve(input, lfs_dir)->max_retry_time == std::chrono::hours{1});
  input.env["FERRY_MAX_RETRY_TIME"] = "500ms";
  CHECK(resolve_error(input) == "FERRY_MAX_RETRY_TIME (environment) = '500ms': expected a "
                                "duration from 1s to 24h");
}

TEST_CASE("settings read from an agent's environment, not the process's", "[config][settings]") {
  std::map<std::string, std::string> agent{
    {"FERRY_MAX_ATTEMPTS", "7"}, {"FERRY_DAEMON", "false"}, {"PATH", "/bin"}};
  auto variables = ferry::config::read_environment(agent);
  CHECK(variables ==
        std::map<std::string, std::string>{{"FERRY_DAEMON", "false"}, {"FERRY_MAX_ATTEMPTS", "7"}});
  auto resolved = ferry::config::resolve({{}, variables, {}}, "/repo/.git/lfs");
  REQUIRE(resolved.ok());
  CHECK(resolved->max_attempts == 7);
  CHECK(resolved->daemon == "false");
  // Unset: git-lfs's agents go through the daemon.
  CHECK(ferry::config::resolve({{}, {}, {}}, "/repo/.git/lfs")->daemon == "true");
  CHECK_FALSE(ferry::config::resolve({{}, {{"FERRY_DAEMON", "sometimes"}}, {}}, "/l").ok());
}

TEST_CASE("the settings' fingerprint tells settings apart", "[settings]") {
  auto base = resolve(sources{{{"ferry.store", "file:///srv/a"}}, {}, {}}, lfs_dir);
  REQUIRE(base);
  auto again = resolve(sources{{{"ferry.store", "file:///srv/a"}}, {}, {}}, lfs_dir);
  REQUIRE(again);
  CHECK(ferry::config::fingerprint(*base) == ferry::config::fingerprint(*again));
  CHECK(ferry::config::fingerprint(*base).find("ferry.store=13:file:///srv/a\n") !=
        std::string::npos);

  auto store = *base;
  store.store_url = "file:///srv/b";
  auto attempts = *base;
  attempts.max_attempts += 1;
  auto journal = *base;
  journal.journal_dir = "/elsewhere";
  auto wait = *base;
  wait.max_retry_wait += std::chrono::seconds{1};
  auto rate = *base;
  rate.max_requests_per_second += 0.5;
  for (const auto* changed : {&store, &attempts, &journal, &wait, &rate})
    CHECK(ferry::config::fingerprint(*changed) != ferry::config::fingerprint(*base));
  // A newline inside a value cannot pass for the next setting.
  auto odd = *base;
  odd.proton_command = "x\nferry.other=1:y";
  CHECK(ferry::config::fingerprint(odd) != ferry::config::fingerprint(*base));
}
