#include "actors/policy/transfer_task.hpp"

#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <fstream>

using ferry::prune_download_dir;
using ferry::testing::temp_dir;

namespace {

void touch(const std::filesystem::path& path) { std::ofstream{path} << "x"; }

} // namespace

TEST_CASE("prune_download_dir keeps only resumable partial downloads", "[transfer_task]") {
  temp_dir tmp;
  const std::string kept(64, 'a');
  const std::string stale(64, 'b');
  touch(tmp.path / (kept + ".part"));  // the journal still has this download
  touch(tmp.path / (stale + ".part")); // nothing will resume it
  touch(tmp.path / stale);             // verified, but git-lfs never took it
  std::filesystem::create_directory(tmp.path / "not-a-file");

  CHECK(prune_download_dir(tmp.path, {kept}) == 2);
  CHECK(std::filesystem::exists(tmp.path / (kept + ".part")));
  CHECK_FALSE(std::filesystem::exists(tmp.path / (stale + ".part")));
  CHECK_FALSE(std::filesystem::exists(tmp.path / stale));
  CHECK(std::filesystem::exists(tmp.path / "not-a-file"));
}

TEST_CASE("prune_download_dir tolerates a missing directory", "[transfer_task]") {
  temp_dir tmp;
  CHECK(prune_download_dir(tmp.path / "absent", {}) == 0);
}
