// Keys rotated while a store is open (as the daemon keeps it): a user of
// the fixture's radosgw gets a second key, the AWS shared credentials file is
// rewritten with it and the first key is deleted; the next operations through
// the same open store must succeed.

#include "store/open_store.hpp"
#include "store/os/sha256.hpp"

#include <catch2/catch.hpp>

#include "s3_support.hpp"
#include "test_support.hpp"

#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

using ferry::errc;
using ferry::object_store;
using namespace ferry::testing;

namespace {

/// A radosgw user of this test alone, whose keys radosgw-admin replaces. The
/// fixture's user is left alone, so other tests keep working.
class rotating_user {
public:
  explicit rotating_user(const temp_dir& dir)
      : conf_(detail::fixture_variable("FERRY_RADOSGW_CONF")), dir_(dir.path),
        uid_("ferry-rotate-" + std::to_string(::getpid())) {}

  /// Makes `keys` (access key, secret) the user's only keys. The user
  /// document goes to radosgw-admin on stdin, never on a command line.
  void set_keys(const std::vector<ferry::s3::credentials>& keys) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& key : keys)
      list.push_back(
        {{"user", uid_}, {"access_key", key.access_key_id}, {"secret_key", key.secret_access_key}});
    nlohmann::json user = {{"key", "user:" + uid_},
                           {"ver", {{"tag", ""}, {"ver", 0}}},
                           {"mtime", "2024-01-01 00:00:00.000000Z"},
                           {"data",
                            {{"user_id", uid_},
                             {"display_name", uid_},
                             {"keys", list},
                             {"max_buckets", 1000},
                             {"op_mask", "read, write, delete"},
                             {"type", "rgw"}}}};
    const auto input = dir_ / "user.json";
    std::ofstream(input) << user.dump();
    const auto output = dir_ / "radosgw-admin.out";
    const std::string command = "radosgw-admin -c '" + conf_ + "' metadata put user:" + uid_ +
                                " < '" + input.string() + "' > '" + output.string() + "' 2>&1";
    int exit_code = std::system(command.c_str());
    std::ifstream said(output);
    std::stringstream text;
    text << said.rdbuf();
    INFO("radosgw-admin said: " << text.str());
    REQUIRE(exit_code == 0);
  }

private:
  std::string conf_;
  std::filesystem::path dir_;
  std::string uid_;
};

void write_credentials_file(const std::filesystem::path& path, const ferry::s3::credentials& keys) {
  std::ofstream(path) << "[default]\naws_access_key_id = " << keys.access_key_id
                      << "\naws_secret_access_key = " << keys.secret_access_key << "\n";
}

ferry::status put(object_store& store, const std::string& content) {
  const std::string oid = ferry::sha256::of(content.data(), content.size());
  auto writer = store.open_write(oid, static_cast<int64_t>(content.size()), std::nullopt);
  if (!writer)
    return writer.error();
  if (auto written = (*writer)->write(content.data(), content.size()); !written)
    return written;
  return (*writer)->commit();
}

std::string get(object_store& store, const std::string& content) {
  auto reader = store.open_read(ferry::sha256::of(content.data(), content.size()), 0);
  REQUIRE(reader.ok());
  std::string out;
  char chunk[4096];
  while (true) {
    auto got = (*reader)->read(chunk, sizeof chunk);
    REQUIRE(got.ok());
    if (*got == 0)
      return out;
    out.append(chunk, static_cast<size_t>(*got));
  }
}

} // namespace

TEST_CASE("s3 key rotation: an open store reads rotated keys from the credentials file",
          "[s3_keys]") {
  no_proxy loopback;
  s3_peer peer = radosgw_peer();
  temp_dir dir;
  rotating_user user(dir);
  const std::string pid = std::to_string(::getpid());
  const ferry::s3::credentials first{"ROTATEFIRST" + pid, "first-secret-" + pid, ""};
  const ferry::s3::credentials second{"ROTATESECOND" + pid, "second-secret-" + pid, ""};
  const ferry::s3::credentials third{"ROTATETHIRD" + pid, "third-secret-" + pid, ""};
  user.set_keys({first});
  const auto file = dir.path / "credentials";
  write_credentials_file(file, first);

  s3_peer as_user = peer;
  as_user.keys = first;
  const std::string bucket = fresh_bucket(as_user, "rotate");
  ferry::store_context context;
  context.environment = std::map<std::string, std::string>{
    {"HOME", dir.path.string()}, {"AWS_SHARED_CREDENTIALS_FILE", file.string()}};
  auto opened = ferry::open_store("s3://" + bucket + "/lfs?endpoint=" + peer.endpoint, context);
  REQUIRE(opened.ok());
  object_store& store = **opened;

  const std::string before = std::string(100 << 10, 'b') + "before";
  REQUIRE(put(store, before).ok());

  // Rotation: the new key added, the file rewritten, the old key deleted.
  user.set_keys({first, second});
  write_credentials_file(file, second);
  user.set_keys({second});
  auto old_key = bucket_client(as_user, bucket)->call("listing", "GET", "", {});
  REQUIRE_FALSE(old_key.ok());
  CHECK_THAT(old_key.error().message(), Catch::Contains("InvalidAccessKeyId"));

  // The same open store: a check (signed again at once), then a download.
  auto found = store.stat(ferry::sha256::of(before.data(), before.size()));
  INFO((found.ok() ? std::string{} : found.error().to_string()));
  REQUIRE(found.ok());
  REQUIRE(found->has_value());
  CHECK((*found)->size == static_cast<int64_t>(before.size()));
  CHECK(get(store, before) == before);

  // Rotated again while nothing ran: the next upload streams its body, so
  // its first attempt fails retryably and the retry succeeds.
  user.set_keys({second, third});
  write_credentials_file(file, third);
  user.set_keys({third});
  const std::string after = std::string(100 << 10, 'a') + "after";
  auto refused = put(store, after);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.code() == errc::unavailable);
  CHECK_THAT(refused.message(), !Catch::Contains("third-secret"));
  REQUIRE(put(store, after).ok());
  CHECK(get(store, after) == after);

  // Refused keys that did not change: the failure names the file, not the key.
  user.set_keys({second});
  auto stale = store.stat(ferry::sha256::of(after.data(), after.size()));
  REQUIRE_FALSE(stale.ok());
  CHECK(stale.error().code() == errc::permission_denied);
  CHECK_THAT(stale.error().message(),
             Catch::Contains("the keys from " + file.string() + " [profile default] were refused"));
  CHECK_THAT(stale.error().message(), !Catch::Contains("third-secret"));
}
