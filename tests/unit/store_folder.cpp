#include "store/folder/folder_store.hpp"
#include "store/os/sha256.hpp"

#include <catch2/catch.hpp>

#include "folder_support.hpp"
#include "test_support.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using ferry::errc;
using ferry::folder_store;

using ferry::testing::make_content;
using ferry::testing::oid_of;
using ferry::testing::open_store_at;
using ferry::testing::publish;
using ferry::testing::read_object;
using ferry::testing::temp_dir;

namespace {

constexpr const char* empty_oid =
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

std::unique_ptr<ferry::object_writer> open_writer(folder_store& store, const std::string& oid,
                                                  int64_t size, bool resume) {
  auto writer = store.open_write(oid, size, resume ? std::optional<std::string>{""} : std::nullopt);
  INFO(writer.error().to_string());
  REQUIRE(writer.ok());
  return std::move(writer).value();
}

// Writes `content` in pieces of `chunk` bytes; the writer is left uncommitted.
void write_chunks(ferry::object_writer& writer, const std::string& content, size_t chunk) {
  for (size_t done = 0; done < content.size(); done += chunk) {
    auto st = writer.write(content.data() + done, std::min(chunk, content.size() - done));
    INFO(st.to_string());
    REQUIRE(st.ok());
  }
}

ferry::status store_object(folder_store& store, const std::string& content) {
  auto writer = open_writer(store, oid_of(content), static_cast<int64_t>(content.size()), false);
  write_chunks(*writer, content, 65536);
  if (auto st = writer->commit(); !st)
    return st;
  auto published = store.sync_published();
  if (!published)
    return published.error();
  return published->empty() ? ferry::status::success() : published->front().second;
}

std::map<std::string, int64_t> list_all(folder_store& store) {
  std::map<std::string, int64_t> found;
  auto st = store.list([&](const ferry::object_info& info) {
    found[info.oid] = info.size;
    return true;
  });
  INFO(st.to_string());
  REQUIRE(st.ok());
  return found;
}

bool is_visible(folder_store& store, const std::string& oid) {
  auto info = store.stat(oid);
  REQUIRE(info.ok());
  return info->has_value();
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  REQUIRE(out);
  out << bytes;
  REQUIRE(out.flush());
}

// Both ends of a pipe, closed when the test ends however it ends.
struct pipe_fds {
  pipe_fds() { REQUIRE(::pipe(fds) == 0); }
  ~pipe_fds() {
    close_read();
    close_write();
  }
  pipe_fds(const pipe_fds&) = delete;
  pipe_fds& operator=(const pipe_fds&) = delete;
  int read_end() const { return fds[0]; }
  int write_end() const { return fds[1]; }
  void close_read() { close_end(fds[0]); }
  void close_write() { close_end(fds[1]); }
  static void close_end(int& fd) {
    if (fd >= 0)
      ::close(fd);
    fd = -1;
  }
  int fds[2] = {-1, -1};
};

// A forked child that is killed and reaped if a failed assertion ends the test.
struct child_process {
  ~child_process() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      int wstatus = 0;
      ::waitpid(pid, &wstatus, 0);
    }
  }
  pid_t pid = -1;
};

void check_busy(const ferry::result<std::unique_ptr<ferry::object_writer>>& writer,
                const folder_store& store, const std::string& oid) {
  REQUIRE_FALSE(writer.ok());
  CHECK(writer.error().code() == errc::busy);
  CHECK_THAT(writer.error().message(), Catch::Contains(oid));
  CHECK_THAT(writer.error().message(), Catch::Contains(store.describe()));
  CHECK_THAT(writer.error().message(), Catch::Contains("another process"));
}

} // namespace

TEST_CASE("folder store round-trips objects of different sizes", "[folder]") {
  temp_dir dir;
  auto store = open_store_at(dir.path / "store");

  auto size = GENERATE(as<size_t>{}, 0, 1, 100, 65536, 3 * 1024 * 1024 + 17);
  auto chunk = GENERATE(as<size_t>{}, 1000, 700001);
  if (size > 1000000 && chunk < 10000)
    return; // millions of tiny writes add nothing over the small sizes
  std::string content = make_content(size, static_cast<uint32_t>(size));
  std::string oid = oid_of(content);

  auto writer = open_writer(*store, oid, static_cast<int64_t>(size), false);
  CHECK(writer->offset() == 0);
  write_chunks(*writer, content, chunk);
  CHECK(writer->offset() == static_cast<int64_t>(size));
  CHECK_FALSE(is_visible(*store, oid)); // nothing before commit
  REQUIRE(writer->commit().ok());
  publish(*store);

  auto info = store->stat(oid);
  REQUIRE(info.ok());
  REQUIRE(info->has_value());
  CHECK((*info)->oid == oid);
  CHECK((*info)->size == static_cast<int64_t>(size));
  CHECK(read_object(*store, oid) == content);

  // git-lfs layout, and no partial file left behind.
  fs::path expected = dir.path / "store" / oid.substr(0, 2) / oid.substr(2, 2) / oid;
  CHECK(store->object_path(oid) == expected);
  CHECK(fs::is_regular_file(expected));
  CHECK_FALSE(fs::exists(store->partial_path(oid)));
  CHECK(store->partial_path(oid).filename() == "." + oid + ".ferry-partial");
}

