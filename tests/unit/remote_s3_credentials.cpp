// find_credentials() and parse_shared_credentials(): the environment, the
// shared credentials file and git credential, with an injected environment,
// a home directory under the test's temp dir and a fake git.

#include "store/s3/s3_credentials.hpp"

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>

namespace fs = std::filesystem;
using ferry::errc;
using ferry::result;
using ferry::s3::credential_lookup;
using ferry::s3::find_credentials;
using ferry::s3::found_credentials;
using ferry::s3::parse_shared_credentials;
using ferry::testing::env_var;
using ferry::testing::temp_dir;

namespace {

constexpr const char* endpoint = "http://127.0.0.1:17480";
// Secrets that must never show up in a message.
constexpr const char* env_secret = "envSECRETenvSECRETenvSECRET";
constexpr const char* file_secret = "fileSECRETfileSECRETfileSECRET";
constexpr const char* git_secret = "gitSECRETgitSECRETgitSECRET";

/// A git credential source with one fixed answer that records what it was
/// asked.
class fake_git final : public ferry::credential_source {
public:
  result<std::optional<ferry::http_credential>> fill(const std::string& url) override {
    ++fills;
    asked_url = url;
    if (!failure.ok())
      return failure;
    return answer;
  }
  void approve(const std::string&, const ferry::http_credential&) override {}
  void reject(const std::string&, const ferry::http_credential&) override {}

  std::optional<ferry::http_credential> answer;
  ferry::status failure;
  int fills = 0;
  std::string asked_url;
};

/// An environment of its own, a home directory under a temp dir and a fake
/// git, none of them the real ones.
struct lookup_fixture {
  lookup_fixture() { REQUIRE(fs::create_directories(home())); }

  fs::path home() const { return dir.path / "home"; }
  fs::path default_file() const { return home() / ".aws" / "credentials"; }

  void write(const fs::path& path, const std::string& text) const {
    fs::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary);
    out << text;
    REQUIRE(out.good());
  }

  credential_lookup lookup() {
    credential_lookup lookup;
    lookup.getenv = [this](const char* name) -> std::optional<std::string> {
      auto found = environment.find(name);
      if (found == environment.end())
        return std::nullopt;
      return found->second;
    };
    lookup.home = home();
    lookup.git = &git;
    return lookup;
  }

  result<found_credentials> find() { return find_credentials(url, lookup()); }

  /// The config_error message of a lookup that must fail; no secret in it.
  std::string refusal() {
    auto found = find();
    REQUIRE_FALSE(found.ok());
    const std::string message = found.error().message();
    INFO(message);
    CHECK(found.error().code() == errc::config_error);
    for (const char* secret : {env_secret, file_secret, git_secret})
      CHECK_THAT(message, !Catch::Contains(secret));
    return message;
  }

  temp_dir dir;
  std::map<std::string, std::string> environment;
  fake_git git;
  ferry::s3::s3_url url =
    ferry::s3::parse_s3_url(std::string("s3://creds-bucket?endpoint=") + endpoint).value();
};

std::string profile_text(const std::string& name, const std::string& id,
                         const std::string& secret) {
  return "[" + name + "]\naws_access_key_id = " + id + "\naws_secret_access_key = " + secret + "\n";
}

/// Parses `text` for `profile`, which must be present and complete.
ferry::s3::credentials parsed(const std::string& text, const std::string& profile) {
  auto keys = parse_shared_credentials(text, profile);
  INFO(keys.error().to_string());
  REQUIRE(keys.ok());
  REQUIRE(keys->has_value());
  return **keys;
}

} // namespace

