#include "config/git_config.hpp"

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <unistd.h>

namespace fs = std::filesystem;
using ferry::errc;
using namespace ferry::config;
using ferry::run_git;

using ferry::testing::temp_dir;

using ferry::testing::env_var;

namespace {

/// Isolates git from the user's configuration: HOME is a temp dir, system
/// config is off, and repository discovery stops at the temp root.
class git_sandbox {
public:
  git_sandbox()
      : home_(root_.path / "home"), home_var_("HOME", home_.c_str()),
        nosystem_("GIT_CONFIG_NOSYSTEM", "1"), global_("GIT_CONFIG_GLOBAL", nullptr),
        xdg_("XDG_CONFIG_HOME", nullptr), git_dir_("GIT_DIR", nullptr),
        work_tree_("GIT_WORK_TREE", nullptr), common_dir_("GIT_COMMON_DIR", nullptr),
        parameters_("GIT_CONFIG_PARAMETERS", nullptr), count_("GIT_CONFIG_COUNT", nullptr),
        ceiling_("GIT_CEILING_DIRECTORIES", root_.path.c_str()) {}

  const fs::path& root() const { return root_.path; }
  const fs::path& home() const { return home_; }

  /// Runs git and requires it to succeed.
  std::string git(const std::vector<std::string>& args, const fs::path& cwd) const {
    auto ran = run_git(args, cwd);
    REQUIRE(ran.ok());
    INFO("git stderr: " << ran->err);
    REQUIRE(ran->exit_code == 0);
    return ran->out;
  }

  fs::path init_repo(const std::string& name, bool bare = false) const {
    auto dir = root() / name;
    std::vector<std::string> args{"init", "-q"};
    if (bare)
      args.emplace_back("--bare");
    args.push_back(dir.string());
    git(args, root());
    return dir;
  }

private:
  temp_dir root_;
  fs::path home_;
  env_var home_var_, nosystem_, global_, xdg_, git_dir_, work_tree_, common_dir_, parameters_,
    count_, ceiling_;
};

bool same_path(const fs::path& a, const fs::path& b) {
  return fs::weakly_canonical(a) == fs::weakly_canonical(b);
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream file(path, std::ios::binary | std::ios::app);
  file << text;
  REQUIRE(file.good());
}

} // namespace

TEST_CASE("run_git captures stdout, stderr and the exit code", "[config][git]") {
  git_sandbox sandbox;
  fs::create_directories(sandbox.home());

  auto version = run_git({"--version"});
  REQUIRE(version.ok());
  CHECK(version->exit_code == 0);
  CHECK_THAT(version->out, Catch::StartsWith("git version "));
  CHECK(version->err.empty());

  auto unknown = run_git({"config", "--no-such-option"}, sandbox.root());
  REQUIRE(unknown.ok());
  CHECK(unknown->exit_code == 129);
  CHECK(unknown->out.empty());
  CHECK_THAT(unknown->err, Catch::Contains("no-such-option"));

  auto outside = run_git({"rev-parse", "--git-dir"}, sandbox.root());
  REQUIRE(outside.ok());
  CHECK(outside->exit_code == 128);
  CHECK_THAT(outside->err, Catch::Contains("not a git repository"));
}

TEST_CASE("run_git passes arguments without a shell", "[config][git]") {
  git_sandbox sandbox;
  auto file = sandbox.root() / "plain.cfg";
  std::string value = "$HOME `id` ; | > * \"quoted\"";
  sandbox.git({"config", "--file", file.string(), "a.b", value}, sandbox.root());
  auto read = run_git({"config", "--file", file.string(), "--get", "a.b"}, sandbox.root());
  REQUIRE(read.ok());
  CHECK(read->out == value + "\n");
}

TEST_CASE("run_git reads output larger than a pipe buffer", "[config][git]") {
  git_sandbox sandbox;
  auto file = sandbox.root() / "big.cfg";
  std::string big(300000, 'x');
  write_file(file, "[big]\n\tvalue = " + big + "\n");
  auto read = run_git({"config", "--file", file.string(), "--get", "big.value"}, sandbox.root());
  REQUIRE(read.ok());
  CHECK(read->exit_code == 0);
  CHECK(read->out.size() == big.size() + 1);
  CHECK(read->out == big + "\n");
}

