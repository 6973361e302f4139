#include "store/inventory_sources.hpp"

#include "store/os/git_command.hpp"

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using ferry::errc;
using ferry::object_info;
using ferry::read_inventory_file;
using ferry::read_repo_pointers;
using ferry::testing::env_var;
using ferry::testing::temp_dir;

namespace {

/// A hex oid made of one repeated digit (0-15), distinct per digit.
std::string oid_of_digit(int digit) { return std::string(64, "0123456789abcdef"[digit]); }

std::string pointer_text(int digit, int64_t size) {
  return "version https://git-lfs.github.com/spec/v1\noid sha256:" + oid_of_digit(digit) +
         "\nsize " + std::to_string(size) + "\n";
}

void write_file(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << text;
  REQUIRE(file.good());
}

/// Git repositories under a temp dir, with git kept from the user's
/// configuration and from finding a repository above the temp dir.
class git_workshop {
public:
  git_workshop()
      : home_("HOME", root_.path.c_str()), no_system_("GIT_CONFIG_NOSYSTEM", "1"),
        global_("GIT_CONFIG_GLOBAL", "/dev/null"), git_dir_("GIT_DIR", nullptr),
        work_tree_("GIT_WORK_TREE", nullptr),
        ceiling_("GIT_CEILING_DIRECTORIES", root_.path.c_str()) {}

  const fs::path& root() const { return root_.path; }

  /// Runs git in `cwd`, requires success, returns stdout without its
  /// final newline.
  std::string git(const fs::path& cwd, const std::vector<std::string>& args,
                  const std::string& input = {}) const {
    ferry::git_run_options options;
    options.input = input;
    options.environment = {"GIT_AUTHOR_NAME=Ferry Test", "GIT_AUTHOR_EMAIL=test@ferry.invalid",
                           "GIT_COMMITTER_NAME=Ferry Test",
                           "GIT_COMMITTER_EMAIL=test@ferry.invalid"};
    auto ran = ferry::run_git(args, cwd, options);
    REQUIRE(ran.ok());
    INFO("git " << args.front() << ": " << ran->err);
    REQUIRE(ran->exit_code == 0);
    std::string out = ran->out;
    if (!out.empty() && out.back() == '\n')
      out.pop_back();
    return out;
  }

  void commit_all(const fs::path& repo, const std::string& message) const {
    git(repo, {"add", "-A"});
    git(repo, {"commit", "-q", "-m", message});
  }

private:
  temp_dir root_;
  env_var home_, no_system_, global_, git_dir_, work_tree_, ceiling_;
};

/// Pointers by oid, as read_repo_pointers reports them.
std::map<std::string, int64_t> pointers_in(const fs::path& repo) {
  std::map<std::string, int64_t> found;
  auto read = read_repo_pointers(repo, [&](const object_info& object) {
    found[object.oid] = object.size;
    return true;
  });
  INFO(read.to_string());
  REQUIRE(read.ok());
  return found;
}

/// A working repository with the history every repository test reads:
///   main:  commit 1 (pointer 1 in a subdirectory, a small text file, a big
///          file that starts like a pointer), commit 2 (pointer 1 replaced
///          by pointer 2)
///   side:  from commit 1, adds pointer 3
///   tag v1 (annotated): a commit on no branch, adding pointer 4
///   unreachable: a blob holding pointer 5
class history_fixture {
public:
  history_fixture() : repo(git.root() / "work") {
    git.git(git.root(), {"init", "-q", "-b", "main", repo.string()});
    write_file(repo / "assets" / "one.bin", pointer_text(1, 1001));
    write_file(repo / "README.txt", "not a pointer\n");
    write_file(repo / "big.bin", pointer_text(6, 6006) + std::string(2048, 'x'));
    git.commit_all(repo, "first");
    std::string first = git.git(repo, {"rev-parse", "HEAD"});

    write_file(repo / "assets" / "one.bin", pointer_text(2, 2002));
    git.commit_all(repo, "second");

    git.git(repo, {"checkout", "-q", "-b", "side", first});
    write_file(repo / "three.bin", pointer_text(3, 3003));
    git.commit_all(repo, "side");

    git.git(repo, {"checkout", "-q", "--detach", first});
    write_file(repo / "four.bin", pointer_text(4, 4004));
    git.commit_all(repo, "tagged only");
    git.git(repo, {"tag", "-a", "-m", "release", "v1"});
    git.git(repo, {"checkout", "-q", "main"});

    std::string loose = git.git(repo, {"hash-object", "-w", "--stdin"}, pointer_text(5, 5005));
    REQUIRE(loose.size() == 40);
  }

protected:
  git_workshop git;
  fs::path repo;
  /// The pointers reachable from refs.
  const std::map<std::string, int64_t> reachable = {{oid_of_digit(1), 1001},
                                                    {oid_of_digit(2), 2002},
                                                    {oid_of_digit(3), 3003},
                                                    {oid_of_digit(4), 4004}};
};

/// Every child process of this process (running or not yet reaped).
std::multiset<std::string> child_processes() {
  std::multiset<std::string> children;
  fs::path tasks = "/proc/self/task";
  std::error_code ec;
  for (const auto& task : fs::directory_iterator(tasks, ec)) {
    std::ifstream list(task.path() / "children");
    std::string pid;
    while (list >> pid)
      children.insert(pid);
  }
  return children;
}

} // namespace