TEST_CASE("an empty object commits with zero writes", "[folder]") {
  temp_dir dir;
  auto store = open_store_at(dir.path);
  auto writer = open_writer(*store, empty_oid, 0, false);
  REQUIRE(writer->commit().ok());
  publish(*store);
  auto info = store->stat(empty_oid);
  REQUIRE(info.ok());
  REQUIRE(info->has_value());
  CHECK((*info)->size == 0);
  CHECK(read_object(*store, empty_oid).empty());
}

TEST_CASE("commit of the wrong bytes publishes nothing", "[folder]") {
  temp_dir dir;
  auto store = open_store_at(dir.path);
  std::string content = make_content(5000, 1);
  std::string oid = oid_of(content);
  std::string wrong = content;
  wrong[4321] ^= 0x40;

  auto writer = open_writer(*store, oid, static_cast<int64_t>(wrong.size()), false);
  write_chunks(*writer, wrong, 999);
  auto st = writer->commit();
  CHECK(st.code() == errc::hash_mismatch);
  CHECK_THAT(st.message(), Catch::Contains(oid));

  CHECK_FALSE(is_visible(*store, oid));
  CHECK_FALSE(fs::exists(store->object_path(oid)));
  CHECK_FALSE(fs::exists(store->partial_path(oid)));
  CHECK(store->open_read(oid, 0).error().code() == errc::not_found);
  CHECK(list_all(*store).empty());
}

TEST_CASE("commit of short content is a size mismatch", "[folder]") {
  temp_dir dir;
  auto store = open_store_at(dir.path);
  std::string content = make_content(4096, 2);
  std::string oid = oid_of(content);

  auto writer = open_writer(*store, oid, static_cast<int64_t>(content.size()), false);
  write_chunks(*writer, content.substr(0, 4000), 1000);
  CHECK(writer->commit().code() == errc::size_mismatch);
  CHECK_FALSE(is_visible(*store, oid));
  CHECK_FALSE(fs::exists(store->partial_path(oid)));

  // The writer is finished; further use is refused rather than ignored.
  CHECK_FALSE(writer->write("x", 1).ok());
  CHECK_FALSE(writer->commit().ok());
}

TEST_CASE("writing past the declared size fails at once", "[folder]") {
  temp_dir dir;
  auto store = open_store_at(dir.path);
  std::string content = make_content(1000, 3);
  std::string oid = oid_of(content);

  auto writer = open_writer(*store, oid, 1000, false);
  std::string too_long = content + "x";
  auto st = writer->write(too_long.data(), too_long.size());
  CHECK(st.code() == errc::size_mismatch);
  CHECK(writer->offset() == 0); // nothing of the rejected write was kept

  write_chunks(*writer, content, 300);
  CHECK(writer->write("x", 1).code() == errc::size_mismatch);
  CHECK(writer->offset() == 1000);
  REQUIRE(writer->commit().ok());
  publish(*store);
  CHECK(read_object(*store, oid) == content);
}

TEST_CASE("an interrupted write resumes where it stopped", "[folder]") {
  temp_dir dir;
  auto store = open_store_at(dir.path);
  std::string content = make_content(2 * 1024 * 1024 + 333, 4);
  std::string oid = oid_of(content);
  auto size = static_cast<int64_t>(content.size());
  const size_t half = content.size() / 2;

  {
    auto writer = open_writer(*store, oid, size, false);
    write_chunks(*writer, content.substr(0, half), 100000);
    REQUIRE(writer->sync().ok());
    // Destroyed without commit or abort, as by a crash.
  }
  REQUIRE(fs::file_size(store->partial_path(oid)) == half);
  CHECK_FALSE(is_visible(*store, oid));

  // A second store object sees the same state, as a restarted process would.
  auto reopened = open_store_at(dir.path);
  auto writer = open_writer(*reopened, oid, size, true);
  CHECK(writer->offset() == static_cast<int64_t>(half));
  write_chunks(*writer, content.substr(half), 77777);
  REQUIRE(writer->commit().ok());
  publish(*reopened);
  CHECK(read_object(*reopened, oid) == content);
  CHECK_FALSE(fs::exists(reopened->partial_path(oid)));
}

TEST_CASE("a corrupted partial prefix is caught at commit", "[folder]") {
  temp_dir dir;
  auto store = open_store_at(dir.path);
  std::string content = make_content(100000, 5);
  std::string oid = oid_of(content);
  const size_t half = content.size() / 2;
  {
    auto writer = open_writer(*store, oid, 100000, false);
    write_chunks(*writer, content.substr(0, half), 4096);
    REQUIRE(writer->sync().ok());
  }
  {
    std::fstream partial(store->partial_path(oid), std::ios::in | std::ios::out | std::ios::binary);
    REQUIRE(partial);
    partial.seekp(10);
    partial.put(static_cast<char>(content[10] ^ 0x01));
  }

  auto writer = open_writer(*store, oid, 100000, true);
  CHECK(writer->offset() == static_cast<int64_t>(half));
  write_chunks(*writer, content.substr(half), 4096);
  CHECK(writer->commit().code() == errc::hash_mismatch);
  CHECK_FALSE(is_visible(*store, oid));
  CHECK_FALSE(fs::exists(store->partial_path(oid)));
}

