#include "actors/policy/transfer_task.hpp"

#include "fault_store.hpp"
#include "test_support.hpp"

#include "store/folder/folder_store.hpp"
#include "store/os/sha256.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

using namespace ferry;
using ferry::testing::fault_store;
using ferry::testing::temp_dir;

namespace {

std::string some_bytes(size_t size, uint32_t seed) {
  std::mt19937 rng{seed};
  std::string out(size, '\0');
  for (auto& c : out)
    c = static_cast<char>(rng() & 0xff);
  return out;
}

std::string oid_of(const std::string& bytes) { return sha256::of(bytes.data(), bytes.size()); }

/// Writes `bytes` straight to the file a folder store keeps `oid` in,
/// bypassing its verification (a damaged or mislabelled object).
void plant(const folder_store& store, const std::string& oid, const std::string& bytes) {
  auto path = store.object_path(oid);
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out{path, std::ios::binary | std::ios::trunc};
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string contents(const std::filesystem::path& path) {
  std::ifstream in{path, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

std::shared_ptr<folder_store> open_folder(const std::filesystem::path& root) {
  auto store = folder_store::open(root);
  REQUIRE(store);
  return std::shared_ptr<folder_store>{std::move(*store)};
}

/// What one attempt did, driven the way a worker drives it.
struct attempt {
  /// Where start() said the attempt continues; -1 when it failed.
  int64_t started_at = -1;
  /// Bytes the steps moved.
  int64_t moved = 0;
  /// The first failure, from start(), step() or complete().
  status failure;
  /// "start", "step" or "complete": where `failure` came from.
  std::string failed_in;
  /// The task's discard_partial() after the attempt.
  bool discarded = false;
  /// The resume points the steps reported, in order.
  std::vector<int64_t> synced;
};

struct copy_fixture {
  temp_dir scratch;
  std::shared_ptr<folder_store> source = open_folder(scratch.path / "source");
  std::shared_ptr<folder_store> destination = open_folder(scratch.path / "destination");
  engine_config config;

  copy_fixture() {
    config.source = source;
    config.chunk_bytes = 64 << 10;
    config.sync_bytes = 128 << 10;
  }

  /// Stores `bytes` in the source (verified) and returns their oid.
  std::string put_source(const std::string& bytes) {
    auto oid = oid_of(bytes);
    auto writer = source->open_write(oid, static_cast<int64_t>(bytes.size()), std::nullopt);
    REQUIRE(writer);
    REQUIRE((*writer)->write(bytes.data(), bytes.size()).ok());
    REQUIRE((*writer)->commit().ok());
    REQUIRE(source->sync_published().ok());
    return oid;
  }

  /// One copy attempt of `oid` (listed with `size`) into `into` (the
  /// destination unless given), from start() to complete().
  /// `known_absent`: the job says the destination was found without it.
  attempt copy(const std::string& oid, int64_t size, int64_t resume_from = 0,
               std::shared_ptr<object_store> into = nullptr, bool known_absent = false) {
    auto task = make_transfer_task(config, into ? into : destination, oid, direction::copy, size,
                                   "", known_absent);
    REQUIRE(task);
    attempt out;
    auto started = task->start(resume_from, "");
    if (!started) {
      out.failure = started.error();
      out.failed_in = "start";
      return out;
    }
    out.started_at = *started;
    for (int steps = 0;; ++steps) {
      REQUIRE(steps <= size / static_cast<int64_t>(config.chunk_bytes) + 1);
      auto moved = task->step();
      if (!moved) {
        out.failure = moved.error();
        out.failed_in = "step";
        return out;
      }
      out.moved += moved->bytes;
      if (moved->synced) {
        // A resume point covers only bytes already moved (written and hashed).
        CHECK(*moved->synced <= out.started_at + out.moved);
        out.synced.push_back(*moved->synced);
      }
      if (moved->finished)
        break;
    }
    auto completed = task->complete();
    if (!completed) {
      out.failure = completed.error();
      out.failed_in = "complete";
      out.discarded = task->discard_partial();
      return out;
    }
    CHECK(completed->empty());
    // As the journal does once the transfer is reported finished.
    auto published = (into ? into : destination)->sync_published();
    if (!published) {
      out.failure = published.error();
      out.failed_in = "publish";
    } else if (!published->empty()) {
      out.failure = published->front().second;
      out.failed_in = "publish";
    }
    return out;
  }

  /// Checks that `done` failed in `phase` with `code`, saying each of
  /// `says`, and left nothing of `oid` at the destination.
  void check_refused(const attempt& done, const std::string& oid, const char* phase, errc code,
                     const std::vector<std::string>& says) {
    CHECK(done.failed_in == phase);
    CHECK(done.failure.code() == code);
    for (auto& words : says) {
      INFO(done.failure.message());
      CHECK(done.failure.message().find(words) != std::string::npos);
    }
    CHECK_FALSE(published(oid));
    CHECK_FALSE(partial_left(oid));
  }

  bool published(const std::string& oid) {
    return std::filesystem::exists(destination->object_path(oid));
  }
  bool partial_left(const std::string& oid) {
    return std::filesystem::exists(destination->partial_path(oid));
  }
};

} // namespace

TEST_CASE_METHOD(copy_fixture, "a copy streams the source object into the destination, verified",
                 "[copy_task]") {
  auto bytes = some_bytes((300 << 10) + 17, 1);
  auto oid = put_source(bytes);
  auto size = static_cast<int64_t>(bytes.size());

  auto done = copy(oid, size);
  INFO(done.failure.to_string());
  REQUIRE(done.failure.ok());
  CHECK(done.started_at == 0);
  CHECK(done.moved == size);
  CHECK(contents(destination->object_path(oid)) == bytes);
  CHECK_FALSE(partial_left(oid));
  // The source is read, never changed.
  CHECK(contents(source->object_path(oid)) == bytes);
}

TEST_CASE_METHOD(copy_fixture,
                 "a copy continues a destination partial after re-reading and "
                 "hashing the source's prefix",
                 "[copy_task]") {
  auto bytes = some_bytes((400 << 10) + 5, 2);
  auto oid = put_source(bytes);
  auto size = static_cast<int64_t>(bytes.size());
  const int64_t kept = 192 << 10;
  {
    // An interrupted attempt: the writer goes away without commit or abort.
    auto writer = destination->open_write(oid, size, std::nullopt);
    REQUIRE(writer);
    REQUIRE((*writer)->write(bytes.data(), kept).ok());
    REQUIRE((*writer)->sync());
  }
  REQUIRE(std::filesystem::file_size(destination->partial_path(oid)) == kept);
  auto reads = std::make_shared<fault_store>(source, 0, 0);
  config.source = reads;

  SECTION("an intact partial is continued, not sent again") {
    auto done = copy(oid, size, kept);
    INFO(done.failure.to_string());
    REQUIRE(done.failure.ok());
    CHECK(done.started_at == kept);
    // Only the rest moved; the whole hash still matched the oid, so the
    // source's first `kept` bytes were read and hashed again.
    CHECK(done.moved == size - kept);
    CHECK(reads->read_offsets == std::vector<int64_t>{0});
    CHECK(contents(destination->object_path(oid)) == bytes);
    CHECK_FALSE(partial_left(oid));
  }

  SECTION("a damaged partial fails verification, is dropped, and the next attempt starts over") {
    auto partial = destination->partial_path(oid);
    auto damaged = contents(partial);
    damaged[1000] ^= 0x20;
    {
      std::ofstream out{partial, std::ios::binary | std::ios::trunc};
      out.write(damaged.data(), static_cast<std::streamsize>(damaged.size()));
    }
    auto failed = copy(oid, size, kept);
    CHECK(failed.failed_in == "complete");
    // The source verified, so it is the kept data that was bad: retryable.
    CHECK(failed.failure.code() == errc::io_error);
    CHECK(failed.failure.message().find("stored bytes failed verification") != std::string::npos);
    CHECK(failed.discarded);
    CHECK_FALSE(published(oid));
    CHECK_FALSE(partial_left(oid));

    auto again = copy(oid, size, 0);
    INFO(again.failure.to_string());
    REQUIRE(again.failure.ok());
    CHECK(again.moved == size);
    CHECK(contents(destination->object_path(oid)) == bytes);
  }
}

TEST_CASE_METHOD(copy_fixture, "a source object whose bytes do not match its oid is not copied",
                 "[copy_task]") {
  auto listed = some_bytes(200 << 10, 3);
  auto oid = oid_of(listed);
  auto wrong = listed;
  wrong[150 << 10] ^= 0x01;
  plant(*source, oid, wrong);

  auto done = copy(oid, static_cast<int64_t>(listed.size()));
  check_refused(done, oid, "complete", errc::hash_mismatch,
                {"does not match oid " + oid, source->describe()});
}

TEST_CASE_METHOD(copy_fixture, "a source object of another size than listed is not copied",
                 "[copy_task]") {
  auto bytes = some_bytes(100 << 10, 4);
  auto oid = put_source(bytes);
  auto size = static_cast<int64_t>(bytes.size());
  auto listed = GENERATE_COPY(size - 1, size + 1);

  auto done = copy(oid, listed);
  check_refused(done, oid, "start", errc::size_mismatch,
                {std::to_string(size) + " bytes, not the " + std::to_string(listed)});
}

TEST_CASE_METHOD(copy_fixture, "a source object that vanished is reported as not found, by name",
                 "[copy_task]") {
  auto bytes = some_bytes(10 << 10, 5);
  auto oid = put_source(bytes);
  REQUIRE(source->remove(oid).ok());

  auto done = copy(oid, static_cast<int64_t>(bytes.size()));
  // It names the object, the store it was listed in, and what happened.
  check_refused(done, oid, "start", errc::not_found, {oid, source->describe(), "vanished"});
}

TEST_CASE_METHOD(copy_fixture, "a source read error ends the attempt with that error",
                 "[copy_task]") {
  auto bytes = some_bytes(256 << 10, 6);
  auto oid = put_source(bytes);
  // The reader fails once it has handed out one chunk.
  auto failing = std::make_shared<fault_store>(source, 1, 64 << 10);
  failing->failure_code = errc::unavailable;
  config.source = failing;

  auto done = copy(oid, static_cast<int64_t>(bytes.size()));
  CHECK(done.failed_in == "step");
  CHECK(done.failure.code() == errc::unavailable);
  CHECK(done.failure.message().find("injected read failure") != std::string::npos);
  CHECK(done.moved == (64 << 10));
  CHECK_FALSE(published(oid));
}

TEST_CASE_METHOD(copy_fixture, "a destination that already holds the object is left alone",
                 "[copy_task]") {
  auto bytes = some_bytes(150 << 10, 7);
  auto oid = put_source(bytes);
  auto size = static_cast<int64_t>(bytes.size());
  auto writes = std::make_shared<fault_store>(destination, 0, 0);

  SECTION("an intact copy is skipped without a write") {
    plant(*destination, oid, bytes);
    struct stat before {};
    REQUIRE(::stat(destination->object_path(oid).c_str(), &before) == 0);

    auto done = copy(oid, size, 0, writes);
    INFO(done.failure.to_string());
    REQUIRE(done.failure.ok());
    CHECK(done.started_at == size);
    CHECK(done.moved == 0);
    CHECK(writes->opened == 0);
    struct stat after {};
    REQUIRE(::stat(destination->object_path(oid).c_str(), &after) == 0);
    CHECK(after.st_ino == before.st_ino);
  }

  SECTION("a copy told the object is absent does not ask, and writes") {
    plant(*destination, oid, bytes);

    auto done = copy(oid, size, 0, writes, true);
    INFO(done.failure.to_string());
    REQUIRE(done.failure.ok());
    CHECK(done.started_at == 0);
    CHECK(done.moved == size);
    CHECK(writes->opened == 1);
    CHECK(contents(destination->object_path(oid)) == bytes);
  }

  SECTION("a damaged copy of the same size is replaced") {
    auto damaged = bytes;
    damaged[42] ^= 0x10;
    plant(*destination, oid, damaged);

    auto done = copy(oid, size, 0, writes);
    INFO(done.failure.to_string());
    REQUIRE(done.failure.ok());
    CHECK(done.moved == size);
    CHECK(writes->opened == 1);
    CHECK(contents(destination->object_path(oid)) == bytes);
  }
}

// Objects this large are hashed on a second thread while they are written.
constexpr size_t large_object = (9 << 20) + 7;

TEST_CASE_METHOD(copy_fixture, "a large copy is hashed beside its writes and verified",
                 "[copy_task]") {
  config.chunk_bytes = 1 << 20;
  config.sync_bytes = 2 << 20;
  auto bytes = some_bytes(large_object, 8);
  auto oid = put_source(bytes);
  auto size = static_cast<int64_t>(bytes.size());

  auto done = copy(oid, size);
  INFO(done.failure.to_string());
  REQUIRE(done.failure.ok());
  CHECK(done.moved == size);
  CHECK(done.synced == std::vector<int64_t>{2 << 20, 4 << 20, 6 << 20, 8 << 20});
  CHECK(contents(destination->object_path(oid)) == bytes);
  CHECK_FALSE(partial_left(oid));
}

TEST_CASE_METHOD(copy_fixture, "a large copy continues a partial, hashing the kept prefix",
                 "[copy_task]") {
  config.chunk_bytes = 1 << 20;
  auto bytes = some_bytes(large_object, 9);
  auto oid = put_source(bytes);
  auto size = static_cast<int64_t>(bytes.size());
  const int64_t kept = (3 << 20) + 11;
  {
    auto writer = destination->open_write(oid, size, std::nullopt);
    REQUIRE(writer);
    REQUIRE((*writer)->write(bytes.data(), kept).ok());
    REQUIRE((*writer)->sync());
  }

  auto done = copy(oid, size, kept);
  INFO(done.failure.to_string());
  REQUIRE(done.failure.ok());
  CHECK(done.started_at == kept);
  CHECK(done.moved == size - kept);
  CHECK(contents(destination->object_path(oid)) == bytes);
}

TEST_CASE_METHOD(copy_fixture,
                 "a large source object whose bytes do not match its oid is not "
                 "copied",
                 "[copy_task]") {
  config.chunk_bytes = 1 << 20;
  auto listed = some_bytes(large_object, 10);
  auto oid = oid_of(listed);
  auto wrong = listed;
  wrong[(5 << 20) + 3] ^= 0x01;
  plant(*source, oid, wrong);

  auto done = copy(oid, static_cast<int64_t>(listed.size()));
  check_refused(done, oid, "complete", errc::hash_mismatch,
                {"does not match oid " + oid, source->describe()});
}