TEST_CASE_METHOD(history_fixture,
                 "read_repo_pointers finds pointers reachable from every ref and nothing else") {
  CHECK(pointers_in(repo) == reachable);
}

TEST_CASE_METHOD(history_fixture, "read_repo_pointers reads a bare repository") {
  auto bare = git.root() / "bare.git";
  git.git(git.root(), {"clone", "-q", "--bare", repo.string(), bare.string()});
  CHECK(pointers_in(bare) == reachable);
}

TEST_CASE_METHOD(history_fixture,
                 "read_repo_pointers reads the repository it is given, whatever GIT_DIR says") {
  auto other = git.root() / "other";
  git.git(git.root(), {"init", "-q", other.string()});
  env_var elsewhere("GIT_DIR", (other / ".git").c_str());
  CHECK(pointers_in(repo) == reachable);
}

TEST_CASE_METHOD(history_fixture, "read_repo_pointers still finds pointers a replace ref hides") {
  // With replacements honoured, main's history would run through `side`
  // instead of the second commit, and pointer 2 would be missed.
  git.git(repo, {"replace", "main", "side"});
  CHECK(pointers_in(repo) == reachable);
}

TEST_CASE("read_repo_pointers reads nothing from a repository without commits") {
  git_workshop git;
  auto repo = git.root() / "empty";
  git.git(git.root(), {"init", "-q", repo.string()});
  CHECK(pointers_in(repo).empty());
}

TEST_CASE("read_repo_pointers reports git's complaint as a configuration error") {
  git_workshop git;
  auto plain = git.root() / "plain";
  fs::create_directories(plain);
  int visits = 0;
  auto count = [&](const object_info&) {
    ++visits;
    return true;
  };

  auto not_repo = read_repo_pointers(plain, count);
  CHECK(not_repo.code() == errc::config_error);
  CHECK_THAT(not_repo.message(), Catch::Contains("not a git repository"));
  CHECK_THAT(not_repo.message(), Catch::Contains(plain.string()));
  // Trimmed: no newline of git's left at the end.
  CHECK(not_repo.message().back() != '\n');

  auto missing = read_repo_pointers(git.root() / "absent", count);
  CHECK(missing.code() == errc::config_error);
  CHECK_THAT(missing.message(), Catch::Contains("absent"));

  auto unnamed = read_repo_pointers("", count);
  CHECK(unnamed.code() == errc::config_error);
  CHECK(visits == 0);
}