TEST_CASE("resume is false: partial data is discarded", "[folder]") {
  temp_dir dir;
  auto store = open_store_at(dir.path);
  std::string content = make_content(10000, 6);
  std::string oid = oid_of(content);
  {
    auto writer = open_writer(*store, oid, 10000, false);
    write_chunks(*writer, content.substr(0, 6000), 1000);
    REQUIRE(writer->sync().ok());
  }
  auto writer = open_writer(*store, oid, 10000, false);
  CHECK(writer->offset() == 0);
  CHECK(fs::file_size(store->partial_path(oid)) == 0);
  write_chunks(*writer, content, 2500);
  REQUIRE(writer->commit().ok());
  publish(*store);
  CHECK(read_object(*store, oid) == content);
}

TEST_CASE("resume edge cases", "[folder]") {
  temp_dir dir;
  auto store = open_store_at(dir.path);
  std::string content = make_content(3000, 7);
  std::string oid = oid_of(content);

  SECTION("without a partial file it starts at zero") {
    auto writer = open_writer(*store, oid, 3000, true);
    CHECK(writer->offset() == 0);
    write_chunks(*writer, content, 3000);
    CHECK(writer->commit().ok());
    publish(*store);
  }
  SECTION("bytes beyond the declared size are cut off") {
    {
      auto writer = open_writer(*store, oid, 3000, false); // creates the directories
    }
    {
      std::ofstream partial(store->partial_path(oid), std::ios::binary | std::ios::trunc);
      partial << content << "trailing junk";
    }
    auto writer = open_writer(*store, oid, 3000, true);
    CHECK(writer->offset() == 3000);
    CHECK(fs::file_size(store->partial_path(oid)) == 3000);
    REQUIRE(writer->commit().ok());
    publish(*store);
    CHECK(read_object(*store, oid) == content);
  }
  SECTION("an existing object is simply written again") {
    REQUIRE(store_object(*store, content).ok());
    auto writer = open_writer(*store, oid, 3000, true);
    CHECK(writer->offset() == 0);
    write_chunks(*writer, content, 1024);
    REQUIRE(writer->commit().ok());
    publish(*store);
    CHECK(read_object(*store, oid) == content);
  }
  SECTION("abort removes the partial data") {
    auto writer = open_writer(*store, oid, 3000, false);
    write_chunks(*writer, content.substr(0, 1000), 1000);
    REQUIRE(fs::exists(store->partial_path(oid)));
    writer->abort();
    CHECK_FALSE(fs::exists(store->partial_path(oid)));
    CHECK_FALSE(writer->write("x", 1).ok());
    auto again = open_writer(*store, oid, 3000, true);
    CHECK(again->offset() == 0);
  }
}

TEST_CASE("a second writer of one oid is refused while the first is alive", "[folder]") {
  temp_dir dir;
  auto store = open_store_at(dir.path);
  // A second store object on the same folder, as another process would have.
  auto other = open_store_at(dir.path);
  std::string content = make_content(200000, 14);
  std::string oid = oid_of(content);
  auto size = static_cast<int64_t>(content.size());
  const size_t half = content.size() / 2;

  auto first = open_writer(*store, oid, size, false);
  write_chunks(*first, content.substr(0, half), 10000);

  check_busy(other->open_write(oid, size, std::nullopt), *other, oid);
  check_busy(other->open_write(oid, size, std::string{}), *other, oid);
  check_busy(store->open_write(oid, size, std::nullopt), *store, oid);
  // The refused opens neither truncated nor touched the first writer's bytes.
  CHECK(read_file(store->partial_path(oid)) == content.substr(0, half));

  SECTION("the first writer commits, then the oid can be written again") {
    write_chunks(*first, content.substr(half), 10000);
    REQUIRE(first->commit().ok());
    publish(*store);
    CHECK(read_object(*store, oid) == content);

    auto again = open_writer(*other, oid, size, false);
    CHECK(again->offset() == 0);
    CHECK(read_object(*store, oid) == content); // the new writer left the object alone
    write_chunks(*again, content, 65536);
    REQUIRE(again->commit().ok());
    publish(*other);
    CHECK(read_object(*store, oid) == content);
  }
  SECTION("abort releases the oid") {
    first->abort();
    auto again = open_writer(*other, oid, size, true);
    CHECK(again->offset() == 0);
  }
  SECTION("destroying the writer releases the oid and keeps its bytes") {
    REQUIRE(first->sync().ok());
    first.reset();
    auto again = open_writer(*other, oid, size, true);
    CHECK(again->offset() == static_cast<int64_t>(half));
    write_chunks(*again, content.substr(half), 10000);
    REQUIRE(again->commit().ok());
    publish(*other);
    CHECK(read_object(*store, oid) == content);
  }
}