TEST_CASE("run_git in a missing directory is an error", "[config][git]") {
  git_sandbox sandbox;
  auto missing = sandbox.root() / "does" / "not" / "exist";
  auto ran = run_git({"--version"}, missing);
  REQUIRE_FALSE(ran.ok());
  CHECK(ran.error().code() == errc::not_found);
  CHECK_THAT(ran.error().message(), Catch::Contains(missing.string()));
}

TEST_CASE("run_git without git on PATH reports it", "[config][git]") {
  git_sandbox sandbox;
  env_var path{"PATH", sandbox.root().c_str()};
  auto ran = run_git({"--version"});
  REQUIRE_FALSE(ran.ok());
  CHECK(ran.error().code() == errc::not_found);
  CHECK(ran.error().message() == "git is not installed or not on PATH");
}

TEST_CASE("git config values round-trip through set and read", "[config][git]") {
  git_sandbox sandbox;
  auto repo = sandbox.init_repo("repo");

  auto value = GENERATE(as<std::string>{}, "with spaces", "line one\nline two", "a=b=c",
                        "  padded  ", "-starts-with-dash", "# not a comment ; either",
                        "back\\slash \"quotes\"", "tab\there", "");
  REQUIRE(set_git_config("ferry.store", value, false, repo).ok());
  auto config = read_git_config(repo);
  REQUIRE(config.ok());
  REQUIRE(config->count("ferry.store") == 1);
  CHECK(config->at("ferry.store") == value);
}

TEST_CASE("read_git_config lower-cases section and name but not subsection", "[config][git]") {
  git_sandbox sandbox;
  auto repo = sandbox.init_repo("repo");
  REQUIRE(set_git_config("ferry.maxAttempts", "7", false, repo).ok());
  REQUIRE(set_git_config("Branch.MyFeature.Remote", "origin", false, repo).ok());

  auto config = read_git_config(repo);
  REQUIRE(config.ok());
  CHECK(config->at("ferry.maxattempts") == "7");
  CHECK(config->count("ferry.maxAttempts") == 0);
  CHECK(config->at("branch.MyFeature.remote") == "origin");
}

TEST_CASE("read_git_config keeps the last value and reads valueless keys", "[config][git]") {
  git_sandbox sandbox;
  auto repo = sandbox.init_repo("repo");
  write_file(repo / ".git" / "config",
             "[ferry]\n\tstore = first\n\tstore = second\n\tflag\n\tMaxAttempts = 3\n");

  auto config = read_git_config(repo);
  REQUIRE(config.ok());
  CHECK(config->at("ferry.store") == "second");
  REQUIRE(config->count("ferry.flag") == 1);
  CHECK(config->at("ferry.flag").empty());
  CHECK(config->at("ferry.maxattempts") == "3");
}

TEST_CASE("local git config overrides global", "[config][git]") {
  git_sandbox sandbox;
  auto repo = sandbox.init_repo("repo");
  auto outside = sandbox.root() / "outside";
  fs::create_directories(outside);
  fs::create_directories(sandbox.home());

  REQUIRE(set_git_config("ferry.store", "/global store", true, repo).ok());
  CHECK(fs::exists(sandbox.home() / ".gitconfig"));
  REQUIRE(set_git_config("ferry.store", "/local store", false, repo).ok());

  auto inside = read_git_config(repo);
  REQUIRE(inside.ok());
  CHECK(inside->at("ferry.store") == "/local store");

  auto global_only = read_git_config(outside);
  REQUIRE(global_only.ok());
  CHECK(global_only->at("ferry.store") == "/global store");

  REQUIRE(unset_git_config("ferry.store", true, repo).ok());
  auto after = read_git_config(outside);
  REQUIRE(after.ok());
  CHECK(after->count("ferry.store") == 0);
  auto local_still = read_git_config(repo);
  REQUIRE(local_still.ok());
  CHECK(local_still->at("ferry.store") == "/local store");
}

TEST_CASE("read_git_config with no config at all is empty", "[config][git]") {
  git_sandbox sandbox;
  auto config = read_git_config(sandbox.root());
  REQUIRE(config.ok());
  CHECK(config->empty());
}

TEST_CASE("read_git_config reports a broken config file", "[config][git]") {
  git_sandbox sandbox;
  auto repo = sandbox.init_repo("repo");
  write_file(repo / ".git" / "config", "[ferry\n\tstore = x\n");

  auto config = read_git_config(repo);
  REQUIRE_FALSE(config.ok());
  CHECK(config.error().code() == errc::io_error);
  CHECK_THAT(config.error().message(), Catch::Contains("bad config line"));
}

