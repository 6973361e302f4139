#include "store/os/child_process.hpp"

#include "store/os/file_io.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

namespace ferry {

namespace {

using clock = std::chrono::steady_clock;

// Searched when the child's environment has no PATH.
constexpr const char* default_search_path = "/usr/local/bin:/usr/bin:/bin";

// Once the child has exited and its group is killed, only a helper that left
// the group can still hold the pipes open; it is waited for this long at most.
constexpr std::chrono::milliseconds drain_grace{500};

// How often the child's exit is looked for when there is no pidfd to poll.
constexpr std::chrono::milliseconds exit_check_interval{10};

constexpr size_t read_chunk = size_t{64} << 10;

status io_failure(int error_number, const std::string& what) {
  return {errc::io_error, what + ": " + std::strerror(error_number)};
}

std::string search_path_of(const std::vector<std::string>& environment) {
  for (const auto& entry : environment) {
    if (entry.compare(0, 5, "PATH=") == 0)
      return entry.substr(5);
  }
  return default_search_path;
}

// Finds `program` as execvp would, but in the child's PATH, and before the
// fork: between fork and exec nothing may allocate.
result<std::string> find_program(const std::string& program,
                                 const std::vector<std::string>& environment) {
  if (program.empty())
    return status{errc::not_found, "cannot run a child: no program given"};
  if (program.find('/') != std::string::npos) {
    // Checked here too, so the message can say what is wrong with it.
    struct ::stat info {};
    std::string named = "cannot run '" + program + "'";
    if (::stat(program.c_str(), &info) != 0) {
      int error = errno;
      return status{error == ENOENT || error == ENOTDIR ? errc::not_found : errc::permission_denied,
                    named + ": " + std::strerror(error)};
    }
    if (!S_ISREG(info.st_mode))
      return status{errc::permission_denied,
                    named + ": " + (S_ISDIR(info.st_mode) ? "a directory" : "not a file") +
                      ", not a program"};
    if (::access(program.c_str(), X_OK) != 0)
      return status{errc::permission_denied, named + ": not executable"};
    return program;
  }
  std::string search_path = search_path_of(environment);
  bool denied = false;
  size_t start = 0;
  for (;;) {
    size_t end = search_path.find(':', start);
    std::string dir = search_path.substr(start, end == std::string::npos ? end : end - start);
    // An empty entry is the current directory, as in a shell.
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + program;
    struct ::stat info {};
    if (::stat(candidate.c_str(), &info) == 0 && S_ISREG(info.st_mode)) {
      if (::access(candidate.c_str(), X_OK) == 0)
        return candidate;
      denied = true;
    }
    if (end == std::string::npos)
      break;
    start = end + 1;
  }
  std::string named = "cannot run '" + program + "'";
  if (denied)
    return status{errc::permission_denied, named + ": not executable (PATH " + search_path + ")"};
  return status{errc::not_found, named + ": not found in PATH " + search_path};
}

// What the child reports through the exec-failure pipe before exiting 127.
enum class setup_step : int { process_group, descriptors, directory, exec };
struct setup_failure {
  int step;
  int error;
};

// Everything the child needs between fork and exec, prepared beforehand.
struct exec_plan {
  const char* path = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  // Where it starts; nullptr: where Ferry is.
  const char* directory = nullptr;
  bool own_process_group = true;
  // The child's stdin, stdout and stderr, in that order, then the write end
  // of the exec-failure pipe.
  int descriptors[4] = {-1, -1, -1, -1};
  pid_t parent = -1;
  // The user's umask: Ferry's own (make_own_files_private) is for its files.
  mode_t child_umask = 0;
  // Closed one by one when close_range is unavailable.
  int highest_descriptor = 0;
};

// Runs in the child, between fork and exec: async-signal-safe calls only.
// All signals are blocked on entry (see child_process::start).
[[noreturn]] void become_child(const exec_plan& plan) {
  int report = plan.descriptors[3];
  auto fail = [&report](setup_step step) {
    setup_failure failure{static_cast<int>(step), errno};
    while (::write(report, &failure, sizeof failure) < 0 && errno == EINTR) {
    }
    ::_exit(127);
  };

  if (plan.own_process_group && ::setpgid(0, 0) != 0)
    fail(setup_step::process_group);
  // The death signal is tied to the forking thread; if the whole parent is
  // already gone it was missed, and nobody waits for this child any more.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != plan.parent)
    ::_exit(127);

  // Lift the four descriptors above 3 first, so moving them to 0-3 cannot
  // overwrite one still to be moved.
  int lifted[4];
  for (int i = 0; i < 4; ++i) {
    lifted[i] = ::fcntl(plan.descriptors[i], F_DUPFD_CLOEXEC, 4);
    if (lifted[i] < 0)
      fail(setup_step::descriptors);
  }
  report = lifted[3];
  for (int target = 0; target < 4; ++target) {
    if (::dup2(lifted[target], target) < 0)
      fail(setup_step::descriptors);
  }
  report = 3;
  // dup2 cleared close-on-exec; the report pipe must close at exec so that
  // the parent reads EOF when exec succeeded.
  if (::fcntl(3, F_SETFD, FD_CLOEXEC) != 0)
    fail(setup_step::descriptors);
  if (::close_range(4, ~0U, 0) != 0) {
    for (int fd = 4; fd <= plan.highest_descriptor; ++fd)
      ::close(fd);
  }
  if (plan.directory != nullptr && ::chdir(plan.directory) != 0)
    fail(setup_step::directory);

  // Ferry's handlers must not run here, and what Ferry ignores or blocks
  // (SIGPIPE above all) must not be inherited through exec.
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction current {};
    if (::sigaction(sig, nullptr, &current) != 0)
      continue;
    bool has_handler = current.sa_handler != SIG_DFL && current.sa_handler != SIG_IGN;
    if (has_handler || sig == SIGPIPE || sig == SIGINT) {
      struct sigaction fallback {};
      fallback.sa_handler = SIG_DFL;
      sigemptyset(&fallback.sa_mask);
      ::sigaction(sig, &fallback, nullptr);
    }
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::umask(plan.child_umask);

  ::execve(plan.path, plan.argv, plan.envp);
  fail(setup_step::exec);
  ::_exit(127);
}

status make_nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)
    return io_failure(errno, "cannot start a child: fcntl");
  return status::success();
}

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  return -1;
#endif
}