TEST_CASE("a writer in another process keeps the oid until it dies", "[folder]") {
  temp_dir dir;
  auto store = open_store_at(dir.path);
  std::string content = make_content(300000, 15);
  std::string oid = oid_of(content);
  auto size = static_cast<int64_t>(content.size());
  const size_t half = content.size() / 2;

  pipe_fds ready;   // child -> parent: 'R' once half is written and synced
  pipe_fds release; // parent -> child: the child blocks reading this
  child_process child;
  child.pid = ::fork();
  REQUIRE(child.pid >= 0);
  if (child.pid == 0) {
    // No Catch2 here: the child reports through the pipe and leaves with _exit.
    ready.close_read();
    release.close_write();
    char report = 'F';
    auto child_store = folder_store::open(dir.path);
    if (child_store.ok()) {
      auto writer = (*child_store)->open_write(oid, size, std::nullopt);
      if (writer.ok() && (*writer)->write(content.data(), half).ok() && (*writer)->sync().ok())
        report = 'R';
      if (::write(ready.write_end(), &report, 1) != 1)
        ::_exit(2);
      char ignored;
      ssize_t n = ::read(release.read_end(), &ignored, 1); // until killed or the parent ends
      ::_exit(n >= 0 && report == 'R' ? 0 : 1);
    }
    ::_exit(1);
  }
  ready.close_write();
  release.close_read();

  char report = 0;
  ssize_t n;
  do
    n = ::read(ready.read_end(), &report, 1);
  while (n < 0 && errno == EINTR);
  REQUIRE(n == 1);
  REQUIRE(report == 'R');

  check_busy(store->open_write(oid, size, std::string{}), *store, oid);
  check_busy(store->open_write(oid, size, std::nullopt), *store, oid);
  CHECK(read_file(store->partial_path(oid)) == content.substr(0, half));

  // The child dies mid-upload, as a crashed process would.
  REQUIRE(::kill(child.pid, SIGKILL) == 0);
  int wstatus = 0;
  REQUIRE(::waitpid(child.pid, &wstatus, 0) == child.pid);
  child.pid = -1;
  CHECK(WIFSIGNALED(wstatus));

  auto writer = open_writer(*store, oid, size, true);
  CHECK(writer->offset() == static_cast<int64_t>(half));
  write_chunks(*writer, content.substr(half), 65536);
  REQUIRE(writer->commit().ok());
  publish(*store);
  CHECK(read_object(*store, oid) == content);
  CHECK_FALSE(fs::exists(store->partial_path(oid)));
}

TEST_CASE("commit publishes only the file it wrote and verified", "[folder]") {
  temp_dir dir;
  auto store = open_store_at(dir.path);
  std::string content = make_content(50000, 16);
  std::string oid = oid_of(content);
  auto size = static_cast<int64_t>(content.size());
  fs::path partial = store->partial_path(oid);

  auto writer = open_writer(*store, oid, size, false);
  write_chunks(*writer, content, 8192);
  REQUIRE(writer->sync().ok());

  SECTION("the partial is replaced by another file") {
    std::string impostor = make_content(content.size(), 17);
    REQUIRE(fs::remove(partial));
    write_file(partial, impostor);

    auto st = writer->commit();
    CHECK(st.code() == errc::io_error);
    CHECK_THAT(st.message(), Catch::Contains(partial.string()));
    CHECK_FALSE(is_visible(*store, oid));
    CHECK_FALSE(fs::exists(store->object_path(oid)));
    // The file at the path is not the writer's, so it is not the writer's to delete.
    CHECK(read_file(partial) == impostor);

    // Resuming from the impostor is caught by the hash check as usual.
    auto resumed = open_writer(*store, oid, size, true);
    CHECK(resumed->offset() == size);
    CHECK(resumed->commit().code() == errc::hash_mismatch);
    CHECK_FALSE(is_visible(*store, oid));

    REQUIRE(store_object(*store, content).ok());
    CHECK(read_object(*store, oid) == content);
  }
  SECTION("the partial is removed") {
    REQUIRE(fs::remove(partial));
    CHECK(writer->commit().code() == errc::io_error);
    CHECK_FALSE(is_visible(*store, oid));
    CHECK_FALSE(fs::exists(partial));
  }
  SECTION("the partial is cut short") {
    REQUIRE(::truncate(partial.c_str(), size / 2) == 0);
    auto st = writer->commit();
    CHECK(st.code() == errc::size_mismatch);
    CHECK_THAT(st.message(), Catch::Contains(oid));
    CHECK_FALSE(is_visible(*store, oid));
    CHECK_FALSE(fs::exists(partial));
  }
}

TEST_CASE("partial files are never objects", "[folder]") {
  temp_dir dir;
  auto store = open_store_at(dir.path);
  std::string content = make_content(1234, 8);
  std::string oid = oid_of(content);
  auto writer = open_writer(*store, oid, 1234, false);
  write_chunks(*writer, content, 1234); // complete, but not committed
  REQUIRE(writer->sync().ok());

  CHECK_FALSE(is_visible(*store, oid));
  CHECK(store->open_read(oid, 0).error().code() == errc::not_found);
  CHECK(list_all(*store).empty());
}

