#include "store/open_store.hpp"
#include "store/os/sha256.hpp"

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using ferry::errc;
using ferry::open_store;
using ferry::proton_store;
using ferry::store_context;
using ferry::testing::env_var;

using ferry::testing::temp_dir;

namespace {

// Stores a small object through `store` and reports where it landed.
fs::path put_probe(ferry::object_store& store) {
  const std::string content = "probe";
  std::string oid = ferry::sha256::of(content.data(), content.size());
  auto writer = store.open_write(oid, static_cast<int64_t>(content.size()), std::nullopt);
  REQUIRE(writer.ok());
  REQUIRE((*writer)->write(content.data(), content.size()).ok());
  REQUIRE((*writer)->commit().ok());
  REQUIRE(store.sync_published().ok());
  return fs::path(oid.substr(0, 2)) / oid.substr(2, 2) / oid;
}

} // namespace

TEST_CASE("file URLs open a folder store", "[open_store]") {
  temp_dir dir;
  fs::path root = dir.path / "lfs";

  auto store = open_store("file://" + root.string());
  INFO(store.error().to_string());
  REQUIRE(store.ok());
  CHECK((*store)->describe() == "file://" + root.string());
  fs::path relative = put_probe(**store);
  CHECK(fs::is_regular_file(root / relative));

  // The scheme is case-insensitive.
  auto upper = open_store("FILE://" + root.string());
  REQUIRE(upper.ok());
  CHECK((*upper)->describe() == "file://" + root.string());
}

TEST_CASE("a bare absolute path opens a folder store", "[open_store]") {
  temp_dir dir;
  fs::path root = dir.path / "bare";
  auto store = open_store(root.string());
  REQUIRE(store.ok());
  CHECK((*store)->describe() == "file://" + root.string());
  CHECK(fs::is_directory(root));
}

TEST_CASE("with create_folder false, a missing folder store is opened empty, not created",
          "[open_store]") {
  temp_dir dir;
  store_context context;
  context.create_folder = false;
  const fs::path root = dir.path / "missing";
  const bool as_file_url = GENERATE(true, false);
  const std::string url = as_file_url ? "file://" + root.string() : root.string();
  INFO(url);

  auto store = open_store(url, context);
  INFO(store.error().to_string());
  REQUIRE(store.ok());
  CHECK((*store)->describe() == "file://" + root.string());
  size_t listed = 0;
  auto walked = (*store)->list([&](const ferry::object_info&) {
    ++listed;
    return true;
  });
  CHECK(walked.ok());
  CHECK(listed == 0);
  CHECK_FALSE(fs::exists(root));
}

TEST_CASE("file URLs are percent-decoded", "[open_store]") {
  temp_dir dir;
  auto store = open_store("file://" + dir.path.string() + "/my%20store%2Bextra");
  INFO(store.error().to_string());
  REQUIRE(store.ok());
  fs::path root = dir.path / "my store+extra";
  CHECK((*store)->describe() == "file://" + root.string());
  fs::path relative = put_probe(**store);
  CHECK(fs::is_regular_file(root / relative));
}

TEST_CASE("malformed percent escapes are refused", "[open_store]") {
  temp_dir dir;
  auto bad = GENERATE(as<std::string>{}, "/a%2", "/a%", "/a%zz", "/a%00b");
  auto store = open_store("file://" + dir.path.string() + bad);
  REQUIRE_FALSE(store.ok());
  CHECK(store.error().code() == errc::config_error);
  // Nothing was created under a half-decoded name.
  CHECK(fs::is_empty(dir.path));
}

TEST_CASE("relative paths are refused", "[open_store]") {
  auto url = GENERATE(as<std::string>{}, "file://relative/store", "file://", "relative/store",
                      "./store", "store");
  INFO("url: " << url);
  auto store = open_store(url);
  REQUIRE_FALSE(store.ok());
  CHECK(store.error().code() == errc::config_error);
  CHECK_THAT(store.error().message(), Catch::Contains("absolute"));
}

