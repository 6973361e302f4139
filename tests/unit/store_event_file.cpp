#include "store/os/event_file.hpp"

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

using ferry::event_file;
using ferry::testing::temp_dir;

TEST_CASE("events from many threads and two writers land as whole lines", "[events]") {
  temp_dir tmp;
  auto path = tmp.path / "events.jsonl";
  auto first = event_file::open(path);
  auto second = event_file::open(path);
  REQUIRE(first.ok());
  REQUIRE(second.ok());

  struct ::stat info {};
  REQUIRE(::stat(path.c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0600);

  constexpr int threads = 4;
  constexpr int lines = 500;
  // Long lines make a torn write likely if appends were not one write each.
  std::string padding(3000, 'x');
  // Catch's assertions are for the test's own thread: writers count failures.
  std::atomic<int> failed_appends{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < threads; ++t)
    writers.emplace_back([&, t] {
      auto& file = t % 2 == 0 ? *first : *second;
      for (int i = 0; i < lines; ++i)
        if (!file->append(std::to_string(t) + ":" + std::to_string(i) + ":" + padding).ok())
          ++failed_appends;
    });
  for (auto& w : writers)
    w.join();
  REQUIRE(failed_appends == 0);

  std::ifstream in{path};
  std::set<std::string> seen;
  std::string line;
  while (std::getline(in, line)) {
    REQUIRE(line.size() > padding.size());
    REQUIRE(line.substr(line.size() - padding.size()) == padding);
    seen.insert(line.substr(0, line.size() - padding.size()));
  }
  CHECK(seen.size() == threads * lines);
}

TEST_CASE("an events file that cannot be opened says which and why", "[events]") {
  temp_dir tmp;
  auto opened = event_file::open(tmp.path / "no-such-dir" / "events.jsonl");
  REQUIRE_FALSE(opened.ok());
  CHECK_THAT(opened.error().message(), Catch::Contains("no-such-dir/events.jsonl"));
}

TEST_CASE("a failing events file reports its first failure only", "[events]") {
  auto full = event_file::open("/dev/full");
  REQUIRE(full.ok());
  auto once = (*full)->append("x");
  REQUIRE_FALSE(once.ok());
  CHECK(once.code() == ferry::errc::no_space);
  CHECK((*full)->append("y").ok());
}
