#include "config/settings.hpp"

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using ferry::errc;
using ferry::config::parse_duration;
using ferry::config::read_environment;
using ferry::config::resolve;
using ferry::config::sources;

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


} // namespace

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

  auto env = resolve(input, lfs_dir);
  REQUIRE(env.ok());
  CHECK(env->backoff_base == 2s);
  CHECK(env->backoff_max == 1min);
  CHECK(env->history_limit == 20);

  input.env.clear();
  auto git = resolve(input, lfs_dir);
  REQUIRE(git.ok());
  CHECK(git->backoff_base == 100ms);
  CHECK(git->backoff_max == 30s);
  CHECK(git->history_limit == 10);

  input.git.clear();
  auto defaults = resolve(input, lfs_dir);
  REQUIRE(defaults.ok());
  CHECK(defaults->backoff_base == 250ms);
  CHECK(defaults->backoff_max == 10s);
  CHECK(defaults->history_limit == 1000);
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
  CHECK(message == "FERRY_MAX_ATTEMPTS (environment) = '" + bad +
                       "': expected an integer from 1 to 100");
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
    input.git["ferry.backoffbase"] = "10h";
    auto message = resolve_error(input);
    CHECK(message.rfind("ferry.backoffBase (git config) = '10h': ", 0) == 0);
    CHECK_THAT(message, Catch::Contains("use ms, s or m"));
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

TEST_CASE("parse_duration accepts ms, s, m and bare milliseconds", "[config][settings]") {
  CHECK(parse_duration("250ms").value() == 250ms);
  CHECK(parse_duration("10s").value() == 10s);
  CHECK(parse_duration("2m").value() == 2min);
  CHECK(parse_duration("1500").value() == 1500ms);
  CHECK(parse_duration("0").value() == 0ms);
  CHECK(parse_duration("007s").value() == 7s);
}

TEST_CASE("parse_duration rejects malformed durations", "[config][settings]") {
  struct bad_case {
    std::string text;
    std::string reason;
  };
  auto bad = GENERATE(values<bad_case>({
    {"", "expected a whole number followed by ms, s or m"},
    {"-1s", "expected a whole number followed by ms, s or m"},
    {"s", "expected a whole number followed by ms, s or m"},
    {" 5s", "expected a whole number followed by ms, s or m"},
    {"1.5s", "fractions are not supported"},
    {"10h", "unknown unit 'h'; use ms, s or m"},
    {"10 s", "unknown unit ' s'; use ms, s or m"},
    {"10S", "unknown unit 'S'; use ms, s or m"},
    {"5sec", "unknown unit 'sec'; use ms, s or m"},
    {"99999999999999999999", "too large"},
    {"9223372036854775807s", "too large"},
    {"153722867280913m", "too large"},
    {"9223372036854776s", "too large"},
  }));
  auto parsed = parse_duration(bad.text);
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.error().code() == errc::config_error);
  CHECK_THAT(parsed.error().message(), Catch::StartsWith("invalid duration '" + bad.text + "'"));
  CHECK_THAT(parsed.error().message(), Catch::Contains(bad.reason));
}

TEST_CASE("parse_duration accepts the largest representable value", "[config][settings]") {
  CHECK(parse_duration("9223372036854775807").value().count() == 9223372036854775807LL);
  CHECK(parse_duration("153722867280912m").value() == std::chrono::minutes{153722867280912LL});
  CHECK(parse_duration("9223372036854775s").value() == std::chrono::seconds{9223372036854775LL});
}

TEST_CASE("read_environment returns only the FERRY variables that are set",
          "[config][settings]") {
  std::vector<std::string> names = {"FERRY_STORE",       "FERRY_JOURNAL",  "FERRY_MAX_ATTEMPTS",
                                    "FERRY_BACKOFF_BASE", "FERRY_BACKOFF_MAX", "FERRY_HISTORY",
                                    "FERRY_LOG_LEVEL",   "FERRY_LOG_FILE"};
  std::vector<std::unique_ptr<env_var>> saved;
  for (const auto& name : names)
    saved.push_back(std::make_unique<env_var>(name, nullptr));
  env_var unrelated{"FERRY_UNKNOWN", "ignored"};

  CHECK(read_environment().empty());

  env_var attempts{"FERRY_MAX_ATTEMPTS", "9"};
  env_var store{"FERRY_STORE", "/some store"};
  env_var empty{"FERRY_LOG_FILE", ""};
  auto env = read_environment();
  CHECK(env == std::map<std::string, std::string>{
                 {"FERRY_MAX_ATTEMPTS", "9"}, {"FERRY_STORE", "/some store"}, {"FERRY_LOG_FILE", ""}});

  sources input;
  input.env = env;
  input.env.erase("FERRY_LOG_FILE");
  auto resolved = resolve(input, lfs_dir);
  REQUIRE(resolved.ok());
  CHECK(resolved->max_attempts == 9);
  CHECK(resolved->store_url == "/some store");
}