TEST_CASE("s3 credentials: environment, then file, then git", "[s3-credentials]") {
  lookup_fixture setup;
  setup.environment = {{"AWS_ACCESS_KEY_ID", "ENVKEY"}, {"AWS_SECRET_ACCESS_KEY", env_secret}};
  setup.write(setup.default_file(), profile_text("default", "FILEKEY", file_secret));
  setup.git.answer = ferry::http_credential{"GITKEY", git_secret};

  auto from_env = setup.find();
  REQUIRE(from_env.ok());
  CHECK(from_env->keys.access_key_id == "ENVKEY");
  CHECK(from_env->keys.secret_access_key == env_secret);
  CHECK(from_env->keys.session_token.empty());
  CHECK(from_env->source == "environment (AWS_ACCESS_KEY_ID)");

  setup.environment.clear();
  auto from_file = setup.find();
  REQUIRE(from_file.ok());
  CHECK(from_file->keys.access_key_id == "FILEKEY");
  CHECK(from_file->keys.secret_access_key == file_secret);
  CHECK(from_file->source == setup.default_file().string() + " [profile default]");
  CHECK(setup.git.fills == 0);

  fs::remove(setup.default_file());
  auto from_git = setup.find();
  REQUIRE(from_git.ok());
  CHECK(from_git->keys.access_key_id == "GITKEY");
  CHECK(from_git->keys.secret_access_key == git_secret);
  CHECK(from_git->source == std::string("git credential for ") + endpoint);
  CHECK(setup.git.fills == 1);
  CHECK(setup.git.asked_url == endpoint);
}

TEST_CASE("s3 credentials: half an environment pair names the missing variable",
          "[s3-credentials]") {
  lookup_fixture setup;
  setup.write(setup.default_file(), profile_text("default", "FILEKEY", file_secret));

  setup.environment = {{"AWS_ACCESS_KEY_ID", "ENVKEY"}};
  CHECK_THAT(setup.refusal(), Catch::Contains("AWS_SECRET_ACCESS_KEY is not"));

  // A blank value counts as unset.
  setup.environment = {{"AWS_ACCESS_KEY_ID", " \t"}, {"AWS_SECRET_ACCESS_KEY", env_secret}};
  CHECK_THAT(setup.refusal(), Catch::Contains("AWS_ACCESS_KEY_ID is not"));
  CHECK(setup.git.fills == 0);
}

TEST_CASE("s3 credentials: AWS_PROFILE picks the profile", "[s3-credentials]") {
  lookup_fixture setup;
  setup.write(setup.default_file(), profile_text("default", "DEFAULTKEY", file_secret) +
                                      profile_text("ci", "CIKEY", file_secret));
  setup.environment = {{"AWS_PROFILE", "ci"}};
  auto found = setup.find();
  REQUIRE(found.ok());
  CHECK(found->keys.access_key_id == "CIKEY");
  CHECK(found->source == setup.default_file().string() + " [profile ci]");
}

TEST_CASE("s3 credentials: a profile named by AWS_PROFILE must exist", "[s3-credentials]") {
  lookup_fixture setup;
  setup.write(setup.default_file(), profile_text("default", "DEFAULTKEY", file_secret));
  setup.git.answer = ferry::http_credential{"GITKEY", git_secret};
  setup.environment = {{"AWS_PROFILE", "release"}};
  const std::string message = setup.refusal();
  CHECK_THAT(message, Catch::Contains("AWS_PROFILE"));
  CHECK_THAT(message, Catch::Contains("[release]"));
  CHECK_THAT(message, Catch::Contains(setup.default_file().string()));
  CHECK(setup.git.fills == 0);

  // Without AWS_PROFILE, a file lacking [default] is passed over.
  setup.environment.clear();
  setup.write(setup.default_file(), profile_text("ci", "CIKEY", file_secret));
  auto found = setup.find();
  REQUIRE(found.ok());
  CHECK(found->keys.access_key_id == "GITKEY");
}