TEST_CASE("set_git_config replaces every existing value", "[config][git]") {
  git_sandbox sandbox;
  auto repo = sandbox.init_repo("repo");
  sandbox.git({"config", "--add", "ferry.store", "one"}, repo);
  sandbox.git({"config", "--add", "ferry.store", "two"}, repo);

  REQUIRE(set_git_config("ferry.store", "three", false, repo).ok());
  auto all = sandbox.git({"config", "--get-all", "ferry.store"}, repo);
  CHECK(all == "three\n");
}

TEST_CASE("set_git_config reports git's errors", "[config][git]") {
  git_sandbox sandbox;
  auto repo = sandbox.init_repo("repo");

  SECTION("an invalid key") {
    auto set = set_git_config("nodot", "x", false, repo);
    CHECK(set.code() == errc::io_error);
    CHECK_THAT(set.message(), Catch::StartsWith("cannot set nodot in git config: "));
    CHECK_THAT(set.message(), Catch::Contains("key does not contain a section"));
  }
  SECTION("local config outside a repository") {
    auto outside = sandbox.root() / "outside";
    fs::create_directories(outside);
    auto set = set_git_config("ferry.store", "x", false, outside);
    CHECK(set.code() == errc::io_error);
    CHECK_THAT(set.message(), Catch::Contains("not in a git directory"));
  }
  SECTION("a missing directory") {
    auto set = set_git_config("ferry.store", "x", false, sandbox.root() / "missing");
    CHECK(set.code() == errc::not_found);
  }
}

TEST_CASE("unset_git_config removes every value and accepts absent keys", "[config][git]") {
  git_sandbox sandbox;
  auto repo = sandbox.init_repo("repo");
  sandbox.git({"config", "--add", "ferry.store", "one"}, repo);
  sandbox.git({"config", "--add", "ferry.store", "two"}, repo);

  REQUIRE(unset_git_config("ferry.store", false, repo).ok());
  auto config = read_git_config(repo);
  REQUIRE(config.ok());
  CHECK(config->count("ferry.store") == 0);

  CHECK(unset_git_config("ferry.store", false, repo).ok());
  // git cannot even look when HOME is missing; that is worth reporting.
  auto no_home = unset_git_config("ferry.never", true, repo);
  CHECK(no_home.code() == errc::io_error);
  CHECK_THAT(no_home.message(), Catch::Contains(".gitconfig"));
  fs::create_directories(sandbox.home());
  CHECK(unset_git_config("ferry.never", true, repo).ok());
  CHECK_FALSE(fs::exists(sandbox.home() / ".gitconfig"));

  auto bad = unset_git_config("nodot", false, repo);
  CHECK(bad.code() == errc::io_error);
  CHECK_THAT(bad.message(), Catch::StartsWith("cannot unset nodot in git config: "));
}

TEST_CASE("discover_repo finds a repository from its root and subdirectories", "[config][git]") {
  git_sandbox sandbox;
  auto repo = sandbox.init_repo("repo");
  auto sub = repo / "a" / "b";
  fs::create_directories(sub);

  // Each pass has a sandbox of its own, so the generator picks which of this
  // pass's paths to use (generated paths would be the first pass's).
  const bool from_subdirectory = GENERATE(false, true);
  const fs::path from = from_subdirectory ? sub : repo;
  auto paths = discover_repo(from);
  REQUIRE(paths.ok());
  CHECK(same_path(paths->top_level, repo));
  CHECK(paths->top_level.is_absolute());
  CHECK(same_path(paths->git_dir, repo / ".git"));
  CHECK(paths->common_dir.is_absolute());
  CHECK(paths->common_dir == repo / ".git");
  CHECK(paths->lfs_dir == repo / ".git" / "lfs");
}

TEST_CASE("discover_repo uses the current directory by default", "[config][git]") {
  git_sandbox sandbox;
  auto repo = sandbox.init_repo("repo");
  auto sub = repo / "sub";
  fs::create_directories(sub);

  auto old = fs::current_path();
  fs::current_path(sub);
  auto paths = discover_repo();
  fs::current_path(old);
  REQUIRE(paths.ok());
  CHECK(paths->common_dir == repo / ".git");
  CHECK(paths->lfs_dir == repo / ".git" / "lfs");
}

