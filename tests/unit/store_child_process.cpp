#include "store/os/child_process.hpp"

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using ferry::child_exit;
using ferry::child_launch;
using ferry::child_options;
using ferry::child_process;
using ferry::child_result;
using ferry::errc;
using ferry::fd_guard;
using ferry::run_child;
using ferry::split_command_line;
using ferry::testing::temp_dir;

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

constexpr const char* test_path = "PATH=/usr/bin:/bin";

// `script` run by /bin/sh, with `arguments` as $1, $2, ...
child_options shell(const std::string& script, const std::vector<std::string>& arguments = {}) {
  child_options options;
  options.argv = {"/bin/sh", "-c", script, "sh"};
  options.argv.insert(options.argv.end(), arguments.begin(), arguments.end());
  options.environment = {test_path};
  options.timeout = 20s;
  return options;
}

child_result run_ok(const child_options& options) {
  auto outcome = run_child(options);
  INFO((outcome ? std::string() : outcome.error().to_string()));
  REQUIRE(outcome.ok());
  return *outcome;
}

// Bytes in which a lost, doubled or misplaced piece shows.
std::string random_bytes(size_t size, uint32_t seed) {
  std::mt19937 generator(seed);
  std::string bytes(size, '\0');
  for (auto& b : bytes)
    b = static_cast<char>(generator());
  return bytes;
}

std::string repeated(const std::string& unit, size_t size) {
  std::string bytes;
  while (bytes.size() < size)
    bytes += unit;
  bytes.resize(size);
  return bytes;
}

// Waits until `condition` holds, checking every few milliseconds; false if
// it still does not after `limit`.
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds limit) {
  auto end = steady::now() + limit;
  while (!condition()) {
    if (steady::now() >= end)
      return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// A killed process that its new parent has not reaped yet is a zombie:
// dead all the same.
bool process_gone(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH)
    return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line))
    return true;
  auto name_end = line.rfind(')');
  return name_end != std::string::npos && name_end + 2 < line.size() &&
         (line[name_end + 2] == 'Z' || line[name_end + 2] == 'X');
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

pid_t read_pid(const std::string& path) {
  std::string text = read_file(path);
  REQUIRE(!text.empty());
  return static_cast<pid_t>(std::stol(text));
}

void write_file(const std::string& path, const std::string& content, mode_t mode) {
  std::ofstream(path) << content;
  REQUIRE(::chmod(path.c_str(), mode) == 0);
}

// Sets a signal's disposition for the life of the object.
class signal_disposition {
public:
  signal_disposition(int sig, void (*handler)(int)) : sig_(sig) {
    struct sigaction action {};
    action.sa_handler = handler;
    sigemptyset(&action.sa_mask);
    REQUIRE(::sigaction(sig, &action, &previous_) == 0);
  }
  signal_disposition(const signal_disposition&) = delete;
  signal_disposition& operator=(const signal_disposition&) = delete;
  ~signal_disposition() { ::sigaction(sig_, &previous_, nullptr); }

private:
  int sig_;
  struct sigaction previous_ {};
};

// Blocks a signal in this thread for the life of the object.
class blocked_signal {
public:
  explicit blocked_signal(int sig) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    REQUIRE(pthread_sigmask(SIG_BLOCK, &set, &previous_) == 0);
  }
  blocked_signal(const blocked_signal&) = delete;
  blocked_signal& operator=(const blocked_signal&) = delete;
  ~blocked_signal() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }

private:
  sigset_t previous_{};
};

// The hex mask of a "Sig...:" line of /proc/<pid>/status output.
uint64_t signal_mask(const std::string& status_lines, const std::string& name) {
  auto at = status_lines.find(name + ":");
  REQUIRE(at != std::string::npos);
  return std::stoull(status_lines.substr(at + name.size() + 1), nullptr, 16);
}

uint64_t bit_of(int sig) { return uint64_t{1} << (sig - 1); }

// `script` run by /bin/sh, to be started with child_process::start.
child_launch shell_launch(const std::string& script,
                          const std::vector<std::string>& arguments = {}) {
  child_launch launch;
  launch.argv = {"/bin/sh", "-c", script, "sh"};
  launch.argv.insert(launch.argv.end(), arguments.begin(), arguments.end());
  launch.environment = {test_path};
  return launch;
}