TEST_CASE("unknown schemes are refused with the supported list", "[open_store]") {
  auto url = GENERATE(as<std::string>{}, "ftp://example.com/lfs", "lfs+ftp://example.com/lfs",
                      "gdrive://drive/folder");
  INFO("url: " << url);
  auto store = open_store(url);
  REQUIRE_FALSE(store.ok());
  CHECK(store.error().code() == errc::config_error);
  std::string scheme = url.substr(0, url.find("://"));
  CHECK_THAT(store.error().message(),
             Catch::Contains("unsupported store URL scheme '" + scheme + "'"));
  CHECK_THAT(store.error().message(), Catch::Contains("file://"));
  CHECK_THAT(store.error().message(), Catch::Contains("lfs+https://"));
  CHECK_THAT(store.error().message(), Catch::Contains("s3://bucket/prefix"));
  CHECK_THAT(store.error().message(), Catch::Contains("proton://"));
}

TEST_CASE("proton URLs need the bridge's command line", "[open_store]") {
  auto missing = open_store("proton://Team/LFS");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code() == errc::config_error);
  CHECK_THAT(missing.error().message(), Catch::Contains("ferry.proton.command"));

  store_context context;
  context.proton_command = "node '/opt/proton drive/index.js'";
  auto opened = open_store("proton://Team/LFS", context);
  REQUIRE(opened.ok());
  CHECK((*opened)->describe() == "proton://Team/LFS");
  auto* proton = dynamic_cast<proton_store*>(opened->get());
  REQUIRE(proton != nullptr);
  CHECK(proton->bridge().options().command ==
        std::vector<std::string>{"node", "/opt/proton drive/index.js"});

  context.proton_command = "node 'unclosed";
  auto unclosed = open_store("proton://LFS", context);
  REQUIRE_FALSE(unclosed.ok());
  CHECK(unclosed.error().code() == errc::config_error);
  CHECK_THAT(unclosed.error().message(), Catch::Contains("ferry.proton.command"));
}

TEST_CASE("s3 URLs open an S3 store with the keys found for it", "[open_store]") {
  temp_dir home;
  env_var no_home{"HOME", home.path.c_str()};
  env_var no_file{"AWS_SHARED_CREDENTIALS_FILE", nullptr};
  env_var no_profile{"AWS_PROFILE", nullptr};
  env_var no_token{"AWS_SESSION_TOKEN", nullptr};
  const std::string url = "s3://lfs-bucket/team/repo?endpoint=http://127.0.0.1:9";

  SECTION("keys from the environment") {
    env_var id{"AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"};
    env_var secret{"AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"};
    std::vector<std::string> notices;
    store_context context;
    context.cwd = home.path;
    context.notice = [&](const std::string& text) { notices.push_back(text); };
    auto store = open_store(url, context);
    REQUIRE(store.ok());
    CHECK((*store)->describe().rfind("s3://lfs-bucket/team/repo", 0) == 0);
    CHECK((*store)->endpoint() == "127.0.0.1:9");
    REQUIRE(notices.size() == 1);
    CHECK_THAT(notices[0], Catch::Contains("environment"));
    CHECK(notices[0].find("wJalrXUtnFEMI") == std::string::npos);
  }
  SECTION("no keys anywhere: the error says where to put them") {
    env_var id{"AWS_ACCESS_KEY_ID", nullptr};
    env_var secret{"AWS_SECRET_ACCESS_KEY", nullptr};
    store_context context;
    context.cwd = home.path;
    auto store = open_store(url, context);
    REQUIRE_FALSE(store.ok());
    CHECK(store.error().code() == errc::config_error);
    CHECK_THAT(store.error().message(), Catch::Contains("AWS_ACCESS_KEY_ID"));
    CHECK_THAT(store.error().message(), Catch::Contains("git credential"));
  }
  SECTION("a malformed URL names its problem before any key is looked up") {
    auto store = open_store("s3://Bad_Bucket/x");
    REQUIRE_FALSE(store.ok());
    CHECK(store.error().code() == errc::config_error);
    CHECK_THAT(store.error().message(), Catch::Contains("bucket name"));
  }
}