TEST_CASE("s3 credentials: AWS_SHARED_CREDENTIALS_FILE replaces the home file",
          "[s3-credentials]") {
  lookup_fixture setup;
  const fs::path other = setup.dir.path / "elsewhere" / "keys.ini";
  setup.write(setup.default_file(), profile_text("default", "HOMEKEY", file_secret));
  setup.write(other, profile_text("default", "OTHERKEY", file_secret));
  setup.environment = {{"AWS_SHARED_CREDENTIALS_FILE", other.string()}};
  auto found = setup.find();
  REQUIRE(found.ok());
  CHECK(found->keys.access_key_id == "OTHERKEY");
  CHECK(found->source == other.string() + " [profile default]");

  // The home file is not a fallback for a named file that does not exist.
  fs::remove(other);
  const std::string message = setup.refusal();
  CHECK_THAT(message, Catch::Contains(other.string()));
  CHECK_THAT(message, !Catch::Contains(setup.default_file().string()));
}

TEST_CASE("s3 credentials: session tokens from the environment and the file", "[s3-credentials]") {
  lookup_fixture setup;
  setup.environment = {{"AWS_ACCESS_KEY_ID", "ENVKEY"},
                       {"AWS_SECRET_ACCESS_KEY", env_secret},
                       {"AWS_SESSION_TOKEN", " envtoken "}};
  auto from_env = setup.find();
  REQUIRE(from_env.ok());
  CHECK(from_env->keys.session_token == "envtoken");

  setup.environment.clear();
  setup.write(setup.default_file(),
              profile_text("default", "FILEKEY", file_secret) + "aws_session_token = filetoken\n");
  auto from_file = setup.find();
  REQUIRE(from_file.ok());
  CHECK(from_file->keys.session_token == "filetoken");
}

TEST_CASE("s3 credentials file: the accepted INI forms", "[s3-credentials]") {
  const std::string text = "# comment\r\n"
                           "; another = comment\r\n"
                           "\r\n"
                           "[ci]\r\n"
                           "  AWS_Access_Key_ID\t=   FIRSTKEY  \r\n"
                           "aws_secret_access_key=first\r\n"
                           "region = eu-west-3\r\n"
                           "[profile other]\r\n"
                           "aws_access_key_id = OTHERKEY\r\n"
                           "aws_secret_access_key = other\r\n"
                           "[ ci ]\r\n"
                           "aws_secret_access_key = a=b # kept";
  auto ci = parsed(text, "ci");
  CHECK(ci.access_key_id == "FIRSTKEY");
  // The later section continues the first, and its key wins.
  CHECK(ci.secret_access_key == "a=b # kept");
  CHECK(ci.session_token.empty());

  // `[profile other]` is a profile named "profile other", not "other".
  CHECK(parsed(text, "profile other").access_key_id == "OTHERKEY");
  auto other = parse_shared_credentials(text, "other");
  REQUIRE(other.ok());
  CHECK_FALSE(other->has_value());
}

TEST_CASE("s3 credentials file: a profile without both keys is an error", "[s3-credentials]") {
  auto empty_secret = parse_shared_credentials("[ci]\naws_access_key_id = KEY\n"
                                               "aws_secret_access_key =\n",
                                               "ci");
  REQUIRE_FALSE(empty_secret.ok());
  CHECK(empty_secret.error().code() == errc::config_error);
  CHECK_THAT(empty_secret.error().message(), Catch::Contains("[ci] has no aws_secret_access_key"));

  auto bare = parse_shared_credentials("[ci]\n", "ci");
  REQUIRE_FALSE(bare.ok());
  CHECK_THAT(bare.error().message(),
             Catch::Contains("aws_access_key_id and aws_secret_access_key"));
}