child_process start_ok(const child_launch& launch) {
  auto started = child_process::start(launch);
  INFO((started ? std::string() : started.error().to_string()));
  REQUIRE(started.ok());
  return std::move(*started);
}

// Reads a child's non-blocking pipe to its end, waiting with poll.
std::string drain(fd_guard& pipe) {
  std::string text;
  std::vector<char> buffer(4096);
  bool truncated = false;
  while (pipe.get() >= 0) {
    pollfd polled{pipe.get(), POLLIN, 0};
    REQUIRE(::poll(&polled, 1, 20000) == 1);
    ferry::read_capped(pipe, buffer, text, SIZE_MAX, truncated);
  }
  CHECK_FALSE(truncated);
  return text;
}

} // namespace

TEST_CASE("a child gets its input on stdin and its output is collected", "[child_process]") {
  auto options = shell("cat; echo done >&2");
  options.input = "first line\nsecond line";
  auto outcome = run_ok(options);
  CHECK(outcome.output == options.input);
  CHECK(outcome.diagnostics == "done\n");
  CHECK(outcome.exit_code == 0);
  CHECK(outcome.signal == 0);
  CHECK_FALSE(outcome.timed_out);
  CHECK_FALSE(outcome.output_truncated);
}

TEST_CASE("a child given no input sees its stdin closed at once", "[child_process]") {
  auto options = shell("cat; echo end-of-input");
  options.timeout = 10s;
  auto outcome = run_ok(options);
  CHECK(outcome.output == "end-of-input\n");
  CHECK_FALSE(outcome.timed_out);
}

TEST_CASE("a child's exit code is reported", "[child_process]") {
  for (int code : {0, 1, 3, 127}) {
    auto outcome = run_ok(shell("exit " + std::to_string(code)));
    CHECK(outcome.exit_code == code);
    CHECK(outcome.signal == 0);
  }
}

TEST_CASE("a child killed by a signal reports the signal", "[child_process]") {
  auto outcome = run_ok(shell("echo before; kill -TERM $$; echo after"));
  CHECK(outcome.signal == SIGTERM);
  CHECK(outcome.exit_code == -1);
  CHECK(outcome.output == "before\n");
  CHECK_FALSE(outcome.timed_out);
}

TEST_CASE("a child past its timeout is killed and reported promptly", "[child_process]") {
  child_options options;
  options.argv = {"sleep", "30"};
  options.environment = {test_path};
  options.timeout = 300ms;
  // It never reads: the writes wait on a full pipe until the deadline.
  options.input = random_bytes(size_t{1} << 20, 1);
  auto started = steady::now();
  auto outcome = run_ok(options);
  auto elapsed = steady::now() - started;
  CHECK(outcome.timed_out);
  CHECK(outcome.signal == SIGKILL);
  CHECK(outcome.exit_code == -1);
  CHECK(elapsed >= 300ms);
  CHECK(elapsed < 5s);
}

TEST_CASE("a timeout also kills what the child started", "[child_process]") {
  temp_dir dir;
  std::string pid_file = (dir.path / "helper.pid").string();
  auto options = shell("sleep 30 & echo $! > \"$1\"; wait", {pid_file});
  options.timeout = 300ms;
  auto started = steady::now();
  auto outcome = run_ok(options);
  CHECK(steady::now() - started < 5s);
  CHECK(outcome.timed_out);
  pid_t helper = read_pid(pid_file);
  CHECK(eventually([&] { return process_gone(helper); }, 2s));
}

TEST_CASE("a helper left behind by a child that exited is killed", "[child_process]") {
  temp_dir dir;
  std::string pid_file = (dir.path / "helper.pid").string();
  SECTION("the helper holds the child's stdout and stderr") {
    auto started = steady::now();
    auto outcome = run_ok(shell("echo started; sleep 30 & echo $! > \"$1\"; exit 0", {pid_file}));
    CHECK(steady::now() - started < 5s);
    CHECK(outcome.exit_code == 0);
    CHECK(outcome.output == "started\n");
    CHECK_FALSE(outcome.timed_out);
  }
  SECTION("the helper's output goes elsewhere") {
    auto outcome =
      run_ok(shell("sleep 30 </dev/null >/dev/null 2>&1 & echo $! > \"$1\"; exit 4", {pid_file}));
    CHECK(outcome.exit_code == 4);
  }
  pid_t helper = read_pid(pid_file);
  CHECK(eventually([&] { return process_gone(helper); }, 2s));
}