TEST_CASE("hostile oids are rejected everywhere", "[folder]") {
  temp_dir dir;
  auto store = open_store_at(dir.path / "store");
  const std::string valid = oid_of("x");
  std::string upper = valid;
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  std::string with_slash = valid;
  with_slash[2] = '/';
  std::string traversal = "../../" + valid.substr(6);

  auto bad =
    GENERATE_COPY(std::string{"../../etc/passwd"}, std::string{}, std::string{"ab"},
                  valid.substr(1), valid + "0", upper, with_slash, traversal, "." + valid.substr(1),
                  std::string(64, '.'), std::string(valid).replace(10, 1, 1, '\0'));
  INFO("oid: " << bad);
  REQUIRE(bad != valid);

  CHECK(store->stat(bad).error().code() == errc::invalid_request);
  CHECK(store->open_read(bad, 0).error().code() == errc::invalid_request);
  auto writer = store->open_write(bad, 1, std::nullopt);
  REQUIRE_FALSE(writer.ok());
  CHECK(writer.error().code() == errc::invalid_request);
  CHECK_FALSE(writer.error().message().empty());
  CHECK(store->open_write(bad, 1, std::string{}).error().code() == errc::invalid_request);
  CHECK(store->remove(bad).code() == errc::invalid_request);
  CHECK(store->object_path(bad).empty());
  CHECK(store->partial_path(bad).empty());

  // Nothing was created inside or next to the root.
  CHECK(fs::is_empty(dir.path / "store"));
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);
}

TEST_CASE("open_read starts at the requested offset", "[folder]") {
  temp_dir dir;
  auto store = open_store_at(dir.path);
  std::string content = make_content(250000, 9);
  std::string oid = oid_of(content);
  REQUIRE(store_object(*store, content).ok());

  CHECK(read_object(*store, oid, 0) == content);
  CHECK(read_object(*store, oid, 1) == content.substr(1));
  CHECK(read_object(*store, oid, 123457) == content.substr(123457));
  CHECK(read_object(*store, oid, 250000).empty());

  auto reader = store->open_read(oid, 200000);
  REQUIRE(reader.ok());
  CHECK((*reader)->size() == 250000); // the object's size, not the remaining range

  CHECK(store->open_read(oid, 250001).error().code() == errc::size_mismatch);
  CHECK(store->open_read(oid, -1).error().code() == errc::invalid_request);
}

TEST_CASE("missing objects", "[folder]") {
  temp_dir dir;
  auto store = open_store_at(dir.path);
  std::string oid = oid_of("never stored");

  auto reader = store->open_read(oid, 0);
  REQUIRE_FALSE(reader.ok());
  CHECK(reader.error().code() == errc::not_found);
  CHECK_THAT(reader.error().message(), Catch::Contains(oid));
  CHECK_FALSE(is_visible(*store, oid));
  CHECK(store->remove(oid).ok());
}

TEST_CASE("sizes_of answers the size each object's file has, nothing where there is none",
          "[folder]") {
  temp_dir dir;
  auto store = open_store_at(dir.path);
  const std::string whole = make_content(3000, 14);
  const std::string truncated = make_content(2000, 15);
  const std::string in_a_directory = make_content(100, 16);
  REQUIRE(store_object(*store, whole).ok());
  REQUIRE(store_object(*store, truncated).ok());
  fs::resize_file(store->object_path(oid_of(truncated)), 700);
  fs::create_directories(store->object_path(oid_of(in_a_directory)));

  const std::vector<ferry::object_info> objects{{oid_of(whole), 3000},
                                                {oid_of(truncated), 2000},
                                                {oid_of("never stored"), 10},
                                                {oid_of(in_a_directory), 100}};
  auto sizes = store->sizes_of(objects);
  INFO(sizes.error().to_string());
  REQUIRE(sizes.ok());
  CHECK(*sizes == std::vector<std::optional<int64_t>>{3000, 700, std::nullopt, std::nullopt});

  CHECK(store->sizes_of({{"not-an-oid", 1}}).error().code() == errc::invalid_request);
}

TEST_CASE("remove deletes an object and tolerates absence", "[folder]") {
  temp_dir dir;
  auto store = open_store_at(dir.path);
  std::string content = make_content(10, 10);
  std::string oid = oid_of(content);
  REQUIRE(store_object(*store, content).ok());
  REQUIRE(is_visible(*store, oid));

  CHECK(store->remove(oid).ok());
  CHECK_FALSE(is_visible(*store, oid));
  CHECK_FALSE(fs::exists(store->object_path(oid)));
  CHECK(store->remove(oid).ok());
}

TEST_CASE("list reports exactly the stored objects", "[folder]") {
  temp_dir dir;
  auto store = open_store_at(dir.path);
  std::string a = make_content(100, 11);
  std::string b = make_content(2000, 12);
  REQUIRE(store_object(*store, a).ok());
  REQUIRE(store_object(*store, b).ok());

  // Junk of every kind the walk must skip.
  const std::string stray = oid_of("stray");
  auto touch = [](const fs::path& p) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << "junk";
  };
  touch(dir.path / "README");
  touch(dir.path / "zz" / "README");
  touch(dir.path / "AB" / "CD" / stray);                                   // not hex dirs
  touch(dir.path / stray.substr(0, 2) / stray);                            // too shallow
  touch(dir.path / "00" / "00" / stray);                                   // wrong directory
  touch(dir.path / stray.substr(0, 2) / stray.substr(2, 2) / "notes.txt"); // not an oid
  touch(dir.path / stray.substr(0, 2) / stray.substr(2, 2) / ("." + stray + ".ferry-partial"));
  std::string upper = stray;
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  touch(dir.path / stray.substr(0, 2) / stray.substr(2, 2) / upper);
  fs::create_directories(dir.path / stray.substr(0, 2) / stray.substr(2, 2) / stray); // a dir

  auto found = list_all(*store);
  std::map<std::string, int64_t> expected{{oid_of(a), 100}, {oid_of(b), 2000}};
  CHECK(found == expected);
  CHECK_FALSE(is_visible(*store, stray));

  SECTION("visit returning false stops the walk") {
    int calls = 0;
    auto st = store->list([&](const ferry::object_info&) {
      ++calls;
      return false;
    });
    CHECK(st.ok());
    CHECK(calls == 1);
  }
}