int highest_descriptor() {
  struct ::rlimit limit {};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY)
    return 65535;
  return static_cast<int>(std::min<rlim_t>(limit.rlim_cur, INT_MAX) - 1);
}

// Waits for the child `pid` to end and reaps it, retrying on EINTR.
child_exit reap(pid_t pid) {
  child_exit ended;
  int wait_status = 0;
  pid_t got;
  do {
    got = ::waitpid(pid, &wait_status, 0);
  } while (got < 0 && errno == EINTR);
  if (got < 0)
    return ended;
  if (WIFEXITED(wait_status))
    ended.exit_code = WEXITSTATUS(wait_status);
  else if (WIFSIGNALED(wait_status))
    ended.signal = WTERMSIG(wait_status);
  return ended;
}

// The setup failure the child reported, as the status start() returns.
status setup_error(const setup_failure& failure, const std::string& program,
                   const std::string& path, const child_launch& launch) {
  std::string named = "cannot run '" + program + "'";
  if (path != program)
    named += " (" + path + ")";
  if (failure.step == static_cast<int>(setup_step::directory)) {
    bool missing = failure.error == ENOENT || failure.error == ENOTDIR;
    return status{missing ? errc::not_found : errc::io_error,
                  named + " in " + launch.directory.string() + ": " + std::strerror(failure.error)};
  }
  if (failure.step != static_cast<int>(setup_step::exec))
    return io_failure(failure.error, named + ": setting up the child");
  if (failure.error == ENOENT)
    return status{errc::not_found, named + ": " + std::strerror(ENOENT)};
  if (failure.error == EACCES || failure.error == EPERM)
    return status{errc::permission_denied, named + ": " + std::strerror(failure.error)};
  return io_failure(failure.error, named);
}