TEST_CASE("a helper that left the child's process group cannot hold up the run",
          "[child_process]") {
  temp_dir dir;
  std::string pid_file = (dir.path / "helper.pid").string();
  // setsid puts the helper out of reach of the group kill, still holding
  // stdout open; the run must end soon after the child, not at the deadline.
  // The child exits only once the helper, from its own session, has
  // answered through the fifo.
  std::string fifo = (dir.path / "escaped").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto options = shell("setsid sh -c 'echo $$ > \"$1\"; exec sleep 30' sh \"$1\" &"
                       " read helper < \"$1\"; echo $helper > \"$2\"; echo out; exit 0",
                       {fifo, pid_file});
  auto started = steady::now();
  auto outcome = run_ok(options);
  auto elapsed = steady::now() - started;
  pid_t helper = read_pid(pid_file);
  bool helper_survived = !process_gone(helper);
  ::kill(helper, SIGKILL);
  CHECK(helper_survived);
  CHECK(elapsed < 3s);
  CHECK(outcome.exit_code == 0);
  CHECK(outcome.output == "out\n");
  CHECK_FALSE(outcome.timed_out);
}

TEST_CASE("a child gets exactly the environment given", "[child_process]") {
  ferry::testing::env_var own("FERRY_CHILD_PROCESS_OWN", "not for the child");
  child_options options;
  options.argv = {"env"};
  options.environment = {test_path, "FERRY_CHILD_TEST=one two", "EMPTY="};
  auto outcome = run_ok(options);
  CHECK(outcome.output == "PATH=/usr/bin:/bin\nFERRY_CHILD_TEST=one two\nEMPTY=\n");
}

TEST_CASE("a program is looked up in the child's PATH", "[child_process]") {
  temp_dir dir;
  write_file((dir.path / "ferry-child-tool").string(), "#!/bin/sh\necho tool \"$@\"\n", 0755);
  child_options options;
  options.argv = {"ferry-child-tool", "a b", "c"};
  options.environment = {"PATH=/nonexistent-ferry-dir:" + dir.path.string()};
  auto outcome = run_ok(options);
  CHECK(outcome.output == "tool a b c\n");

  SECTION("not in Ferry's own PATH") {
    ferry::testing::env_var own_path("PATH", dir.path.c_str());
    options.environment = {test_path};
    auto missing = run_child(options);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().code() == errc::not_found);
  }
}

TEST_CASE("without PATH in the environment a default search path is used", "[child_process]") {
  child_options options;
  options.argv = {"sh", "-c", "echo found"};
  auto outcome = run_ok(options);
  CHECK(outcome.output == "found\n");
}

TEST_CASE("a missing program is not_found, naming it and the PATH", "[child_process]") {
  child_options options;
  options.argv = {"ferry-no-such-program"};
  options.environment = {"PATH=/nonexistent-ferry-dir:/usr/bin"};
  auto outcome = run_child(options);
  REQUIRE_FALSE(outcome.ok());
  CHECK(outcome.error().code() == errc::not_found);
  CHECK_THAT(outcome.error().message(), Catch::Contains("ferry-no-such-program"));
  CHECK_THAT(outcome.error().message(), Catch::Contains("/nonexistent-ferry-dir:/usr/bin"));

  temp_dir dir;
  options.argv = {(dir.path / "missing").string()};
  outcome = run_child(options);
  REQUIRE_FALSE(outcome.ok());
  CHECK(outcome.error().code() == errc::not_found);
  CHECK_THAT(outcome.error().message(), Catch::Contains(options.argv[0]));

  options.argv.clear();
  outcome = run_child(options);
  REQUIRE_FALSE(outcome.ok());
  CHECK(outcome.error().code() == errc::not_found);
}