TEST_CASE("file system failures are reported with the path", "[folder]") {
  temp_dir dir;
  auto store = open_store_at(dir.path);
  std::string content = make_content(64, 13);
  std::string oid = oid_of(content);

  SECTION("a file where the object directory should be") {
    std::ofstream(dir.path / oid.substr(0, 2)) << "in the way";
    auto writer = store->open_write(oid, 64, std::nullopt);
    REQUIRE_FALSE(writer.ok());
    CHECK(writer.error().code() == errc::io_error);
    CHECK_THAT(writer.error().message(), Catch::Contains(dir.path.string()));
    // Lookups through the blocked prefix simply find nothing.
    CHECK_FALSE(is_visible(*store, oid));
    CHECK(store->open_read(oid, 0).error().code() == errc::not_found);
  }

  SECTION("a read-only store folder") {
    if (::geteuid() == 0)
      SUCCEED("running as root, which ignores permissions; covered by the section above");
    else {
      REQUIRE(::chmod(dir.path.c_str(), 0555) == 0);
      auto writer = store->open_write(oid, 64, std::nullopt);
      REQUIRE(::chmod(dir.path.c_str(), 0755) == 0);
      REQUIRE_FALSE(writer.ok());
      CHECK(writer.error().code() == errc::permission_denied);
      CHECK_THAT(writer.error().message(), Catch::Contains(dir.path.string()));
    }
  }

  SECTION("an unreadable object") {
    REQUIRE(store_object(*store, content).ok());
    if (::geteuid() == 0) {
      // Root reads anything; a directory in the object's place fails instead.
      fs::remove(store->object_path(oid));
      fs::create_directory(store->object_path(oid));
      CHECK(store->open_read(oid, 0).error().code() == errc::not_found);
      CHECK_FALSE(is_visible(*store, oid));
    } else {
      REQUIRE(::chmod(store->object_path(oid).c_str(), 0) == 0);
      auto reader = store->open_read(oid, 0);
      REQUIRE_FALSE(reader.ok());
      CHECK(reader.error().code() == errc::permission_denied);
      CHECK_THAT(reader.error().message(), Catch::Contains(oid));
    }
  }
}

TEST_CASE("opening a folder store", "[folder]") {
  temp_dir dir;

  SECTION("a missing root is created") {
    fs::path root = dir.path / "a" / "b" / "c";
    auto store = folder_store::open(root);
    REQUIRE(store.ok());
    CHECK(fs::is_directory(root));
    CHECK((*store)->describe() == "file://" + root.string());
    CHECK((*store)->root() == root);

    auto again = folder_store::open(root.string() + "/./");
    REQUIRE(again.ok());
    CHECK((*again)->describe() == (*store)->describe());
  }
  SECTION("a relative root is refused") {
    auto store = folder_store::open("relative/store");
    REQUIRE_FALSE(store.ok());
    CHECK(store.error().code() == errc::config_error);
    CHECK_THAT(store.error().message(), Catch::Contains("absolute"));
  }
  SECTION("a root that is a file is refused") {
    std::ofstream(dir.path / "file") << "x";
    auto store = folder_store::open(dir.path / "file");
    REQUIRE_FALSE(store.ok());
    CHECK(store.error().code() == errc::config_error);
    CHECK_THAT(store.error().message(), Catch::Contains((dir.path / "file").string()));
  }
  SECTION("without create, a missing root stays missing and holds nothing") {
    fs::path root = dir.path / "a" / "b";
    auto store = folder_store::open(root, false);
    INFO(store.error().to_string());
    REQUIRE(store.ok());
    CHECK_FALSE(fs::exists(root));
    CHECK((*store)->describe() == "file://" + root.string());
    const std::string oid = oid_of("never stored");

    auto info = (*store)->stat(oid);
    REQUIRE(info.ok());
    CHECK_FALSE(info->has_value());
    auto sizes = (*store)->sizes_of({{oid, 12}});
    REQUIRE(sizes.ok());
    CHECK(*sizes == std::vector<std::optional<int64_t>>{std::nullopt});
    CHECK(list_all(**store).empty());
    CHECK((*store)->open_read(oid, 0).error().code() == errc::not_found);
    CHECK_FALSE(fs::exists(root));
    CHECK(fs::is_empty(dir.path));

    // Made by something else later, the folder's objects are found.
    const std::string content = make_content(50, 17);
    REQUIRE(store_object(*open_store_at(root), content).ok());
    const std::map<std::string, int64_t> stored{{oid_of(content), 50}};
    CHECK(list_all(**store) == stored);
    CHECK(read_object(**store, oid_of(content)) == content);
    auto existing = folder_store::open(root, false);
    REQUIRE(existing.ok());
    CHECK(list_all(**existing) == stored);
  }
  SECTION("without create, a root below a file holds nothing") {
    std::ofstream(dir.path / "file") << "x";
    auto store = folder_store::open(dir.path / "file" / "store", false);
    REQUIRE(store.ok());
    CHECK(list_all(**store).empty());
    CHECK_FALSE(is_visible(**store, oid_of("x")));
  }
  SECTION("without create, a root that is a file is still refused") {
    std::ofstream(dir.path / "file") << "x";
    auto store = folder_store::open(dir.path / "file", false);
    REQUIRE_FALSE(store.ok());
    CHECK(store.error().code() == errc::config_error);
  }
  SECTION("a root below a file cannot be created") {
    std::ofstream(dir.path / "file") << "x";
    auto store = folder_store::open(dir.path / "file" / "store");
    REQUIRE_FALSE(store.ok());
    CHECK(store.error().code() != errc::ok);
  }
}