// The time `timeout` from now, no_timeout (or anything else too long for
// the clock) the end of time.
clock::time_point deadline_after(std::chrono::milliseconds timeout) {
  auto now = clock::now();
  auto room = std::chrono::duration_cast<std::chrono::milliseconds>(clock::time_point::max() - now);
  return timeout >= room ? clock::time_point::max() : now + timeout;
}

// write() that never raises SIGPIPE in Ferry: SIGPIPE is blocked in this
// thread for the call, and one the call raised is consumed before the mask
// is restored. Returns what write returned, errno intact.
ssize_t write_without_sigpipe(int fd, const char* data, size_t size) {
  sigset_t pipe_only;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  sigset_t previous;
  pthread_sigmask(SIG_BLOCK, &pipe_only, &previous);
  sigset_t pending;
  sigpending(&pending);
  // One pending before the call is someone else's and stays.
  bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  ssize_t written;
  do {
    written = ::write(fd, data, size);
  } while (written < 0 && errno == EINTR);
  int write_error = errno;
  if (written < 0 && write_error == EPIPE && !was_pending) {
    timespec no_wait{};
    while (sigtimedwait(&pipe_only, nullptr, &no_wait) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  errno = write_error;
  return written;
}

// One run of run_child: a child_process with three pipes, fed and drained
// until it ends.
class child_run {
public:
  explicit child_run(child_process child) : child_(std::move(child)) {}

  result<child_result> finish(const child_options& options, clock::time_point deadline);

private:
  void write_input(const std::string& input, size_t& written);

  child_process child_;
};

void child_run::write_input(const std::string& input, size_t& written) {
  fd_guard& pipe = child_.input();
  ssize_t n = write_without_sigpipe(pipe.get(), input.data() + written, input.size() - written);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return;
    // EPIPE: the child closed its stdin and does not want the rest.
    pipe.reset();
    return;
  }
  written += static_cast<size_t>(n);
  if (written == input.size())
    pipe.reset();
}

result<child_result> child_run::finish(const child_options& options, clock::time_point deadline) {
  child_result outcome;
  std::vector<char> buffer(read_chunk);
  bool diagnostics_truncated = false;
  size_t written = 0;
  fd_guard& input = child_.input();
  fd_guard& output = child_.output();
  fd_guard& diagnostics = child_.diagnostics();
  if (options.input.empty())
    input.reset();
  bool exited = false;
  // Set when the child has exited: the pipes are waited for until
  // `wait_until`, and read no longer than until `give_up`.
  clock::time_point wait_until, give_up;

  for (;;) {
    auto now = clock::now();
    if (!exited && now >= deadline) {
      child_.kill();
      (void)child_.wait();
      outcome.timed_out = true;
      outcome.signal = SIGKILL;
      return outcome;
    }
    if (exited && (now >= give_up || (output.get() < 0 && diagnostics.get() < 0)))
      break;

    poll_list<4> polled;
    int input_at = polled.add(input.get(), POLLOUT);
    int output_at = polled.add(output.get(), POLLIN);
    int diagnostics_at = polled.add(diagnostics.get(), POLLIN);
    int exit_at = exited ? -1 : polled.add(child_.exit_watch(), POLLIN);

    auto wait = (exited ? std::max(wait_until, now) : deadline) - now;
    if (!exited && child_.exit_watch() < 0)
      wait = std::min<clock::duration>(wait, exit_check_interval);
    // Rounded up, so the loop does not spin just short of the deadline.
    auto wait_ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
    int ready =
      ::poll(polled.data(), polled.size(), static_cast<int>(std::min<int64_t>(wait_ms, INT_MAX)));
    if (ready < 0) {
      if (errno == EINTR)
        continue;
      int poll_error = errno;
      child_.kill();
      (void)child_.wait();
      return io_failure(poll_error, "cannot run '" + options.argv.front() + "': poll");
    }
    if (exited && ready == 0 && clock::now() >= wait_until)
      break;

    if (polled.ready(input_at))
      write_input(options.input, written);
    if (polled.ready(output_at))
      read_capped(output, buffer, outcome.output, options.max_output, outcome.output_truncated);
    if (polled.ready(diagnostics_at))
      read_capped(diagnostics, buffer, outcome.diagnostics, options.max_diagnostics,
                  diagnostics_truncated);
    bool may_have_exited = exit_at >= 0 ? polled.ready(exit_at) : child_.exit_watch() < 0;
    if (!exited && may_have_exited && child_.has_exited()) {
      exited = true;
      // Helpers it started would keep the pipes open; they go with it. What
      // the child itself wrote is in the pipes already.
      child_.kill();
      input.reset();
      give_up = clock::now() + drain_grace;
      wait_until = std::min(deadline, give_up);
    }
  }

  auto ended = child_.wait();
  outcome.exit_code = ended.exit_code;
  outcome.signal = ended.signal;
  return outcome;
}

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

} // namespace