TEST_CASE("an empty store URL explains how to configure one", "[open_store]") {
  auto store = open_store("");
  REQUIRE_FALSE(store.ok());
  CHECK(store.error().code() == errc::config_error);
  CHECK_THAT(store.error().message(), Catch::Contains("no store configured"));
  CHECK_THAT(store.error().message(), Catch::Contains("ferry install --store"));
}

TEST_CASE("a store URL naming a file is refused", "[open_store]") {
  temp_dir dir;
  fs::path file = dir.path / "not-a-dir";
  std::ofstream(file) << "x";
  auto store = open_store("file://" + file.string());
  REQUIRE_FALSE(store.ok());
  CHECK(store.error().code() == errc::config_error);
  CHECK_THAT(store.error().message(), Catch::Contains(file.string()));
}

// -- LFS servers ----------------------------------------------------------------

TEST_CASE("lfs+http(s) URLs name the LFS endpoint itself", "[open_store]") {
  auto store = open_store("LFS+HTTPS://Git.Example.com/team/repo.git/info/lfs/");
  INFO(store.error().to_string());
  REQUIRE(store.ok());
  CHECK((*store)->describe() == "lfs+https://git.example.com/team/repo.git/info/lfs");
  CHECK((*store)->endpoint() == "git.example.com:443");

  auto plain = open_store("lfs+http://127.0.0.1:8080/lfs");
  REQUIRE(plain.ok());
  CHECK((*plain)->describe() == "lfs+http://127.0.0.1:8080/lfs");
  CHECK((*plain)->endpoint() == "127.0.0.1:8080");
}

TEST_CASE("git remote URLs get the endpoint git-lfs derives", "[open_store]") {
  auto remote =
    GENERATE(as<std::string>{}, "https://git.example.com/team/repo",
             "https://git.example.com/team/repo.git", "https://git.example.com/team/repo.git/");
  INFO("remote: " << remote);
  auto store = open_store(remote);
  REQUIRE(store.ok());
  CHECK((*store)->describe() == "lfs+https://git.example.com/team/repo.git/info/lfs");
}

TEST_CASE("store URLs with credentials are refused without repeating them", "[open_store]") {
  auto url =
    GENERATE(as<std::string>{}, "https://alice:s3cret@git.example.com/team/repo.git",
             "lfs+https://alice:s3cret@git.example.com/lfs", "http://s3cret@git.example.com/repo");
  auto store = open_store(url);
  REQUIRE_FALSE(store.ok());
  CHECK(store.error().code() == errc::config_error);
  CHECK_THAT(store.error().message(), Catch::Contains("credential helper"));
  CHECK(store.error().message().find("s3cret") == std::string::npos);
}

TEST_CASE("LFS store URLs without a host, or with a query, are refused", "[open_store]") {
  auto url = GENERATE(as<std::string>{}, "https://", "lfs+https:///path", "https://host:99999/x",
                      "lfs+https://host/lfs?token=abc", "https://host/repo#frag");
  INFO("url: " << url);
  auto store = open_store(url);
  REQUIRE_FALSE(store.ok());
  CHECK(store.error().code() == errc::config_error);
  CHECK(store.error().message().find("token=abc") == std::string::npos);
}

TEST_CASE("lfs_endpoint_from_url accepts only lfs+ URLs", "[open_store]") {
  auto endpoint = ferry::lfs_endpoint_from_url("lfs+http://[::1]:8080/a/b/");
  REQUIRE(endpoint.ok());
  CHECK(*endpoint == "http://[::1]:8080/a/b");
  CHECK(ferry::lfs_endpoint_from_url("https://host/a").error().code() == errc::config_error);
}