namespace {

// The message with the store's path and the asked oid taken out, so that
// digits in a temporary path or in the oid cannot pass for a size.
std::string without(std::string message, const std::vector<std::string>& mentions) {
  for (auto& mention : mentions)
    for (auto at = message.find(mention); at != std::string::npos; at = message.find(mention))
      message.erase(at, mention.size());
  return message;
}

// A link at `oid`'s path leading to `target` (holding `content`) is no
// object: every read says so, and none tells the target's size or hash.
void check_link_ignored(folder_store& store, const std::string& oid, const fs::path& link,
                        const fs::path& target, const std::string& content) {
  const auto size = static_cast<int64_t>(content.size());
  auto info = store.stat(oid);
  INFO(info.error().to_string());
  REQUIRE(info.ok());
  CHECK_FALSE(info->has_value());

  auto sizes = store.sizes_of({{oid, size}});
  REQUIRE(sizes.ok());
  CHECK(*sizes == std::vector<std::optional<int64_t>>{std::nullopt});

  auto held = store.holds({oid, size});
  REQUIRE(held.ok());
  CHECK_FALSE(*held);

  auto reader = store.open_read(oid, 0);
  CHECK_FALSE(reader.ok());
  if (!reader.ok()) {
    CHECK(reader.error().code() == errc::not_found);
    CHECK_THAT(reader.error().message(), Catch::Contains(link.string()));
    CHECK_THAT(reader.error().message(), Catch::Contains("symbolic link"));
    const std::string rest = without(reader.error().message(), {store.root().string(), oid});
    CHECK_THAT(rest, !Catch::Contains(oid_of(content)));
    CHECK_THAT(rest, !Catch::Contains(std::to_string(size)));
  }

  CHECK(list_all(store).count(oid) == 0);
  CHECK(read_file(target) == content);
}

// Every file below `dir` with its content.
std::map<fs::path, std::string> snapshot(const fs::path& dir) {
  std::map<fs::path, std::string> files;
  for (auto& entry : fs::recursive_directory_iterator(dir))
    files[entry.path()] = entry.is_regular_file() ? read_file(entry.path()) : "(not a file)";
  return files;
}

// Sets the process umask for a test and restores the old one.
struct umask_guard {
  explicit umask_guard(mode_t mask) : before(::umask(mask)) {}
  ~umask_guard() { ::umask(before); }
  umask_guard(const umask_guard&) = delete;
  umask_guard& operator=(const umask_guard&) = delete;
  const mode_t before;
};

mode_t mode_of(const fs::path& path) {
  struct ::stat info {};
  REQUIRE(::lstat(path.c_str(), &info) == 0);
  return info.st_mode & 07777;
}

} // namespace

TEST_CASE("a symbolic link where an object should be is never followed", "[folder][symlink]") {
  temp_dir dir;
  auto store = open_store_at(dir.path / "store");
  const fs::path outside = dir.path / "outside";
  fs::create_directories(outside);
  const std::string secret = make_content(4321, 31);
  write_file(outside / "secret", secret);
  auto plant_link = [&](const std::string& oid, const fs::path& target) {
    const fs::path link = store->object_path(oid);
    fs::create_directories(link.parent_path());
    fs::create_symlink(target, link);
    return link;
  };

  SECTION("named by another oid, the target's hash and size stay hidden") {
    const std::string wanted = "what the link's name promises";
    const std::string oid = oid_of(wanted);
    const fs::path link = plant_link(oid, outside / "secret");
    check_link_ignored(*store, oid, link, outside / "secret", secret);

    // An upload replaces the link with the object; the target is untouched.
    REQUIRE(store_object(*store, wanted).ok());
    CHECK(fs::is_regular_file(fs::symlink_status(link)));
    CHECK(read_object(*store, oid) == wanted);
    CHECK(read_file(outside / "secret") == secret);
  }
  SECTION("named by the target's own oid, the target is still no object") {
    const std::string oid = oid_of(secret);
    const fs::path link = plant_link(oid, outside / "secret");
    check_link_ignored(*store, oid, link, outside / "secret", secret);

    // remove() takes the link away, not its target.
    CHECK(store->remove(oid).ok());
    CHECK_FALSE(fs::exists(fs::symlink_status(link)));
    CHECK(read_file(outside / "secret") == secret);
  }
  SECTION("a system file under its real oid is never read") {
    const std::string passwd = read_file("/etc/passwd");
    const std::string oid = oid_of(passwd);
    const fs::path link = plant_link(oid, "/etc/passwd");
    check_link_ignored(*store, oid, link, "/etc/passwd", passwd);
  }
}

