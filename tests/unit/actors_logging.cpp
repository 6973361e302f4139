#include "actors/logging.hpp"

#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

using namespace ferry;
using namespace ferry::testing;

TEST_CASE("ferry.log is rotated at 5 MiB and keeps 3 old files", "[logging]") {
  temp_dir scratch;
  auto file = scratch.path / "ferry.log";
  logging_options options;
  options.file = file;
  REQUIRE(configure_logging(options).empty());
  // 25 MiB of lines: more than the log and its 3 old files hold.
  const std::string filler(1000, 'x');
  const int lines = 25 * 1024;
  for (int i = 0; i < lines; ++i)
    log()->info("line {} {}", i, filler);
  log()->flush();

  constexpr std::uintmax_t cap = 5 << 20;
  for (auto name : {"ferry.log", "ferry.1.log", "ferry.2.log", "ferry.3.log"}) {
    INFO(name);
    REQUIRE(std::filesystem::exists(scratch.path / name));
    CHECK(std::filesystem::file_size(scratch.path / name) <= cap);
  }
  CHECK_FALSE(std::filesystem::exists(scratch.path / "ferry.4.log"));
  // The newest line is in the current file.
  std::ifstream in{file};
  std::string line, last;
  while (std::getline(in, line))
    last = line;
  CHECK_THAT(last, Catch::Contains("line " + std::to_string(lines - 1) + " "));

  options.level = "off";
  options.file.clear();
  REQUIRE(configure_logging(options).empty());
}

namespace {

/// What a tap got: level and message of each line, with its oid.
struct tapped {
  std::vector<std::string> lines;
  std::function<void(const object_line&)> tap() {
    return [this](const object_line& line) {
      auto level = spdlog::level::to_string_view(line.level);
      lines.push_back(std::string{level.data(), level.size()} + " " + std::string{line.fields.oid} +
                      " " + std::string{line.message});
    };
  }
};

} // namespace

TEST_CASE("a tap gets the lines about its object at its level, while its handle lives",
          "[logging]") {
  logging_options options;
  options.level = "info";
  REQUIRE(configure_logging(options).empty());
  tapped a, b;
  {
    auto watch_a = tap_object_lines("aaaa", spdlog::level::debug, a.tap());
    auto watch_b = tap_object_lines("bbbb", spdlog::level::warn, b.tap());
    // The logger's own level is info; the tap at debug still gets debug lines.
    log_event(spdlog::level::debug, {"aaaa", "c1"}, "step {}", 1);
    log_event(spdlog::level::info, {"bbbb", "c2"}, "not for b: below its level");
    log_event(spdlog::level::warn, {"bbbb", "c2"}, "slow down");
    log()->warn("no object: no tap");
  }
  log_event(spdlog::level::warn, {"aaaa", "c1"}, "after the handle went");
  CHECK(a.lines == std::vector<std::string>{"debug aaaa step 1"});
  CHECK(b.lines == std::vector<std::string>{"warning bbbb slow down"});
  // With no tap left, the logger is back at its own level.
  CHECK_FALSE(log()->should_log(spdlog::level::debug));
}

TEST_CASE("file_logger writes one file at its own level", "[logging]") {
  temp_dir scratch;
  logging_options options;
  options.file = scratch.path / "repo" / "ferry.log";
  options.level = "warning";
  std::string problem;
  auto logger = file_logger(options, problem);
  REQUIRE(logger);
  CHECK(problem.empty());
  logger->info("quiet");
  logger->warn("heard");
  logger->flush();
  std::ifstream in{options.file};
  std::string text{std::istreambuf_iterator<char>{in}, {}};
  CHECK_THAT(text, Catch::Contains("heard"));
  CHECK_THAT(text, !Catch::Contains("quiet"));
  options.file = "/proc/ferry-no-such-dir/ferry.log";
  CHECK_FALSE(file_logger(options, problem));
  CHECK_THAT(problem, Catch::Contains("cannot open log file /proc/ferry-no-such-dir/ferry.log"));
}
