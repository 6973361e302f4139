#include "store/os/file_io.hpp"

#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>

#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

using ferry::fd_guard;
using ferry::poll_list;

TEST_CASE("a poll list leaves out closed descriptors and says which are ready", "[file_io]") {
  fd_guard quiet_read, quiet_write, busy_read, busy_write;
  REQUIRE(ferry::make_pipe(quiet_read, quiet_write, "test").ok());
  REQUIRE(ferry::make_pipe(busy_read, busy_write, "test").ok());
  REQUIRE(::write(busy_write.get(), "x", 1) == 1);

  poll_list<3> polled;
  int quiet_at = polled.add(quiet_read.get(), POLLIN);
  int closed_at = polled.add(-1, POLLIN);
  int busy_at = polled.add(busy_read.get(), POLLIN);
  CHECK(closed_at == -1);
  CHECK(quiet_at == 0);
  CHECK(busy_at == 1);
  REQUIRE(polled.size() == 2);
  CHECK(polled.data()[busy_at].fd == busy_read.get());

  REQUIRE(::poll(polled.data(), polled.size(), 0) == 1);
  CHECK(polled.ready(busy_at));
  CHECK_FALSE(polled.ready(quiet_at));
  CHECK_FALSE(polled.ready(closed_at));
}

namespace {

std::string contents_of(const std::filesystem::path& file) {
  std::ifstream in{file, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, {}};
}

} // namespace

TEST_CASE("a file written atomically replaces the old one whole, under a new inode", "[file_io]") {
  ferry::testing::temp_dir dir;
  auto file = dir.path / "report.json";
  REQUIRE(ferry::write_file_atomically(file, "old\n").ok());
  CHECK(contents_of(file) == "old\n");
  struct stat before {};
  REQUIRE(::stat(file.c_str(), &before) == 0);
  // A reader that opened the old file keeps reading the old content.
  std::ifstream reader{file, std::ios::binary};

  std::string big(200000, 'x');
  REQUIRE(ferry::write_file_atomically(file, big).ok());
  CHECK(contents_of(file) == big);
  struct stat after {};
  REQUIRE(::stat(file.c_str(), &after) == 0);
  CHECK(after.st_ino != before.st_ino);
  std::string old_seen{std::istreambuf_iterator<char>{reader}, {}};
  CHECK(old_seen == "old\n");
  // Nothing but the file itself is left in the folder.
  auto entries = std::distance(std::filesystem::directory_iterator{dir.path}, {});
  CHECK(entries == 1);
}

TEST_CASE("a file that cannot be written atomically is an error naming it", "[file_io]") {
  ferry::testing::temp_dir dir;
  auto file = dir.path / "missing" / "report.json";
  auto written = ferry::write_file_atomically(file, "text");
  REQUIRE_FALSE(written.ok());
  CHECK(written.message().find((dir.path / "missing").string()) != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.path / "missing"));
}
