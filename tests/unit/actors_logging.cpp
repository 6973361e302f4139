#include "actors/logging.hpp"

#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <string>

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