TEST_CASE("a program that is not executable is permission_denied", "[child_process]") {
  temp_dir dir;
  std::string tool = (dir.path / "ferry-plain-file").string();
  write_file(tool, "#!/bin/sh\necho ran\n", 0644);
  child_options options;
  SECTION("named by path") { options.argv = {tool}; }
  SECTION("found in PATH") {
    options.argv = {"ferry-plain-file"};
    options.environment = {"PATH=" + dir.path.string()};
  }
  auto outcome = run_child(options);
  REQUIRE_FALSE(outcome.ok());
  CHECK(outcome.error().code() == errc::permission_denied);
  CHECK_THAT(outcome.error().message(), Catch::Contains("ferry-plain-file"));
}

TEST_CASE("a child inherits no descriptors but its three pipes", "[child_process]") {
  // Descriptors without close-on-exec, as a careless library might leave.
  int loose_file = ::open("/dev/null", O_RDONLY);
  REQUIRE(loose_file > 2);
  int loose_pipe[2];
  REQUIRE(::pipe(loose_pipe) == 0);
  auto outcome = run_ok(shell("ls /proc/$$/fd"));
  ::close(loose_file);
  ::close(loose_pipe[0]);
  ::close(loose_pipe[1]);
  CHECK(outcome.output == "0\n1\n2\n");
}

TEST_CASE("a child starts with no blocked signals and SIGPIPE, SIGINT at default",
          "[child_process]") {
  signal_disposition ignore_pipe(SIGPIPE, SIG_IGN);
  signal_disposition ignore_interrupt(SIGINT, SIG_IGN);
  blocked_signal block(SIGUSR2);
  child_options options;
  options.argv = {"grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"};
  options.environment = {test_path};
  auto outcome = run_ok(options);
  CHECK(signal_mask(outcome.output, "SigBlk") == 0);
  CHECK((signal_mask(outcome.output, "SigIgn") & (bit_of(SIGPIPE) | bit_of(SIGINT))) == 0);
}

TEST_CASE("a child gets the user's umask, not Ferry's private one", "[child_process]") {
  // What ferry's main() does; the umask before it is the user's.
  struct private_umask {
    private_umask() : user(::umask(077)) {}
    ~private_umask() { ::umask(user); }
    const mode_t user;
  } ferry_umask;
  auto outcome = run_ok(shell("umask"));
  char expected[8];
  std::snprintf(expected, sizeof expected, "%04o\n", static_cast<unsigned>(ferry_umask.user));
  CHECK(outcome.output == expected);
}

TEST_CASE("megabytes of input and output pass intact", "[child_process]") {
  SECTION("echoed through cat") {
    auto options = shell("cat");
    options.input = random_bytes(size_t{5} << 20, 7);
    auto outcome = run_ok(options);
    CHECK(outcome.output.size() == options.input.size());
    CHECK(outcome.output == options.input);
  }
  SECTION("written by the child") {
    size_t size = size_t{6} << 20;
    auto outcome = run_ok(shell("yes 0123456789abcdef | head -c " + std::to_string(size)));
    CHECK(outcome.output.size() == size);
    CHECK(outcome.output == repeated("0123456789abcdef\n", size));
    CHECK_FALSE(outcome.output_truncated);
  }
}

TEST_CASE("output beyond max_output is dropped and flagged", "[child_process]") {
  std::string script = "yes 0123456789abcdef | head -c \"$1\"; echo finished >&2";
  auto options = shell(script, {"100000"});
  options.max_output = 1000;
  auto outcome = run_ok(options);
  CHECK(outcome.output == repeated("0123456789abcdef\n", 1000));
  CHECK(outcome.output_truncated);
  // It was read to the end, so the child did not block and finished.
  CHECK(outcome.diagnostics == "finished\n");
  CHECK(outcome.exit_code == 0);

  auto exact = shell(script, {"1000"});
  exact.max_output = 1000;
  auto at_limit = run_ok(exact);
  CHECK(at_limit.output.size() == 1000);
  CHECK_FALSE(at_limit.output_truncated);
}

TEST_CASE("diagnostics beyond max_diagnostics keep their first bytes", "[child_process]") {
  auto options = shell("yes warning | head -c 100000 >&2; echo ok");
  options.max_diagnostics = 100;
  auto outcome = run_ok(options);
  CHECK(outcome.diagnostics == repeated("warning\n", 100));
  CHECK(outcome.output == "ok\n");
  CHECK_FALSE(outcome.output_truncated);
}