result<child_process> child_process::start(const child_launch& launch) {
  if (launch.argv.empty())
    return status{errc::not_found, "cannot run a child: no program given"};
  const std::string& program = launch.argv.front();
  auto found = find_program(program, launch.environment);
  if (!found)
    return found.error();
  std::string path = *found;
  // Checked where Ferry is; the child looks for it after changing directory.
  if (!launch.directory.empty() && path.front() != '/')
    path = std::filesystem::absolute(path).string();

  child_process child;
  child.own_group_ = launch.own_process_group;
  fd_guard* own_ends[3] = {&child.input_, &child.output_, &child.diagnostics_};
  fd_guard child_ends[3];
  for (int i = 0; i < 3; ++i) {
    if (launch.stdio[i] != child_launch::pipe)
      continue;
    // stdin is read by the child, stdout and stderr written.
    auto made = i == 0 ? make_pipe(child_ends[i], *own_ends[i], "start a child")
                       : make_pipe(*own_ends[i], child_ends[i], "start a child");
    if (!made)
      return made;
  }
  fd_guard report_read, report_write;
  if (auto st = make_pipe(report_read, report_write, "start a child"); !st)
    return st;

  std::vector<char*> argv;
  for (const auto& word : launch.argv)
    argv.push_back(const_cast<char*>(word.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& entry : launch.environment)
    envp.push_back(const_cast<char*>(entry.c_str()));
  envp.push_back(nullptr);

  exec_plan plan;
  plan.path = path.c_str();
  plan.argv = argv.data();
  plan.envp = envp.data();
  plan.directory = launch.directory.empty() ? nullptr : launch.directory.c_str();
  plan.own_process_group = launch.own_process_group;
  for (int i = 0; i < 3; ++i)
    plan.descriptors[i] =
      launch.stdio[i] == child_launch::pipe ? child_ends[i].get() : launch.stdio[i];
  plan.descriptors[3] = report_write.get();
  plan.parent = ::getpid();
  plan.child_umask = user_umask();
  plan.highest_descriptor = highest_descriptor();

  // With every signal blocked across fork, none of Ferry's handlers can run
  // in the child before it resets them.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  pid_t pid = ::fork();
  int fork_error = errno;
  if (pid == 0)
    become_child(plan);
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (pid < 0)
    return io_failure(fork_error, "cannot run '" + program + "': fork");
  child.pid_ = pid;
  // The child does the same; whichever runs first, the group exists before
  // anything could signal it. Failing after the child's exec is harmless.
  if (launch.own_process_group)
    ::setpgid(pid, pid);

  for (auto& end : child_ends)
    end.reset();
  report_write.reset();
  setup_failure failure{};
  ssize_t got;
  do {
    got = ::read(report_read.get(), &failure, sizeof failure);
  } while (got < 0 && errno == EINTR);
  if (got == static_cast<ssize_t>(sizeof failure)) {
    (void)child.wait();
    return setup_error(failure, program, path, launch);
  }

  child.exit_watch_.reset(open_pidfd(pid));
  for (auto* end : own_ends) {
    if (end->get() < 0)
      continue;
    if (auto st = make_nonblocking(end->get()); !st)
      return st;
  }
  return child;
}

child_process::child_process(child_process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), own_group_(other.own_group_),
      input_(std::move(other.input_)), output_(std::move(other.output_)),
      diagnostics_(std::move(other.diagnostics_)), exit_watch_(std::move(other.exit_watch_)) {}

child_process& child_process::operator=(child_process&& other) noexcept {
  if (this != &other) {
    if (running()) {
      kill();
      (void)wait();
    }
    pid_ = std::exchange(other.pid_, -1);
    own_group_ = other.own_group_;
    input_ = std::move(other.input_);
    output_ = std::move(other.output_);
    diagnostics_ = std::move(other.diagnostics_);
    exit_watch_ = std::move(other.exit_watch_);
  }
  return *this;
}

child_process::~child_process() {
  if (running()) {
    kill();
    (void)wait();
  }
}

bool child_process::has_exited() const {
  if (!running())
    return true;
  siginfo_t info{};
  int rc;
  do {
    rc = ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT);
  } while (rc < 0 && errno == EINTR);
  // ECHILD: it was reaped behind our back (SIGCHLD ignored); it is gone.
  return rc < 0 || info.si_pid != 0;
}