TEST_CASE("s3 credentials file: malformed lines give the line number, never the text",
          "[s3-credentials]") {
  struct bad_file {
    std::string text;
    std::string line;
  };
  const std::string secret = file_secret;
  const bad_file cases[] = {
    {"[default]\naws_access_key_id = KEY\n" + secret + "\n", "line 3:"},
    {"[default]\r\n\r\n# c\r\naws_secret_access_key: " + secret + "\r\n", "line 4:"},
    {"aws_secret_access_key = " + secret + "\n[default]\n", "line 1:"},
    {"[default]\n= " + secret + "\n", "line 2:"},
    {"[ci]\n[default " + secret + "\n", "line 2:"},
    {"[ci]\n[ ]\n", "line 2:"},
  };
  for (const auto& bad : cases) {
    lookup_fixture setup;
    setup.write(setup.default_file(), bad.text);
    INFO(bad.text);
    const std::string message = setup.refusal();
    CHECK_THAT(message, Catch::Contains(bad.line));
    CHECK_THAT(message, Catch::Contains(setup.default_file().string()));
    CHECK(setup.git.fills == 0);
  }
}

TEST_CASE("s3 credentials: a file that cannot be read is an error naming it", "[s3-credentials]") {
  lookup_fixture setup;
  // A directory where the file should be: it exists but cannot be read.
  REQUIRE(fs::create_directories(setup.default_file()));
  auto found = setup.find();
  REQUIRE_FALSE(found.ok());
  CHECK_THAT(found.error().message(), Catch::Contains(setup.default_file().string()));
  CHECK(setup.git.fills == 0);
}

TEST_CASE("s3 credentials: git is asked last and needs both values", "[s3-credentials]") {
  lookup_fixture setup;
  setup.git.answer = ferry::http_credential{"GITKEY", ""};
  std::string message = setup.refusal();
  CHECK(setup.git.fills == 1);
  CHECK_THAT(message, Catch::Contains("no S3 credentials"));

  setup.git.answer = ferry::http_credential{" ", git_secret};
  setup.refusal();
  CHECK(setup.git.fills == 2);

  setup.git.failure = ferry::status{errc::io_error, "git is missing"};
  auto failed = setup.find();
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.error().code() == errc::io_error);
  CHECK_THAT(failed.error().message(), Catch::Contains("git is missing"));
}

TEST_CASE("s3 credentials: nothing found lists the three places in order", "[s3-credentials]") {
  lookup_fixture setup;
  const std::string message = setup.refusal();
  const size_t environment = message.find("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
  const size_t file = message.find(setup.default_file().string() + " [profile default]");
  const size_t git = message.find("git credential approve");
  REQUIRE(environment != std::string::npos);
  REQUIRE(file != std::string::npos);
  REQUIRE(git != std::string::npos);
  CHECK(environment < file);
  CHECK(file < git);
  CHECK_THAT(message, Catch::Contains("host=127.0.0.1:17480"));
  CHECK_THAT(message, Catch::Contains("protocol=http,"));

  // Without a home directory the message says how to name a file instead.
  credential_lookup homeless = setup.lookup();
  homeless.home.clear();
  homeless.git = nullptr;
  auto found = find_credentials(setup.url, homeless);
  REQUIRE_FALSE(found.ok());
  CHECK_THAT(found.error().message(), Catch::Contains("AWS_SHARED_CREDENTIALS_FILE"));
  CHECK_THAT(found.error().message(), Catch::Contains("not asked here"));
}

TEST_CASE("s3 credentials: from_process reads the process environment and HOME",
          "[s3-credentials]") {
  temp_dir dir;
  env_var home("HOME", dir.path.c_str());
  env_var key("AWS_ACCESS_KEY_ID", "PROCESSKEY");
  env_var unset("AWS_SESSION_TOKEN", nullptr);
  auto lookup = credential_lookup::from_process();
  CHECK(lookup.home == dir.path);
  CHECK(lookup.git == nullptr);
  CHECK(lookup.getenv("AWS_ACCESS_KEY_ID") == std::optional<std::string>("PROCESSKEY"));
  CHECK_FALSE(lookup.getenv("AWS_SESSION_TOKEN").has_value());

  env_var no_home("HOME", nullptr);
  CHECK(credential_lookup::from_process().home.empty());
}
