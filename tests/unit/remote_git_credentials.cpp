// git_credentials() against the real `git credential`, with a helper script
// configured in a throw-away repository and HOME.

#include "config/git_config.hpp"
#include "store/lfs/lfs_store.hpp"

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace fs = std::filesystem;
using ferry::errc;
using ferry::testing::env_var;
using ferry::testing::temp_dir;

namespace {

/// A repository whose only credential helper is a script that records every
/// call and, when `answers`, hands out alice / s3cret.
struct credential_repo {
  explicit credential_repo(bool answers) {
    REQUIRE(fs::create_directories(dir.path / "home"));
    REQUIRE(fs::create_directories(dir.path / "repo"));
    auto init = ferry::run_git({"init", "-q"}, repo());
    REQUIRE(init.ok());
    REQUIRE(init->exit_code == 0);

    const fs::path helper = dir.path / "helper.sh";
    {
      std::ofstream script(helper);
      script << "#!/bin/sh\n"
             << "echo \"action=$1\" >> '" << log().string() << "'\n"
             << "cat >> '" << log().string() << "'\n";
      if (answers)
        script << "if [ \"$1\" = get ]; then printf 'username=alice\\npassword=s3cret\\n'; fi\n";
    }
    REQUIRE(::chmod(helper.c_str(), 0755) == 0);
    REQUIRE(
      ferry::config::set_git_config("credential.helper", helper.string(), false, repo()).ok());
  }

  fs::path repo() const { return dir.path / "repo"; }
  fs::path log() const { return dir.path / "helper.log"; }

  std::string logged() const {
    std::ifstream in(log());
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  temp_dir dir;
  // Nothing from the user's own configuration may take part.
  env_var home{"HOME", (dir.path / "home").c_str()};
  env_var xdg{"XDG_CONFIG_HOME", (dir.path / "home" / ".config").c_str()};
  env_var no_system{"GIT_CONFIG_NOSYSTEM", "1"};
  env_var askpass{"GIT_ASKPASS", nullptr};
  env_var ssh_askpass{"SSH_ASKPASS", nullptr};
  // git_credentials() must turn prompting off by itself.
  env_var prompt{"GIT_TERMINAL_PROMPT", "1"};
};

} // namespace

TEST_CASE("git_credentials fills from the configured helper", "[git_credentials]") {
  credential_repo setup(true);
  auto source = ferry::git_credentials(setup.repo());
  auto filled = source->fill("https://git.example.com:8443/team/repo.git/info/lfs");
  INFO(filled.error().to_string());
  REQUIRE(filled.ok());
  REQUIRE(filled->has_value());
  CHECK((*filled)->username == "alice");
  CHECK((*filled)->password == "s3cret");

  const std::string asked = setup.logged();
  CHECK_THAT(asked, Catch::Contains("action=get"));
  CHECK_THAT(asked, Catch::Contains("protocol=https"));
  CHECK_THAT(asked, Catch::Contains("host=git.example.com:8443"));
}

TEST_CASE("git_credentials passes approve and reject to the helper", "[git_credentials]") {
  credential_repo setup(true);
  auto source = ferry::git_credentials(setup.repo());
  const std::string url = "https://git.example.com/team/repo.git/info/lfs";
  source->approve(url, {"alice", "s3cret"});
  std::string after_approve = setup.logged();
  CHECK_THAT(after_approve, Catch::Contains("action=store"));
  CHECK_THAT(after_approve, Catch::Contains("username=alice"));
  CHECK_THAT(after_approve, Catch::Contains("password=s3cret"));
  CHECK_THAT(after_approve, Catch::Contains("host=git.example.com"));

  source->reject(url, {"alice", "s3cret"});
  CHECK_THAT(setup.logged(), Catch::Contains("action=erase"));
}

TEST_CASE("a missing credential is an answer, not a prompt", "[git_credentials]") {
  credential_repo setup(false);
  auto filled = ferry::git_credentials(setup.repo())->fill("http://127.0.0.1:9/repo.git/info/lfs");
  INFO(filled.error().to_string());
  REQUIRE(filled.ok());
  CHECK_FALSE(filled->has_value());
  // The helper was asked; git then gave up instead of prompting.
  CHECK_THAT(setup.logged(), Catch::Contains("action=get"));
}

TEST_CASE("credentials that would break the credential protocol are not passed on",
          "[git_credentials]") {
  credential_repo setup(true);
  auto source = ferry::git_credentials(setup.repo());
  source->approve("https://git.example.com/x", {"alice\nhost=evil.example.com", "s3cret"});
  CHECK_THAT(setup.logged(), !Catch::Contains("evil.example.com"));
  auto bad_url = source->fill("not a url");
  REQUIRE_FALSE(bad_url.ok());
  CHECK(bad_url.error().code() == errc::config_error);
}