TEST_CASE("input a child does not read is no error and raises no SIGPIPE", "[child_process]") {
  // With SIGPIPE at its default, one raised in this process would end it.
  signal_disposition default_pipe(SIGPIPE, SIG_DFL);
  // The child closes stdin first, then writes more than a pipe holds, so
  // Ferry is still writing when the read end goes away.
  auto options = shell("exec 0<&-; yes output | head -c 2000000; echo ok >&2");
  options.input = random_bytes(size_t{1} << 20, 3);
  SECTION("SIGPIPE unblocked") {
    auto outcome = run_ok(options);
    CHECK(outcome.exit_code == 0);
    CHECK(outcome.output.size() == 2000000);
    CHECK(outcome.diagnostics == "ok\n");
  }
  SECTION("SIGPIPE blocked by the caller is left without one pending") {
    blocked_signal block(SIGPIPE);
    auto outcome = run_ok(options);
    CHECK(outcome.exit_code == 0);
    sigset_t pending;
    REQUIRE(sigpending(&pending) == 0);
    CHECK(sigismember(&pending, SIGPIPE) == 0);
  }
}

TEST_CASE("children run from several threads at once keep their own output", "[child_process]") {
  constexpr int threads = 8;
  std::vector<std::string> inputs(threads);
  std::vector<ferry::result<child_result>> outcomes(threads, ferry::status{errc::internal, ""});
  std::vector<std::thread> runners;
  for (int i = 0; i < threads; ++i) {
    inputs[i] = random_bytes(size_t{300} << 10, static_cast<uint32_t>(i + 1));
    runners.emplace_back([i, &inputs, &outcomes] {
      auto options = shell("cat; printf %s \"$1\" >&2", {"thread " + std::to_string(i)});
      options.input = inputs[i];
      outcomes[i] = run_child(options);
    });
  }
  for (auto& runner : runners)
    runner.join();
  for (int i = 0; i < threads; ++i) {
    INFO("thread " << i);
    REQUIRE(outcomes[i].ok());
    CHECK(outcomes[i]->output == inputs[i]);
    CHECK(outcomes[i]->diagnostics == "thread " + std::to_string(i));
    CHECK(outcomes[i]->exit_code == 0);
  }
}

TEST_CASE("a child dies with the process that started it", "[child_process]") {
  temp_dir dir;
  std::string pid_file = (dir.path / "child.pid").string();
  pid_t starter = ::fork();
  REQUIRE(starter >= 0);
  if (starter == 0) {
    // The starting process: blocked in run_child until it is killed.
    (void)run_child(shell("echo $$ > \"$1\"; exec sleep 30", {pid_file}));
    ::_exit(0);
  }
  bool written = eventually(
    [&] {
      std::string text = read_file(pid_file);
      return !text.empty() && text.back() == '\n';
    },
    5s);
  ::kill(starter, SIGKILL);
  int starter_status = 0;
  REQUIRE(::waitpid(starter, &starter_status, 0) == starter);
  REQUIRE(written);
  pid_t child = read_pid(pid_file);
  CHECK(eventually([&] { return process_gone(child); }, 2s));
}

TEST_CASE("a command line splits into words like a shell's, without expansion", "[child_process]") {
  using words = std::vector<std::string>;
  struct example {
    std::string line;
    words expected;
  };
  std::vector<example> examples = {
    {"node /opt/cli/index.js", {"node", "/opt/cli/index.js"}},
    {"  a \t b\n", {"a", "b"}},
    {"'a b' c", {"a b", "c"}},
    {"'$HOME \\x \"'", {"$HOME \\x \""}},
    {R"("a \"b\" \\ \x $y")", {R"(a "b" \ \x $y)"}},
    {R"(a\ b \'c \\)", {"a b", "'c", "\\"}},
    {"pre'mid dle'post\"x y\"", {"premid dlepostx y"}},
    {"'' \"\" x", {"", "", "x"}},
    {"*.js ~ ;", {"*.js", "~", ";"}},
  };
  for (const auto& e : examples) {
    INFO(e.line);
    auto split = split_command_line(e.line);
    REQUIRE(split.ok());
    CHECK(*split == e.expected);
  }

  for (std::string bad : {"'open", "a \"open", "trailing\\", "", "  \t "}) {
    INFO(bad);
    auto split = split_command_line(bad);
    REQUIRE_FALSE(split.ok());
    CHECK(split.error().code() == errc::config_error);
  }
}