TEST_CASE("discover_repo handles a bare repository", "[config][git]") {
  git_sandbox sandbox;
  auto bare = sandbox.init_repo("bare.git", true);

  auto paths = discover_repo(bare);
  REQUIRE(paths.ok());
  CHECK(paths->top_level.empty());
  CHECK(same_path(paths->git_dir, bare));
  CHECK(paths->common_dir == bare);
  CHECK(paths->lfs_dir == bare / "lfs");
}

TEST_CASE("discover_repo shares the common dir with a linked worktree", "[config][git]") {
  git_sandbox sandbox;
  auto repo = sandbox.init_repo("repo");
  sandbox.git({"-c", "user.name=Test", "-c", "user.email=test@example.com", "commit", "-q",
               "--allow-empty", "-m", "init"},
              repo);
  auto tree = sandbox.root() / "tree";
  sandbox.git({"worktree", "add", "-q", tree.string()}, repo);

  auto paths = discover_repo(tree);
  REQUIRE(paths.ok());
  CHECK(same_path(paths->top_level, tree));
  CHECK(same_path(paths->git_dir, repo / ".git" / "worktrees" / "tree"));
  CHECK(same_path(paths->common_dir, repo / ".git"));
  CHECK(same_path(paths->lfs_dir, repo / ".git" / "lfs"));
}

TEST_CASE("discover_repo honours lfs.storage", "[config][git]") {
  git_sandbox sandbox;
  auto repo = sandbox.init_repo("repo");
  auto sub = repo / "sub";
  fs::create_directories(sub);

  SECTION("relative to the common dir") {
    REQUIRE(set_git_config("lfs.storage", "../lfs-objects", false, repo).ok());
    auto paths = discover_repo(sub);
    REQUIRE(paths.ok());
    CHECK(paths->lfs_dir == repo / "lfs-objects");
  }
  SECTION("absolute") {
    auto elsewhere = sandbox.root() / "shared lfs";
    REQUIRE(set_git_config("lfs.storage", elsewhere.string(), false, repo).ok());
    auto paths = discover_repo(sub);
    REQUIRE(paths.ok());
    CHECK(paths->lfs_dir == elsewhere);
  }
}

TEST_CASE("discover_repo outside a repository is not_found", "[config][git]") {
  git_sandbox sandbox;
  auto outside = sandbox.root() / "plain";
  fs::create_directories(outside);

  auto paths = discover_repo(outside);
  REQUIRE_FALSE(paths.ok());
  CHECK(paths.error().code() == errc::not_found);
  CHECK(paths.error().message() == "not inside a git repository (" + outside.string() + ")");
}

TEST_CASE("git runs in a given environment instead of the process's", "[config][git]") {
  git_sandbox sandbox;
  fs::create_directories(sandbox.home());
  auto repo = sandbox.init_repo("repo");
  // The agent's global config is a file of its own; the process's has none.
  auto agent_config = sandbox.root() / "agent.gitconfig";
  write_file(agent_config,
             "[ferry]\n\tstore = file:///agent-store\n[lfs]\n\tstorage = /agent-lfs\n");
  git_environment agent{{"PATH=" + std::string{std::getenv("PATH")},
                         "HOME=" + sandbox.home().string(), "GIT_CONFIG_NOSYSTEM=1",
                         "GIT_CONFIG_GLOBAL=" + agent_config.string(),
                         "GIT_CEILING_DIRECTORIES=" + sandbox.root().string()}};

  auto own = read_git_config(repo);
  REQUIRE(own.ok());
  CHECK(own->count("ferry.store") == 0);
  auto theirs = read_git_config(repo, agent);
  REQUIRE(theirs.ok());
  CHECK(theirs->at("ferry.store") == "file:///agent-store");

  auto paths = discover_repo(repo, agent);
  REQUIRE(paths.ok());
  CHECK(paths->lfs_dir == fs::path{"/agent-lfs"});
  CHECK(discover_repo(repo)->lfs_dir != fs::path{"/agent-lfs"});

  // A variable only the process has does not reach git run in the agent's.
  env_var process_only{"GIT_CONFIG_PARAMETERS", "'ferry.logfile=/process.log'"};
  CHECK(read_git_config(repo)->count("ferry.logfile") == 1);
  CHECK(read_git_config(repo, agent)->count("ferry.logfile") == 0);
}
