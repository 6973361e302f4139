#include "store/os/partial_file.hpp"

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

using ferry::errc;
using ferry::fd_guard;
using ferry::partial_file;
using ferry::sha256;
using ferry::testing::temp_dir;

namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

partial_file open_partial(const std::string& path, const std::string& content) {
  fd_guard fd{::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)};
  REQUIRE(fd.get() >= 0);
  return partial_file(std::move(fd), "partial file " + path,
                      sha256::of(content.data(), content.size()),
                      static_cast<int64_t>(content.size()));
}

} // namespace

TEST_CASE("a partial file holds what was appended and verifies it", "[partial_file]") {
  temp_dir dir;
  std::string path = (dir.path / "object.part").string();
  std::string content = "the quick brown fox jumps over the lazy dog";
  auto file = open_partial(path, content);
  REQUIRE(file.resume(0).ok());
  REQUIRE(file.append(content.data(), 10).ok());
  CHECK(file.offset() == 10);
  REQUIRE(file.sync_data().ok());
  REQUIRE(file.append(content.data() + 10, content.size() - 10).ok());
  CHECK(file.offset() == static_cast<int64_t>(content.size()));
  REQUIRE(file.sync().ok());
  auto size = file.file_size();
  REQUIRE(size.ok());
  CHECK(*size == static_cast<int64_t>(content.size()));
  CHECK(file.verify().ok());
  file.close();
  CHECK_FALSE(file.is_open());
  CHECK(read_all(path) == content);
}

TEST_CASE("a partial file resumes after the prefix it keeps", "[partial_file]") {
  temp_dir dir;
  std::string path = (dir.path / "object.part").string();
  std::string content = "0123456789abcdefghij";
  // An earlier attempt left the first 12 bytes and 5 more that go.
  std::ofstream(path, std::ios::binary) << content.substr(0, 12) << "XXXXX";
  auto file = open_partial(path, content);
  REQUIRE(file.resume(12).ok());
  CHECK(file.offset() == 12);
  CHECK(*file.file_size() == 12);
  REQUIRE(file.append(content.data() + 12, content.size() - 12).ok());
  // The kept bytes were hashed: the whole object verifies.
  CHECK(file.verify().ok());
  CHECK(read_all(path) == content);

  SECTION("a file shorter than the prefix cannot be resumed") {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << content.substr(0, 5);
    auto again = open_partial(path, content);
    auto st = again.resume(12);
    CHECK(st.code() == errc::io_error);
    CHECK_THAT(st.message(), Catch::Contains("cannot resume: partial file " + path));
    CHECK(*again.file_size() == 5);
  }
  SECTION("starting over empties the file") {
    auto again = open_partial(path, content);
    REQUIRE(again.resume(0).ok());
    CHECK(again.offset() == 0);
    CHECK(*again.file_size() == 0);
  }
}

TEST_CASE("a partial file refuses bytes beyond the object's size", "[partial_file]") {
  temp_dir dir;
  std::string path = (dir.path / "object.part").string();
  std::string content = "twelve bytes";
  auto file = open_partial(path, content);
  REQUIRE(file.resume(0).ok());
  REQUIRE(file.append(content.data(), 10).ok());
  auto st = file.append("abc", 3);
  CHECK(st.code() == errc::size_mismatch);
  CHECK_THAT(st.message(), Catch::Contains("declared size of 12"));
  CHECK(file.offset() == 10);
  CHECK(*file.file_size() == 10);
}

TEST_CASE("a partial file reports a short or wrong content", "[partial_file]") {
  temp_dir dir;
  std::string path = (dir.path / "object.part").string();
  std::string content = "expected content";
  SECTION("short") {
    auto file = open_partial(path, content);
    REQUIRE(file.resume(0).ok());
    REQUIRE(file.append(content.data(), 5).ok());
    auto st = file.verify();
    CHECK(st.code() == errc::size_mismatch);
    CHECK_THAT(st.message(), Catch::Contains("received 5 bytes, expected 16"));
  }
  SECTION("other bytes") {
    auto file = open_partial(path, content);
    REQUIRE(file.resume(0).ok());
    std::string other = "EXPECTED CONTENT";
    REQUIRE(file.append(other.data(), other.size()).ok());
    auto st = file.verify();
    CHECK(st.code() == errc::hash_mismatch);
    CHECK_THAT(st.message(), Catch::Contains(sha256::of(other.data(), other.size())));
  }
}

TEST_CASE("a partial file names itself in its errors", "[partial_file]") {
  temp_dir dir;
  std::string path = (dir.path / "object.part").string();
  std::string content = "some bytes";
  { std::ofstream(path) << ""; }
  // Read-only: every write fails.
  fd_guard fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  REQUIRE(fd.get() >= 0);
  partial_file file(std::move(fd), "download file " + path, sha256::of(content.data(), 10), 10);
  auto st = file.append(content.data(), content.size());
  CHECK(st.code() == errc::io_error);
  CHECK_THAT(st.message(), Catch::StartsWith("cannot write download file " + path));
  CHECK(file.offset() == 0);
}