TEST_CASE("a program named by a path that is no program says what it is", "[child_process]") {
  temp_dir dir;
  child_options options;
  options.argv = {dir.path.string()};
  auto folder = run_child(options);
  REQUIRE_FALSE(folder.ok());
  CHECK(folder.error().code() == errc::permission_denied);
  CHECK_THAT(folder.error().message(), Catch::Contains(dir.path.string() + "': a directory"));

  options.argv = {"/dev/null"};
  auto device = run_child(options);
  REQUIRE_FALSE(device.ok());
  CHECK(device.error().code() == errc::permission_denied);
  CHECK_THAT(device.error().message(), Catch::Contains("'/dev/null': not a file"));

  std::string tool = (dir.path / "ferry-plain-file").string();
  write_file(tool, "#!/bin/sh\necho ran\n", 0644);
  options.argv = {tool};
  auto plain = run_child(options);
  REQUIRE_FALSE(plain.ok());
  CHECK_THAT(plain.error().message(), Catch::Contains(tool + "': not executable"));

  options.argv = {(dir.path / "ferry-plain-file" / "below").string()};
  auto below_file = run_child(options);
  REQUIRE_FALSE(below_file.ok());
  CHECK(below_file.error().code() == errc::not_found);
}

TEST_CASE("a started child's pipes are the caller's to feed and read", "[child_process]") {
  auto child = start_ok(shell_launch("read line; echo \"got $line\"; echo oops >&2; exit 5"));
  REQUIRE(child.input().get() >= 0);
  REQUIRE(::write(child.input().get(), "hello\n", 6) == 6);
  child.input().reset();
  CHECK(drain(child.output()) == "got hello\n");
  CHECK(drain(child.diagnostics()) == "oops\n");
  CHECK(child.running());
  auto ended = child.wait();
  CHECK(ended.known());
  CHECK(ended.exit_code == 5);
  CHECK(ended.signal == 0);
  CHECK_FALSE(child.running());
}

TEST_CASE("a child can be given Ferry's own descriptors, and chained to another",
          "[child_process]") {
  temp_dir dir;
  std::string source = (dir.path / "lines").string();
  std::ofstream(source) << "b\na\nc\n";
  fd_guard file{::open(source.c_str(), O_RDONLY | O_CLOEXEC)};
  REQUIRE(file.get() >= 0);
  // sort reads the file and writes into a pipe that `tr` reads.
  fd_guard between_read, between_write;
  REQUIRE(ferry::make_pipe(between_read, between_write, "test").ok());
  auto sorting = shell_launch("sort");
  sorting.stdio[0] = file.get();
  sorting.stdio[1] = between_write.get();
  auto sorter = start_ok(sorting);
  CHECK(sorter.input().get() < 0);
  CHECK(sorter.output().get() < 0);
  REQUIRE(sorter.diagnostics().get() >= 0);
  auto upper = shell_launch("tr a-z A-Z");
  upper.stdio[0] = between_read.get();
  auto upcaser = start_ok(upper);
  // Only the children hold the pipe between them now.
  between_read.reset();
  between_write.reset();
  upcaser.input().reset();
  CHECK(drain(upcaser.output()) == "A\nB\nC\n");
  CHECK(sorter.wait().exit_code == 0);
  CHECK(upcaser.wait().exit_code == 0);
}

TEST_CASE("a child starts in the directory given", "[child_process]") {
  temp_dir dir;
  auto options = shell("pwd");
  options.directory = dir.path;
  auto outcome = run_ok(options);
  CHECK(outcome.output == std::filesystem::canonical(dir.path).string() + "\n");

  SECTION("a program found relative to Ferry's directory still runs there") {
    write_file((dir.path / "ferry-child-tool").string(), "#!/bin/sh\necho tool\n", 0755);
    auto old = std::filesystem::current_path();
    std::filesystem::current_path(dir.path);
    child_options relative;
    relative.argv = {"./ferry-child-tool"};
    relative.directory = "/";
    auto ran = run_child(relative);
    std::filesystem::current_path(old);
    REQUIRE(ran.ok());
    CHECK(ran->output == "tool\n");
  }
  SECTION("a missing directory is not_found, naming it") {
    options.directory = dir.path / "missing";
    auto missing = run_child(options);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().code() == errc::not_found);
    CHECK_THAT(missing.error().message(), Catch::Contains(options.directory.string()));
  }
}