TEST_CASE("read_repo_pointers stops when visit says so and leaves no git behind") {
  git_workshop git;
  auto repo = git.root() / "many";
  git.git(git.root(), {"init", "-q", repo.string()});
  for (int digit = 0; digit < 16; ++digit)
    write_file(repo / ("p" + std::to_string(digit)), pointer_text(digit, digit + 1));
  git.commit_all(repo, "sixteen pointers");
  REQUIRE(pointers_in(repo).size() == 16);

  auto before = child_processes();
  int visits = 0;
  auto read = read_repo_pointers(repo, [&](const object_info&) { return ++visits < 2; });
  CHECK(read.ok());
  CHECK(visits == 2);
  CHECK(child_processes() == before);
}

TEST_CASE("read_inventory_file reads oid and size lines") {
  temp_dir dir;
  auto file = dir.path / "inventory.txt";
  std::string upper = "ABCDEF" + oid_of_digit(9).substr(6);
  write_file(file, "# objects to copy\n"
                   "\n" +
                     oid_of_digit(1) + " 10\n" +
                     "   \n"
                     "  # an indented comment\n" +
                     oid_of_digit(2) + "\t\t0\r\n" + upper + "  9223372036854775807");

  std::vector<object_info> seen;
  auto read = read_inventory_file(file, [&](const object_info& object) {
    seen.push_back(object);
    return true;
  });
  INFO(read.to_string());
  REQUIRE(read.ok());
  REQUIRE(seen.size() == 3);
  CHECK(seen[0].oid == oid_of_digit(1));
  CHECK(seen[0].size == 10);
  CHECK(seen[1].oid == oid_of_digit(2));
  CHECK(seen[1].size == 0);
  CHECK(seen[2].oid == "abcdef" + oid_of_digit(9).substr(6));
  CHECK(seen[2].size == 9223372036854775807);
}

TEST_CASE("read_inventory_file names the first malformed line and reads nothing after it") {
  const std::vector<std::pair<const char*, std::string>> malformed = {
    {"no size", oid_of_digit(3)},
    {"a negative size", oid_of_digit(3) + " -1"},
    {"a size with a sign", oid_of_digit(3) + " +1"},
    {"a size past int64", oid_of_digit(3) + " 9223372036854775808"},
    {"a size that is not a number", oid_of_digit(3) + " 12k"},
    {"a third field", oid_of_digit(3) + " 12 extra"},
    {"a short oid", oid_of_digit(3).substr(1) + " 12"},
    {"a long oid", oid_of_digit(3) + "0 12"},
    {"a non-hex oid", "g" + oid_of_digit(3).substr(1) + " 12"},
    {"the pointer form of an oid", "sha256:" + oid_of_digit(3) + " 12"},
    {"a line too long to be one", oid_of_digit(3) + " 12" + std::string(2000, ' ') + "x"},
  };
  temp_dir dir;
  auto file = dir.path / "inventory.txt";
  for (const auto& [what, line] : malformed) {
    INFO(what);
    write_file(file,
               "# header\n" + oid_of_digit(1) + " 1\n" + line + "\n" + oid_of_digit(2) + " 2\n");
    std::vector<std::string> seen;
    auto read = read_inventory_file(file, [&](const object_info& object) {
      seen.push_back(object.oid);
      return true;
    });
    CHECK(read.code() == errc::config_error);
    CHECK_THAT(read.message(), Catch::Contains(file.string()));
    CHECK_THAT(read.message(), Catch::Contains("line 3"));
    CHECK(seen == std::vector<std::string>{oid_of_digit(1)});
  }
}

TEST_CASE("read_inventory_file stops when visit says so") {
  temp_dir dir;
  auto file = dir.path / "inventory.txt";
  write_file(file, oid_of_digit(1) + " 1\n" + oid_of_digit(2) + " 2\nnot a line\n");
  int visits = 0;
  auto read = read_inventory_file(file, [&](const object_info&) { return ++visits < 1; });
  CHECK(read.ok());
  CHECK(visits == 1);
}

TEST_CASE("read_inventory_file reports a missing file as not_found") {
  temp_dir dir;
  auto read = read_inventory_file(dir.path / "absent.txt", [](const object_info&) { return true; });
  CHECK(read.code() == errc::not_found);
  CHECK_THAT(read.message(), Catch::Contains("absent.txt"));
}