TEST_CASE("a symbolic link in place of a shard directory is never followed", "[folder][symlink]") {
  temp_dir dir;
  auto store = open_store_at(dir.path / "store");
  const std::string content = make_content(3000, 32);
  const std::string oid = oid_of(content);
  const auto size = static_cast<int64_t>(content.size());
  const fs::path outside = dir.path / "outside";

  // The link leads to a directory holding the very object, so following it
  // would find a valid object and writing through it would create files there.
  const int level = GENERATE(1, 2);
  INFO("symlinked level " << level);
  const fs::path first = dir.path / "store" / oid.substr(0, 2);
  const fs::path shard = level == 1 ? first : first / oid.substr(2, 2);
  const fs::path target_dir = level == 1 ? outside / oid.substr(2, 2) : outside;
  fs::create_directories(target_dir);
  write_file(target_dir / oid, content);
  fs::create_directories(shard.parent_path());
  fs::create_symlink(outside, shard);
  const auto outside_before = snapshot(outside);

  check_link_ignored(*store, oid, shard, target_dir / oid, content);

  for (bool resume : {false, true}) {
    INFO("resume " << resume);
    auto writer =
      store->open_write(oid, size, resume ? std::optional<std::string>{""} : std::nullopt);
    CHECK_FALSE(writer.ok());
    if (!writer.ok()) {
      CHECK(writer.error().code() == errc::path_rejected);
      CHECK_THAT(writer.error().message(), Catch::Contains(shard.string()));
      CHECK_THAT(writer.error().message(), Catch::Contains("symbolic link"));
    }
  }
  CHECK(store->remove(oid).ok());
  CHECK(snapshot(outside) == outside_before);
  CHECK(fs::is_symlink(shard));
}

TEST_CASE("a symbolic link in place of a partial file is never followed", "[folder][symlink]") {
  temp_dir dir;
  auto store = open_store_at(dir.path / "store");
  const std::string content = make_content(2000, 33);
  const std::string oid = oid_of(content);
  const fs::path victim = dir.path / "victim";
  write_file(victim, "precious");
  const fs::path partial = store->partial_path(oid);
  fs::create_directories(partial.parent_path());
  fs::create_symlink(victim, partial);

  for (bool resume : {false, true}) {
    INFO("resume " << resume);
    auto writer = store->open_write(oid, static_cast<int64_t>(content.size()),
                                    resume ? std::optional<std::string>{""} : std::nullopt);
    REQUIRE_FALSE(writer.ok());
    CHECK(writer.error().code() == errc::path_rejected);
    CHECK_THAT(writer.error().message(), Catch::Contains(partial.string()));
    CHECK_THAT(writer.error().message(), Catch::Contains("symbolic link"));
  }
  CHECK(read_file(victim) == "precious");
  CHECK(fs::is_symlink(partial));
  CHECK_FALSE(is_visible(*store, oid));
  CHECK(list_all(*store).empty());
}

TEST_CASE("the store folder itself may be a symbolic link", "[folder][symlink]") {
  temp_dir dir;
  fs::create_directories(dir.path / "mount" / "lfs");
  fs::create_symlink(dir.path / "mount", dir.path / "linked");
  auto store = open_store_at(dir.path / "linked" / "lfs");
  const std::string content = make_content(5000, 34);
  const std::string oid = oid_of(content);

  REQUIRE(store_object(*store, content).ok());
  const fs::path real_root = dir.path / "mount" / "lfs";
  CHECK(fs::is_regular_file(real_root / oid.substr(0, 2) / oid.substr(2, 2) / oid));
  CHECK(read_object(*store, oid) == content);
  CHECK(is_visible(*store, oid));
  CHECK(list_all(*store) == std::map<std::string, int64_t>{{oid, 5000}});
  CHECK(store->remove(oid).ok());
  CHECK_FALSE(is_visible(*store, oid));
}

TEST_CASE("a store's folders and objects get the user's umask, not the process's",
          "[folder][modes]") {
  temp_dir dir;
  // What ferry's main() does; the umask before it is the user's.
  umask_guard private_files{077};
  const mode_t user = private_files.before;
  const fs::path root = dir.path / "new" / "store";
  auto store = open_store_at(root);
  const std::string content = make_content(100, 35);
  const std::string oid = oid_of(content);
  REQUIRE(store_object(*store, content).ok());

  // The modes a store got before Ferry set its own umask.
  CHECK(mode_of(dir.path / "new") == (0777 & ~user));
  CHECK(mode_of(root) == (0777 & ~user));
  CHECK(mode_of(root / oid.substr(0, 2)) == (0755 & ~user));
  CHECK(mode_of(root / oid.substr(0, 2) / oid.substr(2, 2)) == (0755 & ~user));
  CHECK(mode_of(store->object_path(oid)) == (0644 & ~user));
}