TEST_CASE("a child gets a process group of its own, or stays in Ferry's", "[child_process]") {
  // The shell's pid, then its process group (field 5 of its stat line).
  auto options = shell("echo $$ $(cut -d' ' -f5 /proc/$$/stat)");
  auto own = run_ok(options);
  std::istringstream own_fields(own.output);
  pid_t own_pid = 0, own_group = 0;
  own_fields >> own_pid >> own_group;
  CHECK(own_pid > 0);
  CHECK(own_group == own_pid);

  options.own_process_group = false;
  auto shared = run_ok(options);
  std::istringstream shared_fields(shared.output);
  pid_t shared_pid = 0, shared_group = 0;
  shared_fields >> shared_pid >> shared_group;
  CHECK(shared_group == ::getpgrp());
}

TEST_CASE("what a child without a process group of its own leaves behind lives on",
          "[child_process]") {
  temp_dir dir;
  std::string ping = (dir.path / "ping").string();
  std::string pong = (dir.path / "pong").string();
  std::string pid_file = (dir.path / "helper.pid").string();
  REQUIRE(::mkfifo(ping.c_str(), 0600) == 0);
  REQUIRE(::mkfifo(pong.c_str(), 0600) == 0);
  // The helper answers one line once the child is long gone.
  auto options = shell("(read line < \"$1\"; echo \"$line\" > \"$2\") </dev/null >/dev/null 2>&1 &"
                       " echo $! > \"$3\"; exit 0",
                       {ping, pong, pid_file});
  options.own_process_group = false;
  auto outcome = run_ok(options);
  CHECK(outcome.exit_code == 0);
  pid_t helper = read_pid(pid_file);
  // Read-write opens of a FIFO do not wait for the other side.
  fd_guard to_helper{::open(ping.c_str(), O_RDWR | O_CLOEXEC)};
  fd_guard from_helper{::open(pong.c_str(), O_RDWR | O_CLOEXEC)};
  REQUIRE(to_helper.get() >= 0);
  REQUIRE(from_helper.get() >= 0);
  REQUIRE(::write(to_helper.get(), "alive\n", 6) == 6);
  pollfd polled{from_helper.get(), POLLIN, 0};
  bool answered = ::poll(&polled, 1, 20000) == 1;
  ::kill(helper, SIGKILL);
  REQUIRE(answered);
  char answer[16] = {};
  CHECK(::read(from_helper.get(), answer, sizeof answer) == 6);
  CHECK(std::string(answer) == "alive\n");
}

TEST_CASE("kill() ends a started child, and destroying one running kills it", "[child_process]") {
  temp_dir dir;
  std::string pid_file = (dir.path / "child.pid").string();
  auto started = steady::now();
  {
    auto child = start_ok(shell_launch("echo $$ > \"$1\"; echo ready; exec sleep 30", {pid_file}));
    child.input().reset();
    // "ready" comes after the pid is written.
    std::string text;
    std::vector<char> buffer(64);
    bool truncated = false;
    while (text.empty()) {
      pollfd polled{child.output().get(), POLLIN, 0};
      REQUIRE(::poll(&polled, 1, 20000) == 1);
      ferry::read_capped(child.output(), buffer, text, SIZE_MAX, truncated);
    }
    CHECK_FALSE(child.has_exited());
  }
  // Killed, not waited out.
  CHECK(steady::now() - started < 10s);
  pid_t gone = read_pid(pid_file);
  CHECK(process_gone(gone));

  auto child = start_ok(shell_launch("exec sleep 30"));
  child.kill();
  auto ended = child.wait();
  CHECK(ended.signal == SIGKILL);
  CHECK(ended.exit_code == -1);
}

TEST_CASE("a run without a deadline is not cut short", "[child_process]") {
  auto options = shell("sleep 0.2; echo done");
  options.timeout = ferry::no_timeout;
  auto outcome = run_ok(options);
  CHECK_FALSE(outcome.timed_out);
  CHECK(outcome.exit_code == 0);
  CHECK(outcome.output == "done\n");
}