void child_process::kill() const {
  if (running())
    ::kill(own_group_ ? -pid_ : pid_, SIGKILL);
}

child_exit child_process::wait() {
  if (!running())
    return {};
  auto ended = reap(pid_);
  pid_ = -1;
  return ended;
}

void read_capped(fd_guard& pipe, std::vector<char>& buffer, std::string& into, size_t limit,
                 bool& truncated) {
  ssize_t got;
  do {
    got = ::read(pipe.get(), buffer.data(), buffer.size());
  } while (got < 0 && errno == EINTR);
  if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    return;
  if (got <= 0) {
    pipe.reset();
    return;
  }
  size_t room = limit - std::min(limit, into.size());
  size_t kept = std::min(room, static_cast<size_t>(got));
  into.append(buffer.data(), kept);
  if (kept < static_cast<size_t>(got))
    truncated = true;
}

result<child_result> run_child(const child_options& options) {
  auto deadline = deadline_after(options.timeout);
  child_launch launch;
  launch.argv = options.argv;
  launch.environment = options.environment;
  launch.directory = options.directory;
  launch.own_process_group = options.own_process_group;
  auto child = child_process::start(launch);
  if (!child)
    return child.error();
  return child_run(std::move(*child)).finish(options, deadline);
}

result<std::vector<std::string>> split_command_line(const std::string& line) {
  enum class quoting { none, single, double_quotes };
  quoting mode = quoting::none;
  std::vector<std::string> words;
  std::string word;
  // Separate from word.empty(): '' is a word of its own.
  bool in_word = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (mode == quoting::single) {
      if (c == '\'')
        mode = quoting::none;
      else
        word += c;
    } else if (mode == quoting::double_quotes) {
      if (c == '"')
        mode = quoting::none;
      else if (c == '\\' && i + 1 < line.size() && (line[i + 1] == '"' || line[i + 1] == '\\'))
        word += line[++i];
      else
        word += c;
    } else if (is_blank(c)) {
      if (in_word)
        words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else {
      in_word = true;
      if (c == '\'') {
        mode = quoting::single;
      } else if (c == '"') {
        mode = quoting::double_quotes;
      } else if (c == '\\') {
        if (i + 1 == line.size())
          return status{errc::config_error, "command line ends with a backslash: " + line};
        word += line[++i];
      } else {
        word += c;
      }
    }
  }
  if (mode != quoting::none) {
    const char* quote = mode == quoting::single ? "'" : "\"";
    return status{errc::config_error,
                  std::string("command line has an unclosed ") + quote + ": " + line};
  }
  if (in_word)
    words.push_back(std::move(word));
  if (words.empty())
    return status{errc::config_error, "command line has no words: '" + line + "'"};
  return words;
}

std::vector<std::string> environment_entries(const std::map<std::string, std::string>& variables) {
  std::vector<std::string> entries;
  entries.reserve(variables.size());
  for (const auto& [name, value] : variables)
    entries.push_back(name + "=" + value);
  return entries;
}

} // namespace ferry
